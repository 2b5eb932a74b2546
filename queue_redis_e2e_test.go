package groqwebhook

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// redisQueueSite is a site whose groq_webhook queues in Redis at addrs,
// with the queue's other options and deliver routes given.
func redisQueueSite(port int, addrs []string, queueOptions, deliver string) string {
	return fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	groq_webhook {
		secret {env.GROQ_WEBHOOK_SECRET}
		queue redis {
			address %s
			%s
		}
		deliver {
			%s
		}
	}
}
`, port, strings.Join(addrs, " "), queueOptions, deliver)
}

// sendFailover sends each body to one of urls (in turn) at the given
// concurrency; a request that gets no answer (its instance is dead) or a
// 503 is sent again, to the next url, as a sender retries. It returns the
// answers by status, counting every try; a 503 without Retry-After counts
// as status 0.
func sendFailover(t *testing.T, urls []string, bodies [][]byte, workers int, sent *atomic.Int64) map[int]int {
	t.Helper()
	statuses := map[int]int{}
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Go(func() {
			for i := range work {
				for try := 0; ; try++ {
					url := urls[(i+try)%len(urls)]
					resp, err := client.Do(signedRequest(t, url, testSecret, time.Now(), bodies[i]))
					status := -1
					if err == nil {
						resp.Body.Close()
						status = resp.StatusCode
						if status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
							status = 0
						}
					}
					mu.Lock()
					statuses[status]++
					mu.Unlock()
					if status != -1 && status != http.StatusServiceUnavailable {
						break
					}
					if try > 600 {
						t.Errorf("event %d: no instance accepted it after %d tries", i, try)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if sent != nil {
					sent.Add(1)
				}
			}
		})
	}
	for i := range bodies {
		work <- i
	}
	close(work)
	wg.Wait()
	return statuses
}

// loadBodies is n events, every fifth sent twice.
func loadBodies(prefix string, n int) [][]byte {
	var bodies [][]byte
	for i := range n {
		body := eventBody(fmt.Sprintf("%s_%04d", prefix, i))
		bodies = append(bodies, body)
		if i%5 == 0 {
			bodies = append(bodies, body)
		}
	}
	return bodies
}

// repeated lists the events delivered more than once.
func repeated(counts map[string]int) []string {
	var twice []string
	for id, n := range counts {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	return twice
}

// TestRedisQueueTwoInstancesKill9: two `caddy run` processes share one
// Redis queue. 5,000 events (a fifth of them twice) go to both at
// concurrency 32; one is killed with -9 half-way. The survivor delivers
// every event, those the dead one had accepted or was delivering too, and
// only attempts in flight at the kill may reach the upstream twice.
func TestRedisQueueTwoInstancesKill9(t *testing.T) {
	t.Parallel() // processes of its own: it runs beside the other Redis process tests
	r := startRedis(t)
	up := newUpstream(t)
	up.setDelay(5 * time.Millisecond) // attempts are in flight at the kill
	const concurrency = 16
	options := fmt.Sprintf("name shared\n attempt_timeout 2s\n takeover_after 9s\n concurrency %d\n retry %s",
		concurrency, strings.Repeat("200ms ", 50))
	var ports [2]int
	var instances [2]*caddyProcess
	var urls []string
	for i := range instances {
		ports[i] = freePort(t)
		instances[i] = startCaddyProcess(t, redisQueueSite(ports[i], []string{r.addr}, options, "reverse_proxy "+up.addr()))
		waitForPort(t, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d/hooks", ports[i]))
	}

	const events = 5000
	bodies := loadBodies("evt_two", events)
	var sent atomic.Int64
	killed := make(chan int)
	go func() {
		for sent.Load() < int64(len(bodies)/2) {
			time.Sleep(5 * time.Millisecond)
		}
		delivered := len(up.received())
		instances[0].kill9()
		killed <- delivered
	}()
	statuses := sendFailover(t, urls, bodies, 32, &sent)
	deliveredAtKill := <-killed
	t.Logf("answers by status (every try): %v; %d deliveries had reached the upstream at the kill", statuses, deliveredAtKill)
	for status, n := range statuses {
		if status != http.StatusAccepted && status != http.StatusOK && status != -1 && status != http.StatusServiceUnavailable {
			t.Errorf("%d answers with status %d", n, status)
		}
	}

	// Delivered, and nothing left waiting: the dead instance's attempts
	// were taken over (after takeover_after) and acknowledged.
	rc := r.client()
	waitFor(t, 90*time.Second, "every event delivered by the survivor and the queue empty", func() bool {
		return len(up.countByEventID()) == events &&
			rc.ZCard(t.Context(), DefaultRedisQueueKeyPrefix+"{shared}:W").Val() == 0
	})
	time.Sleep(time.Second) // a second copy would arrive by now
	counts := up.countByEventID()
	twice := repeated(counts)
	t.Logf("%d events, %d sent twice, one of two instances killed with -9 half-way: %d delivered, %d delivered twice (attempts in flight at the kill: at most %d)",
		events, len(bodies)-events, len(counts), len(twice), concurrency)
	if len(twice) > concurrency {
		t.Errorf("%d events delivered twice, more than the %d attempts the dead instance can have had in flight: %v",
			len(twice), concurrency, twice)
	}
	if got := do(t, signedRequest(t, urls[1], testSecret, time.Now(), bodies[0])); got.Body != duplicateBody {
		t.Errorf("a copy after everything was delivered: %d %s, want a duplicate", got.Status, got.Body)
	}
	if n := rc.XLen(t.Context(), DefaultRedisQueueKeyPrefix+"{shared}:S").Val(); n != 0 {
		t.Errorf("%d stream entries left after every event was delivered", n)
	}
}

// testRedisQueueEndToEnd runs two `caddy run` processes on the queues
// names in Redis at addrs: events sent to either instance are delivered
// once, a copy sent to the other instance is a duplicate, and the dead
// letters of a queue are seen, dropped and replayed from the instance
// that did not accept them, with the admin API and the CLI.
func testRedisQueueEndToEnd(t *testing.T, addrs []string, names [2]string) {
	good, bad := newUpstream(t), newUpstream(t)
	bad.setStatus(http.StatusInternalServerError)
	deliver := fmt.Sprintf("@dead vars {http.groq_webhook.event_id} evt_dead_1 evt_dead_2\n"+
		"\t\t\treverse_proxy @dead %s\n\t\t\treverse_proxy %s", bad.addr(), good.addr())
	type instance struct {
		proc *caddyProcess
		urls [2]string // by queue
	}
	var instances [2]instance
	for i := range instances {
		var sites string
		for q, name := range names {
			port := freePort(t)
			sites += redisQueueSite(port, addrs, "name "+name+"\n retry 100ms 100ms", deliver)
			instances[i].urls[q] = fmt.Sprintf("http://127.0.0.1:%d/hooks", port)
		}
		instances[i].proc = startCaddyProcess(t, sites)
	}
	a, b := instances[0], instances[1]

	const perQueue = 100
	for q := range names {
		var bodies [][]byte
		for i := range perQueue {
			bodies = append(bodies, eventBody(fmt.Sprintf("evt_%s_%03d", names[q], i)))
		}
		if got := sendAll(t, a.urls[q], bodies, 8); got[http.StatusAccepted] != perQueue {
			t.Fatalf("queue %s: answers by status %v, want %d times 202", names[q], got, perQueue)
		}
		// Copies sent to the other instance are duplicates there too.
		if got := sendAll(t, b.urls[q], bodies[:10], 4); got[http.StatusOK] != 10 {
			t.Fatalf("queue %s: copies on the other instance answered %v, want 10 times 200", names[q], got)
		}
	}
	for _, id := range []string{"evt_dead_1", "evt_dead_2"} {
		if got := do(t, signedRequest(t, a.urls[0], testSecret, time.Now(), eventBody(id))); got.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %s, want 202", id, got.Status, got.Body)
		}
	}
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return len(good.countByEventID()) == 2*perQueue })

	queue := func(p *caddyProcess, args ...string) string {
		t.Helper()
		args = append([]string{"groq-webhook", "queue"}, args...)
		args = append(args, "--address", p.admin)
		out, err := exec.Command(p.bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The dead letters, as the other instance sees them.
	var listed string
	waitFor(t, 20*time.Second, "two dead letters listed by the other instance", func() bool {
		listed = queue(b.proc, "dead", "--name", names[0])
		return strings.Count(listed, "resource.created") == 2
	})
	stats := queue(b.proc, "stats", "--name", names[0])
	if !strings.Contains(stats, names[0]) {
		t.Errorf("stats on the other instance: %s", stats)
	}
	t.Logf("dead letters of %s as instance B lists them:\n%s\nstats:\n%s", names[0], listed, stats)
	var ids []string
	for line := range strings.SplitSeq(listed, "\n") {
		if f := strings.Fields(line); len(f) > 0 && len(f[0]) == 32 {
			ids = append(ids, f[0])
		}
	}
	if len(ids) != 2 {
		t.Fatalf("dead letter ids %v from\n%s", ids, listed)
	}
	if out := queue(b.proc, "drop", "--name", names[0], "--id", ids[0]); !strings.Contains(out, "dropped") {
		t.Errorf("drop: %s", out)
	}
	bad.setStatus(http.StatusOK)
	attempts := len(bad.received())
	if out := queue(b.proc, "replay", "--name", names[0], "--all"); !strings.Contains(out, "replayed 1") {
		t.Fatalf("replay --all on the other instance: %s", out)
	}
	waitFor(t, 20*time.Second, "the replayed dead letter delivered", func() bool { return len(bad.received()) == attempts+1 })
	time.Sleep(300 * time.Millisecond)
	if n := len(bad.received()); n != attempts+1 {
		t.Errorf("after replaying one dead letter the upstream got %d more requests, want 1 (the dropped one stays dropped)", n-attempts)
	}
	for id, n := range good.countByEventID() {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if out := queue(a.proc, "stats", "--name", names[0]); !strings.Contains(out, names[0]) {
		t.Errorf("stats on the accepting instance: %s", out)
	}
}
