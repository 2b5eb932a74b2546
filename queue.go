package groqwebhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// The queue engine: store-and-forward delivery. A verified event is
// accepted once its store has it durably; workers then run it through the
// handler's deliver routes until they answer 2xx, retrying on the schedule,
// and bury it as a dead letter when the schedule is used up or the upstream
// refuses it for good. One engine runs per queue name and process, shared
// by every config that names the queue, so that a reload keeps the queue,
// its workers and its attempts in flight.

// Defaults of the queue settings.
const (
	DefaultQueueName        = "default"
	DefaultAttemptTimeout   = 30 * time.Second
	DefaultQueueConcurrency = 16
	DefaultQueueMaxEvents   = 100000
	DefaultKeepDead         = 720 * time.Hour

	// QueuedHeader is set on the answer to an event accepted into a queue.
	QueuedHeader = "X-Groq-Queued"
	// DeliveryAttemptHeader numbers the attempts at delivering an event,
	// from 1; ReceivedAtHeader tells when Caddy accepted it.
	DeliveryAttemptHeader = "X-Groq-Delivery-Attempt"
	ReceivedAtHeader      = "X-Groq-Received-At"

	// queueRetryAfter is what a sender is told to wait when the queue
	// cannot take its event.
	queueRetryAfter = "5"

	// housekeepingInterval is how often dead letters past keep_dead and
	// expired keys are removed.
	housekeepingInterval = time.Minute
)

// DefaultRetry is the default retry schedule.
var DefaultRetry = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// provision fills in defaults.
func (o *QueueOptions) provision() {
	if o.Name == "" {
		o.Name = DefaultQueueName
	}
	if o.Retry == nil {
		for _, d := range DefaultRetry {
			o.Retry = append(o.Retry, caddy.Duration(d))
		}
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = caddy.Duration(DefaultAttemptTimeout)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultQueueConcurrency
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = DefaultQueueMaxEvents
	}
	if o.KeepDead == 0 {
		o.KeepDead = caddy.Duration(DefaultKeepDead)
	}
}

