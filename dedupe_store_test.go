package groqwebhook

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// storeTestLease is the lease of claims that must still be held when the
// test looks at them again.
const storeTestLease = 10 * time.Second

// newTestMemoryStore provisions a memory store and cleans it up when the
// test ends.
func newTestMemoryStore(t *testing.T, maxEntries int) *MemoryStore {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	s := &MemoryStore{MaxEntries: maxEntries}
	if err := s.Provision(ctx); err != nil {
		cancel()
		t.Fatalf("provisioning memory store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Cleanup(); err != nil {
			t.Errorf("cleaning up memory store: %v", err)
		}
		cancel()
	})
	return s
}

// newTestRedisStore provisions a redis store for addr and cleans it up when
// the test ends.
func newTestRedisStore(t testing.TB, addr string, timeout time.Duration) *RedisStore {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	s := &RedisStore{RedisConnection: RedisConnection{Addresses: []string{addr}, Timeout: caddy.Duration(timeout)}}
	if err := s.Provision(ctx); err != nil {
		cancel()
		t.Fatalf("provisioning redis store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Cleanup(); err != nil {
			t.Errorf("cleaning up redis store: %v", err)
		}
		cancel()
	})
	return s
}

// storeKey is a key unique to the running (sub)test.
func storeKey(t *testing.T, suffix string) string {
	return DefaultDedupeKeyPrefix + "test:" + t.Name() + ":" + suffix
}

// stateName names a claim state in failure messages.
func stateName(s ClaimState) string {
	switch s {
	case Claimed:
		return "Claimed"
	case Delivered:
		return "Delivered"
	case InProgress:
		return "InProgress"
	}
	return "ClaimState(" + strconv.Itoa(int(s)) + ")"
}

func mustClaim(t *testing.T, s Store, key, token string, lease time.Duration) Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), key, token, lease)
	if err != nil {
		t.Fatalf("Claim(%q, %q, %v): %v", key, token, lease, err)
	}
	return c
}

func wantClaim(t *testing.T, s Store, key, token string, lease time.Duration, want ClaimState) Claim {
	t.Helper()
	c := mustClaim(t, s, key, token, lease)
	if c.State != want {
		t.Fatalf("Claim(%q, %q) = %s (retry after %v), want %s", key, token, stateName(c.State), c.RetryAfter, stateName(want))
	}
	return c
}

func mustCommit(t *testing.T, s Store, key string, ttl time.Duration) {
	t.Helper()
	if err := s.Commit(context.Background(), key, ttl); err != nil {
		t.Fatalf("Commit(%q, %v): %v", key, ttl, err)
	}
}

func mustRelease(t *testing.T, s Store, key, token string) {
	t.Helper()
	if err := s.Release(context.Background(), key, token); err != nil {
		t.Fatalf("Release(%q, %q): %v", key, token, err)
	}
}

