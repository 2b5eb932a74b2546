package groqwebhook

import (
	"context"
	"errors"
	"testing"
	"time"
)

// testQueueTakeover is the part of the store contract that only a store
// shared by several instances has: an attempt whose instance died is taken
// over by another instance once it was idle for the takeover time, and not
// before. open opens the queue name as one more instance. The file store
// is one instance's own; its attempts in flight are taken again when it is
// opened again after a crash ("survives reopen" in testQueueStore).
func testQueueTakeover(t *testing.T, open func(t *testing.T, name string, takeover time.Duration) QueueStore) {
	ctx := context.Background()
	const takeover = 700 * time.Millisecond

	t.Run("takeover after the idle time", func(t *testing.T) {
		name := queueNameFor(t.Name())
		dying := open(t, name, takeover) // never closed: it crashed
		survivor := open(t, name, takeover)
		defer survivor.Close()
		ev := queueTestEvent("takeover")
		if err := dying.Accept(ctx, ev, 100); err != nil {
			t.Fatalf("Accept: %v", err)
		}
		taken, _, err := dying.Take(ctx, time.Now(), 10)
		if err != nil || len(taken) != 1 {
			t.Fatalf("Take by the first instance: %d events, %v; want 1", len(taken), err)
		}
		start := time.Now()
		if evs, _, err := survivor.Take(ctx, time.Now(), 10); err != nil || len(evs) != 0 {
			t.Fatalf("Take by the survivor at once: %d events, %v; want none (in flight)", len(evs), err)
		}
		var got []*QueuedEvent
		for len(got) == 0 && time.Since(start) < 10*takeover {
			time.Sleep(takeover / 10)
			if got, _, err = survivor.Take(ctx, time.Now(), 10); err != nil {
				t.Fatalf("Take by the survivor: %v", err)
			}
		}
		waited := time.Since(start)
		if len(got) != 1 || got[0].ID != ev.ID || string(got[0].Body) != string(ev.Body) {
			t.Fatalf("Take by the survivor after %s: %d events, want the one in flight", waited, len(got))
		}
		if waited < takeover*9/10 {
			t.Errorf("taken over after %s, before the idle time %s", waited, takeover)
		}
		// Both instances count it once, in flight.
		if st, err := dying.Stats(ctx); err != nil || st.InFlight != 1 || st.Queued != 0 {
			t.Errorf("Stats: %+v, %v; want 1 in flight", st, err)
		}
		if err := survivor.Ack(ctx, got[0], time.Hour); err != nil {
			t.Fatalf("Ack by the survivor: %v", err)
		}
		// The first attempt ending late finds the event gone: the engine
		// tells that apart from a failure to record the outcome.
		if err := dying.Ack(ctx, taken[0], time.Hour); !errors.Is(err, ErrQueueEventNotFound) {
			t.Errorf("late Ack by the first instance: %v, want ErrQueueEventNotFound", err)
		}
		if err := dying.Retry(ctx, taken[0], time.Now()); !errors.Is(err, ErrQueueEventNotFound) {
			t.Errorf("late Retry by the first instance: %v, want ErrQueueEventNotFound", err)
		}
		if err := dying.Accept(ctx, queueTestEvent("takeover"), 100); err == nil {
			t.Errorf("Accept of a delivered key on the other instance: no duplicate")
		}
		if evs, _, _ := dying.Take(ctx, time.Now().Add(time.Hour), 10); len(evs) != 0 {
			t.Errorf("Take after the survivor delivered: %d events, want none", len(evs))
		}
	})

	t.Run("another instance takes what one accepted", func(t *testing.T) {
		name := queueNameFor(t.Name())
		a, b := open(t, name, takeover), open(t, name, takeover)
		defer a.Close()
		defer b.Close()
		for _, key := range []string{"1", "2", "3", "4"} {
			if err := a.Accept(ctx, queueTestEvent(key), 100); err != nil {
				t.Fatal(err)
			}
		}
		first, _, _ := a.Take(ctx, time.Now(), 2)
		second, _, _ := b.Take(ctx, time.Now(), 10)
		if len(first) != 2 || len(second) != 2 {
			t.Fatalf("Take: %d and %d events, want 2 and 2", len(first), len(second))
		}
		seen := map[string]bool{}
		for _, ev := range append(first, second...) {
			if seen[ev.ID] {
				t.Errorf("event %s taken by both", ev.ID)
			}
			seen[ev.ID] = true
		}
		if err := b.Retry(ctx, second[0], time.Now()); err != nil {
			t.Fatal(err)
		}
		if evs, _, _ := a.Take(ctx, time.Now(), 10); len(evs) != 1 || evs[0].ID != second[0].ID {
			t.Errorf("Take of a retry another instance scheduled: %d events, want %s", len(evs), second[0].ID)
		}
	})
}
