package groqwebhook

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// startRedisCluster starts a Redis Cluster of three masters on loopback
// ports, as an operator would (redis-server --cluster-enabled yes, then
// redis-cli --cluster create), and returns the nodes' addresses.
func startRedisCluster(t *testing.T) []string {
	t.Helper()
	requireTool(t, "redis-cli")
	var addrs []string
	for range 3 {
		r := startRedis(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
		addrs = append(addrs, r.addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, _ := c.ClusterInfo(ctx).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("cluster node %s not ok after 20s:\n%s", addr, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	// Every node must agree on the slots before a client asks.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	for {
		slots, err := cc.ClusterSlots(ctx).Result()
		if err == nil && len(slots) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster slots: %v, %v", slots, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addrs
}

// masterOf returns the address of the master serving key.
func masterOf(t *testing.T, addrs []string, key string) string {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	c, err := cc.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return c.Options().Addr
}

// TestRedisCluster runs the de-duplication store contract, the queue store
// contract and the queue's end-to-end test on a real three-master Redis
// Cluster, with keys spread over the masters.
func TestRedisCluster(t *testing.T) {
	t.Parallel() // processes of its own: it runs beside the other Redis process tests
	addrs := startRedisCluster(t)

	t.Run("dedupe store contract", func(t *testing.T) {
		var mu sync.Mutex // the contract's timed subtests run in parallel
		masters := map[string]bool{}
		testStoreContract(t, func(t *testing.T) Store {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			// A wide timeout: the timed subtests run in parallel, beside
			// the other Redis process tests, on a loaded machine.
			s := &RedisStore{RedisConnection: RedisConnection{Addresses: addrs, Timeout: caddy.Duration(5 * time.Second)}}
			if err := s.Provision(ctx); err != nil {
				cancel()
				t.Fatal(err)
			}
			t.Cleanup(func() {
				s.Cleanup()
				cancel()
			})
			master := masterOf(t, addrs, storeKey(t, "k"))
			mu.Lock()
			masters[master] = true
			mu.Unlock()
			return s
		})
		mu.Lock()
		defer mu.Unlock()
		if len(masters) < 2 {
			t.Errorf("the contract's keys all landed on %v: the test does not cross slots", masters)
		}
	})

	t.Run("queue store contract", func(t *testing.T) {
		testRedisQueueStore(t, addrs)
	})

	t.Run("queue end to end", func(t *testing.T) {
		names := queueNamesOnMasters(t, addrs)
		testRedisQueueEndToEnd(t, addrs, names)
	})
}

// queueNamesOnMasters picks two queue names whose keys are served by two
// different masters.
func queueNamesOnMasters(t *testing.T, addrs []string) [2]string {
	t.Helper()
	first := "alpha"
	home := masterOf(t, addrs, DefaultRedisQueueKeyPrefix+"{"+first+"}:S")
	for i := range 100 {
		name := fmt.Sprintf("beta%d", i)
		if masterOf(t, addrs, DefaultRedisQueueKeyPrefix+"{"+name+"}:S") != home {
			return [2]string{first, name}
		}
	}
	t.Fatal("no queue name lands on another master")
	return [2]string{}
}
