package groqwebhook

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/maypok86/otter/v2"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// DefaultMaxEntries bounds the memory store by default.
const DefaultMaxEntries = 100_000

// memoryCaches holds the memory stores' caches across config reloads, so a
// reload forgets neither deliveries nor claims in flight.
var memoryCaches = caddy.NewUsagePool()

// MemoryStore keeps de-duplication state in this Caddy process. It is
// bounded: when full it evicts delivered ids, never claims in flight. Each
// Caddy instance has its own; use the redis store to share state.
type MemoryStore struct {
	// The most delivered ids remembered. Default: 100000.
	MaxEntries int `json:"max_entries,omitempty"`

	poolKey string
	cache   *otter.Cache[string, memoryEntry]
	now     func() time.Time
}

// memoryEntry is a claim (token set) or a delivery, until expires.
type memoryEntry struct {
	token     string
	delivered bool
	expires   time.Time
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groq_webhook.dedupe.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision takes the process's cache for this size, or makes it.
func (s *MemoryStore) Provision(caddy.Context) error {
	if s.MaxEntries == 0 {
		s.MaxEntries = DefaultMaxEntries
	}
	if s.MaxEntries < 0 {
		return fmt.Errorf("dedupe max_entries must be positive, got %d", s.MaxEntries)
	}
	s.now = time.Now
	s.poolKey = "memory:" + strconv.Itoa(s.MaxEntries)
	val, _, err := memoryCaches.LoadOrNew(s.poolKey, func() (caddy.Destructor, error) {
		return newMemoryCache(s.MaxEntries, s.now)
	})
	if err != nil {
		return err
	}
	s.cache = val.(memoryCache).Cache
	return nil
}

// memoryCache lets a cache live in a caddy.UsagePool.
type memoryCache struct {
	*otter.Cache[string, memoryEntry]
}

func (c memoryCache) Destruct() error {
	c.StopAllGoroutines()
	return nil
}

func newMemoryCache(maxEntries int, now func() time.Time) (memoryCache, error) {
	cache, err := otter.New(&otter.Options[string, memoryEntry]{
		MaximumWeight: uint64(maxEntries),
		// Claims weigh nothing, so size-based eviction never takes them.
		Weigher: func(_ string, e memoryEntry) uint32 {
			if e.delivered {
				return 1
			}
			return 0
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memoryEntry]) time.Duration {
			return e.Value.expires.Sub(now())
		}),
	})
	return memoryCache{cache}, err
}

// Cleanup lets go of the cache; the last config to use it stops it.
func (s *MemoryStore) Cleanup() error {
	_, err := memoryCaches.Delete(s.poolKey)
	return err
}

// Claim implements Store.
func (s *MemoryStore) Claim(_ context.Context, key, token string, lease time.Duration) (Claim, error) {
	now := s.now()
	var claim Claim
	s.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		switch {
		case found && now.Before(old.expires) && old.delivered:
			claim = Claim{State: Delivered}
			return old, otter.CancelOp
		case found && now.Before(old.expires) && old.token != token:
			claim = Claim{State: InProgress, RetryAfter: old.expires.Sub(now)}
			return old, otter.CancelOp
		}
		claim = Claim{State: Claimed}
		return memoryEntry{token: token, expires: now.Add(lease)}, otter.WriteOp
	})
	return claim, nil
}

// Commit implements Store.
func (s *MemoryStore) Commit(_ context.Context, key string, ttl time.Duration) error {
	s.cache.Set(key, memoryEntry{delivered: true, expires: s.now().Add(ttl)})
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, key, token string) error {
	s.cache.ComputeIfPresent(key, func(old memoryEntry) (memoryEntry, otter.ComputeOp) {
		if old.delivered || old.token != token {
			return old, otter.CancelOp
		}
		return old, otter.InvalidateOp
	})
	return nil
}

// Interface guards
var (
	_ Store              = (*MemoryStore)(nil)
	_ caddy.Provisioner  = (*MemoryStore)(nil)
	_ caddy.CleanerUpper = (*MemoryStore)(nil)
	_ caddy.Destructor   = memoryCache{}
)
