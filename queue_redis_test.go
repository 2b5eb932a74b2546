package groqwebhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// openTestRedisQueue opens the Redis queue store of the queue name at
// addrs, as an instance of Caddy would, with the given takeover time.
func openTestRedisQueue(t testing.TB, addrs []string, name string, takeover time.Duration) *redisQueueStore {
	t.Helper()
	// The store takes any takeover time; Provision refuses those below
	// attempt_timeout + timeout + 5s.
	conn := RedisConnection{Addresses: addrs, Timeout: caddy.Duration(2 * time.Second)}
	opts, err := conn.provision("queue redis")
	if err != nil {
		t.Fatal(err)
	}
	s := newRedisQueueStore(redis.NewUniversalClient(opts), DefaultRedisQueueKeyPrefix, name, 2*time.Second, takeover, 0)
	if err := s.createGroup(context.Background()); err != nil {
		s.client.Close()
		t.Fatalf("opening redis queue %q: %v", name, err)
	}
	return s
}

// queueNameFor makes a queue name of a test directory: each test gets an
// empty queue, and the same directory names the same queue again.
func queueNameFor(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "test-" + hex.EncodeToString(sum[:8])
}

// testRedisQueueStore runs the store contract on the Redis queue at addrs.
func testRedisQueueStore(t *testing.T, addrs []string) {
	testQueueStore(t, func(t *testing.T, dir string) QueueStore {
		return openTestRedisQueue(t, addrs, queueNameFor(dir), time.Minute)
	})
	testQueueTakeover(t, func(t *testing.T, name string, takeover time.Duration) QueueStore {
		return openTestRedisQueue(t, addrs, name, takeover)
	})
}

func TestRedisQueueStore(t *testing.T) {
	r := startRedis(t)
	testRedisQueueStore(t, []string{r.addr})
}

