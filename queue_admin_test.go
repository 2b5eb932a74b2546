package groqwebhook

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The admin API and the queue command run here against in-memory stores
// registered as running queues; the end-to-end tests run them against the
// real store in a real Caddy.

// fakeQueueStore is a QueueStore holding dead letters in memory, which
// records how the admin API called it.
type fakeQueueStore struct {
	mu    sync.Mutex
	dead  []*QueuedEvent
	stats QueueStats
	err   error // answered by every method when set

	deadLimit  int
	replayIDs  []string
	replayAll  bool
	replayCall int
}

func (s *fakeQueueStore) Accept(context.Context, *QueuedEvent, int) error {
	return errors.New("fake store: accept not supported")
}

func (s *fakeQueueStore) Take(context.Context, time.Time, int) ([]*QueuedEvent, time.Time, error) {
	return nil, time.Time{}, nil
}

func (s *fakeQueueStore) Ack(context.Context, *QueuedEvent, time.Duration) error { return nil }

func (s *fakeQueueStore) Retry(context.Context, *QueuedEvent, time.Time) error { return nil }

func (s *fakeQueueStore) Bury(context.Context, *QueuedEvent) error { return nil }

func (s *fakeQueueStore) Expire(context.Context, time.Time, time.Time) error { return nil }

func (s *fakeQueueStore) Close() error { return nil }

func (s *fakeQueueStore) Replay(_ context.Context, ids []string, all bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replayCall++
	s.replayIDs, s.replayAll = ids, all
	if s.err != nil {
		return 0, s.err
	}
	if all {
		return len(s.dead), nil
	}
	n := 0
	for _, ev := range s.dead {
		if slices.Contains(ids, ev.ID) {
			n++
		}
	}
	return n, nil
}

func (s *fakeQueueStore) Drop(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for i, ev := range s.dead {
		if ev.ID == id {
			s.dead = slices.Delete(s.dead, i, i+1)
			return nil
		}
	}
	return ErrQueueEventNotFound
}

func (s *fakeQueueStore) Dead(_ context.Context, limit int) ([]*QueuedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadLimit = limit
	if s.err != nil {
		return nil, s.err
	}
	return s.dead[:min(limit, len(s.dead))], nil
}

func (s *fakeQueueStore) Stats(context.Context) (QueueStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats, s.err
}

func (s *fakeQueueStore) deadIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, ev := range s.dead {
		ids = append(ids, ev.ID)
	}
	return ids
}

// What the fake dead letters hold that must never leave the store.
const (
	qaBody      = `{"id":"evt_secret_body","card":"4242424242424242"}`
	qaSignature = "deadbeefcafef00ddeadbeefcafef00ddeadbeefcafef00ddeadbeefcafef00d"
	qaSecret    = "qa-resolved-secret-value-0123456789"
)

var (
	qaNow      = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	qaReceived = time.Date(2026, 3, 4, 13, 30, 0, 0, time.FixedZone("CET+2", 2*3600)) // 11:30 UTC
	qaDeadAt   = time.Date(2026, 3, 4, 11, 45, 0, 500, time.UTC)
)

// qaDeadLetter returns a dead letter with a body, headers and variables
// that the admin API must not show.
func qaDeadLetter(id, eventType string, status int, errText string) *QueuedEvent {
	return &QueuedEvent{
		ID:     id,
		Key:    "key-" + id,
		Method: http.MethodPost,
		Host:   "hooks.example.com",
		URI:    "/groq?token=" + qaSecret,
		Header: http.Header{
			"X-Groq-Signature": {qaSignature},
			"Authorization":    {"Bearer " + qaSecret},
		},
		RemoteAddr: "192.0.2.1:4242",
		Body:       []byte(qaBody),
		Vars:       map[string]string{"event_id": "evt_" + id, "event_type": eventType, "secret": qaSecret},
		ReceivedAt: qaReceived,
		Attempts:   3,
		LastStatus: status,
		LastError:  errText,
		DeadAt:     qaDeadAt,
	}
}

