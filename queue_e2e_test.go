package groqwebhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The queue's end-to-end tests: a real Caddy, real HTTP on 127.0.0.1, and
// recording upstreams whose answers the tests script.

const queuedBody = `{"received":true,"queued":true}`

// scriptedUpstream records what it receives and answers each request with
// the next of its scripted statuses (the last one repeats).
type scriptedUpstream struct {
	*upstream
	mu         sync.Mutex
	script     []int
	retryAfter string
	times      []time.Time
	answered   []int // the status of each request
}

func newScriptedUpstream(t *testing.T, statuses ...int) *scriptedUpstream {
	t.Helper()
	s := &scriptedUpstream{script: statuses, upstream: &upstream{status: http.StatusOK}}
	record := s.upstream.recorder(t)
	s.upstream.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		status := s.script[0]
		if len(s.script) > 1 {
			s.script = s.script[1:]
		}
		s.times = append(s.times, time.Now())
		s.answered = append(s.answered, status)
		if s.retryAfter != "" && status >= 400 {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		s.mu.Unlock()
		s.upstream.setStatus(status)
		record.ServeHTTP(w, r)
	}))
	t.Cleanup(s.upstream.Close)
	return s
}

// accepted counts the requests it answered 2xx.
func (s *scriptedUpstream) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, status := range s.answered {
		if status >= 200 && status <= 299 {
			n++
		}
	}
	return n
}

func (s *scriptedUpstream) arrivals() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// startQueueSite runs groq_webhook with a queue in path whose deliver
// block is deliver, under extra queue options.
func startQueueSite(t *testing.T, dir, queueOptions, deliver string, vars map[string]string) (*testCaddy, string) {
	t.Helper()
	all := map[string]string{"port": strconv.Itoa(freePort(t)), "secret": testSecret, "dir": dir}
	for k, v := range vars {
		all[k] = v
	}
	tc := startCaddy(t, queueSite(queueOptions, deliver), all)
	tc.vars = all
	return tc, "http://127.0.0.1:" + all["port"] + "/hooks?src=test"
}

func queueSite(queueOptions, deliver string) string {
	return `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}}
		queue {
			path {{dir}}
			` + queueOptions + `
		}
		deliver {
			` + deliver + `
		}
	}
}
`
}

// waitFor polls cond until it holds or the wait is over.
func waitFor(t *testing.T, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantQueued(t *testing.T, got response) {
	t.Helper()
	if got.Status != http.StatusAccepted || got.Body != queuedBody {
		t.Fatalf("got %d %s, want 202 %s", got.Status, got.Body, queuedBody)
	}
	wantHeader(t, got.Header, QueuedHeader, "true")
}

func TestQueueDeliversOnceWithItsHeaders(t *testing.T) {
	up := newUpstream(t)
	deleted := newUpstream(t)
	_, url := startQueueSite(t, t.TempDir(), "retry 200ms", `
			@deleted vars {http.groq_webhook.event_type} resource.deleted
			reverse_proxy @deleted {{deleted}} {
				header_up X-Attempt-Seen {http.groq_webhook.attempt}
			}
			reverse_proxy {{upstream}}`, map[string]string{"upstream": up.addr(), "deleted": deleted.addr()})

	body := []byte(`{"id":"evt_q1","type":"resource.created","data":{"n":1}}`)
	before := time.Now().UTC().Truncate(time.Second)
	req := signedRequest(t, url, testSecret, time.Now(), body)
	req.Header.Set("X-Custom", "kept")
	req.Header.Set(DeliveryAttemptHeader, "99") // a client may not set it
	wantQueued(t, do(t, req))
	delBody := []byte(`{"id":"evt_q2","type":"resource.deleted"}`)
	wantQueued(t, do(t, signedRequest(t, url, testSecret, time.Now(), delBody)))

	waitFor(t, 5*time.Second, "both events delivered", func() bool { return len(up.received()) == 1 && len(deleted.received()) == 1 })
	time.Sleep(200 * time.Millisecond) // nothing more arrives
	got := up.received()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(got))
	}
	r := got[0]
	if !bytes.Equal(r.Body, body) || r.Method != http.MethodPost {
		t.Fatalf("upstream got %s %q, want POST %q", r.Method, r.Body, body)
	}
	for name, want := range map[string]string{
		DefaultVerifiedHeader: "true", EventIDHeader: "evt_q1", EventTypeHeader: "resource.created",
		DeliveryAttemptHeader: "1", "X-Custom": "kept", "Content-Type": "application/json",
	} {
		if v := r.Header.Values(name); len(v) != 1 || v[0] != want {
			t.Errorf("upstream header %s = %q, want %q", name, v, want)
		}
	}
	received, err := time.Parse(time.RFC3339, r.Header.Get(ReceivedAtHeader))
	if err != nil || received.Before(before) || received.After(time.Now().Add(time.Second)) {
		t.Errorf("%s %q: %v", ReceivedAtHeader, r.Header.Get(ReceivedAtHeader), err)
	}
	if d := deleted.received()[0]; d.Header.Get(EventIDHeader) != "evt_q2" || d.Header.Get("X-Attempt-Seen") != "1" {
		t.Errorf("routed by type: got id %q, attempt placeholder %q", d.Header.Get(EventIDHeader), d.Header.Get("X-Attempt-Seen"))
	}
}

