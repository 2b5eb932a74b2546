package groqwebhook

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The de-duplication tests run through a real Caddy, and for the redis
// store a real redis-server, in front of an upstream that counts what it got.

const duplicateBody = `{"received":true,"duplicate":true}`

func eventBody(id string) []byte {
	return []byte(`{"id":"` + id + `","type":"resource.created","data":{}}`)
}

// startDedupeSite runs one site with the given groq_webhook block contents
// in front of up, and returns its URL.
func startDedupeSite(t *testing.T, up *upstream, options string) string {
	t.Helper()
	port := freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}}
		`+options+`
	}
	reverse_proxy {{upstream}}
}
`, map[string]string{"port": strconv.Itoa(port), "secret": testSecret, "upstream": up.addr()})
	return fmt.Sprintf("http://127.0.0.1:%d/", port)
}

func TestDedupeSameEventTwice(t *testing.T) {
	up := newUpstream(t)
	url := startDedupeSite(t, up, "") // the default: memory

	first := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_twice")))
	second := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_twice")))
	if first.Status != http.StatusOK || first.Body != `{"upstream":true}` {
		t.Fatalf("first delivery: %d %s", first.Status, first.Body)
	}
	if second.Status != http.StatusOK || second.Body != duplicateBody {
		t.Fatalf("second delivery: %d %s, want 200 %s", second.Status, second.Body, duplicateBody)
	}
	wantHeader(t, second.Header, DuplicateHeader, "true")
	if n := up.countByEventID()["evt_twice"]; n != 1 {
		t.Fatalf("upstream got the event %d times, want 1", n)
	}

	// Without an id, the signature is the key: the same signed bytes are a
	// duplicate, the same body signed at another second is not.
	noID := []byte(`{"type":"resource.updated"}`)
	now := time.Now()
	do(t, signedRequest(t, url, testSecret, now, noID))
	again := do(t, signedRequest(t, url, testSecret, now, noID))
	later := do(t, signedRequest(t, url, testSecret, now.Add(-time.Second), noID))
	if again.Body != duplicateBody || later.Body == duplicateBody {
		t.Fatalf("by signature: same request %q, re-signed %q", again.Body, later.Body)
	}
	if n := up.countByEventID()[""]; n != 2 {
		t.Fatalf("upstream got %d events without id, want 2", n)
	}
}

func TestDedupeRetryAfterUpstreamFailure(t *testing.T) {
	up := newUpstream(t)
	url := startDedupeSite(t, up, "dedupe memory")
	send := func() response {
		return do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_retry")))
	}

	up.setStatus(http.StatusInternalServerError)
	if got := send(); got.Status != http.StatusInternalServerError {
		t.Fatalf("first attempt: %d %s, want the upstream's 500", got.Status, got.Body)
	}
	up.setStatus(http.StatusOK)
	if got := send(); got.Status != http.StatusOK || got.Body != `{"upstream":true}` {
		t.Fatalf("retry: %d %s, want it forwarded", got.Status, got.Body)
	}
	if got := send(); got.Body != duplicateBody {
		t.Fatalf("after delivery: %d %s, want a duplicate", got.Status, got.Body)
	}
	if n := up.countByEventID()["evt_retry"]; n != 2 {
		t.Fatalf("upstream got the event %d times, want 2 (the failure and the retry)", n)
	}
}

func TestDedupeUpstreamDown(t *testing.T) {
	// Nothing listens on the upstream port: the proxy fails, the claim
	// must be released, and the retry to a working upstream delivered.
	up := newUpstream(t)
	port := freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	@first header X-Attempt 1
	reverse_proxy @first 127.0.0.1:{{dead}}
	reverse_proxy {{upstream}}
}
`, map[string]string{"port": strconv.Itoa(port), "secret": testSecret, "dead": strconv.Itoa(freePort(t)), "upstream": up.addr()})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	req := signedRequest(t, url, testSecret, time.Now(), eventBody("evt_down"))
	req.Header.Set("X-Attempt", "1")
	if got := do(t, req); got.Status != http.StatusBadGateway {
		t.Fatalf("first attempt: %d %s, want 502", got.Status, got.Body)
	}
	if got := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_down"))); got.Status != http.StatusOK {
		t.Fatalf("retry: %d %s", got.Status, got.Body)
	}
	if n := up.countByEventID()["evt_down"]; n != 1 {
		t.Fatalf("upstream got the event %d times, want 1", n)
	}
}

// sendConcurrently sends n copies of one event at once and returns the
// answers.
func sendConcurrently(t *testing.T, urls []string, id string, n int) []response {
	t.Helper()
	responses := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		req := signedRequest(t, urls[i%len(urls)], testSecret, time.Now(), eventBody(id))
		wg.Go(func() { responses[i] = do(t, req) })
	}
	wg.Wait()
	return responses
}

