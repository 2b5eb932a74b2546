package groqwebhook

import (
	"context"
	"fmt"
	"hash/maphash"
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
	shard, k := s.table.locate(key)
	tok := s.table.hashToken(token)
	shard.mu.Lock()
	defer shard.mu.Unlock()
	if e, ok := shard.entries[k]; ok && now < e.expires {
		switch {
		case e.delivered:
			return Claim{State: Delivered}, nil
		case e.token != tok:
			return Claim{State: InProgress, RetryAfter: time.Duration(e.expires - now)}, nil
		}
	}
	shard.entries[k] = memoryEntry{expires: now + int64(lease), token: tok}
	return Claim{State: Claimed}, nil
}

// Commit implements Store.
func (s *MemoryStore) Commit(_ context.Context, key string, ttl time.Duration) error {
	expires := s.now().UnixNano() + int64(ttl)
	shard, k := s.table.locate(key)
	shard.mu.Lock()
	defer shard.mu.Unlock()
	shard.entries[k] = memoryEntry{expires: expires, delivered: true}
	shard.remember(k, expires)
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, key, token string) error {
	shard, k := s.table.locate(key)
	tok := s.table.hashToken(token)
	shard.mu.Lock()
	defer shard.mu.Unlock()
	if e, ok := shard.entries[k]; ok && !e.delivered && e.token == tok {
		delete(shard.entries, k)
	}
	return nil
}

// memoryTable is the state behind the memory stores of one size. Keys and
// tokens are kept as 128- and 64-bit hashes under seeds of this process, so
// that nothing in the table holds a pointer: the garbage collector never
// scans it, however many ids it remembers.
type memoryTable struct {
	seeds  [3]maphash.Seed // two for keys, one for tokens
	shards []memoryShard
}

// memoryShard is one lock's worth of the table. Its deliveries are also
// queued in a ring, oldest first; when the ring is full, the oldest is
// forgotten. Claims are not queued, so they are never forgotten early.
type memoryShard struct {
	mu      sync.Mutex
	entries map[keyHash]memoryEntry
	ring    []ringSlot
	next    int // where the next delivery goes, over the oldest
	queued  int // slots in use
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

// shardTarget is the number of deliveries a shard aims to hold: shards
// are added while each would still hold that many, up to maxShards.
const (
	shardTarget = 1024
	maxShards   = 64
)

func newMemoryTable(maxEntries int) *memoryTable {
	shards := 1
	for shards < maxShards && maxEntries/(2*shards) >= shardTarget {
		shards *= 2
	}
	t := &memoryTable{shards: make([]memoryShard, shards)}
	for i := range t.seeds {
		t.seeds[i] = maphash.MakeSeed()
	}
	size := (maxEntries + shards - 1) / shards
	for i := range t.shards {
		t.shards[i].entries = make(map[keyHash]memoryEntry)
		t.shards[i].ring = make([]ringSlot, size)
	}
	return t
}

// Destruct implements caddy.Destructor; a table holds no goroutines or files.
func (*memoryTable) Destruct() error { return nil }

func (t *memoryTable) locate(key string) (*memoryShard, keyHash) {
	k := keyHash{maphash.String(t.seeds[0], key), maphash.String(t.seeds[1], key)}
	return &t.shards[k[0]%uint64(len(t.shards))], k
}

// hashToken never returns 0, which would match a delivery's empty token.
func (t *memoryTable) hashToken(token string) uint64 {
	return maphash.String(t.seeds[2], token) | 1
}

// remember queues a delivery, forgetting the oldest one if the ring is full.
func (s *memoryShard) remember(k keyHash, expires int64) {
	if s.queued == len(s.ring) {
		old := s.ring[s.next]
		if e, ok := s.entries[old.key]; ok && e.delivered && e.expires == old.expires {
			delete(s.entries, old.key)
		}
	} else {
		s.queued++
	}
	s.ring[s.next] = ringSlot{key: k, expires: expires}
	s.next = (s.next + 1) % len(s.ring)
}

// counts tells how many entries and deliveries the table holds.
func (t *memoryTable) counts() (entries, delivered int) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, e := range s.entries {
			entries++
			if e.delivered {
				delivered++
			}
		}
		s.mu.Unlock()
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