// qaFixture registers the test queues as running: a with two dead letters
// and events waiting, b empty, and "admin-test-c/d", whose name needs
// escaping. broken, when set, adds a queue whose store fails.
type qaFixture struct {
	a, b, cd, broken *fakeQueueStore
	engines          map[string]*queueEngine
}

func newQAFixture(t *testing.T, withBroken bool) *qaFixture {
	t.Helper()
	old := queueAdminNow
	queueAdminNow = func() time.Time { return qaNow }
	t.Cleanup(func() { queueAdminNow = old })

	f := &qaFixture{
		a: &fakeQueueStore{
			dead: []*QueuedEvent{
				qaDeadLetter("dead-1", "invoice.paid", 502, ""),
				qaDeadLetter("dead-2", "invoice.failed", 0, "dial tcp 10.0.0.1:80: connection refused"),
			},
			stats: QueueStats{Queued: 3, InFlight: 1, Dead: 2, OldestQueued: qaNow.Add(-90*time.Second - 250*time.Millisecond)},
		},
		b:       &fakeQueueStore{},
		cd:      &fakeQueueStore{stats: QueueStats{OldestQueued: qaNow.Add(time.Minute)}}, // a clock ahead counts as 0
		engines: map[string]*queueEngine{},
	}
	// Registered out of order: the listing sorts.
	f.register(t, "admin-test-c/d", f.cd)
	f.register(t, "admin-test-b", f.b)
	f.register(t, "admin-test-a", f.a)
	if withBroken {
		f.broken = &fakeQueueStore{err: errors.New("disk on fire")}
		f.register(t, "admin-test-broken", f.broken)
	}
	return f
}

// register stores an engine that runs no scheduler: the admin API only
// needs its name, store and wake channel.
func (f *qaFixture) register(t *testing.T, name string, store QueueStore) {
	t.Helper()
	if _, taken := runningQueues.Load(name); taken {
		t.Fatalf("a queue named %q is already running", name)
	}
	e := &queueEngine{name: name, store: store, wake: make(chan struct{}, 1)}
	runningQueues.Store(name, e)
	t.Cleanup(func() { runningQueues.CompareAndDelete(name, e) })
	f.engines[name] = e
}

// qaAdminServer serves the module's routes as Caddy's admin server does:
// on a mux by pattern, an error becoming its status and {"error": ...}.
func qaAdminServer() http.Handler {
	mux := http.NewServeMux()
	for _, route := range (queueAdmin{}).Routes() {
		mux.Handle(route.Pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := route.Handler.ServeHTTP(w, r)
			if err == nil {
				return
			}
			apiErr, ok := err.(caddy.APIError)
			if !ok {
				apiErr = caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
			}
			if apiErr.Message == "" && apiErr.Err != nil {
				apiErr.Message = apiErr.Err.Error()
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(apiErr.HTTPStatus)
			_ = json.NewEncoder(w).Encode(apiErr)
		}))
	}
	return mux
}

// onlyTestQueues keeps the entries of a queue listing that this file
// registered: other tests' engines may be running too.
func onlyTestQueues(t *testing.T, body []byte) string {
	t.Helper()
	var all []map[string]any
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatalf("listing is not a JSON array: %v: %s", err, body)
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i]["name"].(string) < all[j]["name"].(string) }) {
		t.Errorf("listing is not sorted by name: %s", body)
	}
	var mine []map[string]any
	for _, q := range all {
		if strings.HasPrefix(q["name"].(string), "admin-test-") {
			mine = append(mine, q)
		}
	}
	b, _ := json.Marshal(mine)
	return string(b)
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("answer is not JSON: %v: %s", err, got)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad test: want is not JSON: %v: %s", err, want)
	}
	return reflect.DeepEqual(g, w)
}