// testStoreContract checks what every Store must do.
func testStoreContract(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("ClaimThenInProgress", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		c := wantClaim(t, s, key, "b", storeTestLease, InProgress)
		if c.RetryAfter <= 0 || c.RetryAfter > storeTestLease {
			t.Errorf("RetryAfter = %v, want in (0, %v]", c.RetryAfter, storeTestLease)
		}
		// A claim repeated with the holder's token (a client library's
		// retry after a lost reply) is the holder's: Claimed, not blocked.
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		wantClaim(t, s, key, "b", storeTestLease, InProgress)
	})

	t.Run("CommitThenDelivered", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		mustCommit(t, s, key, time.Hour)
		wantClaim(t, s, key, "b", storeTestLease, Delivered)
		wantClaim(t, s, key, "a", storeTestLease, Delivered)
	})

	t.Run("CommitWithoutClaim", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		mustCommit(t, s, key, time.Hour)
		wantClaim(t, s, key, "b", storeTestLease, Delivered)
	})

	t.Run("ReleaseLetsRetryThrough", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		mustRelease(t, s, key, "a")
		wantClaim(t, s, key, "b", storeTestLease, Claimed)
		wantClaim(t, s, key, "c", storeTestLease, InProgress)
	})

	t.Run("ReleaseWithWrongTokenKeepsClaim", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		mustRelease(t, s, key, "b")
		wantClaim(t, s, key, "c", storeTestLease, InProgress)
	})

	t.Run("ReleaseOfAbsentKey", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		mustRelease(t, s, key, "a")
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
	})

	t.Run("ReleaseAfterCommitKeepsDelivered", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		mustCommit(t, s, key, time.Hour)
		mustRelease(t, s, key, "a")
		wantClaim(t, s, key, "b", storeTestLease, Delivered)
	})

	// The timed subtests leave a wide margin on each side, for a loaded
	// machine, and run in parallel so the sleeps overlap.
	t.Run("DeliveredExpires", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		mustCommit(t, s, key, time.Second)
		wantClaim(t, s, key, "b", storeTestLease, Delivered)
		time.Sleep(1500 * time.Millisecond)
		wantClaim(t, s, key, "c", storeTestLease, Claimed)
	})

	t.Run("LeaseExpires", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", time.Second, Claimed)
		c := wantClaim(t, s, key, "b", storeTestLease, InProgress)
		if c.RetryAfter <= 0 || c.RetryAfter > time.Second {
			t.Errorf("RetryAfter = %v, want in (0, 1s]", c.RetryAfter)
		}
		time.Sleep(1500 * time.Millisecond)
		wantClaim(t, s, key, "c", storeTestLease, Claimed)
	})

	t.Run("NotExpiredEarly", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		claimed, delivered := storeKey(t, "claimed"), storeKey(t, "delivered")
		wantClaim(t, s, claimed, "a", 4*time.Second, Claimed)
		mustCommit(t, s, delivered, 4*time.Second)
		time.Sleep(1500 * time.Millisecond)
		c := wantClaim(t, s, claimed, "b", storeTestLease, InProgress)
		if c.RetryAfter <= 0 || c.RetryAfter > 2500*time.Millisecond {
			t.Errorf("RetryAfter = %v 1.5s into a 4s lease, want in (0, 2.5s]", c.RetryAfter)
		}
		wantClaim(t, s, delivered, "b", storeTestLease, Delivered)
	})

	t.Run("StaleReleaseKeepsNewClaim", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		key := storeKey(t, "k")
		wantClaim(t, s, key, "a", time.Second, Claimed)
		time.Sleep(1500 * time.Millisecond)
		wantClaim(t, s, key, "b", storeTestLease, Claimed)
		mustRelease(t, s, key, "a") // a's delivery ends late, after its lease
		wantClaim(t, s, key, "c", storeTestLease, InProgress)
	})

	t.Run("ConcurrentClaims", func(t *testing.T) {
		s := newStore(t)
		key := storeKey(t, "k")
		const n = 100
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]Claim, n)
			errs    = make([]error, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = s.Claim(context.Background(), key, "token-"+strconv.Itoa(i), storeTestLease)
			}()
		}
		close(start)
		wg.Wait()
		counts := map[ClaimState]int{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("claim %d: %v", i, errs[i])
			}
			counts[results[i].State]++
		}
		if counts[Claimed] != 1 || counts[InProgress] != n-1 {
			t.Errorf("of %d concurrent claims: %d Claimed, %d InProgress, %d Delivered; want 1, %d, 0",
				n, counts[Claimed], counts[InProgress], counts[Delivered], n-1)
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		s := newStore(t)
		k1, k2, k3 := storeKey(t, "1"), storeKey(t, "2"), storeKey(t, "3")
		wantClaim(t, s, k1, "a", storeTestLease, Claimed)
		wantClaim(t, s, k2, "a", storeTestLease, Claimed)
		mustCommit(t, s, k1, time.Hour)
		wantClaim(t, s, k1, "b", storeTestLease, Delivered)
		wantClaim(t, s, k2, "b", storeTestLease, InProgress)
		wantClaim(t, s, k3, "b", storeTestLease, Claimed)
		mustRelease(t, s, k2, "a")
		wantClaim(t, s, k1, "c", storeTestLease, Delivered)
		wantClaim(t, s, k2, "c", storeTestLease, Claimed)
		wantClaim(t, s, k3, "c", storeTestLease, InProgress)
	})
}

func TestMemoryStoreContract(t *testing.T) {
	testStoreContract(t, func(t *testing.T) Store {
		return newTestMemoryStore(t, 0)
	})
}

