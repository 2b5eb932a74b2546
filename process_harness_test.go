package groqwebhook

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Some tests need Caddy as a process of its own: to read its memory apart
// from the test's, or to kill -9 it and start it again on the same data.
// They build ./cmd/caddy (Caddy with this plugin) once per test binary.

var caddyBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if caddyBuild.dir != "" {
		os.RemoveAll(caddyBuild.dir)
	}
	os.Exit(code)
}

// caddyBinary returns the path of a caddy built from this checkout.
func caddyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a Caddy process")
	}
	caddyBuild.once.Do(func() {
		caddyBuild.dir, caddyBuild.err = os.MkdirTemp("", "groq-webhook-caddy-")
		if caddyBuild.err != nil {
			return
		}
		caddyBuild.path = filepath.Join(caddyBuild.dir, "caddy")
		cmd := exec.Command("go", "build", "-o", caddyBuild.path, "./cmd/caddy")
		if out, err := cmd.CombinedOutput(); err != nil {
			caddyBuild.err = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if caddyBuild.err != nil {
		t.Fatal(caddyBuild.err)
	}
	return caddyBuild.path
}

// caddyProcess is a `caddy run` child of the test, with a data directory
// that outlives a restart.
type caddyProcess struct {
	t       *testing.T
	bin     string
	dir     string // holds the Caddyfile, the log and Caddy's data directory
	config  string
	admin   string // the admin endpoint, host:port
	cmd     *exec.Cmd
	done    chan struct{}
	logFile string
}

// startCaddyProcess writes sites, under global options that keep Caddy on
// loopback, with {{admin}} replaced by the admin address, and runs it.
// The process is stopped when the test ends.
func startCaddyProcess(t *testing.T, sites string) *caddyProcess {
	t.Helper()
	p := &caddyProcess{t: t, bin: caddyBinary(t), dir: t.TempDir()}
	p.admin = "127.0.0.1:" + strconv.Itoa(freePort(t))
	p.logFile = filepath.Join(p.dir, "caddy.log")
	p.config = filepath.Join(p.dir, "Caddyfile")
	p.writeConfig(sites)
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("DUMP_CADDY_LOG") != "" {
			b, _ := os.ReadFile(p.logFile)
			if len(b) > 64<<10 {
				b = b[len(b)-64<<10:]
			}
			t.Logf("caddy log (end):\n%s", b)
		}
	})
	return p
}

// writeConfig writes the Caddyfile the next start or reload reads.
func (p *caddyProcess) writeConfig(sites string) {
	p.t.Helper()
	global := `{
	admin ` + p.admin + `
	storage file_system ` + filepath.Join(p.dir, "storage") + `
	http_port ` + strconv.Itoa(freePort(p.t)) + `
	https_port ` + strconv.Itoa(freePort(p.t)) + `
	skip_install_trust
	grace_period 10s
	log {
		output file ` + p.logFile + `
		level INFO
	}
}
`
	text := global + strings.ReplaceAll(sites, "{{admin}}", p.admin)
	if err := os.WriteFile(p.config, []byte(text), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// start runs caddy on the current config and waits for its admin endpoint.
func (p *caddyProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "run", "--config", p.config, "--adapter", "caddyfile")
	p.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(p.dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(p.dir, "config"),
		"GROQ_WEBHOOK_SECRET="+testSecret,
	)
	out, err := os.OpenFile(filepath.Join(p.dir, "stderr.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer out.Close()
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting caddy: %v", err)
	}
	done := make(chan struct{})
	p.done = done
	cmd := p.cmd
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.admin + "/config/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(p.dir, "stderr.log"))
			p.t.Fatalf("caddy exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("caddy's admin endpoint did not answer within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pid is the running process's id.
func (p *caddyProcess) pid() int { return p.cmd.Process.Pid }

// kill9 kills the process with SIGKILL, as a crash would, and waits for it.
func (p *caddyProcess) kill9() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	if err := syscall.Kill(p.pid(), syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill -9 %d: %v", p.pid(), err)
	}
	<-p.done
	p.cmd = nil
}

// stop asks Caddy to stop (SIGINT, its graceful shutdown) and waits.
func (p *caddyProcess) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// rssKiB reads the process's resident set size from /proc.
func (p *caddyProcess) rssKiB() int {
	p.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				p.t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb
		}
	}
	p.t.Fatal("no VmRSS in /proc status")
	return 0
}

// metric returns the value of one sample from Caddy's /metrics, or -1.
func (p *caddyProcess) metric(series string) float64 {
	p.t.Helper()
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		p.t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				p.t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// waitForPort waits until something accepts connections on addr.
func waitForPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