const (
	qaQueuesJSON = `[
		{"name":"admin-test-a","queued":3,"in_flight":1,"dead":2,"oldest_queued_seconds":90.25},
		{"name":"admin-test-b","queued":0,"in_flight":0,"dead":0,"oldest_queued_seconds":0},
		{"name":"admin-test-c/d","queued":0,"in_flight":0,"dead":0,"oldest_queued_seconds":0}]`
	qaDead1JSON = `{"id":"dead-1","type":"invoice.paid","attempts":3,"last_status":502,"last_error":"",` +
		`"received_at":"2026-03-04T11:30:00Z","dead_at":"2026-03-04T11:45:00Z"}`
	qaDead2JSON = `{"id":"dead-2","type":"invoice.failed","attempts":3,"last_status":0,` +
		`"last_error":"dial tcp 10.0.0.1:80: connection refused",` +
		`"received_at":"2026-03-04T11:30:00Z","dead_at":"2026-03-04T11:45:00Z"}`
)

func TestQueueAdmin(t *testing.T) {
	const (
		queues = "/groq_webhook/queues"
		a      = queues + "/admin-test-a"
	)
	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		broken     bool // register a queue whose store fails
		wantStatus int
		want       string // the answer's JSON
		wantAllow  string
		check      func(t *testing.T, f *qaFixture)
	}{
		// GET /groq_webhook/queues
		{name: "list", method: "GET", target: queues, wantStatus: 200, want: qaQueuesJSON},
		{name: "list with trailing slash", method: "GET", target: queues + "/", wantStatus: 200, want: qaQueuesJSON},
		{name: "list with POST", method: "POST", target: queues, wantStatus: 405, wantAllow: "GET",
			want: `{"error":"method POST not allowed: use GET"}`},
		{name: "list with a failing store", method: "GET", target: queues, broken: true, wantStatus: 500,
			want: `{"error":"queue \"admin-test-broken\": counting events: disk on fire"}`},

		// GET .../dead
		{name: "dead", method: "GET", target: a + "/dead", wantStatus: 200, want: "[" + qaDead1JSON + "," + qaDead2JSON + "]",
			check: func(t *testing.T, f *qaFixture) { wantLimit(t, f.a, defaultDeadLimit) }},
		{name: "dead limit 1", method: "GET", target: a + "/dead?limit=1", wantStatus: 200, want: "[" + qaDead1JSON + "]",
			check: func(t *testing.T, f *qaFixture) { wantLimit(t, f.a, 1) }},
		{name: "dead limit max", method: "GET", target: a + "/dead?limit=10000", wantStatus: 200, want: "[" + qaDead1JSON + "," + qaDead2JSON + "]",
			check: func(t *testing.T, f *qaFixture) { wantLimit(t, f.a, maxDeadLimit) }},
		{name: "dead limit over max", method: "GET", target: a + "/dead?limit=10001", wantStatus: 400,
			want: `{"error":"limit must be a whole number from 1 to 10000, got \"10001\""}`},
		{name: "dead limit 0", method: "GET", target: a + "/dead?limit=0", wantStatus: 400,
			want: `{"error":"limit must be a whole number from 1 to 10000, got \"0\""}`},
		{name: "dead limit negative", method: "GET", target: a + "/dead?limit=-1", wantStatus: 400,
			want: `{"error":"limit must be a whole number from 1 to 10000, got \"-1\""}`},
		{name: "dead limit not a number", method: "GET", target: a + "/dead?limit=ten", wantStatus: 400,
			want: `{"error":"limit must be a whole number from 1 to 10000, got \"ten\""}`},
		{name: "dead limit with a sign", method: "GET", target: a + "/dead?limit=%2B5", wantStatus: 400,
			want: `{"error":"limit must be a whole number from 1 to 10000, got \"+5\""}`},
		{name: "dead limit with a leading zero", method: "GET", target: a + "/dead?limit=05", wantStatus: 400,
			want: `{"error":"limit must be a whole number from 1 to 10000, got \"05\""}`},
		{name: "dead limit empty", method: "GET", target: a + "/dead?limit=", wantStatus: 400,
			want: `{"error":"limit must be a whole number from 1 to 10000, got \"\""}`},
		{name: "dead limit twice", method: "GET", target: a + "/dead?limit=1&limit=2", wantStatus: 400,
			want: `{"error":"limit is given more than once"}`},
		{name: "dead of an empty queue", method: "GET", target: queues + "/admin-test-b/dead", wantStatus: 200, want: `[]`},
		{name: "dead of an escaped name", method: "GET", target: queues + "/admin-test-c%2Fd/dead", wantStatus: 200, want: `[]`},
		{name: "dead of an unknown queue", method: "GET", target: queues + "/nope/dead", wantStatus: 404,
			want: `{"error":"no such queue \"nope\""}`},
		{name: "dead with DELETE", method: "DELETE", target: a + "/dead", wantStatus: 405, wantAllow: "GET",
			want: `{"error":"method DELETE not allowed: use GET"}`},
		{name: "dead with a failing store", method: "GET", target: queues + "/admin-test-broken/dead", broken: true, wantStatus: 500,
			want: `{"error":"queue \"admin-test-broken\": listing dead letters: disk on fire"}`},

		// POST .../replay
		{name: "replay ids", method: "POST", target: a + "/replay", body: `{"ids":["dead-2","ghost"]}`, wantStatus: 200,
			want: `{"replayed":1}`, check: func(t *testing.T, f *qaFixture) {
				wantReplay(t, f.a, []string{"dead-2", "ghost"}, false)
				wantWoken(t, f.engines["admin-test-a"])
			}},
		{name: "replay all", method: "POST", target: a + "/replay", body: `{"all":true}`, wantStatus: 200,
			want: `{"replayed":2}`, check: func(t *testing.T, f *qaFixture) {
				wantReplay(t, f.a, nil, true)
				wantWoken(t, f.engines["admin-test-a"])
			}},
		{name: "replay all with an empty ids list", method: "POST", target: a + "/replay", body: `{"ids":[],"all":true}`, wantStatus: 200,
			want: `{"replayed":2}`},
		{name: "replay both", method: "POST", target: a + "/replay", body: `{"ids":["dead-1"],"all":true}`, wantStatus: 400,
			want: `{"error":"give either \"ids\" or \"all\", not both"}`, check: wantNoReplay},
		{name: "replay neither", method: "POST", target: a + "/replay", body: `{}`, wantStatus: 400,
			want: `{"error":"give \"ids\" (a non-empty list) or \"all\": true"}`, check: wantNoReplay},
		{name: "replay all false", method: "POST", target: a + "/replay", body: `{"all":false}`, wantStatus: 400,
			want: `{"error":"give \"ids\" (a non-empty list) or \"all\": true"}`, check: wantNoReplay},
		{name: "replay empty ids", method: "POST", target: a + "/replay", body: `{"ids":[]}`, wantStatus: 400,
			want: `{"error":"give \"ids\" (a non-empty list) or \"all\": true"}`, check: wantNoReplay},
		{name: "replay an empty id", method: "POST", target: a + "/replay", body: `{"ids":["dead-1",""]}`, wantStatus: 400,
			want: `{"error":"\"ids\" holds an empty id"}`, check: wantNoReplay},
		{name: "replay bad JSON", method: "POST", target: a + "/replay", body: `{"all":tru`, wantStatus: 400,
			want: `{"error":"decoding replay request: unexpected EOF"}`, check: wantNoReplay},
		{name: "replay wrong type", method: "POST", target: a + "/replay", body: `{"ids":"dead-1"}`, wantStatus: 400,
			want:  `{"error":"decoding replay request: json: cannot unmarshal string into Go struct field replayRequest.ids of type []string"}`,
			check: wantNoReplay},
		{name: "replay unknown field", method: "POST", target: a + "/replay", body: `{"id":["dead-1"]}`, wantStatus: 400,
			want: `{"error":"decoding replay request: json: unknown field \"id\""}`, check: wantNoReplay},
		{name: "replay two values", method: "POST", target: a + "/replay", body: `{"all":true} {"all":true}`, wantStatus: 400,
			want: `{"error":"decoding replay request: more than one JSON value"}`, check: wantNoReplay},
		{name: "replay empty body", method: "POST", target: a + "/replay", body: ``, wantStatus: 400,
			want: `{"error":"decoding replay request: the body is empty"}`, check: wantNoReplay},
		{name: "replay body over 1 MiB", method: "POST", target: a + "/replay",
			body: `{"ids":["` + strings.Repeat("x", maxReplayBody) + `"]}`, wantStatus: 413,
			want: `{"error":"replay request is larger than 1048576 bytes"}`, check: wantNoReplay},
		{name: "replay of an unknown queue", method: "POST", target: queues + "/nope/replay", body: `{"all":true}`, wantStatus: 404,
			want: `{"error":"no such queue \"nope\""}`},
		{name: "replay with GET", method: "GET", target: a + "/replay", wantStatus: 405, wantAllow: "POST",
			want: `{"error":"method GET not allowed: use POST"}`},
		{name: "replay with a failing store", method: "POST", target: queues + "/admin-test-broken/replay", body: `{"all":true}`,
			broken: true, wantStatus: 500, want: `{"error":"queue \"admin-test-broken\": replaying dead letters: disk on fire"}`},

		// DELETE .../dead/<id>
		{name: "drop", method: "DELETE", target: a + "/dead/dead-1", wantStatus: 200, want: `{"dropped":1}`,
			check: func(t *testing.T, f *qaFixture) {
				if got := f.a.deadIDs(); !slices.Equal(got, []string{"dead-2"}) {
					t.Errorf("dead letters left: %q, want [dead-2]", got)
				}
			}},
		{name: "drop an escaped id", method: "DELETE", target: a + "/dead/dead%2F9", wantStatus: 404,
			want: `{"error":"no such dead letter"}`},
		{name: "drop an unknown id", method: "DELETE", target: a + "/dead/ghost", wantStatus: 404,
			want: `{"error":"no such dead letter"}`, check: func(t *testing.T, f *qaFixture) {
				if got := f.a.deadIDs(); len(got) != 2 {
					t.Errorf("dead letters left: %q, want both", got)
				}
			}},
		{name: "drop from an unknown queue", method: "DELETE", target: queues + "/nope/dead/dead-1", wantStatus: 404,
			want: `{"error":"no such queue \"nope\""}`},
		{name: "drop with GET", method: "GET", target: a + "/dead/dead-1", wantStatus: 405, wantAllow: "DELETE",
			want: `{"error":"method GET not allowed: use DELETE"}`},
		{name: "drop with POST", method: "POST", target: a + "/dead/dead-1", wantStatus: 405, wantAllow: "DELETE",
			want: `{"error":"method POST not allowed: use DELETE"}`},
		{name: "drop with a failing store", method: "DELETE", target: queues + "/admin-test-broken/dead/x", broken: true,
			wantStatus: 500, want: `{"error":"queue \"admin-test-broken\": dropping a dead letter: disk on fire"}`},

		// Anything else under the prefix.
		{name: "the prefix itself", method: "GET", target: "/groq_webhook/", wantStatus: 404,
			want: `{"error":"not found: /groq_webhook/"}`},
		{name: "an unknown endpoint", method: "GET", target: a + "/other", wantStatus: 404,
			want: `{"error":"not found: /groq_webhook/queues/admin-test-a/other"}`},
		{name: "a path too deep", method: "DELETE", target: a + "/dead/dead-1/more", wantStatus: 404,
			want: `{"error":"not found: /groq_webhook/queues/admin-test-a/dead/dead-1/more"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newQAFixture(t, tt.broken)
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			qaAdminServer().ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if allow := rec.Header().Get("Allow"); allow != tt.wantAllow {
				t.Errorf("Allow %q, want %q", allow, tt.wantAllow)
			}
			got := rec.Body.String()
			if strings.TrimSuffix(tt.target, "/") == queues && rec.Code == 200 {
				got = onlyTestQueues(t, rec.Body.Bytes())
			}
			if tt.want != "" && !jsonEqual(t, got, tt.want) {
				t.Errorf("answer %s\nwant %s", got, tt.want)
			}
			if tt.want == "" && !jsonEqual(t, got, got) {
				t.Errorf("answer is not JSON: %s", got)
			}
			for _, leak := range []string{qaBody, qaSignature, qaSecret, "hooks.example.com", "192.0.2.1", "key-dead"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("the answer shows %q: %s", leak, rec.Body)
				}
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func wantLimit(t *testing.T, s *fakeQueueStore, want int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deadLimit != want {
		t.Errorf("store asked for %d dead letters, want %d", s.deadLimit, want)
	}
}

func wantReplay(t *testing.T, s *fakeQueueStore, ids []string, all bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replayCall != 1 || !slices.Equal(s.replayIDs, ids) || s.replayAll != all {
		t.Errorf("store replayed %d times, last with ids %q all %v; want once with ids %q all %v",
			s.replayCall, s.replayIDs, s.replayAll, ids, all)
	}
}

func wantNoReplay(t *testing.T, f *qaFixture) {
	t.Helper()
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	if f.a.replayCall != 0 {
		t.Errorf("a refused request replayed (ids %q, all %v)", f.a.replayIDs, f.a.replayAll)
	}
	if len(f.engines["admin-test-a"].wake) != 0 {
		t.Error("a refused request woke the engine")
	}
}

// wantWoken checks that the engine's scheduler was signalled.
func wantWoken(t *testing.T, e *queueEngine) {
	t.Helper()
	select {
	case <-e.wake:
	default:
		t.Error("the engine was not woken after a replay")
	}
}

// TestQueueAdminDeadLetterFields pins the dead-letter listing to exactly
// its documented fields, so that nothing of the stored request (body,
// headers, signature, secret, key) can appear in it by accident.
func TestQueueAdminDeadLetterFields(t *testing.T) {
	newQAFixture(t, false)
	rec := httptest.NewRecorder()
	qaAdminServer().ServeHTTP(rec, httptest.NewRequest("GET", "/groq_webhook/queues/admin-test-a/dead", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var letters []map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &letters); err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(letters))
	}
	want := []string{"attempts", "dead_at", "id", "last_error", "last_status", "received_at", "type"}
	timestamp := regexp.MustCompile(`^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$`)
	for i, l := range letters {
		var keys []string
		for k := range l {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("dead letter %d has fields %q, want exactly %q", i, keys, want)
		}
		for _, k := range []string{"received_at", "dead_at"} {
			if !timestamp.Match(l[k]) {
				t.Errorf("dead letter %d: %s is %s, want RFC 3339 in UTC", i, k, l[k])
			}
		}
	}
}

func TestQueueAdminModule(t *testing.T) {
	info := queueAdmin{}.CaddyModule()
	if info.ID != "admin.api.groq_webhook" {
		t.Errorf("module ID %q", info.ID)
	}
	if _, ok := info.New().(caddy.AdminRouter); !ok {
		t.Error("the module is not an AdminRouter")
	}
	registered, err := caddy.GetModule("admin.api.groq_webhook")
	if err != nil {
		t.Fatalf("the module is not registered: %v", err)
	}
	if _, ok := registered.New().(caddy.AdminRouter); !ok {
		t.Error("the registered module is not an AdminRouter")
	}
}

// TestQueueCommand runs `caddy groq-webhook queue ...` against the admin
// routes served over HTTP.
func TestQueueCommand(t *testing.T) {
	srv := httptest.NewServer(qaAdminServer())
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	configFile := filepath.Join(t.TempDir(), "caddy.json")
	if err := os.WriteFile(configFile, []byte(`{"admin":{"listen":"`+addr+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}

	at := func(args ...string) []string { return append(append([]string{"queue"}, args...), "--address", addr) }
	tests := []struct {
		name       string
		args       []string
		wantOut    []string // regular expressions the output matches
		notOut     []string // substrings the output must not hold
		wantStderr string
		wantErr    []string // substrings of the error; none means success
		setup      func(t *testing.T, f *qaFixture)
		check      func(t *testing.T, f *qaFixture)
	}{
		{name: "stats", args: at("stats"), wantOut: []string{
			`(?m)^NAME\s+QUEUED\s+IN FLIGHT\s+DEAD\s+OLDEST$`,
			`(?m)^admin-test-a\s+3\s+1\s+2\s+1m30s$`,
			`(?m)^admin-test-b\s+0\s+0\s+0\s+-$`,
			`(?m)^admin-test-c/d\s+0\s+0\s+0\s+-$`,
		}},
		{name: "stats of one queue", args: at("stats", "--name", "admin-test-b"),
			wantOut: []string{`(?m)^admin-test-b\s+0\s+0\s+0\s+-$`}, notOut: []string{"admin-test-a"}},
		{name: "stats of an unknown queue", args: at("stats", "--name", "nope"), wantErr: []string{`no queue "nope" is running`}},
		{name: "stats from --config", args: []string{"queue", "stats", "--config", configFile},
			wantOut: []string{`(?m)^admin-test-a\s+3\s+1\s+2\s+1m30s$`}},
		{name: "stats with a failing store", args: at("stats"), setup: withBroken,
			wantErr: []string{`admin API at ` + addr + `: HTTP 500: queue "admin-test-broken": counting events: disk on fire`}},
		{name: "nothing listens", args: []string{"queue", "stats", "--address", closedAddr},
			wantErr: []string{"reaching Caddy's admin API at " + closedAddr, "is Caddy running"}},

		{name: "dead", args: at("dead", "--name", "admin-test-a"), wantOut: []string{
			`(?m)^ID\s+TYPE\s+ATTEMPTS\s+STATUS\s+RECEIVED\s+DEAD AT\s+LAST ERROR$`,
			`(?m)^dead-1\s+invoice\.paid\s+3\s+502\s+2026-03-04T11:30:00Z\s+2026-03-04T11:45:00Z\s+-$`,
			`(?m)^dead-2\s+invoice\.failed\s+3\s+-\s+2026-03-04T11:30:00Z\s+2026-03-04T11:45:00Z\s+"dial tcp 10\.0\.0\.1:80: connection refused"$`,
		}},
		{name: "dead with a limit", args: at("dead", "--name", "admin-test-a", "--limit", "1"),
			wantOut: []string{`(?m)^dead-1\s`}, notOut: []string{"dead-2"},
			check: func(t *testing.T, f *qaFixture) { wantLimit(t, f.a, 1) }},
		{name: "dead with a bad limit", args: at("dead", "--name", "admin-test-a", "--limit", "0"),
			wantErr: []string{`HTTP 400: limit must be a whole number from 1 to 10000, got "0"`}},
		{name: "dead of an empty queue", args: at("dead", "--name", "admin-test-b"), wantOut: []string{`^queue admin-test-b has no dead letters\n$`}},
		{name: "dead of an escaped name", args: at("dead", "--name", "admin-test-c/d"), wantOut: []string{`^queue admin-test-c/d has no dead letters\n$`}},
		{name: "dead of an unknown queue", args: at("dead", "--name", "nope"), wantErr: []string{`HTTP 404: no such queue "nope"`}},
		{name: "dead of the default queue", args: at("dead"), setup: withDefault, wantOut: []string{`^queue default has no dead letters\n$`}},
		{name: "dead with an empty name", args: at("dead", "--name", ""), wantErr: []string{"--name is empty"}},

		{name: "replay ids", args: at("replay", "--name", "admin-test-a", "--id", "dead-2", "--id", "ghost"),
			wantOut: []string{`^replayed 1\n$`}, wantStderr: "note: 1 of the 2 ids are not dead letters of queue admin-test-a",
			check: func(t *testing.T, f *qaFixture) {
				wantReplay(t, f.a, []string{"dead-2", "ghost"}, false)
				wantWoken(t, f.engines["admin-test-a"])
			}},
		{name: "replay all", args: at("replay", "--name", "admin-test-a", "--all"), wantOut: []string{`^replayed 2\n$`},
			check: func(t *testing.T, f *qaFixture) { wantReplay(t, f.a, nil, true) }},
		{name: "replay both", args: at("replay", "--name", "admin-test-a", "--all", "--id", "dead-1"),
			wantErr: []string{"none of the others can be"}, check: wantNoReplay},
		{name: "replay neither", args: at("replay", "--name", "admin-test-a"),
			wantErr: []string{"at least one of the flags in the group [id all] is required"}},
		{name: "replay in an unknown queue", args: at("replay", "--name", "nope", "--all"), wantErr: []string{`HTTP 404: no such queue "nope"`}},

		{name: "drop", args: at("drop", "--name", "admin-test-a", "--id", "dead-1"), wantOut: []string{`^dropped dead-1\n$`},
			check: func(t *testing.T, f *qaFixture) {
				if got := f.a.deadIDs(); !slices.Equal(got, []string{"dead-2"}) {
					t.Errorf("dead letters left: %q, want [dead-2]", got)
				}
			}},
		{name: "drop an unknown id", args: at("drop", "--name", "admin-test-a", "--id", "ghost"), wantErr: []string{"HTTP 404: no such dead letter"}},
		{name: "drop without an id", args: at("drop", "--name", "admin-test-a"), wantErr: []string{`required flag(s) "id" not set`}},
		{name: "drop an empty id", args: at("drop", "--name", "admin-test-a", "--id", ""), wantErr: []string{"--id is empty"}},

		{name: "an unknown subcommand", args: at("bogus"), wantErr: []string{`unknown command "bogus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newQAFixture(t, false)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			r := runGroqWebhook(t, "", tt.args...)
			if len(tt.wantErr) > 0 {
				r.mustFail(t, tt.wantErr...)
			} else {
				r.mustSucceed(t)
			}
			for _, re := range tt.wantOut {
				if !regexp.MustCompile(re).MatchString(r.stdout) {
					t.Errorf("output does not match %s:\n%s", re, r.stdout)
				}
			}
			for _, s := range tt.notOut {
				if strings.Contains(r.stdout, s) {
					t.Errorf("output holds %q:\n%s", s, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not hold %q", r.stderr, tt.wantStderr)
			}
			all := r.stdout + r.stderr
			if r.err != nil {
				all += r.err.Error()
			}
			for _, leak := range []string{qaBody, qaSignature, qaSecret} {
				if strings.Contains(all, leak) {
					t.Errorf("the command printed %q", leak)
				}
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

// withBroken adds a queue whose store fails.
func withBroken(t *testing.T, f *qaFixture) {
	f.broken = &fakeQueueStore{err: errors.New("disk on fire")}
	f.register(t, "admin-test-broken", f.broken)
}

// withDefault adds an empty queue named default, unless another test's
// Caddy runs one.
func withDefault(t *testing.T, f *qaFixture) {
	if _, running := runningQueues.Load(DefaultQueueName); running {
		t.Skip("a queue named default is running")
	}
	f.register(t, DefaultQueueName, &fakeQueueStore{})
}

func TestQueueCommandCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "-"},
		{"evt_1", "evt_1"},
		{"a b", `"a b"`},
		{"tab\there", `"tab\there"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"naïve", "naïve"},
	}
	for _, tt := range tests {
		if got := cell(tt.in); got != tt.want {
			t.Errorf("cell(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
