package groqwebhook

import (
	"context"
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
		Help:      "Webhook requests by provider and result: verified, duplicate, handshake, queued, in_progress, a rejection reason, store_error, or busy (turned away by max_buffered).",
	}, []string{"provider", "result"})

	secretMatchesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "groq_webhook",
		Name:      "secret_matches_total",
		Help:      "Verified requests by provider and the label of the secret that matched; shows the progress of a rotation.",
	}, []string{"provider", "secret"})

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

	deliveriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "groq_webhook",
		Name:      "deliveries_total",
		Help:      "Delivery attempts of queued events by outcome: delivered, retried, dead.",
	}, []string{"queue", "outcome"})

	deliverySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "groq_webhook",
		Name:      "delivery_seconds",
		Help:      "Time from accepting a queued event to its upstream's 2xx.",
		Buckets:   []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 7200, 36000, 86400},
	}, []string{"queue"})
)

// registerMetrics adds the collectors to a config's registry. The registry
// is nil where no metrics are collected, as in unit tests.
func registerMetrics(registry *prometheus.Registry) error {
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{requestsTotal, secretMatchesTotal, timestampSkew, bufferedBytesGauge, deliveriesTotal, deliverySeconds, queueEventsCollector{}} {
		var already prometheus.AlreadyRegisteredError
		if err := registry.Register(c); err != nil && !errors.As(err, &already) {
			return err
		}
	}
	return nil
}

var queueEventsDesc = prometheus.NewDesc("caddy_groq_webhook_queue_events",
	"Events of each queue of this process by state: queued, in_flight, dead.", []string{"queue", "state"}, nil)

// queueEventsCollector reads the queues' counts when metrics are scraped.
type queueEventsCollector struct{}

func (queueEventsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueEventsDesc }

func (queueEventsCollector) Collect(ch chan<- prometheus.Metric) {
	runningQueues.Range(func(_, v any) bool {
		e := v.(*queueEngine)
		stats, err := e.stats(context.Background())
		if err != nil {
			return true
		}
		for state, n := range map[string]int{"queued": stats.Queued, "in_flight": stats.InFlight, "dead": stats.Dead} {
			ch <- prometheus.MustNewConstMetric(queueEventsDesc, prometheus.GaugeValue, float64(n), e.name, state)
		}
		return true
	})
}
