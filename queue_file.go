package groqwebhook

// The file queue keeps each queue in a pebble database of its own, in one
// directory. Pebble was chosen after measurement: its commit pipeline
// groups concurrent pebble.Sync commits into one WAL fsync, so durable
// accepts scale with concurrent requests instead of queueing on one disk
// flush each.
//
// Key layout (<id> is 32 hex characters, <t> is 8 bytes of big-endian unix
// nanoseconds, so that index keys sort by time):
//
//	m/<id>          JSON of fileRecord: the event without its body
//	b/<id>          the body, as received
//	d/<t><id>       empty; the event waits (queued or in flight), due at t
//	x/<t><id>       empty; the event is a dead letter since t
//	k/<key>         the id of the event with this de-duplication key, or
//	                "delivered:<unix nanos>": delivered, key kept until then
//	t/<t><key>      empty; k/<key> holds a delivered marker that ends at t
//
// An id is 8 bytes of big-endian ReceivedAt nanoseconds (the accept time
// when ReceivedAt is zero) and 8 random bytes, hex encoded: ids sort by
// receipt, and the oldest waiting event is found from the d/ keys alone.
//
// Every change is one batch committed with pebble.Sync, so an event is
// either wholly stored, indexed and keyed, or not at all.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(FileQueue{})
}

// Memory and disk settings of a file queue. Memory does not grow with the
// backlog: at most fileMemTableStop memtables of fileMemTableSize (32 MiB,
// and only while a flush falls behind; otherwise one, grown from 256 KiB),
// plus the fileCacheSize block cache, plus the index blocks of open tables
// (small: values are few and large), plus the ids of events in flight:
// about 40 MiB per queue at most. On disk, beyond the events, pebble keeps
// up to fileMemTableStop+2 WAL files of about fileMemTableSize (64 MiB)
// for reuse; compaction gives back everything else.
const (
	fileMemTableSize = 16 << 20
	fileMemTableStop = 2
	fileCacheSize    = 8 << 20
	// fileKeyStripes is how many locks the de-duplication keys share.
	fileKeyStripes = 256
	// fileCompactAfter is how many events deleted since the last
	// compaction make Expire compact. Pebble gives disk space back only
	// when compaction rewrites the tables that hold deleted keys.
	fileCompactAfter = 1000
	// fileChunk bounds the batches of Replay and Expire, so one call does
	// not build an unbounded batch or hold key locks for long.
	fileChunk = 512
)