func (o *QueueOptions) validate() error {
	if o.Name == "." || o.Name == ".." || strings.ContainsAny(o.Name, `/\`) {
		return fmt.Errorf("queue name %q must not contain / or \\, nor be . or ..: it names a directory", o.Name)
	}
	for i, d := range o.Retry {
		if d <= 0 {
			return fmt.Errorf("queue %q: retry wait %d must be positive, got %s", o.Name, i+1, time.Duration(d))
		}
	}
	switch {
	case o.AttemptTimeout <= 0:
		return fmt.Errorf("queue %q: attempt_timeout must be positive, got %s", o.Name, time.Duration(o.AttemptTimeout))
	case o.Concurrency <= 0:
		return fmt.Errorf("queue %q: concurrency must be positive, got %d", o.Name, o.Concurrency)
	case o.MaxEvents <= 0:
		return fmt.Errorf("queue %q: max_events must be positive, got %d", o.Name, o.MaxEvents)
	case o.KeepDead <= 0:
		return fmt.Errorf("queue %q: keep_dead must be positive, got %s", o.Name, time.Duration(o.KeepDead))
	}
	return nil
}

// queues holds the running engines by name, across config reloads.
var queues = caddy.NewUsagePool()

// runningQueues lists the engines for the admin API and the metrics.
var runningQueues sync.Map // name -> *queueEngine

// queueUser is a handler that uses a queue, and the config it belongs to.
type queueUser struct {
	handler *Handler
	config  any
}

// queueEngine runs one queue.
type queueEngine struct {
	name   string
	store  QueueStore
	logger *zap.Logger

	mu    sync.Mutex
	users []queueUser // newest last: its deliver routes and settings apply
	opts  QueueOptions

	wake     chan struct{} // an event was accepted or an attempt finished
	ctx      context.Context
	cancel   context.CancelFunc
	stopped  chan struct{} // the scheduler returned
	attempts sync.WaitGroup
	inFlight int         // attempts running; under mu
	stopping atomic.Bool // no attempt starts any more
}

func newQueueEngine(name string, store QueueStore, logger *zap.Logger) *queueEngine {
	ctx, cancel := context.WithCancel(context.Background())
	e := &queueEngine{
		name: name, store: store, logger: logger,
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, stopped: make(chan struct{}),
	}
	runningQueues.Store(name, e)
	go e.run()
	return e
}

// register adds a handler whose deliver routes and settings apply from now
// on. Two handlers of one config may not share a queue.
func (e *queueEngine) register(h *Handler, config any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, u := range e.users {
		if u.config == config && u.handler != h {
			return fmt.Errorf("queue %q is used by two groq_webhook handlers of this config (%s and %s): give each its own name",
				e.name, u.handler.describe(), h.describe())
		}
	}
	e.users = append(e.users, queueUser{handler: h, config: config})
	e.opts = *h.queueBackend.Options()
	e.signal()
	return nil
}

// unregister removes a handler whose config was unloaded.
func (e *queueEngine) unregister(h *Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, u := range e.users {
		if u.handler == h {
			e.users = append(e.users[:i], e.users[i+1:]...)
			break
		}
	}
	if n := len(e.users); n > 0 {
		e.opts = *e.users[n-1].handler.queueBackend.Options()
	}
}

// current returns the handler whose deliver routes apply, and the settings.
func (e *queueEngine) current() (*Handler, QueueOptions) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.users) == 0 {
		return nil, e.opts
	}
	return e.users[len(e.users)-1].handler, e.opts
}

// signal wakes the scheduler without blocking.
func (e *queueEngine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// accept stores an event and wakes the scheduler.
func (e *queueEngine) accept(ctx context.Context, ev *QueuedEvent) error {
	_, opts := e.current()
	if err := e.store.Accept(ctx, ev, opts.MaxEvents); err != nil {
		return err
	}
	e.signal()
	return nil
}

// run is the scheduler: it takes due events while attempts may start,
// and sleeps until the next is due, an event arrives, or an attempt ends.
// Housekeeping runs every minute, and as soon as a backlog has drained, so
// that the disk space of delivered events is given back then.
func (e *queueEngine) run() {
	defer close(e.stopped)
	housekeeping := time.NewTicker(housekeepingInterval)
	defer housekeeping.Stop()
	worked := false // events were taken since the last housekeeping
	for {
		wait, took, drained := e.dispatch()
		worked = worked || took
		if drained && worked {
			e.housekeep(time.Now())
			worked = false
		}
		timer := time.NewTimer(wait)
		select {
		case <-e.ctx.Done():
			timer.Stop()
			return
		case <-e.wake:
		case <-timer.C:
		case now := <-housekeeping.C:
			e.housekeep(now)
			worked = false
		}
		timer.Stop()
	}
}

// housekeep removes dead letters past keep_dead and forgets expired keys.
func (e *queueEngine) housekeep(now time.Time) {
	_, opts := e.current()
	err := e.store.Expire(e.ctx, now, now.Add(-time.Duration(opts.KeepDead)))
	if err != nil && !errors.Is(err, errQueueUnavailable) && e.ctx.Err() == nil {
		e.logger.Error("queue housekeeping failed", zap.String("queue", e.name), zap.Error(err))
	}
}

// dispatch starts attempts for due events while slots are free. It returns
// how long the scheduler may sleep, whether it took any event, and whether
// nothing waits any more.
func (e *queueEngine) dispatch() (wait time.Duration, took, drained bool) {
	const idle = time.Second // a store error or a clock step is retried this soon
	h, opts := e.current()
	if h == nil || e.stopping.Load() {
		return idle, false, false
	}
	e.mu.Lock()
	free := opts.Concurrency - e.inFlight
	e.mu.Unlock()
	if free <= 0 {
		return idle, false, false // an ending attempt wakes the scheduler
	}
	events, next, err := e.store.Take(e.ctx, time.Now(), free)
	if err != nil {
		if e.ctx.Err() == nil && !errors.Is(err, errQueueUnavailable) {
			e.logger.Error("taking queued events failed", zap.String("queue", e.name), zap.Error(err))
		}
		return idle, false, false
	}
	for _, ev := range events {
		e.mu.Lock()
		e.inFlight++
		e.mu.Unlock()
		e.attempts.Add(1)
		go e.attempt(h, opts, ev)
	}
	took = len(events) > 0
	if len(events) == free {
		return 0, took, false // maybe more are due
	}
	if next.IsZero() {
		e.mu.Lock()
		drained = e.inFlight == 0
		e.mu.Unlock()
		return idle, took, drained
	}
	return min(max(time.Until(next), 0), idle), took, false
}

// attempt delivers ev once through h's deliver routes and records the
// outcome. h and opts are those current when ev was taken: a config being
// unloaded meanwhile does not take them away.
func (e *queueEngine) attempt(h *Handler, opts QueueOptions, ev *QueuedEvent) {
	defer func() {
		e.mu.Lock()
		e.inFlight--
		e.mu.Unlock()
		e.attempts.Done()
		e.signal()
	}()
	ev.Attempts++
	result := h.deliverQueued(e.ctx, ev, time.Duration(opts.AttemptTimeout))
	if !result.delivered && e.ctx.Err() != nil {
		// Cut short by shutdown: the event stays as it was and, in
		// flight to no one, is attempted again after the restart.
		return
	}
	ctx := context.WithoutCancel(e.ctx)
	switch {
	case result.delivered:
		if err := e.store.Ack(ctx, ev, time.Duration(h.Dedupe.TTL)); err != nil {
			if e.endedElsewhere(ev, err) {
				deliveriesTotal.WithLabelValues(e.name, "delivered").Inc()
				return
			}
			e.logger.Error("recording a delivery failed; the event will be delivered again",
				zap.String("queue", e.name), zap.String("event_id", ev.Vars["event_id"]), zap.Error(err))
			return
		}
		deliveriesTotal.WithLabelValues(e.name, "delivered").Inc()
		deliverySeconds.WithLabelValues(e.name).Observe(time.Since(ev.ReceivedAt).Seconds())
		return
	}
	ev.LastStatus, ev.LastError = result.status, result.errText
	wait, retry := nextWait(opts.Retry, ev.Attempts, result.retryAfter)
	if !result.permanent && retry {
		next := time.Now().Add(wait)
		e.logger.Warn("delivery attempt failed; will retry",
			zap.String("queue", e.name), zap.String("event_id", ev.Vars["event_id"]), zap.Int("attempt", ev.Attempts),
			zap.Int("status", result.status), zap.String("error", result.errText), zap.Time("next_attempt", next))
		if err := e.store.Retry(ctx, ev, next); err != nil {
			if e.endedElsewhere(ev, err) {
				return
			}
			e.logger.Error("scheduling a retry failed; the event is retried after a restart",
				zap.String("queue", e.name), zap.String("event_id", ev.Vars["event_id"]), zap.Error(err))
			return
		}
		deliveriesTotal.WithLabelValues(e.name, "retried").Inc()
		return
	}
	ev.DeadAt = time.Now()
	e.logger.Error("event is dead after its last delivery attempt",
		zap.String("queue", e.name), zap.String("event_id", ev.Vars["event_id"]), zap.Int("attempts", ev.Attempts),
		zap.Int("status", result.status), zap.String("error", result.errText), zap.Bool("refused", result.permanent))
	if err := e.store.Bury(ctx, ev); err != nil {
		if e.endedElsewhere(ev, err) {
			return
		}
		e.logger.Error("burying a dead event failed", zap.String("queue", e.name), zap.String("event_id", ev.Vars["event_id"]), zap.Error(err))
		return
	}
	deliveriesTotal.WithLabelValues(e.name, "dead").Inc()
}

// endedElsewhere reports an outcome that could not be recorded because the
// event is gone from the store: with a shared store, this attempt outlived
// takeover_after, another instance took the event over, and its attempt
// ended first. That is logged as what it is, not as a failure to record.
func (e *queueEngine) endedElsewhere(ev *QueuedEvent, err error) bool {
	if !errors.Is(err, ErrQueueEventNotFound) {
		return false
	}
	e.logger.Warn("the event was taken over and ended by another attempt while this one ran; its outcome is not recorded again",
		zap.String("queue", e.name), zap.String("event_id", ev.Vars["event_id"]), zap.Int("attempt", ev.Attempts))
	return true
}

// nextWait returns the wait before the next attempt after attempt n
// failed, with up to 10 % jitter, or the upstream's Retry-After if that is
// longer; retry is false when the schedule is used up.
func nextWait(schedule []caddy.Duration, n int, retryAfter time.Duration) (wait time.Duration, retry bool) {
	if n < 1 || n > len(schedule) {
		return 0, false
	}
	wait = time.Duration(schedule[n-1])
	wait += time.Duration(rand.Int64N(int64(wait)/10 + 1))
	return max(wait, retryAfter), true
}

// Destruct stops the engine when no config uses the queue any more (Caddy
// is stopping): attempts in flight finish, each within attempt_timeout,
// and the store is closed.
func (e *queueEngine) Destruct() error {
	runningQueues.CompareAndDelete(e.name, e)
	e.stopping.Store(true)
	_, opts := e.current()
	done := make(chan struct{})
	go func() {
		e.attempts.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Duration(opts.AttemptTimeout) + time.Second):
	}
	e.cancel()
	<-e.stopped
	e.attempts.Wait()
	return e.store.Close()
}

// stats counts the queue's events for the admin API and the metrics.
func (e *queueEngine) stats(ctx context.Context) (QueueStats, error) {
	return e.store.Stats(ctx)
}

// lazyStore opens a queue's store when it is first needed, and again, at
// most once a second, while opening fails: a queue whose directory cannot
// be written yet answers senders 503, so they retry, and takes their events
// as soon as it can, instead of keeping the whole config from loading.
type lazyStore struct {
	open func() (QueueStore, error)

	mu    sync.Mutex
	store QueueStore
	err   error
	tried time.Time
}

func (l *lazyStore) get() (QueueStore, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil && time.Since(l.tried) >= time.Second {
		l.tried = time.Now()
		l.store, l.err = l.open()
	}
	if l.store == nil {
		return nil, fmt.Errorf("%w: %v", errQueueUnavailable, l.err)
	}
	return l.store, nil
}

func (l *lazyStore) Accept(ctx context.Context, ev *QueuedEvent, maxWaiting int) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Accept(ctx, ev, maxWaiting)
}

func (l *lazyStore) Take(ctx context.Context, now time.Time, n int) ([]*QueuedEvent, time.Time, error) {
	s, err := l.get()
	if err != nil {
		return nil, time.Time{}, err
	}
	return s.Take(ctx, now, n)
}

func (l *lazyStore) Ack(ctx context.Context, ev *QueuedEvent, keepKey time.Duration) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Ack(ctx, ev, keepKey)
}

func (l *lazyStore) Retry(ctx context.Context, ev *QueuedEvent, at time.Time) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Retry(ctx, ev, at)
}

func (l *lazyStore) Bury(ctx context.Context, ev *QueuedEvent) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Bury(ctx, ev)
}

func (l *lazyStore) Replay(ctx context.Context, ids []string, all bool) (int, error) {
	s, err := l.get()
	if err != nil {
		return 0, err
	}
	return s.Replay(ctx, ids, all)
}

func (l *lazyStore) Drop(ctx context.Context, id string) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Drop(ctx, id)
}

func (l *lazyStore) Dead(ctx context.Context, limit int) ([]*QueuedEvent, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Dead(ctx, limit)
}

func (l *lazyStore) Expire(ctx context.Context, now, deadBefore time.Time) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Expire(ctx, now, deadBefore)
}

func (l *lazyStore) Stats(ctx context.Context) (QueueStats, error) {
	s, err := l.get()
	if err != nil {
		return QueueStats{}, err
	}
	return s.Stats(ctx)
}

// Close closes the store if it was ever opened.
func (l *lazyStore) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil {
		return nil
	}
	return l.store.Close()
}

var _ QueueStore = (*lazyStore)(nil)
