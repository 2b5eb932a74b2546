package groqwebhook

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// BenchmarkMemoryStore measures one delivery's store work: a claim and a
// commit of a new event id, with the store full (as it is after
// max_entries events), so that every commit also evicts.
func BenchmarkMemoryStore(b *testing.B) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	s := &MemoryStore{MaxEntries: 10_000}
	if err := s.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Cleanup()
	keys := make([]string, s.MaxEntries+b.N)
	for i := range keys {
		keys[i] = "groq_webhook:event:evt_" + strconv.Itoa(i)
	}
	ttl, lease := time.Duration(DefaultDedupeTTL), time.Duration(DefaultDedupeLease)
	for _, key := range keys[:s.MaxEntries] {
		s.Claim(ctx, key, "token", lease)
		s.Commit(ctx, key, ttl)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, key := range keys[s.MaxEntries:] {
		if c, _ := s.Claim(ctx, key, "token", lease); c.State != Claimed {
			b.Fatalf("claim of %s: %v", key, c.State)
		}
		s.Commit(ctx, key, ttl)
	}
}
