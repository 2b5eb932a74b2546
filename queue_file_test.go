package groqwebhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.uber.org/zap"
)

// openTestFileStore opens a file store in dir, logging nothing.
func openTestFileStore(t testing.TB, dir string) *fileStore {
	t.Helper()
	s, err := openFileStore(dir, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("opening file store in %s: %v", dir, err)
	}
	return s
}

func TestFileQueueStore(t *testing.T) {
	testQueueStore(t, func(t *testing.T, dir string) QueueStore {
		return openTestFileStore(t, dir)
	})
}

// closeOnce closes its store once, whether the test or its cleanup asks
// first: the interface promises one Close.
type closeOnce struct {
	QueueStore
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.QueueStore.Close() })
	return c.err
}

// queueTestEvent is an event with something in every field a store keeps.
func queueTestEvent(key string) *QueuedEvent {
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i) // every byte value, NUL and invalid UTF-8 too
	}
	return &QueuedEvent{
		Key:    key,
		Method: http.MethodPost,
		Host:   "hooks.example.com",
		URI:    "/groq?x=1&y=%20",
		Header: http.Header{
			"Content-Type": {"application/json"},
			"X-Multi":      {"a", "b"},
		},
		Body:       body,
		Vars:       map[string]string{"event_id": "evt_1", "event_type": "chat.done", "secret": "primary"},
		ReceivedAt: time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("X", 3600)),
	}
}

// nextDue asks s when its next waiting event is due, taking none: ok is
// false when none waits.
func nextDue(ctx context.Context, s QueueStore) (due time.Time, ok bool, err error) {
	_, next, err := s.Take(ctx, time.Now(), 0)
	return next, !next.IsZero(), err
}