func TestDedupeConcurrentCopies(t *testing.T) {
	up := newUpstream(t)
	up.setDelay(300 * time.Millisecond)
	url := startDedupeSite(t, up, "")

	responses := sendConcurrently(t, []string{url}, "evt_concurrent", 20)
	checkOneDelivery(t, responses)
	if n := up.countByEventID()["evt_concurrent"]; n != 1 {
		t.Fatalf("upstream got the event %d times, want 1", n)
	}
}

// checkOneDelivery asserts that of concurrent copies exactly one was
// forwarded and every other one was answered 409 or 200 duplicate.
func checkOneDelivery(t *testing.T, responses []response) {
	t.Helper()
	var forwarded, inProgress, duplicates int
	for _, r := range responses {
		switch {
		case r.Status == http.StatusOK && r.Body == `{"upstream":true}`:
			forwarded++
		case r.Status == http.StatusOK && r.Body == duplicateBody:
			duplicates++
		case r.Status == http.StatusConflict && r.Body == `{"error":"event in progress"}`:
			inProgress++
			if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("409 with Retry-After %q", r.Header.Get("Retry-After"))
			}
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Body)
		}
	}
	if forwarded != 1 || inProgress+duplicates != len(responses)-1 {
		t.Fatalf("forwarded %d, in progress %d, duplicates %d", forwarded, inProgress, duplicates)
	}
}

// startTwoInstances runs two sites, as two Caddy instances would be, each
// with its own redis store pointed at one redis-server.
func startTwoInstances(t *testing.T, up *upstream, redisAddr, extra string) (string, string) {
	t.Helper()
	portA, portB := freePort(t), freePort(t)
	site := func(port int) string {
		return `
http://127.0.0.1:` + strconv.Itoa(port) + ` {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}}
		dedupe redis {
			address {{redis}}
			timeout 300ms
			` + extra + `
		}
	}
	reverse_proxy {{upstream}}
}
`
	}
	startCaddy(t, site(portA)+site(portB), map[string]string{
		"secret": testSecret, "redis": redisAddr, "upstream": up.addr(),
	})
	return fmt.Sprintf("http://127.0.0.1:%d/", portA), fmt.Sprintf("http://127.0.0.1:%d/", portB)
}

func TestDedupeTwoInstancesShareRedis(t *testing.T) {
	rd := startRedis(t)
	up := newUpstream(t)
	urlA, urlB := startTwoInstances(t, up, rd.addr, "")

	if got := do(t, signedRequest(t, urlA, testSecret, time.Now(), eventBody("evt_shared"))); got.Status != http.StatusOK || got.Body != `{"upstream":true}` {
		t.Fatalf("via A: %d %s", got.Status, got.Body)
	}
	got := do(t, signedRequest(t, urlB, testSecret, time.Now(), eventBody("evt_shared")))
	if got.Status != http.StatusOK || got.Body != duplicateBody {
		t.Fatalf("retry via B: %d %s, want a duplicate", got.Status, got.Body)
	}
	if n := up.countByEventID()["evt_shared"]; n != 1 {
		t.Fatalf("upstream got the event %d times, want 1", n)
	}
	ttl, err := rd.client().PTTL(t.Context(), "groq_webhook:event:evt_shared").Result()
	if err != nil || ttl <= 0 || ttl > DefaultDedupeTTL {
		t.Fatalf("delivered key PTTL = %v (%v), want within the 168h ttl", ttl, err)
	}

	up.setDelay(300 * time.Millisecond)
	checkOneDelivery(t, sendConcurrently(t, []string{urlA, urlB}, "evt_shared_concurrent", 20))
	if n := up.countByEventID()["evt_shared_concurrent"]; n != 1 {
		t.Fatalf("upstream got the concurrent event %d times, want 1", n)
	}
}

func TestDedupeRedisStoppedMidRun(t *testing.T) {
	rd := startRedis(t)
	up := newUpstream(t)
	urlA, urlB := startTwoInstances(t, up, rd.addr, "")

	// Events before, during and after the outage. A sender retries every
	// event that did not get a 2xx, as real senders do.
	pending := map[string]bool{}
	send := func(id, url string) response {
		got := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody(id)))
		if got.Status/100 == 2 {
			delete(pending, id)
		} else {
			pending[id] = true
		}
		return got
	}
	for i := range 5 {
		send(fmt.Sprintf("evt_before_%d", i), urlA)
	}

	rd.stop()
	for i := range 5 {
		id := fmt.Sprintf("evt_during_%d", i)
		got := send(id, urlB)
		if got.Status != http.StatusServiceUnavailable || got.Body != `{"error":"dedupe store unavailable"}` {
			t.Fatalf("while redis is down: %d %s, want 503", got.Status, got.Body)
		}
		if got.Header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	}
	if n := len(up.received()); n != 5 {
		t.Fatalf("upstream got %d requests, want only the 5 sent before the outage", n)
	}

	rd.start()
	for i := range 5 {
		send(fmt.Sprintf("evt_after_%d", i), urlA)
	}
	for id := range pending {
		send(id, urlA)
	}
	if len(pending) != 0 {
		t.Fatalf("events still not delivered after redis came back: %v", pending)
	}
	counts := up.countByEventID()
	if len(counts) != 15 {
		t.Fatalf("upstream got %d distinct events, want 15", len(counts))
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s reached the upstream %d times", id, n)
		}
	}
}

