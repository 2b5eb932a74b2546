package groqwebhook

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// scrape reads Caddy's admin /metrics endpoint into series name (with
// labels, as exposed) -> value.
func scrape(t *testing.T, adminAddr string) map[string]float64 {
	t.Helper()
	resp, err := testClient.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_groq_webhook_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

const metricsSites = `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}} current
		secret old-secret-0123456789abcdef old
		max_body 1KiB
	}
	reverse_proxy {{upstream}}
}
http://127.0.0.1:{{storeless}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}} current
		dedupe redis {
			address 127.0.0.1:{{dead}}
			timeout 200ms
		}
	}
	reverse_proxy {{upstream}}
}
`

// TestMetricsScrape sends one request of each kind through Caddy and reads
// the counts back from the admin endpoint, across a config reload.
func TestMetricsScrape(t *testing.T) {
	up := newUpstream(t)
	port, storeless := freePort(t), freePort(t)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	vars := map[string]string{
		"port": strconv.Itoa(port), "storeless": strconv.Itoa(storeless), "dead": strconv.Itoa(freePort(t)),
		"secret": testSecret, "upstream": up.addr(), "admin": adminAddr,
	}
	tc := startCaddy(t, metricsSites, vars)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	before := scrape(t, adminAddr)

	now := time.Now()
	send := func(req *http.Request) { do(t, req) }
	send(signedRequest(t, url, testSecret, now, eventBody("evt_m1")))
	send(signedRequest(t, url, testSecret, now, eventBody("evt_m1"))) // duplicate
	send(signedRequest(t, url, "old-secret-0123456789abcdef", now, eventBody("evt_m2")))
	send(signedRequest(t, url, "wrong-secret-0123456789abcdef", now, eventBody("evt_m3")))
	send(signedRequest(t, url, testSecret, now.Add(-time.Hour), eventBody("evt_m4")))
	send(signedRequest(t, url, testSecret, now.Add(time.Hour), eventBody("evt_m5")))
	noSig := signedRequest(t, url, testSecret, now, eventBody("evt_m6"))
	noSig.Header.Del(DefaultSignatureHeader)
	send(noSig)
	badTS := signedRequest(t, url, testSecret, now, eventBody("evt_m7"))
	badTS.Header.Set(DefaultTimestampHeader, "1.7e9")
	send(badTS)
	send(signedRequest(t, url, testSecret, now, make([]byte, 2048)))
	get, _ := http.NewRequest(http.MethodGet, url, nil)
	send(get)
	send(signedRequest(t, fmt.Sprintf("http://127.0.0.1:%d/", storeless), testSecret, now, eventBody("evt_m8")))
	// Two copies in flight at once: one waits behind the other.
	up.setDelay(time.Second)
	var wg sync.WaitGroup
	for range 2 {
		req := signedRequest(t, url, testSecret, now, eventBody("evt_m9"))
		wg.Go(func() { send(req) })
	}
	wg.Wait()
	up.setDelay(0)

	after := scrape(t, adminAddr)
	delta := func(series string) float64 { return after[series] - before[series] }
	want := map[string]float64{
		`caddy_groq_webhook_requests_total{provider="groq",result="verified"}`:           3,
		`caddy_groq_webhook_requests_total{provider="groq",result="duplicate"}`:          1,
		`caddy_groq_webhook_requests_total{provider="groq",result="in_progress"}`:        1,
		`caddy_groq_webhook_requests_total{provider="groq",result="invalid_signature"}`:  1,
		`caddy_groq_webhook_requests_total{provider="groq",result="stale_timestamp"}`:    1,
		`caddy_groq_webhook_requests_total{provider="groq",result="future_timestamp"}`:   1,
		`caddy_groq_webhook_requests_total{provider="groq",result="missing_header"}`:     1,
		`caddy_groq_webhook_requests_total{provider="groq",result="malformed"}`:          1,
		`caddy_groq_webhook_requests_total{provider="groq",result="too_large"}`:          1,
		`caddy_groq_webhook_requests_total{provider="groq",result="method_not_allowed"}`: 1,
		`caddy_groq_webhook_requests_total{provider="groq",result="store_error"}`:        1,
		`caddy_groq_webhook_secret_matches_total{provider="groq",secret="current"}`:      5,
		`caddy_groq_webhook_secret_matches_total{provider="groq",secret="old"}`:          1,
		// Every well-formed timestamp is observed, in or out of the window.
		`caddy_groq_webhook_timestamp_skew_seconds_count`: 11,
	}
	for series, n := range want {
		if got := delta(series); got != n {
			t.Errorf("%s went up by %v, want %v", series, got, n)
		}
	}

	// A reload keeps the collectors and their counts.
	vars["port"] = strconv.Itoa(freePort(t))
	tc.load(t, metricsSites, vars)
	reloaded := scrape(t, adminAddr)
	for series := range want {
		if reloaded[series] != after[series] {
			t.Errorf("after reload %s = %v, want %v", series, reloaded[series], after[series])
		}
	}
}

// TestValidateTwiceRegistersNothingTwice validates a config with two
// handlers, twice, as `caddy validate` does with a running server.
func TestValidateTwiceRegistersNothingTwice(t *testing.T) {
	t.Setenv("GROQ_WEBHOOK_SECRET", testSecret)
	for range 2 {
		cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`
http://127.0.0.1:1 {
	groq_webhook {env.GROQ_WEBHOOK_SECRET}
}
http://127.0.0.1:2 {
	groq_webhook {env.GROQ_WEBHOOK_SECRET}
}
`), nil)
		if err != nil {
			t.Fatal(err)
		}
		var cfg caddy.Config
		if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&cfg); err != nil {
			t.Fatalf("validate: %v", err)
		}
	}
}
