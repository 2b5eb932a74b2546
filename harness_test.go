package groqwebhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// The end-to-end tests run a real Caddy, loaded in this process from a
// Caddyfile, in front of real upstream servers, all on 127.0.0.1. Only one
// Caddy config runs per process, so these tests never run in parallel.

const testSecret = "test-secret-0123456789abcdef"

// recordedRequest is what an upstream received.
type recordedRequest struct {
	Method        string
	Header        http.Header
	Body          []byte
	ContentLength int64
	TE            []string
	Trailer       http.Header
}

// upstream is a real HTTP server that records every request it receives
// and answers with a fixed status.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
	status   int
	delay    time.Duration
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{status: http.StatusOK}
	u.Server = httptest.NewServer(u.recorder(t))
	t.Cleanup(u.Close)
	return u
}

// recorder is the upstream's handler: it records, waits, and answers.
func (u *upstream) recorder(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream: reading body: %v", err)
		}
		u.mu.Lock()
		delay := u.delay
		u.mu.Unlock()
		time.Sleep(delay)
		u.mu.Lock()
		u.requests = append(u.requests, recordedRequest{
			Method: r.Method, Header: r.Header.Clone(), Body: body,
			ContentLength: r.ContentLength, TE: r.TransferEncoding, Trailer: r.Trailer.Clone(),
		})
		status := u.status
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"upstream":true}`)
	})
}

func (u *upstream) addr() string { return u.Listener.Addr().String() }

func (u *upstream) received() []recordedRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recordedRequest(nil), u.requests...)
}

func (u *upstream) setStatus(status int) {
	u.mu.Lock()
	u.status = status
	u.mu.Unlock()
}

// setDelay makes the upstream wait before it answers, so that a delivery
// stays in flight.
func (u *upstream) setDelay(d time.Duration) {
	u.mu.Lock()
	u.delay = d
	u.mu.Unlock()
}

// countByEventID tells how many requests the upstream got for each event id.
func (u *upstream) countByEventID() map[string]int {
	counts := make(map[string]int)
	for _, r := range u.received() {
		counts[r.Header.Get(EventIDHeader)]++
	}
	return counts
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testCaddy is a running Caddy and where to find its output.
type testCaddy struct {
	dir     string
	logFile string
	vars    map[string]string // what a test loaded, to load again
}

// startCaddy adapts the site blocks, with {{name}} replaced by vars[name],
// under test-friendly global options, and loads them. Three vars shape the
// global options: "admin" (an address; default off), "log_level" (default
// DEBUG) and "global" (more options). The config is stopped when the test
// ends.
func startCaddy(t *testing.T, sites string, vars map[string]string) *testCaddy {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Caddy server")
	}
	dir := t.TempDir()
	tc := &testCaddy{dir: dir, logFile: filepath.Join(dir, "caddy.log")}
	tc.load(t, sites, vars)
	t.Cleanup(func() {
		if os.Getenv("DUMP_CADDY_LOG") != "" {
			b, _ := os.ReadFile(tc.logFile)
			t.Logf("caddy log:\n%s", b)
		}
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})
	return tc
}

// load adapts and loads a config, replacing the running one: a reload.
func (tc *testCaddy) load(t *testing.T, sites string, vars map[string]string) {
	t.Helper()
	admin, level := "off", "DEBUG"
	if vars["admin"] != "" {
		admin = vars["admin"]
	}
	if vars["log_level"] != "" {
		level = vars["log_level"]
	}
	global := `{
	admin ` + admin + `
	storage file_system ` + filepath.Join(tc.dir, "storage") + `
	http_port ` + strconv.Itoa(freePort(t)) + `
	https_port ` + strconv.Itoa(freePort(t)) + `
	skip_install_trust
	log {
		output file ` + tc.logFile + `
		level ` + level + `
	}
	` + vars["global"] + `
}
`
	text := global + sites
	for k, v := range vars {
		text = strings.ReplaceAll(text, "{{"+k+"}}", v)
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, text)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "not formatted") {
			t.Logf("adapt warning: %s", w)
		}
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
}

// logs returns what Caddy has logged so far.
func (tc *testCaddy) logs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(tc.logFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// signedRequest builds a POST signed with secret at time ts.
func signedRequest(t *testing.T, url, secret string, ts time.Time, body []byte) *http.Request {
	t.Helper()
	timestamp := strconv.FormatInt(ts.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(DefaultTimestampHeader, timestamp)
	req.Header.Set(DefaultSignatureHeader, Sign([]byte(secret), timestamp, body))
	return req
}

// response is a finished exchange with Caddy.
type response struct {
	Status int
	Header http.Header
	Body   string
}

var testClient = &http.Client{Timeout: 10 * time.Second}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	return doWith(t, testClient, req)
}

func doWith(t *testing.T, client *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// httpsSite is a site served by Caddy over HTTPS with its internal CA.
type httpsSite struct {
	url      string
	rootFile string       // the internal CA's root certificate, PEM
	client   *http.Client // trusts that root and dials the site on 127.0.0.1
}

// startHTTPSSite runs groq_webhook in front of up on https://localhost,
// with `tls internal`, and waits until Caddy has issued its certificate,
// which it does in the background after starting.
func startHTTPSSite(t *testing.T, up *upstream) httpsSite {
	t.Helper()
	port := freePort(t)
	tc := startCaddy(t, `
https://localhost:{{port}} {
	bind 127.0.0.1
	tls internal
	groq_webhook {{secret}}
	reverse_proxy {{upstream}}
}
`, map[string]string{"port": strconv.Itoa(port), "secret": testSecret, "upstream": up.addr()})
	site := httpsSite{
		url:      fmt.Sprintf("https://localhost:%d/", port),
		rootFile: filepath.Join(tc.dir, "storage", "pki", "authorities", "local", "root.crt"),
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		rootPEM, err := os.ReadFile(site.rootFile)
		if err == nil {
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(rootPEM) {
				t.Fatalf("no certificate in %s", site.rootFile)
			}
			tlsConfig := &tls.Config{RootCAs: roots, ServerName: "localhost"}
			var conn *tls.Conn
			if conn, err = tls.Dial("tcp", addr, tlsConfig); err == nil {
				conn.Close()
				site.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
					TLSClientConfig: tlsConfig,
					DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
						return (&net.Dialer{}).DialContext(ctx, network, addr)
					},
				}}
				return site
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for localhost after 15s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
