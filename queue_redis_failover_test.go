package groqwebhook

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startSentinels starts three Sentinels on loopback ports watching the
// master at masterAddr as "mymaster", and returns their addresses once
// each knows the master and its replica.
func startSentinels(t *testing.T, masterPort string) []string {
	t.Helper()
	var addrs []string
	for range 3 {
		port := strconv.Itoa(freePort(t))
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := "port " + port + "\nbind 127.0.0.1\ndir " + dir + "\n" +
			"sentinel monitor mymaster 127.0.0.1 " + masterPort + " 2\n" +
			"sentinel down-after-milliseconds mymaster 1000\n" +
			"sentinel failover-timeout mymaster 5000\n"
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server --sentinel: %v", err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		addrs = append(addrs, "127.0.0.1:"+port)
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range addrs {
		s := redis.NewSentinelClient(&redis.Options{Addr: addr})
		for {
			replicas, err := s.Replicas(ctx, "mymaster").Result()
			if err == nil && len(replicas) > 0 {
				break
			}
			if time.Now().After(deadline) {
				s.Close()
				t.Fatalf("sentinel %s does not see the master and its replica: %v %v", addr, replicas, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.Close()
	}
	return addrs
}

// startSentinelSetup starts a master, a replica in sync with it, and three
// Sentinels watching them as "mymaster".
func startSentinelSetup(t *testing.T) (master, replica *testRedis, sentinels []string) {
	t.Helper()
	master = startRedis(t)
	replica = startRedis(t, "--replicaof", "127.0.0.1", master.port)
	waitReplicaSynced(t, replica)
	return master, replica, startSentinels(t, master.port)
}

// killMasterMidway kills master with -9 once a third of total requests
// were sent, and sends on the channel it returns how long the Sentinel at
// sentinel took to name replica the master (at most 30 s). With rejoin,
// the old master starts again 2 s after that, and Sentinel makes it a
// replica of the new one.
func killMasterMidway(master, replica *testRedis, sentinel string, sent *atomic.Int64, total int, rejoin bool) <-chan time.Duration {
	failedOver := make(chan time.Duration, 1)
	go func() {
		for sent.Load() < int64(total/3) {
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		master.stop()
		s := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
		defer s.Close()
		for time.Since(start) < 30*time.Second {
			addr, err := s.GetMasterAddrByName(context.Background(), "mymaster").Result()
			if err == nil && addr[1] == replica.port {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		if rejoin {
			time.Sleep(2 * time.Second)
			master.start()
		}
		failedOver <- took
	}()
	return failedOver
}

// TestRedisQueueSentinelFailover: a master, a replica and three Sentinels;
// Caddy finds the master through them (master_name) and waits for one
// replica (wait_replicas 1). The master is killed with -9 while events
// flow and brought back after the failover, when it joins as a replica.
// Deliveries resume on their own, no event answered 202 is lost, and the
// cost of the failover is reported: 503s, and events delivered twice.
func TestRedisQueueSentinelFailover(t *testing.T) {
	t.Parallel() // processes of its own: it runs beside the other Redis process tests
	master, replica, sentinels := startSentinelSetup(t)

	up := newUpstream(t)
	port := freePort(t)
	options := "name failover\n master_name mymaster\n wait_replicas 1\n attempt_timeout 2s\n takeover_after 9s\n retry " +
		strings.Repeat("200ms ", 50)
	startCaddyProcess(t, redisQueueSite(port, sentinels, options, "reverse_proxy "+up.addr()))
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks", port)

	const events = 800
	bodies := loadBodies("evt_failover", events)
	var sent atomic.Int64
	failedOver := killMasterMidway(master, replica, sentinels[0], &sent, len(bodies), true)
	statuses := sendFailover(t, []string{url}, bodies, 8, &sent)
	took := <-failedOver
	waitFor(t, 90*time.Second, "every event delivered after the failover", func() bool {
		return len(up.countByEventID()) == events
	})
	rc := redis.NewClient(&redis.Options{Addr: replica.addr})
	defer rc.Close()
	waitFor(t, 30*time.Second, "the queue empty", func() bool {
		return rc.ZCard(context.Background(), DefaultRedisQueueKeyPrefix+"{failover}:W").Val() == 0
	})
	time.Sleep(time.Second)
	counts := up.countByEventID()
	twice := repeated(counts)
	t.Logf("Sentinel failover (master killed with -9, new master after %s, old one back as a replica 2s later): "+
		"answers by status over every try %v (0: a 503 without Retry-After); %d events, %d delivered, %d delivered twice",
		took.Round(10*time.Millisecond), statuses, events, len(counts), len(twice))
	if statuses[0] > 0 {
		t.Errorf("%d answers of 503 without Retry-After", statuses[0])
	}
	for status, n := range statuses {
		if status != http.StatusAccepted && status != http.StatusOK && status != http.StatusServiceUnavailable && status != 0 {
			t.Errorf("%d answers with status %d", n, status)
		}
	}
}

// waitReplicaSynced waits until the replica r has synced with its master.
func waitReplicaSynced(t *testing.T, r *testRedis) {
	t.Helper()
	c := r.client()
	waitFor(t, 20*time.Second, "the replica in sync", func() bool {
		info, _ := c.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
}

// TestRedisQueueRedisOutage: Redis (appendonly yes, appendfsync always)
// stops for 10 s during a load. Senders get 503 with Retry-After meanwhile,
// nothing answered 202 is lost, and delivery resumes once Redis is back.
func TestRedisQueueRedisOutage(t *testing.T) {
	t.Parallel() // processes of its own: it runs beside the other Redis process tests
	r := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	up := newUpstream(t)
	port := freePort(t)
	options := "name outage\n attempt_timeout 2s\n takeover_after 9s\n concurrency 16\n retry " + strings.Repeat("200ms ", 50)
	startCaddyProcess(t, redisQueueSite(port, []string{r.addr}, options, "reverse_proxy "+up.addr()))
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks", port)

	const events = 3000
	bodies := loadBodies("evt_outage", events)
	var sent atomic.Int64
	restarted := make(chan struct{})
	go func() {
		for sent.Load() < int64(len(bodies)/4) {
			time.Sleep(5 * time.Millisecond)
		}
		r.stop()
		time.Sleep(10 * time.Second)
		r.start()
		close(restarted)
	}()
	statuses := sendFailover(t, []string{url}, bodies, 32, &sent)
	<-restarted
	waitFor(t, 60*time.Second, "every event delivered after the outage", func() bool {
		return len(up.countByEventID()) == events
	})
	rc := r.client()
	waitFor(t, 30*time.Second, "the queue empty", func() bool {
		return rc.ZCard(context.Background(), DefaultRedisQueueKeyPrefix+"{outage}:W").Val() == 0
	})
	time.Sleep(time.Second)
	counts := up.countByEventID()
	twice := repeated(counts)
	t.Logf("Redis down 10s during %d events: answers by status over every try %v (0: a 503 without Retry-After); %d delivered, %d delivered twice",
		events, statuses, len(counts), len(twice))
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 while Redis was down: the outage did not happen during the load")
	}
	if statuses[0] > 0 {
		t.Errorf("%d answers of 503 without Retry-After", statuses[0])
	}
	for status, n := range statuses {
		if status != http.StatusAccepted && status != http.StatusOK && status != http.StatusServiceUnavailable && status != 0 {
			t.Errorf("%d answers with status %d", n, status)
		}
	}
	if len(twice) > 16 {
		t.Errorf("%d events delivered twice, more than the 16 attempts that can be in flight when Redis stops", len(twice))
	}
}

// TestDedupeRedisSentinelFailover: synchronous delivery with `dedupe
// redis` finding its master through Sentinels (master_name). The master is
// killed with -9 while events and copies of them flow; claims fail with 503
// and Retry-After until a replica is promoted, then resume on their own.
// Every event reaches the upstream; the copies forwarded again because the
// failover lost their delivered mark (replication is asynchronous) are
// counted and reported.
func TestDedupeRedisSentinelFailover(t *testing.T) {
	t.Parallel() // processes of its own: it runs beside the other Redis process tests
	master, replica, sentinels := startSentinelSetup(t)

	up := newUpstream(t)
	port := freePort(t)
	startCaddyProcess(t, fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	groq_webhook {
		secret {env.GROQ_WEBHOOK_SECRET}
		dedupe redis {
			address %s
			master_name mymaster
		}
	}
	reverse_proxy %s
}
`, port, strings.Join(sentinels, " "), up.addr()))
	waitForPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks", port)

	const events = 800
	bodies := loadBodies("evt_dedupe_failover", events)
	var sent atomic.Int64
	failedOver := killMasterMidway(master, replica, sentinels[0], &sent, len(bodies), false)
	statuses := sendFailover(t, []string{url}, bodies, 8, &sent)
	took := <-failedOver

	// After the failover, claims work again: a new event is forwarded once,
	// and its copy is a duplicate.
	after := eventBody("evt_dedupe_after_failover")
	for _, want := range []string{`{"upstream":true}`, duplicateBody} {
		got := do(t, signedRequest(t, url, testSecret, time.Now(), after))
		if got.Status != http.StatusOK || got.Body != want {
			t.Fatalf("after the failover: %d %s, want 200 %s", got.Status, got.Body, want)
		}
	}
	counts := up.countByEventID()
	delete(counts, "evt_dedupe_after_failover")
	twice := repeated(counts)
	t.Logf("dedupe redis, Sentinel failover (master killed with -9, new master after %s): answers by status over every try %v "+
		"(0: a 503 without Retry-After); %d events (%d requests with copies), %d delivered, %d delivered twice",
		took.Round(10*time.Millisecond), statuses, events, len(bodies), len(counts), len(twice))
	if len(counts) != events {
		t.Errorf("%d of %d events reached the upstream", len(counts), events)
	}
	if statuses[0] > 0 {
		t.Errorf("%d answers of 503 without Retry-After", statuses[0])
	}
	if statuses[-1] > 0 {
		t.Errorf("%d requests got no answer", statuses[-1])
	}
	for status, n := range statuses {
		switch status {
		case http.StatusOK, http.StatusConflict, http.StatusServiceUnavailable, 0, -1:
		default:
			t.Errorf("%d answers with status %d", n, status)
		}
	}
	// Only a copy whose first delivery's mark was written to the old master
	// and not yet replicated can be forwarded again: at most the events
	// delivered around the kill, not a share of the whole run.
	if len(twice) > events/10 {
		t.Errorf("%d events delivered twice, want only those around the failover", len(twice))
	}
}
