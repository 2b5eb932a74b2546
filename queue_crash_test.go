package groqwebhook

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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

// TestQueueMemoryIndependentOfBacklog: 20,000 queued 64 KiB events (1.25
// GiB) with the upstream down. Bodies live on disk, so Caddy's RSS after
// 20,000 is within queueBacklogMargin of its RSS after 2,000, and within
// queueMemoryBound of its idle RSS; once the upstream is up and the
// backlog delivered, the store's files shrink. Measured: RSS 82 MiB idle,
// 145 MiB with 2,000 queued, 152 MiB with 20,000; the store 1,338 MiB full
// and 323 MiB once delivered.
func TestQueueMemoryIndependentOfBacklog(t *testing.T) {
	const (
		// The store's memtables and cache (about 40 MiB), the uploads in
		// flight (32 x 64 KiB, doubled by the garbage collector), and the
		// heap's headroom.
		queueMemoryBound = 160 << 20
		// What 18,000 more events may add: their keys in the store's
		// in-memory index, not their bodies.
		queueBacklogMargin = 48 << 20
	)
	upstreamAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	port := freePort(t)
	dir := filepath.Join(t.TempDir(), "queue")
	caddy := startCaddyProcess(t, fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	groq_webhook {
		secret {env.GROQ_WEBHOOK_SECRET}
		max_body 128KiB
		queue {
			path %s
			retry %s
		}
		deliver {
			reverse_proxy %s
		}
	}
}
`, port, dir, strings.Repeat("15s ", 20), upstreamAddr))
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks", port)
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	time.Sleep(500 * time.Millisecond)
	idle := caddy.rssKiB()

	// Bodies of random letters, so that the store cannot compress them
	// away and its size shows what it holds.
	rng := rand.New(rand.NewPCG(3, 4))
	send := func(from, to int) {
		bodies := make([][]byte, 0, to-from)
		for i := from; i < to; i++ {
			body := paddedEvent(fmt.Sprintf("evt_mem_%05d", i), 64<<10)
			for j := bytes.IndexByte(body, 'p'); j < len(body)-2; j++ {
				body[j] = 'a' + byte(rng.IntN(26))
			}
			bodies = append(bodies, body)
		}
		if got := sendAll(t, url, bodies, 32); got[http.StatusAccepted] != to-from {
			t.Fatalf("answers by status %v, want %d times 202", got, to-from)
		}
	}
	send(0, 2000)
	at2k := caddy.rssKiB()
	send(2000, 20000)
	at20k := caddy.rssKiB()
	full := dirSize(t, dir)
	t.Logf("RSS idle %d MiB, with 2,000 queued %d MiB, with 20,000 queued %d MiB; store %d MiB",
		idle>>10, at2k>>10, at20k>>10, full>>20)
	if at20k-at2k > queueBacklogMargin>>10 {
		t.Errorf("RSS grew %d MiB from 2,000 to 20,000 queued events, want at most %d MiB", (at20k-at2k)>>10, queueBacklogMargin>>20)
	}
	if at20k-idle > queueMemoryBound>>10 {
		t.Errorf("RSS %d MiB above idle with 20,000 queued, want at most %d MiB", (at20k-idle)>>10, queueMemoryBound>>20)
	}

	up := startUpstreamOn(t, upstreamAddr)
	waitFor(t, 120*time.Second, "the backlog delivered", func() bool { return len(up.countByEventID()) == 20000 })
	var after int64
	// Pebble keeps its write-ahead log files for reuse (64 MiB here), and
	// compacts what was deleted in the background.
	waitFor(t, 30*time.Second, "the store's files to shrink to half", func() bool {
		after = dirSize(t, dir)
		return after < full/2
	})
	t.Logf("store %d MiB full, %d MiB once delivered", full>>20, after>>20)
}

// TestQueueStopFinishesAttemptsAndCountsThem: `caddy stop` (SIGINT) lets
// the attempts in flight finish, so nothing is delivered again after the
// restart; the queue's metrics count what happened.
func TestQueueStopFinishesAttemptsAndCountsThem(t *testing.T) {
	up := newUpstream(t)
	up.setDelay(2 * time.Second)
	port := freePort(t)
	caddy := startCaddyProcess(t, fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	groq_webhook {
		secret {env.GROQ_WEBHOOK_SECRET}
		queue
		deliver {
			reverse_proxy %s
		}
	}
}
`, port, up.addr()))
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks", port)
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	var bodies [][]byte
	for i := range 4 {
		bodies = append(bodies, eventBody(fmt.Sprintf("evt_stop_%d", i)))
	}
	if got := sendAll(t, url, bodies, 4); got[http.StatusAccepted] != 4 {
		t.Fatalf("answers by status %v, want 4 times 202", got)
	}
	inFlight := `caddy_groq_webhook_queue_events{queue="default",state="in_flight"}`
	waitFor(t, 5*time.Second, "four attempts in flight", func() bool { return caddy.metric(inFlight) == 4 })
	if got := caddy.metric(`caddy_groq_webhook_requests_total{provider="groq",result="queued"}`); got != 4 {
		t.Errorf("requests_total queued = %v, want 4", got)
	}

	caddy.stop() // returns once the process has exited
	if n := len(up.received()); n != 4 {
		t.Fatalf("the upstream got %d events by the time Caddy stopped, want the 4 in flight", n)
	}
	caddy.start()
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	up.setDelay(0)
	if got := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_stop_after"))); got.Status != http.StatusAccepted {
		t.Fatalf("after the restart: %d %s", got.Status, got.Body)
	}
	delivered := `caddy_groq_webhook_deliveries_total{outcome="delivered",queue="default"}`
	waitFor(t, 5*time.Second, "one delivery counted", func() bool { return caddy.metric(delivered) == 1 })
	time.Sleep(500 * time.Millisecond)
	if n := len(up.received()); n != 5 {
		t.Errorf("the upstream got %d events in all, want 5: an attempt finished at the stop was made again", n)
	}
	for series, want := range map[string]float64{
		`caddy_groq_webhook_delivery_seconds_count{queue="default"}`:             1,
		`caddy_groq_webhook_queue_events{queue="default",state="queued"}`:        0,
		`caddy_groq_webhook_queue_events{queue="default",state="dead"}`:          0,
		`caddy_groq_webhook_deliveries_total{outcome="retried",queue="default"}`: -1, // no series yet
	} {
		if got := caddy.metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
