package groqwebhook

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startUpstreamOn starts a recording upstream on addr, so that a test can
// keep it down (nothing listening: connection refused) and bring it up.
func startUpstreamOn(t *testing.T, addr string) *upstream {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{status: http.StatusOK}
	u.Server = httptest.NewUnstartedServer(u.recorder(t))
	u.Server.Listener.Close()
	u.Server.Listener = l
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// sendAll sends the events at the given concurrency and returns the
// answers by status.
func sendAll(t *testing.T, url string, bodies [][]byte, workers int) map[int]int {
	t.Helper()
	statuses := map[int]int{}
	var mu sync.Mutex
	work := make(chan []byte)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Go(func() {
			for body := range work {
				resp, err := client.Do(signedRequest(t, url, testSecret, time.Now(), body))
				status := -1
				if err == nil {
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	return statuses
}

// TestQueueSurvivesKill9: with the upstream down, 500 accepted events, a
// kill -9 of Caddy, a restart on the same data, then the upstream up:
// every event is delivered, and none twice.
func TestQueueSurvivesKill9(t *testing.T) {
	upstreamAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	port := freePort(t)
	retries := strings.Repeat("200ms ", 40)
	caddy := startCaddyProcess(t, fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	groq_webhook {
		secret {env.GROQ_WEBHOOK_SECRET}
		queue {
			retry %s
		}
		deliver {
			reverse_proxy %s
		}
	}
}
`, port, retries, upstreamAddr))
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks", port)
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))

	const events = 500
	bodies := make([][]byte, events)
	for i := range bodies {
		bodies[i] = eventBody(fmt.Sprintf("evt_kill_%03d", i))
	}
	if got := sendAll(t, url, bodies, 16); got[http.StatusAccepted] != events {
		t.Fatalf("answers by status %v, want %d times 202", got, events)
	}
	caddy.kill9()
	caddy.start()
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	up := startUpstreamOn(t, upstreamAddr)

	waitFor(t, 60*time.Second, "every accepted event delivered", func() bool { return len(up.countByEventID()) == events })
	time.Sleep(time.Second) // any second copy would arrive by now
	var twice []string
	for id, n := range up.countByEventID() {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	t.Logf("%d events accepted, Caddy killed with -9 and restarted: %d delivered, %d delivered twice", events, len(up.countByEventID()), len(twice))
	if len(twice) > 0 {
		t.Errorf("delivered twice although no attempt could succeed before the kill: %v", twice)
	}
	// Copies after the restart are still duplicates.
	if got := do(t, signedRequest(t, url, testSecret, time.Now(), bodies[0])); got.Body != duplicateBody {
		t.Errorf("a copy after the restart: %d %s, want a duplicate", got.Status, got.Body)
	}
}

// TestQueueReloadKeepsEventsAndAttempts: a reload that changes the deliver
// block while events wait and attempts are in flight loses nothing and
// delivers nothing twice; attempts after the reload use the new block.
func TestQueueReloadKeepsEventsAndAttempts(t *testing.T) {
	before := newUpstream(t)
	before.setDelay(300 * time.Millisecond)
	after := newUpstream(t)
	dir := t.TempDir()
	tc, url := startQueueSite(t, dir, "concurrency 4", "reverse_proxy {{upstream}}", map[string]string{"upstream": before.addr()})
	const events = 40
	bodies := make([][]byte, events)
	for i := range bodies {
		bodies[i] = eventBody(fmt.Sprintf("evt_reload_%02d", i))
	}
	if got := sendAll(t, url, bodies, 8); got[http.StatusAccepted] != events {
		t.Fatalf("answers by status %v, want %d times 202", got, events)
	}
	waitFor(t, 5*time.Second, "attempts in flight", func() bool { return len(before.received()) > 0 })
	vars := tc.vars
	vars["upstream"] = after.addr()
	tc.load(t, queueSite("concurrency 4", "reverse_proxy {{upstream}}"), vars)

	total := func() map[string]int {
		counts := before.countByEventID()
		for id, n := range after.countByEventID() {
			counts[id] += n
		}
		return counts
	}
	waitFor(t, 20*time.Second, "every event delivered", func() bool { return len(total()) == events })
	time.Sleep(time.Second)
	for id, n := range total() {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if len(after.received()) == 0 {
		t.Errorf("no attempt after the reload went to the new deliver block")
	}
	t.Logf("before the reload's upstream got %d, after it %d", len(before.received()), len(after.received()))
}

// TestQueueLoadWithUpstreamOutage: 5,000 events, a fifth of them sent
// twice, at concurrency 32, while the upstream is down for 10 s in the
// middle: no 5xx to the senders, every event delivered exactly once, and
// the queue empty at the end.
func TestQueueLoadWithUpstreamOutage(t *testing.T) {
	upstreamAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	first := startUpstreamOn(t, upstreamAddr)
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	_, url := startQueueSite(t, t.TempDir(), "retry "+strings.Repeat("250ms ", 120)+"\n concurrency 32",
		"reverse_proxy {{upstream}}", map[string]string{"upstream": upstreamAddr, "admin": admin, "log_level": "ERROR"})

	const events = 5000
	var bodies [][]byte
	for i := range events {
		body := eventBody(fmt.Sprintf("evt_load_%04d", i))
		bodies = append(bodies, body)
		if i%5 == 0 {
			bodies = append(bodies, body)
		}
	}
	outage := make(chan *upstream)
	go func() {
		time.Sleep(2 * time.Second)
		first.Close()
		time.Sleep(10 * time.Second)
		outage <- startUpstreamOn(t, upstreamAddr)
	}()
	statuses := sendAll(t, url, bodies, 32)
	second := <-outage
	for status, n := range statuses {
		if status >= 500 || status < 0 {
			t.Errorf("%d answers with status %d", n, status)
		}
	}
	delivered := func() map[string]int {
		counts := first.countByEventID()
		for id, n := range second.countByEventID() {
			counts[id] += n
		}
		return counts
	}
	waitFor(t, 90*time.Second, "every event delivered", func() bool { return len(delivered()) == events })
	waitFor(t, 10*time.Second, "the queue empty", func() bool {
		s := adminStats(t, admin)
		return s.Queued == 0 && s.InFlight == 0
	})
	// An event the stopped upstream had read but whose 2xx never reached
	// Caddy is delivered again: at most one per attempt in flight at the
	// stop, once to each upstream.
	var twice []string
	for id, n := range delivered() {
		if n > 1 {
			twice = append(twice, id)
			if first.countByEventID()[id] != 1 || second.countByEventID()[id] != 1 {
				t.Errorf("%s delivered %d times before the stop and %d after it", id, first.countByEventID()[id], second.countByEventID()[id])
			}
		}
	}
	t.Logf("answers %v; delivered %d events (%d requests before the outage, %d after), %d twice: %v",
		statuses, len(delivered()), len(first.received()), len(second.received()), len(twice), twice)
	if len(twice) > 32 {
		t.Errorf("%d events delivered twice, more than the 32 attempts that can be in flight at the stop", len(twice))
	}
}