// FileQueue stores a queue's events in a directory on local disk, with an
// embedded database (pebble). Each Caddy instance has its own; events
// accepted by one instance are delivered by that instance, after a restart
// too.
type FileQueue struct {
	QueueOptions

	// The directory holding the queue's database. Each queue needs its
	// own. Default: <caddy data directory>/groq_webhook/queues/<name>.
	Path string `json:"path,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (FileQueue) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groq_webhook.queue.file",
		New: func() caddy.Module { return new(FileQueue) },
	}
}

// Options implements QueueBackend.
func (q *FileQueue) Options() *QueueOptions { return &q.QueueOptions }

// Open implements QueueBackend: it creates the directory if needed and
// opens the database there. A directory that cannot be written fails here;
// the engine logs it, answers senders 503, and tries again (lazyStore).
func (q *FileQueue) Open(ctx caddy.Context) (QueueStore, error) {
	dir := q.Path
	if dir == "" {
		name := q.Name
		if name == "" {
			name = "default"
		}
		// The name becomes one path element; it must not climb out of
		// the queues directory.
		if name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("queue file: name %q cannot name a directory: set path", name)
		}
		dir = filepath.Join(caddy.AppDataDir(), "groq_webhook", "queues", name)
	}
	s, err := openFileStore(dir, ctx.Logger(), nil)
	if err != nil {
		return nil, fmt.Errorf("queue file: path %q: %w", dir, err)
	}
	return s, nil
}

// fileRecord is what m/<id> holds.
type fileRecord struct {
	QueuedEvent
	// IndexAt is the time in the event's d/ key while it waits, or in its
	// x/ key while it is dead, so the entry can be found and moved.
	IndexAt int64 `json:"index_at"`
}

// fileStore is the QueueStore of a FileQueue.
type fileStore struct {
	db *pebble.DB

	// closing guards db against Close: every method holds it shared, so
	// none of them waits on another, and Close waits for all of them.
	closing sync.RWMutex
	closed  bool

	// keyLocks serialize the read-check-write of a k/ entry. They are
	// held across the commit: released before the fsync, a second copy
	// would see the first as stored and be answered "duplicate" before the
	// first is durable, and a crash then would lose both. Striping by hash
	// keeps accepts of different keys from waiting on each other's fsync.
	keyLocks [fileKeyStripes]sync.Mutex
	keySeed  maphash.Seed

	// adminMu runs Replay, Drop and Expire one at a time, so that two of
	// them never rewrite the same dead letter from the same old state.
	adminMu sync.Mutex

	mu sync.Mutex
	// due holds the waiting events that are not in flight; inFlight
	// those taken and not yet settled, with the due time they were taken
	// at, so that an attempt whose outcome cannot be stored puts the
	// event back as it was.
	due      dueIndex
	inFlight map[string]int64
	waiting  int   // events with a d/ entry: queued or in flight
	dead     int   // events with an x/ entry
	deleted  int   // events deleted since the last compaction
	failed   error // a failure pebble cannot continue from
}

var errFileStoreClosed = errors.New("queue file: store closed")

// openFileStore opens the store in dir; fs is nil except in tests, which
// inject disk failures.
func openFileStore(dir string, logger *zap.Logger, fs vfs.FS) (_ *fileStore, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The database holds its own reference to the cache.
	cache := pebble.NewCache(fileCacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		// Bloom filters answer most point reads of keys that are not
		// there (new de-duplication keys) without reading a table.
		Levels:                      [7]pebble.LevelOptions{{FilterPolicy: bloom.FilterPolicy(10)}},
		Cache:                       cache,
		MemTableSize:                fileMemTableSize,
		MemTableStopWritesThreshold: fileMemTableStop,
		Logger:                      pebbleLogger{logger.Sugar()},
		FS:                          fs,
	}
	defer func() {
		if f := asPebbleFatal(recover()); f != nil {
			err = f
		}
	}()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	s := &fileStore{db: db, keySeed: maphash.MakeSeed(), inFlight: make(map[string]int64)}
	err = s.scan(duePrefix, nil, func(k []byte) (bool, error) {
		s.due.add(splitTimeKey(duePrefix, k))
		return true, nil
	})
	s.waiting = len(s.due)
	if err == nil {
		s.dead, err = s.count(deadPrefix)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("counting events: %w", err)
	}
	return s, nil
}

// Key prefixes; see the layout at the top of the file.
const (
	metaPrefix    = "m/"
	bodyPrefix    = "b/"
	duePrefix     = "d/"
	deadPrefix    = "x/"
	keyPrefix     = "k/"
	expiryPrefix  = "t/"
	deliveredMark = "delivered:"
	idLen         = 32
)

func metaKey(id string) []byte { return []byte(metaPrefix + id) }
func bodyKey(id string) []byte { return []byte(bodyPrefix + id) }
func keyKey(key string) []byte { return []byte(keyPrefix + key) }

// timeKey is prefix, then nanos as 8 big-endian bytes, then rest. Times
// before 1970 sort as 1970.
func timeKey(prefix string, nanos int64, rest string) []byte {
	k := make([]byte, 0, len(prefix)+8+len(rest))
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(max(nanos, 0)))
	return append(k, rest...)
}

// splitTimeKey undoes timeKey.
func splitTimeKey(prefix string, k []byte) (nanos int64, rest string) {
	k = k[len(prefix):]
	return int64(binary.BigEndian.Uint64(k[:8])), string(k[8:])
}

// indexKey is rec's d/ entry, or its x/ entry when it is dead.
func indexKey(rec *fileRecord) []byte {
	if rec.DeadAt.IsZero() {
		return timeKey(duePrefix, rec.IndexAt, rec.ID)
	}
	return timeKey(deadPrefix, rec.IndexAt, rec.ID)
}

// newQueueID makes an id that sorts by receivedAt.
func newQueueID(receivedAt time.Time) string {
	if receivedAt.IsZero() {
		receivedAt = time.Now()
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(max(receivedAt.UnixNano(), 0)))
	rand.Read(b[8:]) // never fails; see crypto/rand
	return hex.EncodeToString(b[:])
}

// idTime is the receipt time newQueueID put in id.
func idTime(id string) (time.Time, bool) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// enter starts a method: it fails once the store is closed or broken.
// The caller must call s.closing.RUnlock when it returns nil.
func (s *fileStore) enter() error {
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return errFileStoreClosed
	}
	s.mu.Lock()
	err := s.failed
	s.mu.Unlock()
	if err != nil {
		s.closing.RUnlock()
		return fmt.Errorf("queue file: %w", err)
	}
	return nil
}

// commit applies b durably and closes it. Pebble treats a failed WAL write
// (a full or failing disk) as fatal and calls its logger's Fatalf; ours
// panics, and the panic is turned back into an error here, so the caller
// answers with an error instead of the process exiting, and every later
// call fails at once instead of waiting on a broken commit pipeline.
func (s *fileStore) commit(b *pebble.Batch) (err error) {
	defer func() {
		if f := asPebbleFatal(recover()); f != nil {
			s.mu.Lock()
			if s.failed == nil {
				s.failed = fmt.Errorf("store stopped after a disk failure: %w", f)
			}
			err = s.failed
			s.mu.Unlock()
		}
	}()
	defer b.Close()
	return b.Commit(pebble.Sync)
}

// lockKeys locks the stripes of keys ("" takes none) in stripe order, so
// that callers locking several never deadlock, and returns the unlock.
func (s *fileStore) lockKeys(keys ...string) (unlock func()) {
	var used [fileKeyStripes]bool
	for _, k := range keys {
		if k != "" {
			used[maphash.String(s.keySeed, k)%fileKeyStripes] = true
		}
	}
	for i := range used {
		if used[i] {
			s.keyLocks[i].Lock()
		}
	}
	return func() {
		for i := range used {
			if used[i] {
				s.keyLocks[i].Unlock()
			}
		}
	}
}

// get returns a copy of the value at k; nil, nil when there is none.
func (s *fileStore) get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

// record loads id's metadata; nil, nil when there is no such event.
func (s *fileStore) record(id string) (*fileRecord, error) {
	v, err := s.get(metaKey(id))
	if v == nil || err != nil {
		return nil, err
	}
	rec := new(fileRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("event %s: decoding metadata: %w", id, err)
	}
	rec.ID = id
	return rec, nil
}

// putRecord stores rec and moves its index entry from where old had it.
func putRecord(b *pebble.Batch, old, rec *fileRecord) error {
	meta, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("event %s: encoding metadata: %w", rec.ID, err)
	}
	if old != nil {
		b.Delete(indexKey(old), nil)
	}
	b.Set(indexKey(rec), nil, nil)
	b.Set(metaKey(rec.ID), meta, nil)
	return nil
}

// deleteEvent removes rec and, when the key index still names it, its key.
// The caller holds rec.Key's lock.
func (s *fileStore) deleteEvent(b *pebble.Batch, rec *fileRecord) error {
	b.Delete(metaKey(rec.ID), nil)
	b.Delete(bodyKey(rec.ID), nil)
	b.Delete(indexKey(rec), nil)
	if rec.Key == "" {
		return nil
	}
	v, err := s.get(keyKey(rec.Key))
	if err != nil {
		return err
	}
	if string(v) == rec.ID {
		b.Delete(keyKey(rec.Key), nil)
	}
	return nil
}

// moved updates the counters and the due index after a committed change
// took an event from old's state to rec's; old or rec is nil for an event
// that was not there or is gone. The event is no longer in flight.
func (s *fileStore) moved(old, rec *fileRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old != nil {
		if _, ok := s.inFlight[old.ID]; ok {
			delete(s.inFlight, old.ID)
		} else if old.DeadAt.IsZero() {
			s.due.remove(old.IndexAt, old.ID) // changed without being taken
		}
	}
	if rec != nil && rec.DeadAt.IsZero() {
		s.due.add(rec.IndexAt, rec.ID)
	}
	for _, r := range []struct {
		rec  *fileRecord
		sign int
	}{{old, -1}, {rec, 1}} {
		switch {
		case r.rec == nil:
		case r.rec.DeadAt.IsZero():
			s.waiting += r.sign
		default:
			s.dead += r.sign
		}
	}
	if rec == nil {
		s.deleted++
	}
}

// keyTaken reports whether key names an event or a delivery kept past now.
// The caller holds key's lock.
func (s *fileStore) keyTaken(key string, now time.Time) (bool, error) {
	v, err := s.get(keyKey(key))
	if v == nil || err != nil {
		return false, err
	}
	until, ok := strings.CutPrefix(string(v), deliveredMark)
	if !ok {
		return true, nil
	}
	n, err := strconv.ParseInt(until, 10, 64)
	if err != nil {
		return false, fmt.Errorf("key %q: bad marker %q", key, v)
	}
	return now.UnixNano() < n, nil
}

// Accept implements QueueStore. maxWaiting <= 0 means no limit.
func (s *fileStore) Accept(ctx context.Context, ev *QueuedEvent, maxWaiting int) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closing.RUnlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	if ev.Key != "" {
		defer s.lockKeys(ev.Key)()
		taken, err := s.keyTaken(ev.Key, now)
		if err != nil {
			return fmt.Errorf("queue file: accepting event: %w", err)
		}
		if taken {
			return ErrQueueDuplicate
		}
	}
	// The slot is counted before the commit, so that concurrent accepts
	// cannot overshoot maxWaiting; a failed commit gives it back.
	s.mu.Lock()
	full := maxWaiting > 0 && s.waiting >= maxWaiting
	if !full {
		s.waiting++
	}
	s.mu.Unlock()
	if full {
		return ErrQueueFull
	}
	if err := s.insert(ev, now); err != nil {
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
		return fmt.Errorf("queue file: accepting event: %w", err)
	}
	return nil
}

// insert stores ev as a new event due at now and sets its ID.
func (s *fileStore) insert(ev *QueuedEvent, now time.Time) error {
	rec := &fileRecord{QueuedEvent: *ev, IndexAt: now.UnixNano()}
	rec.ID = newQueueID(ev.ReceivedAt)
	rec.DeadAt = time.Time{}
	b := s.db.NewBatch()
	if err := putRecord(b, nil, rec); err != nil {
		b.Close()
		return err
	}
	b.Set(bodyKey(rec.ID), ev.Body, nil)
	if ev.Key != "" {
		b.Set(keyKey(ev.Key), []byte(rec.ID), nil)
	}
	if err := s.commit(b); err != nil {
		return err
	}
	ev.ID = rec.ID
	s.mu.Lock()
	s.due.add(rec.IndexAt, rec.ID)
	s.mu.Unlock()
	return nil
}

// Take implements QueueStore. It reads the due index, not the database's
// d/ keys, and loads each event it takes.
func (s *fileStore) Take(ctx context.Context, now time.Time, n int) ([]*QueuedEvent, time.Time, error) {
	if err := s.enter(); err != nil {
		return nil, time.Time{}, err
	}
	defer s.closing.RUnlock()
	var entries []dueEntry
	var next time.Time
	s.mu.Lock()
	for len(entries) < n {
		e, ok := s.due.popDue(now.UnixNano())
		if !ok {
			break
		}
		s.inFlight[e.ID()] = e.at
		entries = append(entries, e)
	}
	if e, ok := s.due.first(); ok {
		next = time.Unix(0, e.at)
	}
	s.mu.Unlock()
	var taken []*QueuedEvent
	for i, e := range entries {
		id := e.ID()
		ev, err := s.loadDue(id, e.at)
		if err != nil {
			for _, e := range entries[i:] {
				s.putBack(e.ID())
			}
			for _, ev := range taken {
				s.putBack(ev.ID)
			}
			return nil, time.Time{}, fmt.Errorf("queue file: taking events: %w", err)
		}
		if ev == nil {
			s.forgetInFlight(id) // an entry a later change replaced
			continue
		}
		taken = append(taken, ev)
	}
	return taken, next, nil
}

// loadDue loads the event id, with its body, if it is still due at at. It
// returns nil, nil if not, which only an index that disagrees with the
// database could cause: the entry is then dropped.
func (s *fileStore) loadDue(id string, at int64) (*QueuedEvent, error) {
	rec, err := s.record(id)
	if rec == nil || err != nil || !rec.DeadAt.IsZero() || rec.IndexAt != at {
		return nil, err
	}
	body, err := s.get(bodyKey(id))
	if err != nil {
		return nil, err
	}
	ev := rec.QueuedEvent
	ev.Body = body
	return &ev, nil
}

// putBack ends id's flight with the event unchanged: it is due again when
// it was due before it was taken.
func (s *fileStore) putBack(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.inFlight[id]; ok {
		delete(s.inFlight, id)
		s.due.add(at, id)
	}
}

// takenRecord is what Ack needs of ev's stored record: its key and its
// index entry. For an event in flight, Take read them already; any other
// is read again.
func (s *fileStore) takenRecord(ev *QueuedEvent) (*fileRecord, error) {
	s.mu.Lock()
	at, ok := s.inFlight[ev.ID]
	s.mu.Unlock()
	if !ok {
		return s.record(ev.ID)
	}
	return &fileRecord{QueuedEvent: QueuedEvent{ID: ev.ID, Key: ev.Key}, IndexAt: at}, nil
}

// putBackOnError puts id back when *err is set; deferred by the methods
// that end a flight.
func (s *fileStore) putBackOnError(id string, err *error) {
	if *err != nil {
		s.putBack(id)
	}
}

// forgetInFlight ends id's flight without putting it back.
func (s *fileStore) forgetInFlight(id string) {
	s.mu.Lock()
	delete(s.inFlight, id)
	s.mu.Unlock()
}

// scan calls fn with each key from prefix up to before upper (nil: the
// end of prefix) while fn returns true.
func (s *fileStore) scan(prefix string, upper []byte, fn func(k []byte) (bool, error)) error {
	if upper == nil {
		upper = []byte(prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1))
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		more, err := fn(it.Key())
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// count counts the keys under prefix.
func (s *fileStore) count(prefix string) (int, error) {
	n := 0
	err := s.scan(prefix, nil, func([]byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// Ack implements QueueStore. keepKey <= 0 forgets the key at once. An
// event whose delivery cannot be recorded is due again as it was.
func (s *fileStore) Ack(ctx context.Context, ev *QueuedEvent, keepKey time.Duration) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closing.RUnlock()
	defer s.putBackOnError(ev.ID, &err)
	rec, err := s.takenRecord(ev)
	if err != nil {
		return fmt.Errorf("queue file: acknowledging event %s: %w", ev.ID, err)
	}
	if rec == nil {
		return fmt.Errorf("queue file: acknowledging event %s: %w", ev.ID, ErrQueueEventNotFound)
	}
	defer s.lockKeys(rec.Key)()
	b := s.db.NewBatch()
	b.Delete(metaKey(rec.ID), nil)
	b.Delete(bodyKey(rec.ID), nil)
	b.Delete(indexKey(rec), nil)
	// While an event exists, its key's k/ entry names it: Accept refuses
	// a key that names an event, and only ended delivered markers are
	// forgotten. So the entry is replaced without being read.
	switch {
	case rec.Key == "":
	case keepKey > 0:
		until := time.Now().Add(keepKey).UnixNano()
		b.Set(keyKey(rec.Key), []byte(deliveredMark+strconv.FormatInt(until, 10)), nil)
		b.Set(timeKey(expiryPrefix, until, rec.Key), nil, nil)
	default:
		b.Delete(keyKey(rec.Key), nil)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("queue file: acknowledging event %s: %w", ev.ID, err)
	}
	s.moved(rec, nil)
	return nil
}

// Retry implements QueueStore.
func (s *fileStore) Retry(ctx context.Context, ev *QueuedEvent, at time.Time) error {
	return s.rewrite(ev, "retrying", func(rec *fileRecord) {
		rec.DeadAt = time.Time{}
		rec.IndexAt = at.UnixNano()
	})
}

// Bury implements QueueStore. A zero ev.DeadAt means now. The body stays,
// for replay.
func (s *fileStore) Bury(ctx context.Context, ev *QueuedEvent) error {
	return s.rewrite(ev, "burying", func(rec *fileRecord) {
		rec.DeadAt = ev.DeadAt
		if rec.DeadAt.IsZero() {
			rec.DeadAt = time.Now()
		}
		rec.IndexAt = rec.DeadAt.UnixNano()
	})
}

// rewrite stores ev's attempt count and outcome, with change applied, and
// ends its flight; if it cannot, the event is due again as it was.
func (s *fileStore) rewrite(ev *QueuedEvent, doing string, change func(*fileRecord)) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closing.RUnlock()
	defer s.putBackOnError(ev.ID, &err)
	old, err := s.record(ev.ID)
	if err != nil {
		return fmt.Errorf("queue file: %s event %s: %w", doing, ev.ID, err)
	}
	if old == nil {
		return fmt.Errorf("queue file: %s event %s: %w", doing, ev.ID, ErrQueueEventNotFound)
	}
	rec := *old
	rec.Attempts, rec.LastStatus, rec.LastError = ev.Attempts, ev.LastStatus, ev.LastError
	change(&rec)
	b := s.db.NewBatch()
	if err := putRecord(b, old, &rec); err != nil {
		b.Close()
		return fmt.Errorf("queue file: %s event %s: %w", doing, ev.ID, err)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("queue file: %s event %s: %w", doing, ev.ID, err)
	}
	s.moved(old, &rec)
	return nil
}

// Replay implements QueueStore.
func (s *fileStore) Replay(ctx context.Context, ids []string, all bool) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.closing.RUnlock()
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	replayed := 0
	err := s.chunks(ids, all, func(recs []*fileRecord) error {
		now := time.Now().UnixNano()
		b := s.db.NewBatch()
		var done []*fileRecord
		for _, old := range recs {
			rec := *old
			rec.Attempts, rec.DeadAt, rec.IndexAt = 0, time.Time{}, now
			if err := putRecord(b, old, &rec); err != nil {
				b.Close()
				return err
			}
			done = append(done, &rec)
		}
		if err := s.commit(b); err != nil {
			return err
		}
		for i, rec := range done {
			s.moved(recs[i], rec)
		}
		replayed += len(done)
		return ctx.Err()
	})
	if err != nil {
		return replayed, fmt.Errorf("queue file: replaying dead letters: %w", err)
	}
	return replayed, nil
}

// chunks calls fn with the dead letters named by ids (or, if all, every
// dead letter), up to fileChunk at a time. Unknown ids, and ids of events
// that are not dead, are skipped. The caller holds adminMu.
func (s *fileStore) chunks(ids []string, all bool, fn func([]*fileRecord) error) error {
	if all {
		ids = nil
		err := s.scan(deadPrefix, nil, func(k []byte) (bool, error) {
			_, id := splitTimeKey(deadPrefix, k)
			ids = append(ids, id)
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	seen := make(map[string]bool, len(ids))
	var recs []*fileRecord
	for i, id := range ids {
		if !seen[id] {
			seen[id] = true
			rec, err := s.record(id)
			if err != nil {
				return err
			}
			if rec != nil && !rec.DeadAt.IsZero() {
				recs = append(recs, rec)
			}
		}
		if len(recs) == fileChunk || (i == len(ids)-1 && len(recs) > 0) {
			if err := fn(recs); err != nil {
				return err
			}
			recs = nil
		}
	}
	return nil
}

// Drop implements QueueStore.
func (s *fileStore) Drop(ctx context.Context, id string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closing.RUnlock()
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	rec, err := s.record(id)
	if err != nil {
		return fmt.Errorf("queue file: dropping event %s: %w", id, err)
	}
	if rec == nil || rec.DeadAt.IsZero() {
		return ErrQueueEventNotFound
	}
	if err := s.deleteDead([]*fileRecord{rec}); err != nil {
		return fmt.Errorf("queue file: dropping event %s: %w", id, err)
	}
	return nil
}

// deleteDead deletes dead letters in one batch. The caller holds adminMu.
func (s *fileStore) deleteDead(recs []*fileRecord) error {
	keys := make([]string, len(recs))
	for i, rec := range recs {
		keys[i] = rec.Key
	}
	defer s.lockKeys(keys...)()
	b := s.db.NewBatch()
	for _, rec := range recs {
		if err := s.deleteEvent(b, rec); err != nil {
			b.Close()
			return err
		}
	}
	if err := s.commit(b); err != nil {
		return err
	}
	for _, rec := range recs {
		s.moved(rec, nil)
	}
	return nil
}

// Dead implements QueueStore. limit <= 0 lists none.
func (s *fileStore) Dead(ctx context.Context, limit int) ([]*QueuedEvent, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.closing.RUnlock()
	if limit <= 0 {
		return nil, nil
	}
	var dead []*QueuedEvent
	err := s.scan(deadPrefix, nil, func(k []byte) (bool, error) {
		_, id := splitTimeKey(deadPrefix, k)
		rec, err := s.record(id)
		if rec == nil || err != nil {
			return err == nil, err
		}
		ev := rec.QueuedEvent
		dead = append(dead, &ev)
		return len(dead) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue file: listing dead letters: %w", err)
	}
	return dead, nil
}

// Expire implements QueueStore. It is the store's maintenance: when enough
// events were deleted since the last time, it also compacts the database,
// which is what gives their disk space back.
func (s *fileStore) Expire(ctx context.Context, now, deadBefore time.Time) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closing.RUnlock()
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if err := s.expireDead(ctx, deadBefore); err != nil {
		return fmt.Errorf("queue file: expiring dead letters: %w", err)
	}
	if err := s.expireKeys(ctx, now); err != nil {
		return fmt.Errorf("queue file: expiring keys: %w", err)
	}
	if err := s.compactIfDue(ctx); err != nil {
		return fmt.Errorf("queue file: compacting: %w", err)
	}
	return nil
}

// expireDead deletes the dead letters dead before deadBefore.
func (s *fileStore) expireDead(ctx context.Context, deadBefore time.Time) error {
	for {
		var ids []string
		err := s.scan(deadPrefix, timeKey(deadPrefix, deadBefore.UnixNano(), ""), func(k []byte) (bool, error) {
			_, id := splitTimeKey(deadPrefix, k)
			ids = append(ids, id)
			return len(ids) < fileChunk, nil
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		var recs []*fileRecord
		for _, id := range ids {
			rec, err := s.record(id)
			if err != nil {
				return err
			}
			if rec != nil {
				recs = append(recs, rec)
			}
		}
		if err := s.deleteDead(recs); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// expireKeys forgets the delivered keys whose keep time ended by now.
func (s *fileStore) expireKeys(ctx context.Context, now time.Time) error {
	for {
		var ends [][]byte
		var keys []string
		err := s.scan(expiryPrefix, timeKey(expiryPrefix, now.UnixNano()+1, ""), func(k []byte) (bool, error) {
			_, key := splitTimeKey(expiryPrefix, k)
			ends = append(ends, bytes.Clone(k))
			keys = append(keys, key)
			return len(keys) < fileChunk, nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		if err := s.forgetKeys(ends, keys, now); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// forgetKeys deletes the t/ entries ends and, where their k/ entry still
// holds a delivered marker that has ended by now, the k/ entry of keys.
// A k/ entry that names an event again (accepted after its marker ended)
// stays.
func (s *fileStore) forgetKeys(ends [][]byte, keys []string, now time.Time) error {
	defer s.lockKeys(keys...)()
	b := s.db.NewBatch()
	for i, key := range keys {
		b.Delete(ends[i], nil)
		v, err := s.get(keyKey(key))
		if err != nil {
			b.Close()
			return err
		}
		if _, ok := strings.CutPrefix(string(v), deliveredMark); !ok {
			continue
		}
		taken, err := s.keyTaken(key, now)
		if err != nil {
			b.Close()
			return err
		}
		if !taken {
			b.Delete(keyKey(key), nil)
		}
	}
	return s.commit(b)
}

// compactIfDue compacts the whole key space when fileCompactAfter events
// were deleted since the last compaction. Deleted keys leave tombstones;
// only compaction drops them and the values they hide from disk.
func (s *fileStore) compactIfDue(ctx context.Context) error {
	s.mu.Lock()
	due := s.deleted >= fileCompactAfter
	s.mu.Unlock()
	if !due {
		return nil
	}
	// Every prefix is one letter and "/"; "a" to "z" holds them all.
	if err := s.db.Compact(ctx, []byte("a"), []byte("z"), false); err != nil {
		return err
	}
	s.mu.Lock()
	s.deleted = 0
	s.mu.Unlock()
	return nil
}

// Stats implements QueueStore. OldestQueued counts events in flight too:
// they still wait for a delivery that succeeds.
func (s *fileStore) Stats(ctx context.Context) (QueueStats, error) {
	if err := s.enter(); err != nil {
		return QueueStats{}, err
	}
	defer s.closing.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := QueueStats{
		Queued:   max(s.waiting-len(s.inFlight), 0),
		InFlight: len(s.inFlight),
		Dead:     s.dead,
	}
	// Ids begin with their receipt time, so the smallest id waiting is
	// the oldest event.
	oldest := ""
	if id, ok := s.due.oldestID(); ok {
		oldest = hex.EncodeToString(id[:])
	}
	for id := range s.inFlight {
		if oldest == "" || id < oldest {
			oldest = id
		}
	}
	if t, ok := idTime(oldest); ok {
		st.OldestQueued = t
	}
	return st, nil
}

// Close implements QueueStore. It waits for running methods; later ones
// fail.
func (s *fileStore) Close() (err error) {
	s.closing.Lock()
	defer s.closing.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	defer func() {
		if f := asPebbleFatal(recover()); f != nil {
			err = fmt.Errorf("queue file: closing: %w", f)
		}
	}()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("queue file: closing: %w", err)
	}
	return nil
}

// pebbleFatal is what pebbleLogger.Fatalf panics with.
type pebbleFatal struct{ msg string }

func (f pebbleFatal) Error() string { return f.msg }

// asPebbleFatal returns r, a recovered panic, if it is a pebbleFatal, and
// panics again with any other.
func asPebbleFatal(r any) error {
	if r == nil {
		return nil
	}
	if f, ok := r.(pebbleFatal); ok {
		return f
	}
	panic(r)
}

// pebbleLogger sends pebble's log to Caddy's. Pebble's routine reports
// (flushes, compactions) are debug level. Fatalf panics instead of exiting
// the process, so that the store's methods can turn a fatal commit error
// into an error; in pebble's own background work the panic still ends the
// process, as pebble's default logger would.
type pebbleLogger struct{ log *zap.SugaredLogger }

func (l pebbleLogger) Infof(format string, args ...any)  { l.log.Debugf(format, args...) }
func (l pebbleLogger) Errorf(format string, args ...any) { l.log.Errorf(format, args...) }
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(pebbleFatal{msg})
}

// Interface guards
var (
	_ QueueBackend = (*FileQueue)(nil)
	_ caddy.Module = (*FileQueue)(nil)
	_ QueueStore   = (*fileStore)(nil)
)