func TestQueueRetriesOnItsSchedule(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int
		retryAfter string
		options    string
		wantTries  int
		wantDead   bool
		minGaps    []time.Duration // between consecutive attempts
	}{
		{name: "500 twice, then 200", statuses: []int{500, 500, 200}, options: "retry 200ms 400ms",
			wantTries: 3, minGaps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "Retry-After longer than the schedule", statuses: []int{503, 200}, retryAfter: "2", options: "retry 100ms",
			wantTries: 2, minGaps: []time.Duration{2 * time.Second}},
		{name: "429 is retried", statuses: []int{429, 200}, options: "retry 100ms", wantTries: 2},
		{name: "400 is dead at once", statuses: []int{400}, options: "retry 100ms 100ms", wantTries: 1, wantDead: true},
		{name: "410 is dead at once", statuses: []int{410}, options: "retry 100ms", wantTries: 1, wantDead: true},
		{name: "schedule used up", statuses: []int{502}, options: "retry 100ms 100ms", wantTries: 3, wantDead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newScriptedUpstream(t, tt.statuses...)
			up.retryAfter = tt.retryAfter
			admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
			_, url := startQueueSite(t, t.TempDir(), tt.options, "reverse_proxy {{upstream}}",
				map[string]string{"upstream": up.addr(), "admin": admin})
			wantQueued(t, do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_retry"))))

			waitFor(t, 10*time.Second, fmt.Sprintf("%d attempts", tt.wantTries), func() bool { return len(up.received()) >= tt.wantTries })
			if tt.wantDead {
				waitFor(t, 5*time.Second, "a dead letter", func() bool { return len(adminDead(t, admin)) == 1 })
			} else {
				waitFor(t, 5*time.Second, "the queue empty", func() bool { return adminStats(t, admin).Queued == 0 })
			}
			time.Sleep(300 * time.Millisecond)
			got := up.received()
			if len(got) != tt.wantTries {
				t.Fatalf("upstream got %d attempts, want %d", len(got), tt.wantTries)
			}
			for i, r := range got {
				if a := r.Header.Get(DeliveryAttemptHeader); a != strconv.Itoa(i+1) {
					t.Errorf("attempt %d carried %s %q", i+1, DeliveryAttemptHeader, a)
				}
			}
			times := up.arrivals()
			for i, gap := range tt.minGaps {
				if d := times[i+1].Sub(times[i]); d < gap {
					t.Errorf("attempt %d came %v after attempt %d, want at least %v", i+2, d, i+1, gap)
				}
			}
			if !tt.wantDead {
				return
			}
			dead := adminDead(t, admin)
			if dead[0].Attempts != tt.wantTries || dead[0].LastStatus != tt.statuses[len(tt.statuses)-1] {
				t.Errorf("dead letter %+v", dead[0])
			}
			// Replayed, it is delivered once the upstream accepts it.
			up.mu.Lock()
			up.script = []int{200}
			up.mu.Unlock()
			adminPost(t, admin, "/groq_webhook/queues/default/replay", `{"all":true}`, `{"replayed":1}`)
			waitFor(t, 5*time.Second, "the replayed event delivered", func() bool { return len(up.received()) == tt.wantTries+1 })
			if a := up.received()[tt.wantTries].Header.Get(DeliveryAttemptHeader); a != "1" {
				t.Errorf("a replayed event starts again at attempt 1, got %q", a)
			}
			waitFor(t, 5*time.Second, "no dead letters left", func() bool { return len(adminDead(t, admin)) == 0 })
		})
	}
}

// queueStatsJSON is an entry of GET /groq_webhook/queues.
type queueStatsJSON struct {
	Name     string `json:"name"`
	Queued   int    `json:"queued"`
	InFlight int    `json:"in_flight"`
	Dead     int    `json:"dead"`
}

