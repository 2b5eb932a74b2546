package groqwebhook

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// DefaultMaxEntries bounds the memory store by default.
const DefaultMaxEntries = 100_000

// memoryTables holds the memory stores' tables across config reloads, so a
// reload forgets neither deliveries nor claims in flight.
var memoryTables = caddy.NewUsagePool()

// MemoryStore keeps de-duplication state in this Caddy process. It is
// bounded: when full it forgets the oldest deliveries, never claims in
// flight. Each Caddy instance has its own; use the redis store to share
// state.
type MemoryStore struct {
	// The most delivered ids remembered. Default: 100000.
	MaxEntries int `json:"max_entries,omitempty"`

	poolKey string
	table   *memoryTable
	now     func() time.Time
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groq_webhook.dedupe.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision takes the process's table for this size, or makes it.
func (s *MemoryStore) Provision(caddy.Context) error {
	if s.MaxEntries == 0 {
		s.MaxEntries = DefaultMaxEntries
	}
	if s.MaxEntries < 0 {
		return fmt.Errorf("dedupe max_entries must be positive, got %d", s.MaxEntries)
	}
	s.now = time.Now
	s.poolKey = "memory:" + strconv.Itoa(s.MaxEntries)
	val, _, err := memoryTables.LoadOrNew(s.poolKey, func() (caddy.Destructor, error) {
		return newMemoryTable(s.MaxEntries), nil
	})
	if err != nil {
		return err
	}
	s.table = val.(*memoryTable)
	return nil
}

// Cleanup lets go of the table; the last config to use it drops it.
func (s *MemoryStore) Cleanup() error {
	_, err := memoryTables.Delete(s.poolKey)
	return err
}

// Claim implements Store.
func (s *MemoryStore) Claim(_ context.Context, key, token string, lease time.Duration) (Claim, error) {
	now := s.now().UnixNano()
	t := s.table
	k, tok := t.hashKey(key), t.hashToken(token)
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[k]; ok && now < e.expires {
		switch {
		case e.delivered:
			return Claim{State: Delivered}, nil
		case e.token != tok:
			return Claim{State: InProgress, RetryAfter: time.Duration(e.expires - now)}, nil
		}
	}
	t.entries[k] = memoryEntry{expires: expiry(now, lease), token: tok}
	return Claim{State: Claimed}, nil
}

// Commit implements Store.
func (s *MemoryStore) Commit(_ context.Context, key string, ttl time.Duration) error {
	expires := expiry(s.now().UnixNano(), ttl)
	t := s.table
	k := t.hashKey(key)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries[k] = memoryEntry{expires: expires, delivered: true}
	t.remember(k, expires)
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, key, token string) error {
	t := s.table
	k, tok := t.hashKey(key), t.hashToken(token)
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[k]; ok && !e.delivered && e.token == tok {
		delete(t.entries, k)
	}
	return nil
}

// expiry is now plus d in unix nanoseconds, saturating instead of wrapping
// for a duration that would pass the year 2262.
func expiry(now int64, d time.Duration) int64 {
	if int64(d) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(d)
}

// memoryTable is the state behind the memory stores of one size. Keys and
// tokens are kept as 128- and 64-bit hashes under seeds of this process, so
// that nothing in the table holds a pointer: the garbage collector never
// scans it, however many ids it remembers. Deliveries are also queued in a
// ring, oldest first; once it holds maxEntries, the oldest is forgotten.
// Claims are not queued, so they are never forgotten early.
type memoryTable struct {
	seeds      [3]maphash.Seed // two for keys, one for tokens
	maxEntries int

	mu      sync.Mutex
	entries map[keyHash]memoryEntry
	ring    []ringSlot // grows to maxEntries, then wraps
	next    int        // once full, where the next delivery goes, over the oldest
}

type keyHash [2]uint64

// memoryEntry is a claim (a token's hash) or a delivery, until expires
// (unix nanoseconds).
type memoryEntry struct {
	expires   int64
	token     uint64
	delivered bool
}

// ringSlot names a delivery by its key and expiry: a slot whose key was
// delivered again since is stale and forgets nothing.
type ringSlot struct {
	key     keyHash
	expires int64
}

func newMemoryTable(maxEntries int) *memoryTable {
	t := &memoryTable{maxEntries: maxEntries, entries: make(map[keyHash]memoryEntry)}
	for i := range t.seeds {
		t.seeds[i] = maphash.MakeSeed()
	}
	return t
}

// Destruct implements caddy.Destructor; a table holds no goroutines or files.
func (*memoryTable) Destruct() error { return nil }

func (t *memoryTable) hashKey(key string) keyHash {
	return keyHash{maphash.String(t.seeds[0], key), maphash.String(t.seeds[1], key)}
}

// hashToken never returns 0, the token of a delivery.
func (t *memoryTable) hashToken(token string) uint64 {
	return maphash.String(t.seeds[2], token) | 1
}

// remember queues a delivery, forgetting the oldest one if the ring is full.
func (t *memoryTable) remember(k keyHash, expires int64) {
	slot := ringSlot{key: k, expires: expires}
	if len(t.ring) < t.maxEntries {
		t.ring = append(t.ring, slot)
		return
	}
	old := t.ring[t.next]
	if e, ok := t.entries[old.key]; ok && e.delivered && e.expires == old.expires {
		delete(t.entries, old.key)
	}
	t.ring[t.next] = slot
	t.next = (t.next + 1) % len(t.ring)
}

// counts tells how many entries and deliveries the table holds.
func (t *memoryTable) counts() (entries, delivered int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.entries {
		entries++
		if e.delivered {
			delivered++
		}
	}
	return entries, delivered
}

// Interface guards
var (
	_ Store              = (*MemoryStore)(nil)
	_ caddy.Provisioner  = (*MemoryStore)(nil)
	_ caddy.CleanerUpper = (*MemoryStore)(nil)
	_ caddy.Destructor   = (*memoryTable)(nil)
)
