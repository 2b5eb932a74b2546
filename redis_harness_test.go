package groqwebhook

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedis is a real redis-server, started for one test on a free
// loopback port, that the test can stop and start again.
type testRedis struct {
	t    testing.TB
	addr string
	port string
	dir  string
	cmd  *exec.Cmd
	// extra are more redis-server arguments (replication, cluster,
	// persistence); later ones override the defaults.
	extra []string
}

// startRedis starts a redis-server for the test. Where none is installed
// the test is skipped, except under CI, where that is a failure.
func startRedis(t testing.TB, extra ...string) *testRedis {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	requireTool(t, "redis-server")
	port := strconv.Itoa(freePort(t))
	r := &testRedis{t: t, addr: "127.0.0.1:" + port, port: port, dir: t.TempDir(), extra: extra}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// requireTool skips the test when the program is not installed, except
// under CI, where that is a failure.
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it (Debian package redis-server)", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

func (r *testRedis) start() {
	r.t.Helper()
	args := append([]string{
		"--bind", "127.0.0.1", "--port", r.port, "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes"}, r.extra...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	client := redis.NewClient(&redis.Options{Addr: r.addr})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for client.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends redis-server and waits for it; its data is gone.
func (r *testRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// client returns a client for inspecting what the server holds.
func (r *testRedis) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr})
	r.t.Cleanup(func() { c.Close() })
	return c
}