// testQueueStore is the contract every QueueStore must keep. open opens the
// store kept in dir (a store without a directory can use it as a name);
// opening it again after Close must find what was stored.
func testQueueStore(t *testing.T, open func(t *testing.T, dir string) QueueStore) {
	ctx := context.Background()
	const wide = 1000 // a maxWaiting no test reaches

	// fresh opens an empty store that the test's end closes.
	fresh := func(t *testing.T) (QueueStore, string) {
		dir := t.TempDir()
		s := &closeOnce{QueueStore: open(t, dir)}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s, dir
	}
	reopen := func(t *testing.T, s QueueStore, dir string) QueueStore {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s2 := &closeOnce{QueueStore: open(t, dir)}
		t.Cleanup(func() { s2.Close() })
		return s2
	}
	accept := func(t *testing.T, s QueueStore, ev *QueuedEvent) *QueuedEvent {
		t.Helper()
		if err := s.Accept(ctx, ev, wide); err != nil {
			t.Fatalf("Accept(key %q): %v", ev.Key, err)
		}
		if ev.ID == "" {
			t.Fatalf("Accept set no ID")
		}
		return ev
	}
	take := func(t *testing.T, s QueueStore, now time.Time, n int) []*QueuedEvent {
		t.Helper()
		evs, _, err := s.Take(ctx, now, n)
		if err != nil {
			t.Fatalf("Take(%d): %v", n, err)
		}
		return evs
	}
	takeOne := func(t *testing.T, s QueueStore) *QueuedEvent {
		t.Helper()
		evs := take(t, s, time.Now(), 1)
		if len(evs) != 1 {
			t.Fatalf("Take: got %d events, want 1", len(evs))
		}
		return evs[0]
	}
	ids := func(evs []*QueuedEvent) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.ID)
		}
		return out
	}
	stats := func(t *testing.T, s QueueStore) QueueStats {
		t.Helper()
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		return st
	}
	wantCounts := func(t *testing.T, s QueueStore, queued, inFlight, dead int) {
		t.Helper()
		st := stats(t, s)
		if st.Queued != queued || st.InFlight != inFlight || st.Dead != dead {
			t.Fatalf("Stats: queued %d, in flight %d, dead %d; want %d, %d, %d",
				st.Queued, st.InFlight, st.Dead, queued, inFlight, dead)
		}
	}
	dead := func(t *testing.T, s QueueStore) []*QueuedEvent {
		t.Helper()
		evs, err := s.Dead(ctx, 100)
		if err != nil {
			t.Fatalf("Dead: %v", err)
		}
		return evs
	}
	bury := func(t *testing.T, s QueueStore, ev *QueuedEvent, at time.Time) {
		t.Helper()
		ev.Attempts, ev.LastStatus, ev.LastError, ev.DeadAt = 7, 500, "internal error", at
		if err := s.Bury(ctx, ev); err != nil {
			t.Fatalf("Bury: %v", err)
		}
	}
	// acceptAndBury accepts n events and buries them, dead at the times
	// given (or now).
	acceptAndBury := func(t *testing.T, s QueueStore, deadAt ...time.Time) []*QueuedEvent {
		t.Helper()
		var evs []*QueuedEvent
		for i, at := range deadAt {
			accept(t, s, queueTestEvent(fmt.Sprintf("dead-%d", i)))
			ev := takeOne(t, s)
			bury(t, s, ev, at)
			evs = append(evs, ev)
		}
		return evs
	}

	t.Run("accept then take", func(t *testing.T) {
		s, _ := fresh(t)
		want := queueTestEvent("k1")
		accept(t, s, want)
		wantCounts(t, s, 1, 0, 0)
		got := takeOne(t, s)
		if got.ID != want.ID || got.Key != want.Key || got.Method != want.Method ||
			got.Host != want.Host || got.URI != want.URI {
			t.Errorf("Take: got %+v, want %+v", got, want)
		}
		if !bytes.Equal(got.Body, want.Body) {
			t.Errorf("Take: body %q, want %q", got.Body, want.Body)
		}
		if !reflect.DeepEqual(got.Header, want.Header) {
			t.Errorf("Take: header %v, want %v", got.Header, want.Header)
		}
		if !reflect.DeepEqual(got.Vars, want.Vars) {
			t.Errorf("Take: vars %v, want %v", got.Vars, want.Vars)
		}
		if !got.ReceivedAt.Equal(want.ReceivedAt) {
			t.Errorf("Take: received at %v, want %v", got.ReceivedAt, want.ReceivedAt)
		}
		if got.Attempts != 0 || !got.DeadAt.IsZero() {
			t.Errorf("Take: attempts %d, dead at %v; want 0, zero", got.Attempts, got.DeadAt)
		}
		wantCounts(t, s, 0, 1, 0)
		if evs := take(t, s, time.Now(), 10); len(evs) != 0 {
			t.Errorf("Take again: got %v, want nothing (in flight)", ids(evs))
		}
	})

	t.Run("empty body and no key", func(t *testing.T) {
		s, _ := fresh(t)
		accept(t, s, &QueuedEvent{Method: "POST", URI: "/"})
		accept(t, s, &QueuedEvent{Method: "POST", URI: "/"})
		evs := take(t, s, time.Now(), 10)
		if len(evs) != 2 || len(evs[0].Body) != 0 {
			t.Fatalf("Take: got %d events (first body %q), want 2 with empty bodies", len(evs), evs[0].Body)
		}
	})

	t.Run("take order, limit, in flight and later", func(t *testing.T) {
		s, _ := fresh(t)
		var accepted []string
		for i := range 4 {
			accepted = append(accepted, accept(t, s, queueTestEvent(fmt.Sprintf("k%d", i))).ID)
		}
		if got := ids(take(t, s, time.Now(), 2)); !reflect.DeepEqual(got, accepted[:2]) {
			t.Fatalf("Take(2): got %v, want %v", got, accepted[:2])
		}
		third := take(t, s, time.Now(), 1)
		if got := ids(third); !reflect.DeepEqual(got, accepted[2:3]) {
			t.Fatalf("Take(1): got %v, want %v (skipping in flight)", got, accepted[2:3])
		}
		later := time.Now().Add(time.Hour)
		if err := s.Retry(ctx, third[0], later); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		if got := ids(take(t, s, time.Now(), 10)); !reflect.DeepEqual(got, accepted[3:]) {
			t.Fatalf("Take(10): got %v, want %v (not the one due later)", got, accepted[3:])
		}
		if evs := take(t, s, time.Now(), 10); len(evs) != 0 {
			t.Fatalf("Take: got %v, want nothing", ids(evs))
		}
		wantCounts(t, s, 1, 3, 0)
	})

	t.Run("idempotent accept", func(t *testing.T) {
		for _, tc := range []struct {
			state string
			// put leaves the event in the state; ev was accepted.
			put func(t *testing.T, s QueueStore, ev *QueuedEvent)
		}{
			{"queued", func(*testing.T, QueueStore, *QueuedEvent) {}},
			{"in flight", func(t *testing.T, s QueueStore, _ *QueuedEvent) { takeOne(t, s) }},
			{"retrying", func(t *testing.T, s QueueStore, _ *QueuedEvent) {
				if err := s.Retry(ctx, takeOne(t, s), time.Now().Add(time.Hour)); err != nil {
					t.Fatalf("Retry: %v", err)
				}
			}},
			{"dead", func(t *testing.T, s QueueStore, _ *QueuedEvent) { bury(t, s, takeOne(t, s), time.Now()) }},
			{"delivered", func(t *testing.T, s QueueStore, _ *QueuedEvent) {
				if err := s.Ack(ctx, takeOne(t, s), time.Hour); err != nil {
					t.Fatalf("Ack: %v", err)
				}
			}},
		} {
			t.Run(tc.state, func(t *testing.T) {
				s, _ := fresh(t)
				ev := accept(t, s, queueTestEvent("same"))
				tc.put(t, s, ev)
				before := stats(t, s)
				again := queueTestEvent("same")
				if err := s.Accept(ctx, again, wide); !errors.Is(err, ErrQueueDuplicate) {
					t.Fatalf("Accept of the same key: %v, want ErrQueueDuplicate", err)
				}
				if after := stats(t, s); after != before {
					t.Errorf("Stats after duplicate: %+v, want %+v", after, before)
				}
				accept(t, s, queueTestEvent("other"))
			})
		}
	})

	t.Run("key accepted again once its keep time is over", func(t *testing.T) {
		s, _ := fresh(t)
		accept(t, s, queueTestEvent("kept"))
		if err := s.Ack(ctx, takeOne(t, s), time.Hour); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := s.Expire(ctx, time.Now().Add(30*time.Minute), time.Time{}); err != nil {
			t.Fatalf("Expire: %v", err)
		}
		if err := s.Accept(ctx, queueTestEvent("kept"), wide); !errors.Is(err, ErrQueueDuplicate) {
			t.Fatalf("Accept within the keep time: %v, want ErrQueueDuplicate", err)
		}
		if err := s.Expire(ctx, time.Now().Add(2*time.Hour), time.Time{}); err != nil {
			t.Fatalf("Expire: %v", err)
		}
		accept(t, s, queueTestEvent("kept"))
	})

	t.Run("key accepted again after drop", func(t *testing.T) {
		s, _ := fresh(t)
		ev := acceptAndBury(t, s, time.Now())[0]
		if err := s.Drop(ctx, ev.ID); err != nil {
			t.Fatalf("Drop: %v", err)
		}
		accept(t, s, queueTestEvent(ev.Key))
	})

	t.Run("concurrent accepts of one key", func(t *testing.T) {
		s, _ := fresh(t)
		const n = 32
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = s.Accept(ctx, queueTestEvent("race"), wide) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrQueueDuplicate):
				t.Errorf("Accept: %v, want nil or ErrQueueDuplicate", err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent accepts won, want 1", won, n)
		}
		wantCounts(t, s, 1, 0, 0)
	})

	t.Run("max waiting", func(t *testing.T) {
		s, _ := fresh(t)
		const max = 3
		for i := range max {
			if err := s.Accept(ctx, queueTestEvent(fmt.Sprint(i)), max); err != nil {
				t.Fatalf("Accept %d: %v", i, err)
			}
		}
		if err := s.Accept(ctx, queueTestEvent("full"), max); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Accept when full: %v, want ErrQueueFull", err)
		}
		ev := takeOne(t, s)
		if err := s.Accept(ctx, queueTestEvent("full"), max); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Accept with one in flight: %v, want ErrQueueFull", err)
		}
		if err := s.Ack(ctx, ev, time.Hour); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := s.Accept(ctx, queueTestEvent("full"), max); err != nil {
			t.Fatalf("Accept after an ack: %v", err)
		}
	})

	t.Run("retry", func(t *testing.T) {
		s, _ := fresh(t)
		accept(t, s, queueTestEvent("r"))
		ev := takeOne(t, s)
		at := time.Now().Add(time.Hour).Truncate(time.Millisecond)
		ev.Attempts, ev.LastStatus, ev.LastError = 1, http.StatusBadGateway, "bad gateway"
		if err := s.Retry(ctx, ev, at); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		wantCounts(t, s, 1, 0, 0)
		due, ok, err := nextDue(ctx, s)
		if err != nil || !ok || !due.Equal(at) {
			t.Fatalf("NextDue: %v, %v, %v; want %v, true", due, ok, err, at)
		}
		if evs := take(t, s, at.Add(-time.Millisecond), 10); len(evs) != 0 {
			t.Fatalf("Take before it is due: got %v", ids(evs))
		}
		evs := take(t, s, at, 10)
		if len(evs) != 1 {
			t.Fatalf("Take when due: got %d events, want 1", len(evs))
		}
		got := evs[0]
		if got.Attempts != 1 || got.LastStatus != http.StatusBadGateway || got.LastError != "bad gateway" {
			t.Errorf("Take: attempts %d, status %d, error %q; want 1, 502, bad gateway",
				got.Attempts, got.LastStatus, got.LastError)
		}
		if !bytes.Equal(got.Body, queueTestEvent("").Body) {
			t.Errorf("Take: body changed by the retry")
		}
	})

	t.Run("bury", func(t *testing.T) {
		s, _ := fresh(t)
		at := time.Now().Add(-time.Minute)
		ev := acceptAndBury(t, s, at)[0]
		wantCounts(t, s, 0, 0, 1)
		got := dead(t, s)
		if len(got) != 1 {
			t.Fatalf("Dead: got %d, want 1", len(got))
		}
		d := got[0]
		if d.ID != ev.ID || d.Body != nil || d.Attempts != 7 || d.LastStatus != 500 ||
			d.LastError != "internal error" || !d.DeadAt.Equal(at) {
			t.Errorf("Dead: got %+v", d)
		}
		if evs := take(t, s, time.Now().Add(time.Hour), 10); len(evs) != 0 {
			t.Errorf("Take: got dead letter %v", ids(evs))
		}
		if _, ok, err := nextDue(ctx, s); ok || err != nil {
			t.Errorf("NextDue: %v, %v; want none", ok, err)
		}
	})

	t.Run("dead lists oldest first, up to limit", func(t *testing.T) {
		s, _ := fresh(t)
		now := time.Now()
		evs := acceptAndBury(t, s, now, now.Add(-2*time.Hour), now.Add(-time.Hour))
		got, err := s.Dead(ctx, 2)
		if err != nil {
			t.Fatalf("Dead: %v", err)
		}
		if want := []string{evs[1].ID, evs[2].ID}; !reflect.DeepEqual(ids(got), want) {
			t.Errorf("Dead(2): got %v, want %v", ids(got), want)
		}
	})

	t.Run("replay", func(t *testing.T) {
		s, _ := fresh(t)
		now := time.Now()
		evs := acceptAndBury(t, s, now, now, now)
		n, err := s.Replay(ctx, []string{evs[0].ID, evs[2].ID, evs[0].ID, "unknown"}, false)
		if err != nil || n != 2 {
			t.Fatalf("Replay by ids: %d, %v; want 2", n, err)
		}
		if got := ids(dead(t, s)); !reflect.DeepEqual(got, []string{evs[1].ID}) {
			t.Fatalf("Dead after replay: %v, want %v", got, evs[1].ID)
		}
		wantCounts(t, s, 2, 0, 1)
		replayed := take(t, s, time.Now(), 10)
		// Replayed together, they are due at the same time, in no order.
		got := ids(replayed)
		slices.Sort(got)
		want := []string{evs[0].ID, evs[2].ID}
		slices.Sort(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Take after replay: %v, want %v", got, want)
		}
		for _, ev := range replayed {
			if ev.Attempts != 0 || !ev.DeadAt.IsZero() || len(ev.Body) == 0 {
				t.Errorf("replayed %s: attempts %d, dead at %v, body %d bytes; want 0, zero, the body",
					ev.ID, ev.Attempts, ev.DeadAt, len(ev.Body))
			}
		}
		if n, err := s.Replay(ctx, nil, true); err != nil || n != 1 {
			t.Fatalf("Replay all: %d, %v; want 1", n, err)
		}
		if got := ids(take(t, s, time.Now(), 10)); !reflect.DeepEqual(got, []string{evs[1].ID}) {
			t.Fatalf("Take after replay all: %v, want %v", got, evs[1].ID)
		}
		if n, err := s.Replay(ctx, nil, true); err != nil || n != 0 {
			t.Fatalf("Replay all with none dead: %d, %v; want 0", n, err)
		}
	})

	t.Run("drop", func(t *testing.T) {
		s, _ := fresh(t)
		ev := acceptAndBury(t, s, time.Now())[0]
		queued := accept(t, s, queueTestEvent("queued"))
		if err := s.Drop(ctx, ev.ID); err != nil {
			t.Fatalf("Drop: %v", err)
		}
		if got := dead(t, s); len(got) != 0 {
			t.Fatalf("Dead after drop: %v", ids(got))
		}
		wantCounts(t, s, 1, 0, 0)
		for _, id := range []string{ev.ID, "unknown", queued.ID} {
			if err := s.Drop(ctx, id); !errors.Is(err, ErrQueueEventNotFound) {
				t.Errorf("Drop(%s): %v, want ErrQueueEventNotFound", id, err)
			}
		}
	})

	t.Run("expire dead letters", func(t *testing.T) {
		s, _ := fresh(t)
		now := time.Now()
		evs := acceptAndBury(t, s, now.Add(-3*time.Hour), now, now.Add(-2*time.Hour))
		if err := s.Expire(ctx, now, now.Add(-time.Hour)); err != nil {
			t.Fatalf("Expire: %v", err)
		}
		if got := ids(dead(t, s)); !reflect.DeepEqual(got, []string{evs[1].ID}) {
			t.Fatalf("Dead after expire: %v, want %v", got, evs[1].ID)
		}
		wantCounts(t, s, 0, 0, 1)
		accept(t, s, queueTestEvent(evs[0].Key)) // its key is forgotten with it
	})

	t.Run("next due", func(t *testing.T) {
		s, _ := fresh(t)
		if _, ok, err := nextDue(ctx, s); ok || err != nil {
			t.Fatalf("NextDue when empty: %v, %v; want none", ok, err)
		}
		before := time.Now()
		accept(t, s, queueTestEvent("n"))
		due, ok, err := nextDue(ctx, s)
		if err != nil || !ok || due.Before(before) || due.After(time.Now()) {
			t.Fatalf("NextDue: %v, %v, %v; want between %v and now", due, ok, err, before)
		}
		ev := takeOne(t, s)
		if _, ok, err := nextDue(ctx, s); ok || err != nil {
			t.Fatalf("NextDue with the event in flight: %v, %v; want none", ok, err)
		}
		at := time.Now().Add(time.Minute).Truncate(time.Microsecond)
		if err := s.Retry(ctx, ev, at); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		if due, ok, err := nextDue(ctx, s); err != nil || !ok || !due.Equal(at) {
			t.Fatalf("NextDue after retry: %v, %v, %v; want %v", due, ok, err, at)
		}
		// A Take that empties what is due reports the retry as next, and
		// one that leaves due events reports those.
		accept(t, s, queueTestEvent("n2"))
		evs, next, err := s.Take(ctx, time.Now(), 10)
		if err != nil || len(evs) != 1 || !next.Equal(at) {
			t.Fatalf("Take: %d events, next %v, %v; want 1 and the retry's %v", len(evs), next, err, at)
		}
		accept(t, s, queueTestEvent("n3"))
		accept(t, s, queueTestEvent("n4"))
		before = time.Now()
		evs, next, err = s.Take(ctx, time.Now(), 1)
		if err != nil || len(evs) != 1 || next.IsZero() || next.After(before) {
			t.Fatalf("Take(1) of 2: %d events, next %v, %v; want 1 and the other, due already", len(evs), next, err)
		}
	})

	t.Run("oldest queued", func(t *testing.T) {
		s, _ := fresh(t)
		if st := stats(t, s); !st.OldestQueued.IsZero() {
			t.Fatalf("OldestQueued when empty: %v", st.OldestQueued)
		}
		first, second := queueTestEvent("1"), queueTestEvent("2")
		second.ReceivedAt = first.ReceivedAt.Add(time.Second)
		accept(t, s, second)
		accept(t, s, first)
		if st := stats(t, s); !st.OldestQueued.Equal(first.ReceivedAt) {
			t.Fatalf("OldestQueued: %v, want %v", st.OldestQueued, first.ReceivedAt)
		}
		// Taken in the order accepted: second, then first. In flight, an
		// event still waits; delivered, it does not.
		for _, want := range []time.Time{first.ReceivedAt, {}} {
			for _, ev := range take(t, s, time.Now(), 1) {
				if st := stats(t, s); !st.OldestQueued.Equal(first.ReceivedAt) {
					t.Fatalf("OldestQueued with %s in flight: %v, want %v", ev.ID, st.OldestQueued, first.ReceivedAt)
				}
				if err := s.Ack(ctx, ev, time.Hour); err != nil {
					t.Fatalf("Ack: %v", err)
				}
			}
			if st := stats(t, s); !st.OldestQueued.Equal(want) {
				t.Fatalf("OldestQueued: %v, want %v", st.OldestQueued, want)
			}
		}
	})

	t.Run("survives reopen", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			// before leaves the store as it is closed; after checks the
			// reopened one.
			before func(t *testing.T, s QueueStore) *QueuedEvent
			after  func(t *testing.T, s QueueStore, ev *QueuedEvent)
		}{
			{
				"in flight is taken again",
				func(t *testing.T, s QueueStore) *QueuedEvent {
					accept(t, s, queueTestEvent("f"))
					return takeOne(t, s)
				},
				func(t *testing.T, s QueueStore, ev *QueuedEvent) {
					wantCounts(t, s, 1, 0, 0)
					got := takeOne(t, s)
					if got.ID != ev.ID || !bytes.Equal(got.Body, ev.Body) {
						t.Errorf("Take after reopen: %s (%d bytes), want %s", got.ID, len(got.Body), ev.ID)
					}
				},
			},
			{
				"acked is gone, its key kept",
				func(t *testing.T, s QueueStore) *QueuedEvent {
					accept(t, s, queueTestEvent("a"))
					ev := takeOne(t, s)
					if err := s.Ack(ctx, ev, time.Hour); err != nil {
						t.Fatalf("Ack: %v", err)
					}
					return ev
				},
				func(t *testing.T, s QueueStore, ev *QueuedEvent) {
					wantCounts(t, s, 0, 0, 0)
					if evs := take(t, s, time.Now(), 10); len(evs) != 0 {
						t.Errorf("Take after reopen: %v, want nothing", ids(evs))
					}
					if err := s.Accept(ctx, queueTestEvent("a"), wide); !errors.Is(err, ErrQueueDuplicate) {
						t.Errorf("Accept of its key: %v, want ErrQueueDuplicate", err)
					}
				},
			},
			{
				"dead stays dead",
				func(t *testing.T, s QueueStore) *QueuedEvent {
					return acceptAndBury(t, s, time.Now())[0]
				},
				func(t *testing.T, s QueueStore, ev *QueuedEvent) {
					wantCounts(t, s, 0, 0, 1)
					if got := ids(dead(t, s)); !reflect.DeepEqual(got, []string{ev.ID}) {
						t.Errorf("Dead after reopen: %v, want %v", got, ev.ID)
					}
					if n, err := s.Replay(ctx, []string{ev.ID}, false); n != 1 || err != nil {
						t.Fatalf("Replay: %d, %v; want 1", n, err)
					}
					if got := takeOne(t, s); !bytes.Equal(got.Body, queueTestEvent("").Body) {
						t.Errorf("replayed body %q, want the original", got.Body)
					}
				},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, dir := fresh(t)
				ev := tc.before(t, s)
				tc.after(t, reopen(t, s, dir), ev)
			})
		}
	})

	t.Run("after close", func(t *testing.T) {
		s, _ := fresh(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Accept(ctx, queueTestEvent(""), wide); err == nil {
			t.Errorf("Accept after Close: no error")
		}
		if _, _, err := s.Take(ctx, time.Now(), 1); err == nil {
			t.Errorf("Take after Close: no error")
		}
		if _, err := s.Stats(ctx); err == nil {
			t.Errorf("Stats after Close: no error")
		}
	})
}