type deadLetterJSON struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"last_status"`
	LastError  string `json:"last_error"`
}

func adminGet(t *testing.T, admin, path string, into any) {
	t.Helper()
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

func adminStats(t *testing.T, admin string) queueStatsJSON {
	t.Helper()
	var all []queueStatsJSON
	adminGet(t, admin, "/groq_webhook/queues", &all)
	for _, q := range all {
		if q.Name == "default" {
			return q
		}
	}
	t.Fatalf("no queue named default in %+v", all)
	return queueStatsJSON{}
}

func adminDead(t *testing.T, admin string) []deadLetterJSON {
	t.Helper()
	var dead []deadLetterJSON
	adminGet(t, admin, "/groq_webhook/queues/default/dead", &dead)
	return dead
}

func adminPost(t *testing.T, admin, path, body, want string) {
	t.Helper()
	resp, err := http.Post("http://"+admin+path, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(bytes.TrimSpace(b)) != want {
		t.Fatalf("POST %s: %d %s, want 200 %s", path, resp.StatusCode, b, want)
	}
}

func TestQueueDuplicatesAcrossStatesAndRestarts(t *testing.T) {
	up := newScriptedUpstream(t, 503)
	dir := t.TempDir()
	vars := map[string]string{"upstream": up.addr()}
	tc, url := startQueueSite(t, dir, "retry 100ms 100ms 100ms 100ms 100ms 100ms 100ms 100ms 100ms 100ms", "reverse_proxy {{upstream}}", vars)
	body := eventBody("evt_dup")
	send := func() response { return do(t, signedRequest(t, url, testSecret, time.Now(), body)) }

	wantQueued(t, send())
	if got := send(); got.Status != http.StatusOK || got.Body != duplicateBody {
		t.Fatalf("a copy while queued: %d %s, want the duplicate answer", got.Status, got.Body)
	}
	up.mu.Lock()
	up.script = []int{200}
	up.mu.Unlock()
	waitFor(t, 5*time.Second, "delivered", func() bool { return up.accepted() == 1 })
	time.Sleep(200 * time.Millisecond)
	for range 2 {
		if got := send(); got.Body != duplicateBody {
			t.Fatalf("a copy after delivery: %d %s", got.Status, got.Body)
		}
	}
	// The same store after a restart still knows the key.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	tc.load(t, queueSite("", "reverse_proxy {{upstream}}"), tc.vars)
	if got := send(); got.Body != duplicateBody {
		t.Fatalf("a copy after a restart: %d %s", got.Status, got.Body)
	}
	if n := up.accepted(); n != 1 {
		t.Fatalf("upstream accepted evt_dup %d times, want 1", n)
	}
}

func TestQueueFullThenAcceptedAgain(t *testing.T) {
	up := newScriptedUpstream(t, 503)
	_, url := startQueueSite(t, t.TempDir(), "max_events 3\n retry 100ms 100ms 100ms 100ms 100ms 100ms 100ms 100ms", "reverse_proxy {{upstream}}",
		map[string]string{"upstream": up.addr()})
	for i := range 3 {
		wantQueued(t, do(t, signedRequest(t, url, testSecret, time.Now(), eventBody(fmt.Sprintf("evt_full_%d", i)))))
	}
	got := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_full_3")))
	if got.Status != http.StatusServiceUnavailable || got.Body != `{"error":"queue full"}` || got.Header.Get("Retry-After") == "" {
		t.Fatalf("a 4th event: %d %s (Retry-After %q), want 503 queue full", got.Status, got.Body, got.Header.Get("Retry-After"))
	}
	up.mu.Lock()
	up.script = []int{200}
	up.mu.Unlock()
	waitFor(t, 5*time.Second, "the three delivered", func() bool { return len(up.countByEventID()) == 3 })
	waitFor(t, 5*time.Second, "the sender's retry accepted", func() bool {
		return do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_full_3"))).Status == http.StatusAccepted
	})
	waitFor(t, 5*time.Second, "the retry delivered", func() bool { return up.countByEventID()["evt_full_3"] == 1 })
}

// TestQueueUnwritableStore: a queue whose directory cannot be created
// (its parent is a file; as root, permissions would not stop the write)
// answers 503 and keeps nothing; once the directory can be made, the
// sender's retry is accepted and delivered.
func TestQueueUnwritableStore(t *testing.T) {
	up := newUpstream(t)
	parent := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, url := startQueueSite(t, filepath.Join(parent, "queue"), "", "reverse_proxy {{upstream}}", map[string]string{"upstream": up.addr()})
	got := do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_unwritable")))
	if got.Status != http.StatusServiceUnavailable || got.Body != `{"error":"queue unavailable"}` || got.Header.Get("Retry-After") == "" {
		t.Fatalf("with an unwritable store: %d %s (Retry-After %q), want 503 queue unavailable", got.Status, got.Body, got.Header.Get("Retry-After"))
	}
	if err := os.Remove(parent); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the sender's retry accepted", func() bool {
		return do(t, signedRequest(t, url, testSecret, time.Now(), eventBody("evt_unwritable"))).Status == http.StatusAccepted
	})
	waitFor(t, 5*time.Second, "the event delivered", func() bool { return up.countByEventID()["evt_unwritable"] == 1 })
}
