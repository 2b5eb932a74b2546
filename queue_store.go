package groqwebhook

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// A queue store keeps accepted events until they are delivered or dead.
// Stores are guest modules in the http.handlers.groq_webhook.queue
// namespace (see QueueBackend); the embedded one is queue_file.go. The
// engine (queue.go) runs on any store: it accepts, takes due events,
// delivers them, and tells the store the outcome.

// Errors a store answers with.
var (
	// ErrQueueDuplicate: an event with the same key is queued, in flight,
	// dead, or was delivered within the time its key is kept.
	ErrQueueDuplicate = errors.New("event already queued or delivered")
	// ErrQueueFull: max_events events are waiting.
	ErrQueueFull = errors.New("queue full")
	// ErrQueueEventNotFound: no such event (for replay and drop).
	ErrQueueEventNotFound = errors.New("no such event")
)

// QueuedEvent is an accepted event with everything its delivery needs.
type QueuedEvent struct {
	// ID is the store's own name for the event, unique in its queue; set
	// by Accept.
	ID string `json:"id"`
	// Key is the de-duplication key ("" when de-duplication is off).
	Key string `json:"key,omitempty"`

	Method string      `json:"method"`
	Host   string      `json:"host"`
	URI    string      `json:"uri"` // path and query, as received
	Header http.Header `json:"header"`
	// RemoteAddr is the sender's address, for the deliver routes (as
	// reverse_proxy's X-Forwarded-For).
	RemoteAddr string `json:"remote_addr,omitempty"`
	Body       []byte `json:"-"` // stored apart from the metadata

	// Vars are the {http.groq_webhook.*} placeholders' values, by name
	// without the prefix (event_id, event_type, timestamp, secret).
	Vars map[string]string `json:"vars,omitempty"`

	ReceivedAt time.Time `json:"received_at"`

	// Attempts made so far, and the outcome of the last one.
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`

	// DeadAt is when the event became a dead letter (zero while it waits).
	DeadAt time.Time `json:"dead_at,omitzero"`
}

// QueueStats counts a queue's events.
type QueueStats struct {
	Queued   int // waiting: due now or retrying later
	InFlight int // taken and not yet acknowledged, retried or buried
	Dead     int
	// OldestQueued is when the longest-waiting queued event was received
	// (zero when none is).
	OldestQueued time.Time
}

// QueueStore is what the engine needs of a store. Every method is safe
// for concurrent use. What a method has returned without error is
// durable: it survives a crash of the process.
type QueueStore interface {
	// Accept stores ev (ID is set here), due at once. If ev.Key is not ""
	// and an event with that key is queued, in flight, dead, or was
	// acknowledged less than its keep time ago, it stores nothing and
	// returns ErrQueueDuplicate. With maxWaiting events queued or in
	// flight, it returns ErrQueueFull.
	Accept(ctx context.Context, ev *QueuedEvent, maxWaiting int) error

	// Take returns up to n events due by now that are not in flight, with
	// their bodies, and marks them in flight. It also returns when the
	// earliest event left waiting (not in flight) is due, zero when none
	// waits, so that the scheduler knows how long to sleep without asking
	// again. With n = 0 it takes nothing and only reports that. After a
	// restart nothing is in flight: attempts that were are taken again.
	Take(ctx context.Context, now time.Time, n int) (taken []*QueuedEvent, next time.Time, err error)

	// Ack removes a delivered event and its body, and keeps its key for
	// keepKey, so that later copies are duplicates.
	Ack(ctx context.Context, ev *QueuedEvent, keepKey time.Duration) error

	// Retry stores ev's attempt count and last outcome and makes it due
	// at at.
	Retry(ctx context.Context, ev *QueuedEvent, at time.Time) error

	// Bury makes ev a dead letter, with its attempt count and last
	// outcome, dead since ev.DeadAt.
	Bury(ctx context.Context, ev *QueuedEvent) error

	// Replay makes the dead letters with these ids (all of them if all is
	// true) due at once, with their attempt count reset, and returns how
	// many it replayed. An unknown id is skipped.
	Replay(ctx context.Context, ids []string, all bool) (int, error)

	// Drop removes one dead letter, or returns ErrQueueEventNotFound.
	Drop(ctx context.Context, id string) error

	// Dead lists up to limit dead letters, oldest first, without bodies.
	Dead(ctx context.Context, limit int) ([]*QueuedEvent, error)

	// Expire removes dead letters dead before deadBefore and forgets keys
	// whose keep time is over at now.
	Expire(ctx context.Context, now, deadBefore time.Time) error

	// Stats counts the events.
	Stats(ctx context.Context) (QueueStats, error)

	// Close releases the store; it is called once, when no config uses
	// the queue any more.
	Close() error
}

// QueueBackend is a queue store module: the queue's settings, and how to
// open its store. A queue's store is opened once per process and outlives
// config reloads; the settings of the newest config apply.
type QueueBackend interface {
	caddy.Module
	// Options returns the queue's settings, as configured.
	Options() *QueueOptions
	// Open opens the store of the queue named in the options. It is
	// called once per process for each queue name.
	Open(ctx caddy.Context) (QueueStore, error)
}

// QueueOptions are the settings every queue store takes.
type QueueOptions struct {
	// The queue's name: handlers with the same name share one queue.
	// Default: default.
	Name string `json:"name,omitempty"`

	// How long to wait before attempts 2, 3, ... (each with up to 10 %
	// jitter, or the upstream's Retry-After if that is longer). When the
	// list is used up, the event is dead. Default: 5s 5m 30m 2h 5h 10h 10h.
	Retry []caddy.Duration `json:"retry,omitempty"`

	// How long an attempt may take: an attempt with no complete answer by
	// then failed. Default: 30s.
	AttemptTimeout caddy.Duration `json:"attempt_timeout,omitempty"`

	// How many attempts run at once for this queue. Default: 16.
	Concurrency int `json:"concurrency,omitempty"`

	// How many events may wait (queued or being retried) before new ones
	// are refused with 503. Default: 100000.
	MaxEvents int `json:"max_events,omitempty"`

	// How long dead letters are kept for replay. Default: 720h.
	KeepDead caddy.Duration `json:"keep_dead,omitempty"`
}