// tableSize is the size of the files under dir but the write-ahead log's.
func tableSize(t *testing.T, dir string) int64 {
	t.Helper()
	return sizeUnder(t, dir, func(path string) bool { return !strings.HasSuffix(path, ".log") })
}

// dirSize is the size of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	return sizeUnder(t, dir, func(string) bool { return true })
}

// sizeUnder is the size of the files under dir that count. A file deleted
// by a compaction while the directory is walked is not an error.
func sizeUnder(t *testing.T, dir string, counts func(path string) bool) int64 {
	t.Helper()
	var size int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() || !counts(path) {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		size += info.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("measuring %s: %v", dir, err)
	}
	return size
}

// forEach runs fn on each of items in 16 goroutines.
func forEach[T any](t *testing.T, items []T, fn func(T) error) {
	t.Helper()
	work := make(chan T)
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for it := range work {
				if err := fn(it); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestFileQueueDiskSpaceReturned fills a queue, empties it, and checks that
// Expire's compaction gave the space back. What stays is the WAL files
// pebble recycles: a bound set by the memtable settings, not the backlog.
func TestFileQueueDiskSpaceReturned(t *testing.T) {
	n, bodySize := 2000, 64<<10
	if raceEnabled {
		n = 1000 // pebble checks its invariants under -race, and runs slowly
	}
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	defer s.Close()

	evs := make([]*QueuedEvent, n)
	for i := range evs {
		evs[i] = &QueuedEvent{Key: fmt.Sprint("space-", i), Method: "POST", URI: "/", Body: make([]byte, bodySize)}
		rand.Read(evs[i].Body) // incompressible
	}
	forEach(t, evs, func(ev *QueuedEvent) error { return s.Accept(ctx, ev, n) })
	full := dirSize(t, dir)

	var taken []*QueuedEvent
	for len(taken) < n {
		evs, _, err := s.Take(ctx, time.Now(), 500)
		if err != nil || len(evs) == 0 {
			t.Fatalf("Take: %d events, %v, after %d", len(evs), err, len(taken))
		}
		taken = append(taken, evs...)
	}
	forEach(t, taken, func(ev *QueuedEvent) error { return s.Ack(ctx, ev, time.Hour) })
	if err := s.Expire(ctx, time.Now(), time.Time{}); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	// The live WAL, and the ones kept for reuse, one per memtable that may
	// wait for a flush, and one more.
	const walFloor = (fileMemTableStop + 2) * fileMemTableSize
	// Everything but the write-ahead log must go: the tables of deleted
	// data are compacted away. Pebble deletes obsolete files in the
	// background, just after the compaction.
	const wantTables = 2 << 20
	var emptied, tables int64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		emptied, tables = dirSize(t, dir), tableSize(t, dir)
		if tables < wantTables || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d events of %d KiB: %.1f MiB on disk while full, %.1f MiB after ack and expire, %.1f MiB of it not WAL (WAL floor %d MiB)",
		n, bodySize>>10, float64(full)/(1<<20), float64(emptied)/(1<<20), float64(tables)/(1<<20), walFloor>>20)
	if tables >= wantTables || emptied > walFloor+wantTables {
		t.Errorf("disk use fell from %d to %d bytes (%d not WAL) only, want below %d not WAL and %d in all",
			full, emptied, tables, wantTables, walFloor+wantTables)
	}
	if st, err := s.Stats(ctx); err != nil || st != (QueueStats{}) {
		t.Errorf("Stats: %+v, %v; want all zero", st, err)
	}
	if err := s.Accept(ctx, &QueuedEvent{Key: "space-0"}, n); !errors.Is(err, ErrQueueDuplicate) {
		t.Errorf("Accept of an acknowledged key after compaction: %v, want ErrQueueDuplicate", err)
	}
}

func TestFileQueueUnwritable(t *testing.T) {
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
	}{
		{"below a file", func(t *testing.T) string {
			// Not even root can create a directory there.
			file := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "sub")
		}},
		{"read-only directory", func(t *testing.T) string {
			if os.Geteuid() == 0 {
				t.Skip("root writes to read-only directories")
			}
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			return dir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.path(t)
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			q := &FileQueue{QueueOptions: QueueOptions{Name: "x"}, Path: dir}
			s, err := q.Open(ctx)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s): no error", dir)
			}
			if want := fmt.Sprintf("path %q", dir); !strings.Contains(err.Error(), want) {
				t.Errorf("Open: %q does not name the setting: %s", err, want)
			}
		})
	}
}