// TestRedisQueueKeys: every key of a queue carries the queue's hash tag,
// nothing is left once its events are delivered but the kept key, and the
// stream is never trimmed (an entry leaves only when delivered).
func TestRedisQueueKeys(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	s := openTestRedisQueue(t, []string{r.addr}, "orders", time.Minute)
	defer s.Close()
	for _, key := range []string{"a", "b", ""} {
		if err := s.Accept(ctx, queueTestEvent(key), 100); err != nil {
			t.Fatal(err)
		}
	}
	c := r.client()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, DefaultRedisQueueKeyPrefix+"{orders}:") {
			t.Errorf("key %q is not under the queue's hash tag", k)
		}
	}
	if n := c.XLen(ctx, s.stream).Val(); n != 3 {
		t.Fatalf("stream length %d, want 3", n)
	}
	evs, _, err := s.Take(ctx, time.Now(), 10)
	if err != nil || len(evs) != 3 {
		t.Fatalf("Take: %d events, %v", len(evs), err)
	}
	for _, ev := range evs {
		if err := s.Ack(ctx, ev, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.XLen(ctx, s.stream).Val(); n != 0 {
		t.Errorf("stream length after delivery %d, want 0", n)
	}
	keys, _ = c.Keys(ctx, "*").Result()
	left := map[string]bool{}
	for _, k := range keys {
		left[strings.TrimPrefix(k, DefaultRedisQueueKeyPrefix+"{orders}:")] = true
	}
	for k := range left {
		switch k {
		case "S", "T", "k:a", "k:b": // the stream and its group; the keys kept
		default:
			t.Errorf("key %q left after every event was delivered", k)
		}
	}
	if ttl := c.PTTL(ctx, s.keyKey("a")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("kept key expires in %s, want within an hour", ttl)
	}
}

// TestRedisQueueLostGroup: a Redis that restarted without its data lost
// the consumer group too; the store makes it again instead of failing
// every Take.
func TestRedisQueueLostGroup(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	s := openTestRedisQueue(t, []string{r.addr}, "lost", time.Minute)
	defer s.Close()
	r.client().FlushAll(ctx)
	if err := s.Accept(ctx, queueTestEvent("x"), 10); err != nil {
		t.Fatal(err)
	}
	evs, _, err := s.Take(ctx, time.Now(), 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Take after the group was lost: %d events, %v; want 1", len(evs), err)
	}
}

// TestRedisQueuePersistenceWarning: one warning when the server would
// lose accepted events on a restart; none when it keeps them.
func TestRedisQueuePersistenceWarning(t *testing.T) {
	r := startRedis(t) // appendonly no
	for _, tc := range []struct {
		appendonly string
		warned     bool
	}{{"no", true}, {"yes", false}} {
		if err := r.client().ConfigSet(context.Background(), "appendonly", tc.appendonly).Err(); err != nil {
			t.Fatal(err)
		}
		s := openTestRedisQueue(t, []string{r.addr}, "p", time.Minute)
		core, logs := observer.New(zap.WarnLevel)
		s.checkPersistence(context.Background(), zap.New(core))
		s.Close()
		entries := logs.All()
		warned := len(entries) == 1 && strings.Contains(entries[0].Message, "appendonly no")
		if warned != tc.warned || len(entries) > 1 {
			t.Errorf("appendonly %s: logged %v, want a warning: %v", tc.appendonly, entries, tc.warned)
		}
	}
}

func TestAdaptRedisQueue(t *testing.T) {
	adaptContaining(t, `
:8080 {
	groq_webhook {
		secret {env.S}
		queue redis {
			address 10.0.0.1:6379 10.0.0.2:6379
			master_name mymaster
			password {env.REDIS_PASSWORD}
			timeout 2s
			pool_size 8
			key_prefix hooks:
			name orders
			attempt_timeout 10s
			takeover_after 1m
			wait_replicas 1
		}
		deliver {
			reverse_proxy 127.0.0.1:9001
		}
	}
}
`, []string{
		`"queue":{"addresses":["10.0.0.1:6379","10.0.0.2:6379"],"attempt_timeout":10000000000,"backend":"redis","key_prefix":"hooks:","master_name":"mymaster","name":"orders","password":"{env.REDIS_PASSWORD}","pool_size":8,"takeover_after":60000000000,"timeout":2000000000,"wait_replicas":1}`,
	})
}

func TestUnmarshalRedisQueueErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr []string
	}{
		{"no address", "queue redis {\n name x\n}\n deliver {\n}", []string{"queue redis needs an address"}},
		{"file option", "queue redis {\n address a:1\n path /tmp\n}\n deliver {\n}", []string{`unrecognized option "path" for queue redis`}},
		{"redis option for file", "queue file {\n address a:1\n}\n deliver {\n}", []string{`unrecognized option "address" for queue file`}},
		{"negative wait_replicas", "queue redis {\n address a:1\n wait_replicas -1\n}\n deliver {\n}", []string{"wait_replicas must be an integer of at least 0"}},
		{"takeover_after zero", "queue redis {\n address a:1\n takeover_after 0s\n}\n deliver {\n}", []string{"takeover_after must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "groq_webhook " + testSecret + " {\n" + tt.input + "\n}"
			err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
			checkError(t, err, tt.wantErr, []string{testSecret})
		})
	}
}

func TestProvisionRedisQueueErrors(t *testing.T) {
	deliver := json.RawMessage(`{"handler":"subroute","routes":[{"handle":[{"handler":"static_response","status_code":204}]}]}`)
	tests := []struct {
		name    string
		queue   string
		wantErr []string
	}{
		{"no address", `{"backend":"redis"}`, []string{"queue redis needs at least one address"}},
		{"takeover not longer than an attempt", `{"backend":"redis","addresses":["127.0.0.1:1"],"attempt_timeout":30000000000,"takeover_after":35000000000}`,
			[]string{"queue redis takeover_after 35s must be longer than attempt_timeout (30s) + timeout (1s) + 5s"}},
		{"db on a cluster", `{"backend":"redis","addresses":["a:1","b:1"],"db":2}`, []string{"queue redis db 2 cannot be used with several addresses"}},
		{"brace in name", `{"backend":"redis","addresses":["a:1"],"name":"x}y"}`, []string{`queue redis name "x}y" must not contain { or }`}},
		{"brace in key_prefix", `{"backend":"redis","addresses":["a:1"],"key_prefix":"{p}"}`, []string{`queue redis key_prefix "{p}" must not contain { or }`}},
		{"negative wait_replicas", `{"backend":"redis","addresses":["a:1"],"wait_replicas":-1}`, []string{"queue redis wait_replicas must not be negative"}},
		{"empty password", `{"backend":"redis","addresses":["a:1"],"password":"{env.GROQ_TEST_UNSET_PASSWORD}"}`,
			[]string{"queue redis password is empty after placeholder replacement", "GROQ_TEST_UNSET_PASSWORD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Handler{Secrets: []Secret{{Value: testSecret}}, QueueRaw: json.RawMessage(tt.queue), DeliverRaw: deliver}
			checkError(t, cfProvision(t, &h), tt.wantErr, []string{testSecret})
			_ = h.Cleanup()
		})
	}
}