func TestRedisStoreContract(t *testing.T) {
	r := startRedis(t)
	testStoreContract(t, func(t *testing.T) Store {
		return newTestRedisStore(t, r.addr, 0)
	})
}

func TestRedisStoreKeys(t *testing.T) {
	r := startRedis(t)
	s := newTestRedisStore(t, r.addr, 0)
	rc := r.client()
	ctx := context.Background()
	const (
		key   = "groq_webhook:event:evt_1"
		lease = 30 * time.Second
		ttl   = time.Hour
	)
	token := newToken()

	check := func(state string, limit time.Duration) {
		t.Helper()
		keys, err := rc.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0] != key {
			t.Errorf("%s: redis holds keys %q, want exactly [%q]", state, keys, key)
		}
		val, err := rc.Get(ctx, key).Result()
		if err != nil {
			t.Fatalf("%s: GET %s: %v", state, key, err)
		}
		if len(val) > 64 {
			t.Errorf("%s: value is %d bytes, want <= 64: %q", state, len(val), val)
		}
		pttl, err := rc.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("%s: PTTL %s: %v", state, key, err)
		}
		if pttl <= 0 || pttl > limit {
			t.Errorf("%s: PTTL = %v, want in (0, %v]", state, pttl, limit)
		}
	}

	wantClaim(t, s, key, token, lease, Claimed)
	check("claimed", lease)
	mustCommit(t, s, key, ttl)
	check("delivered", ttl)
	wantClaim(t, s, key, newToken(), lease, Delivered)
	check("delivered, claimed again", ttl)
}

func TestRedisStoreDown(t *testing.T) {
	r := startRedis(t)
	s := newTestRedisStore(t, r.addr, 200*time.Millisecond)
	ctx := context.Background()

	// A connection in the pool before the server goes away.
	wantClaim(t, s, storeKey(t, "before"), "a", storeTestLease, Claimed)

	r.stop()
	for i := range 3 {
		start := time.Now()
		_, err := s.Claim(ctx, storeKey(t, "down"), "a", storeTestLease)
		took := time.Since(start)
		if err == nil {
			t.Errorf("claim %d with redis down: no error", i)
		}
		// go-redis dials up to five times, 100ms apart, and retries once.
		if took > 2*time.Second {
			t.Errorf("claim %d with redis down took %v, want well under 2s", i, took)
		}
		t.Logf("claim %d with redis down: %v after %v", i, err, took)
	}
	start := time.Now()
	if err := s.Commit(ctx, storeKey(t, "down"), time.Hour); err == nil {
		t.Error("commit with redis down: no error")
	}
	if err := s.Release(ctx, storeKey(t, "down"), "a"); err == nil {
		t.Error("release with redis down: no error")
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("commit and release with redis down took %v", took)
	}

	r.start()
	wantClaim(t, s, storeKey(t, "after"), "a", storeTestLease, Claimed)
	wantClaim(t, s, storeKey(t, "after"), "b", storeTestLease, InProgress)
	mustCommit(t, s, storeKey(t, "after"), time.Hour)
	wantClaim(t, s, storeKey(t, "after"), "b", storeTestLease, Delivered)
}