func TestDedupeOnStoreErrorForward(t *testing.T) {
	rd := startRedis(t)
	up := newUpstream(t)
	urlA, _ := startTwoInstances(t, up, rd.addr, "on_store_error forward")
	rd.stop()
	got := do(t, signedRequest(t, urlA, testSecret, time.Now(), eventBody("evt_forwarded")))
	if got.Status != http.StatusOK || got.Body != `{"upstream":true}` {
		t.Fatalf("with the store down: %d %s, want forwarded", got.Status, got.Body)
	}
	if n := up.countByEventID()["evt_forwarded"]; n != 1 {
		t.Fatalf("upstream got the event %d times, want 1", n)
	}
}

// TestNoGoroutinesLeftAfterStop runs Caddy with both stores, stops it, and
// checks that the goroutines it started (servers, otter's maintenance,
// go-redis's pool) are gone.
func TestNoGoroutinesLeftAfterStop(t *testing.T) {
	rd := startRedis(t)
	up := newUpstream(t)
	run := func() {
		portA, portB := freePort(t), freePort(t)
		startCaddy(t, `
http://127.0.0.1:{{a}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	reverse_proxy {{upstream}}
}
http://127.0.0.1:{{b}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}}
		dedupe redis {
			address {{redis}}
		}
	}
	reverse_proxy {{upstream}}
}
`, map[string]string{"a": strconv.Itoa(portA), "b": strconv.Itoa(portB), "secret": testSecret,
			"redis": rd.addr, "upstream": up.addr()})
		for i, port := range []int{portA, portB} {
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			do(t, signedRequest(t, url, testSecret, time.Now(), eventBody(fmt.Sprintf("evt_leak_%d", i))))
		}
		if err := caddy.Stop(); err != nil {
			t.Fatal(err)
		}
		testClient.CloseIdleConnections()
		up.CloseClientConnections()
	}
	run() // warm up whatever Caddy starts once per process
	baseline := runtime.NumGoroutine()
	run()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after stopping, %d before:\n%s",
				runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
	// go-redis keeps connections, not goroutines: they must be closed too.
	inspect := rd.client()
	for {
		list, err := inspect.ClientList(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(list, "\n"); n <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis still has connections from the stopped Caddy:\n%s", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDedupeCommitsWhenUpstreamAcceptedThenBrokeOff: the upstream answers
// 200 and then drops the connection mid-body. It accepted the event, so a
// retry must be a duplicate, not a second delivery.
func TestDedupeCommitsWhenUpstreamAcceptedThenBrokeOff(t *testing.T) {
	var mu sync.Mutex
	deliveries := 0
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		deliveries++
		mu.Unlock()
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"recei`))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer broken.Close()
	port := freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	reverse_proxy {{upstream}}
}
`, map[string]string{"port": strconv.Itoa(port), "secret": testSecret, "upstream": broken.Listener.Addr().String()})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	if resp, err := testClient.Do(signedRequest(t, url, testSecret, time.Now(), eventBody("evt_broke_off"))); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // the body breaks off
		resp.Body.Close()
	}
	got := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_broke_off")))
	if got.Body != duplicateBody {
		t.Fatalf("retry: %d %s, want a duplicate", got.Status, got.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if deliveries != 1 {
		t.Fatalf("upstream got the event %d times, want 1", deliveries)
	}
}

func TestDedupeKeys(t *testing.T) {
	d := &Dedupe{KeyPrefix: "p:"}
	var sig Signature
	sig[0] = 0xab
	long := strings.Repeat("x", maxKeyedIDLength+1)
	tests := []struct {
		id, want string
	}{
		{"evt_1", "p:event:evt_1"},
		{strings.Repeat("x", maxKeyedIDLength), "p:event:" + strings.Repeat("x", maxKeyedIDLength)},
		{long, "p:event-sha256:" + fmt.Sprintf("%x", sha256.Sum256([]byte(long)))},
		{"", "p:sig:" + fmt.Sprintf("%x", sha256.Sum256(sig[:]))},
	}
	for _, tt := range tests {
		if got := d.key(tt.id, sig); got != tt.want {
			t.Errorf("key(%.20q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if strings.Contains(d.key("", sig), fmt.Sprintf("%x", sig[:])) {
		t.Error("the key holds the signature")
	}
}