// TestRedisQueueWaitReplicas: with wait_replicas 1, an event is accepted
// only once a replica has it; without a replica the accept fails within
// the timeout (the sender gets 503), and the event it stored makes the
// sender's retry a duplicate, not a second copy.
func TestRedisQueueWaitReplicas(t *testing.T) {
	master := startRedis(t)
	ctx := context.Background()
	conn := RedisConnection{Addresses: []string{master.addr}, Timeout: caddy.Duration(300 * time.Millisecond)}
	opts, err := conn.provision("queue redis")
	if err != nil {
		t.Fatal(err)
	}
	s := newRedisQueueStore(redis.NewUniversalClient(opts), DefaultRedisQueueKeyPrefix, "replicated", 300*time.Millisecond, time.Minute, 1)
	if err := s.createGroup(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	start := time.Now()
	err = s.Accept(ctx, queueTestEvent("alone"), 100)
	if err == nil || !strings.Contains(err.Error(), "0 of 1 replicas") {
		t.Fatalf("Accept without a replica: %v, want 0 of 1 replicas", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Accept without a replica took %s, want about the 300ms timeout", took)
	}
	if err := s.Accept(ctx, queueTestEvent("alone"), 100); !errors.Is(err, ErrQueueDuplicate) {
		t.Errorf("the sender's retry: %v, want ErrQueueDuplicate", err)
	}

	replica := startRedis(t, "--replicaof", "127.0.0.1", master.port)
	waitReplicaSynced(t, replica)
	ev := queueTestEvent("replicated")
	if err := s.Accept(ctx, ev, 100); err != nil {
		t.Fatalf("Accept with a replica: %v", err)
	}
	if n := replica.client().Exists(ctx, s.eventKey(ev.ID)).Val(); n != 1 {
		t.Errorf("the replica does not have the accepted event")
	}
}

// TestRedisQueueLostTakeAnswer: a Take that Redis ran but whose answer
// never arrived (a timeout) left its entries pending for this store with
// no attempt; the next Take hands them out again, not takeover_after
// later, and not those whose attempts run.
func TestRedisQueueLostTakeAnswer(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	s := openTestRedisQueue(t, []string{r.addr}, "lost-answer", time.Hour)
	defer s.Close()
	for _, key := range []string{"running", "lost1", "lost2"} {
		if err := s.Accept(ctx, queueTestEvent(key), 100); err != nil {
			t.Fatal(err)
		}
	}
	running, _, err := s.Take(ctx, time.Now(), 1)
	if err != nil || len(running) != 1 {
		t.Fatalf("Take: %d events, %v", len(running), err)
	}
	// The script runs; its answer is lost.
	if err := takeScript.Run(ctx, s.client, []string{s.stream, s.retries},
		s.prefix, redisGroup, s.consumer, 10, micros(time.Now()), time.Hour.Milliseconds(), "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.lost.Store(true)
	again, _, err := s.Take(ctx, time.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 {
		t.Fatalf("Take after a lost answer: %d events, want the 2 left pending", len(again))
	}
	for _, ev := range again {
		if ev.ID == running[0].ID {
			t.Errorf("the event whose attempt runs was handed out again")
		}
	}
}
