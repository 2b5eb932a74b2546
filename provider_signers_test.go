package groqwebhook

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The provider tests sign requests the way each sender does, never with
// this package's own signing code: with the senders' official npm packages
// (testdata/signers/sign.js) where a sender publishes one, and otherwise
// with Go's crypto packages following the sender's documentation.

// signerPackages are the npm packages testdata/signers installs.
var signerPackages = []string{"stripe", "standardwebhooks", "svix", "@octokit/webhooks-methods", "twilio"}

// nodeSigners returns the directory of the Node helpers. Without node or
// the installed packages the test is skipped on a developer's machine and
// fails in CI, where .ci/run installs them.
func nodeSigners(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "signers"))
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else {
		for _, pkg := range signerPackages {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
				missing = "npm package " + pkg + " is not installed (run npm ci in testdata/signers)"
				break
			}
		}
	}
	if missing != "" {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatalf("%s: CI must run the provider tests with the senders' npm packages", missing)
		}
		t.Skipf("%s; .ci/run installs it", missing)
	}
	return dir
}

// npmJob is one request for sign.js to sign (see its header comment).
type npmJob struct {
	Provider  string            `json:"provider"`
	Secret    string            `json:"secret"`
	ID        string            `json:"id,omitempty"`
	Timestamp int64             `json:"timestamp,omitempty"`
	Body      *string           `json:"body,omitempty"`
	URL       string            `json:"url,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
}

// npmSigned is what sign.js answers for one job.
type npmSigned struct {
	Headers map[string]string `json:"headers"`
	URL     string            `json:"url"`
}

// npmSign signs every job in one run of node.
func npmSign(t *testing.T, jobs []npmJob) []npmSigned {
	t.Helper()
	dir := nodeSigners(t)
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "sign.js")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node sign.js: %v\n%s", err, stderr.Bytes())
	}
	var signed []npmSigned
	if err := json.Unmarshal(out, &signed); err != nil || len(signed) != len(jobs) {
		t.Fatalf("node sign.js answered %d results for %d jobs (%v): %s", len(signed), len(jobs), err, out)
	}
	return signed
}

// nodeUpstream is testdata/signers/upstream.js: a backend that verifies
// every request with the standardwebhooks npm package and records it.
type nodeUpstream struct {
	addr string
}

// nodeRecord is one request the Node upstream received.
type nodeRecord struct {
	Method   string            `json:"method"`
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers"`
	Body     []byte            `json:"body"` // base64 in the JSON
	Verified bool              `json:"verified"`
	Error    string            `json:"error"`
}

// startNodeUpstream runs upstream.js with secret, a whsec_ value, and stops
// it (by its own PID) when the test ends.
func startNodeUpstream(t *testing.T, secret string) *nodeUpstream {
	t.Helper()
	dir := nodeSigners(t)
	cmd := exec.Command("node", "upstream.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIGN_UPSTREAM_SECRET="+secret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node upstream.js: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		wg.Wait()
	})
	first := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			first <- s.Text()
		}
		close(first)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-first:
		port, ok := strings.CutPrefix(line, "listening ")
		if _, err := strconv.Atoi(port); !ok || err != nil {
			t.Fatalf("node upstream.js said %q; stderr:\n%s", line, stderr.String())
		}
		return &nodeUpstream{addr: "127.0.0.1:" + port}
	case <-time.After(20 * time.Second):
		t.Fatalf("node upstream.js did not start within 20s; stderr:\n%s", stderr.String())
	}
	return nil
}

// received returns what the Node upstream got so far.
func (u *nodeUpstream) received(t *testing.T) []nodeRecord {
	t.Helper()
	resp, err := testClient.Get("http://" + u.addr + "/__recorded")
	if err != nil {
		t.Fatalf("asking the node upstream what it got: %v", err)
	}
	defer resp.Body.Close()
	var records []nodeRecord
	if err := json.NewDecoder(resp.Body).Decode(&records); err != nil {
		t.Fatalf("node upstream's records: %v", err)
	}
	return records
}

// The signers below follow each sender's documentation, written apart from
// the provider package so that a mistake there cannot hide here.

func macOf(newHash func() hash.Hash, key []byte, parts ...string) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func hmacSHA256Hex(key string, parts ...string) string {
	return hex.EncodeToString(macOf(sha256.New, []byte(key), parts...))
}

func hmacSHA256Base64(key string, parts ...string) string {
	return base64.StdEncoding.EncodeToString(macOf(sha256.New, []byte(key), parts...))
}

// ed25519Key is the Ed25519 key whose 32-byte seed is seedHex.
func ed25519Key(t *testing.T, seedHex string) ed25519.PrivateKey {
	t.Helper()
	seed, err := hex.DecodeString(seedHex)
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("ed25519 seed %q: want %d bytes of hex", seedHex, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func unixString(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

// headerOf builds a header from name, value pairs, keeping each name as
// written (senders use lower-case names too).
func headerOf(pairs ...string) http.Header {
	if len(pairs)%2 != 0 {
		panic(fmt.Sprintf("headerOf: odd number of arguments %q", pairs))
	}
	h := http.Header{}
	for i := 0; i < len(pairs); i += 2 {
		h[pairs[i]] = append(h[pairs[i]], pairs[i+1])
	}
	return h
}