func TestFileQueueModule(t *testing.T) {
	info, err := caddy.GetModule("http.handlers.groq_webhook.queue.file")
	if err != nil {
		t.Fatalf("module not registered: %v", err)
	}
	q, ok := info.New().(*FileQueue)
	if !ok {
		t.Fatalf("New: %T, want *FileQueue", info.New())
	}
	// The options are inline, beside path.
	if err := json.Unmarshal([]byte(`{"name":"orders","max_events":5,"path":"/q"}`), q); err != nil {
		t.Fatal(err)
	}
	if o := q.Options(); o.Name != "orders" || o.MaxEvents != 5 || q.Path != "/q" {
		t.Errorf("decoded %+v", q)
	}
}

func TestFileQueueDefaultPath(t *testing.T) {
	for _, name := range []string{"..", "a/b", `a\b`} {
		q := &FileQueue{QueueOptions: QueueOptions{Name: name}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		s, err := q.Open(ctx)
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("Open with name %q: no error", name)
		}
	}
}

// TestFileQueueDiskFails breaks the disk under an open store: Accept must
// answer with an error, quickly, and the store must stay an error.
func TestFileQueueDiskFails(t *testing.T) {
	ctx := context.Background()
	broken := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	dir := t.TempDir()
	s, err := openFileStore(dir, zap.NewNop(), errorfs.Wrap(vfs.Default, broken))
	if err != nil {
		t.Fatalf("opening: %v", err)
	}
	if err := s.Accept(ctx, queueTestEvent("before"), 10); err != nil {
		t.Fatalf("Accept before the failure: %v", err)
	}
	broken.On()
	for _, key := range []string{"first", "second"} {
		done := make(chan error, 1)
		go func() { done <- s.Accept(ctx, queueTestEvent(key), 10) }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Accept(%s) on a failed disk: no error", key)
			}
			t.Logf("Accept(%s): %v", key, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("Accept(%s) on a failed disk: no answer after 10s", key)
		}
	}
	if err := s.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
}