// TestRedisStoreHung: a redis-server that stops answering (SIGSTOP), with
// the claims and commits of 1,000 requests waiting in the pipeliner at
// once, fails every call within a bound set by timeout, not by how many
// wait, and the store works again once Redis does.
func TestRedisStoreHung(t *testing.T) {
	r := startRedis(t)
	const timeout = 200 * time.Millisecond
	s := newTestRedisStore(t, r.addr, timeout)
	ctx := context.Background()
	wantClaim(t, s, storeKey(t, "before"), "a", storeTestLease, Claimed)

	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = r.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	const calls = 1000
	took := make([]time.Duration, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			start := time.Now()
			key := storeKey(t, "hung-"+strconv.Itoa(i))
			if i%2 == 0 {
				_, errs[i] = s.Claim(ctx, key, "a", storeTestLease)
			} else {
				errs[i] = s.Commit(ctx, key, time.Hour)
			}
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	slowest := slices.Max(took)
	t.Logf("%d calls with redis stopped: slowest failed after %v (timeout %v)", calls, slowest, timeout)
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d with redis stopped: no error", i)
		}
	}
	// A call waits for the batch ahead of it, then its own; each may time
	// out reading, then once more on a new connection (one retry), whose
	// handshake times out too. Measured: about 8 timeouts, however many
	// calls wait, since the pipeliner sends up to 300 at once.
	if limit := 12 * timeout; slowest > limit {
		t.Errorf("slowest call with redis stopped took %v, want at most %v", slowest, limit)
	}

	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := s.Claim(ctx, storeKey(t, "after"), "a", storeTestLease)
		if err == nil {
			if c.State != Claimed {
				t.Fatalf("claim after redis resumed: %s", stateName(c.State))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover within 5s of redis resuming: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustCommit(t, s, storeKey(t, "after"), time.Hour)
	wantClaim(t, s, storeKey(t, "after"), "b", storeTestLease, Delivered)
}

func TestMemoryStoreEvictsDeliveredNotClaims(t *testing.T) {
	const maxEntries = 100
	s := newTestMemoryStore(t, maxEntries)
	claims := make([]string, 50)
	for i := range claims {
		claims[i] = storeKey(t, "claim:"+strconv.Itoa(i))
		wantClaim(t, s, claims[i], "a", storeTestLease, Claimed)
	}
	for i := range 1000 {
		mustCommit(t, s, storeKey(t, "delivered:"+strconv.Itoa(i)), time.Hour)
	}
	for _, key := range claims {
		c := mustClaim(t, s, key, "b", storeTestLease)
		if c.State != InProgress {
			t.Errorf("in-flight claim %q after 1000 deliveries: %s, want InProgress", key, stateName(c.State))
		}
	}
	wantClaim(t, s, storeKey(t, "delivered:999"), "c", storeTestLease, Delivered)
	wantClaim(t, s, storeKey(t, "delivered:900"), "c", storeTestLease, Delivered)
	wantClaim(t, s, storeKey(t, "delivered:0"), "c", storeTestLease, Claimed) // the oldest is forgotten
	mustRelease(t, s, storeKey(t, "delivered:0"), "c")
	entries, delivered := s.table.counts()
	if delivered != maxEntries {
		t.Errorf("delivered entries = %d, want %d", delivered, maxEntries)
	}
	if entries != maxEntries+len(claims) {
		t.Errorf("entries = %d, want %d", entries, maxEntries+len(claims))
	}
}

// TestMemoryStoreForgetsOnlyWhenFull: it remembers exactly max_entries
// deliveries, and forgets the oldest first.
func TestMemoryStoreForgetsOnlyWhenFull(t *testing.T) {
	const maxEntries = 20_000
	s := newTestMemoryStore(t, maxEntries+1) // a pool entry of this test's own
	s.table.maxEntries = maxEntries
	key := func(i int) string { return storeKey(t, "d:"+strconv.Itoa(i)) }
	for i := range maxEntries {
		mustCommit(t, s, key(i), time.Hour)
	}
	if _, delivered := s.table.counts(); delivered != maxEntries {
		t.Fatalf("%d of %d deliveries remembered", delivered, maxEntries)
	}
	for i := range maxEntries / 2 {
		mustCommit(t, s, key(maxEntries+i), time.Hour)
	}
	for i := range maxEntries + maxEntries/2 {
		want := Delivered
		if i < maxEntries/2 {
			want = Claimed
		}
		if c := mustClaim(t, s, key(i), "b", storeTestLease); c.State != want {
			t.Fatalf("delivery %d of %d: %s, want %s", i, maxEntries+maxEntries/2, stateName(c.State), stateName(want))
		}
	}
}

// TestMemoryStoreLongDurations: a ttl or lease too long to add to the
// clock in nanoseconds lasts for ever, rather than wrapping into the past.
func TestMemoryStoreLongDurations(t *testing.T) {
	s := newTestMemoryStore(t, 100)
	forever := time.Duration(math.MaxInt64)
	wantClaim(t, s, storeKey(t, "ttl"), "a", storeTestLease, Claimed)
	mustCommit(t, s, storeKey(t, "ttl"), 100_000*24*time.Hour)
	wantClaim(t, s, storeKey(t, "ttl"), "b", storeTestLease, Delivered)
	wantClaim(t, s, storeKey(t, "lease"), "a", forever, Claimed)
	wantClaim(t, s, storeKey(t, "lease"), "b", storeTestLease, InProgress)
}

// TestMemoryStoreRedeliveredKeepsNewest: a key delivered again is queued
// again, and its older place in the queue forgets nothing.
func TestMemoryStoreRedeliveredKeepsNewest(t *testing.T) {
	const maxEntries = 10
	s := newTestMemoryStore(t, maxEntries)
	key := storeKey(t, "again")
	mustCommit(t, s, key, time.Hour)
	for i := range maxEntries - 1 {
		mustCommit(t, s, storeKey(t, "other:"+strconv.Itoa(i)), time.Hour)
	}
	mustCommit(t, s, key, time.Hour) // its first slot is now the oldest, and reused
	for i := range maxEntries - 2 {
		mustCommit(t, s, storeKey(t, "more:"+strconv.Itoa(i)), time.Hour)
	}
	wantClaim(t, s, key, "b", storeTestLease, Delivered)
}

func TestMemoryStoreSurvivesReload(t *testing.T) {
	const maxEntries = 4243 // a pool entry of this test's own
	provision := func() (*MemoryStore, context.CancelFunc) {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		s := &MemoryStore{MaxEntries: maxEntries}
		if err := s.Provision(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		return s, cancel
	}
	key, inflight := storeKey(t, "k"), storeKey(t, "inflight")

	a, cancelA := provision()
	wantClaim(t, a, key, "a", storeTestLease, Claimed)
	mustCommit(t, a, key, time.Hour)
	wantClaim(t, a, inflight, "a", storeTestLease, Claimed)

	// A reload provisions the new config before cleaning up the old one.
	b, cancelB := provision()
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	cancelA()
	wantClaim(t, b, key, "b", storeTestLease, Delivered)
	wantClaim(t, b, inflight, "b", storeTestLease, InProgress)
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	cancelB()

	c, cancelC := provision()
	defer func() {
		if err := c.Cleanup(); err != nil {
			t.Error(err)
		}
		cancelC()
	}()
	wantClaim(t, c, key, "c", storeTestLease, Claimed)
	wantClaim(t, c, inflight, "c", storeTestLease, Claimed)
}

func TestStoresLeaveNoGoroutines(t *testing.T) {
	r := startRedis(t) // its process is not ours to count
	use := func(s Store, name string) {
		key := DefaultDedupeKeyPrefix + "test:" + t.Name() + ":" + name
		wantClaim(t, s, key, "a", storeTestLease, Claimed)
		mustCommit(t, s, key, time.Hour)
		wantClaim(t, s, key, "b", storeTestLease, Delivered)
		wantClaim(t, s, key+":2", "a", storeTestLease, Claimed)
		mustRelease(t, s, key+":2", "a")
	}

	deadAddr := "127.0.0.1:" + strconv.Itoa(freePort(t)) // nothing listens there

	runtime.GC()
	before := runtime.NumGoroutine()

	for i := range 3 {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		// A size of its own, so this test makes the cache and stops it.
		m := &MemoryStore{MaxEntries: 7919 + i}
		if err := m.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		use(m, fmt.Sprintf("memory%d", i))

		rs := &RedisStore{RedisConnection: RedisConnection{Addresses: []string{r.addr}}}
		if err := rs.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		use(rs, fmt.Sprintf("redis%d", i))

		// A server that is down: the failed dials must stop too.
		down := &RedisStore{RedisConnection: RedisConnection{Addresses: []string{deadAddr}, Timeout: caddy.Duration(200 * time.Millisecond)}}
		if err := down.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := down.Claim(context.Background(), storeKey(t, "down"), "a", storeTestLease); err == nil {
			t.Error("claim with redis down: no error")
		}

		if err := m.Cleanup(); err != nil {
			t.Error(err)
		}
		if err := rs.Cleanup(); err != nil {
			t.Error(err)
		}
		if err := down.Cleanup(); err != nil {
			t.Error(err)
		}
		cancel()
	}

	deadline := time.Now().Add(2 * time.Second)
	after := runtime.NumGoroutine()
	for after > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before, %d 2s after cleanup:\n%s", before, after, buf)
	}
}
