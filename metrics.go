package groqwebhook

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// The collectors are built once per process and registered into the
// registry of every config that loads, so counts survive config reloads and
// a `caddy validate` does not register anything twice.
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "groq_webhook",
		Name:      "requests_total",
		Help:      "Webhook requests by result: verified, duplicate, in_progress, a rejection reason, store_error, or busy (turned away by max_buffered).",
	}, []string{"result"})

	secretMatchesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "groq_webhook",
		Name:      "secret_matches_total",
		Help:      "Verified requests by the label of the secret that matched; shows the progress of a rotation.",
	}, []string{"secret"})

	timestampSkew = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "groq_webhook",
		Name:      "timestamp_skew_seconds",
		Help:      "How far behind this server's clock webhook timestamps are (negative: ahead), for well-formed timestamps.",
		Buckets:   []float64{-300, -60, -10, -1, 0, 1, 5, 10, 30, 60, 300, 900},
	})

	bufferedBytesGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "groq_webhook",
		Name:      "buffered_bytes",
		Help:      "Bytes of request bodies held in memory right now, by all groq_webhook handlers of the process; bounded by max_buffered.",
	}, func() float64 { return float64(heldBytes()) })
)

// The requests_total series counted on every request, resolved once.
var (
	verifiedTotal  = requestsTotal.WithLabelValues("verified")
	duplicateTotal = requestsTotal.WithLabelValues("duplicate")
)

// registerMetrics adds the collectors to a config's registry. The registry
// is nil where no metrics are collected, as in unit tests.
func registerMetrics(registry *prometheus.Registry) error {
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{requestsTotal, secretMatchesTotal, timestampSkew, bufferedBytesGauge} {
		var already prometheus.AlreadyRegisteredError
		if err := registry.Register(c); err != nil && !errors.As(err, &already) {
			return err
		}
	}
	return nil
}
