package groqwebhook

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
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

// BenchmarkRedisStore measures one delivery's store work on a real
// redis-server: a claim and a commit of a new event id, from 64 requests
// at once (as bench/e2e.sh sends), batched by the pipeliner. The time per
// operation includes redis-server's, which runs on the same machine;
// client-cpu-ns/op is this process's own CPU (user and system) per claim
// and commit, the cost a Caddy instance pays.
//
//	go test -run '^$' -bench BenchmarkRedisStore -benchmem -count 6 .
func BenchmarkRedisStore(b *testing.B) {
	r := startRedis(b)
	s := newTestRedisStore(b, r.addr, time.Second)
	ttl, lease := time.Duration(DefaultDedupeTTL), time.Duration(DefaultDedupeLease)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 64 requests on 2 CPUs, as wrk sends in bench/e2e.sh
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			key := DefaultDedupeKeyPrefix + "bench:" + strconv.FormatInt(next.Add(1), 10)
			c, err := s.Claim(ctx, key, "token", lease)
			if err != nil || c.State != Claimed {
				b.Fatalf("claim of %s: %v, %v", key, stateName(c.State), err)
			}
			if err := s.Commit(ctx, key, ttl); err != nil {
				b.Fatalf("commit of %s: %v", key, err)
			}
		}
	})
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "client-cpu-ns/op")
}

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