// BenchmarkFileQueueAccept measures durable accepts of 1 KiB events.
func BenchmarkFileQueueAccept(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openTestFileStore(b, b.TempDir())
			defer s.Close()
			body := make([]byte, 1<<10)
			rand.Read(body)
			ctx := context.Background()
			var next sync.Mutex
			i := 0
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						next.Lock()
						n := i
						i++
						next.Unlock()
						if n >= b.N {
							return
						}
						ev := &QueuedEvent{Key: fmt.Sprint("bench-", n), Method: "POST", URI: "/", Body: body}
						if err := s.Accept(ctx, ev, 0); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepts/s")
		})
	}
}

// BenchmarkFileQueueDrain measures how fast a backlog of 1 KiB events is
// taken and acknowledged by 16 workers, as the engine's default
// concurrency does: the store's share of draining a queue.
func BenchmarkFileQueueDrain(b *testing.B) {
	const workers = 16
	s := openTestFileStore(b, b.TempDir())
	defer s.Close()
	body := make([]byte, 1<<10)
	rand.Read(body)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := w; n < b.N; n += workers {
				ev := &QueuedEvent{Key: fmt.Sprint("drain-", n), Method: "POST", URI: "/", Body: body}
				if err := s.Accept(ctx, ev, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				evs, _, err := s.Take(ctx, time.Now(), 1)
				if err != nil {
					b.Error(err)
					return
				}
				if len(evs) == 0 {
					return
				}
				if err := s.Ack(ctx, evs[0], time.Hour); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if st, err := s.Stats(ctx); err != nil || st.Queued+st.InFlight != 0 {
		b.Fatalf("after the drain: %+v, %v; want an empty queue", st, err)
	}
}

// TestFileQueueChangedWithoutTake: an event retried or buried without
// being taken first leaves no second entry in the due index, so it is
// taken once, when it is due, and a buried one not at all.
func TestFileQueueChangedWithoutTake(t *testing.T) {
	ctx := context.Background()
	s := openTestFileStore(t, t.TempDir())
	defer s.Close()
	retried, buried := queueTestEvent("retried"), queueTestEvent("buried")
	for _, ev := range []*QueuedEvent{retried, buried} {
		if err := s.Accept(ctx, ev, 0); err != nil {
			t.Fatalf("Accept: %v", err)
		}
	}
	later := time.Now().Add(time.Hour)
	if err := s.Retry(ctx, retried, later); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if err := s.Bury(ctx, buried); err != nil {
		t.Fatalf("Bury: %v", err)
	}
	if due, ok, err := nextDue(ctx, s); err != nil || !ok || !due.Equal(time.Unix(0, later.UnixNano())) {
		t.Fatalf("NextDue: %v, %v, %v; want %v", due, ok, err, later)
	}
	if evs, _, err := s.Take(ctx, time.Now(), 10); err != nil || len(evs) != 0 {
		t.Fatalf("Take now: %d events, %v; want none", len(evs), err)
	}
	evs, _, err := s.Take(ctx, later, 10)
	if err != nil || len(evs) != 1 || evs[0].ID != retried.ID {
		t.Fatalf("Take when due: %d events, %v; want the retried one", len(evs), err)
	}
	if st, err := s.Stats(ctx); err != nil || st.Queued != 0 || st.InFlight != 1 || st.Dead != 1 {
		t.Fatalf("Stats: %+v, %v; want 0 queued, 1 in flight, 1 dead", st, err)
	}
}
