package groqwebhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// The command tests run `caddy groq-webhook sign` and `send` as Caddy
// builds them, against a real Caddy with a groq_webhook site in front of a
// recording upstream.

const (
	knownAnswerSecret    = "test-secret"
	knownAnswerBody      = `{"id":"evt_123","type":"demo"}`
	knownAnswerSignature = "67fb787f6bf5159bdc6d8f76037d31a5c29e9bccb833e78407b7ccc22e10ba74"
	wrongCommandSecret   = "wrong-secret-0123456789abcdef"
)

// commandSecrets must never appear in anything a command prints or returns.
var commandSecrets = []string{testSecret, knownAnswerSecret, wrongCommandSecret}

// commandResult is what one run of the command printed and returned.
type commandResult struct {
	stdout string
	stderr string
	err    error
}

// runGroqWebhook builds the groq-webhook command from its registration, as
// Caddy does, runs it with args and stdin, and checks that no secret was
// printed.
func runGroqWebhook(t *testing.T, stdin string, args ...string) commandResult {
	t.Helper()
	registered, ok := caddycmd.Commands()["groq-webhook"]
	if !ok {
		t.Fatal("the groq-webhook command is not registered")
	}
	cmd := &cobra.Command{Use: registered.Name, Short: registered.Short, Long: registered.Long}
	registered.CobraFunc(cmd)

	var stdout, stderr bytes.Buffer
	cmd.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	r := commandResult{err: cmd.Execute(), stdout: stdout.String(), stderr: stderr.String()}

	all := r.stdout + r.stderr
	if r.err != nil {
		all += r.err.Error()
	}
	for i, secret := range commandSecrets {
		if strings.Contains(all, secret) {
			t.Errorf("secret #%d appears in the output of %q", i, args)
		}
	}
	return r
}

// mustSucceed fails the test if the command failed.
func (r commandResult) mustSucceed(t *testing.T) commandResult {
	t.Helper()
	if r.err != nil {
		t.Fatalf("command failed: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
	}
	return r
}

// mustFail fails the test unless the command failed with an error holding
// every one of wants.
func (r commandResult) mustFail(t *testing.T, wants ...string) commandResult {
	t.Helper()
	if r.err == nil {
		t.Fatalf("command succeeded, want an error\nstdout:\n%s", r.stdout)
	}
	for _, want := range wants {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("error %q does not mention %q", r.err, want)
		}
	}
	return r
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// unsetEnv removes an environment variable for the rest of the test.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	os.Unsetenv(name)
}

// commandSites runs two sites in front of up: one with the default header
// names, one with renamed ones. It returns their URLs.
func commandSites(t *testing.T, up *upstream) (plain, renamed string) {
	t.Helper()
	port, renamedPort := freePort(t), freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	reverse_proxy {{upstream}}
}

http://127.0.0.1:{{renamed}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}}
		signature_header X-Sig
		timestamp_header X-Ts
	}
	reverse_proxy {{upstream}}
}
`, map[string]string{
		"port": strconv.Itoa(port), "renamed": strconv.Itoa(renamedPort),
		"secret": testSecret, "upstream": up.addr(),
	})
	return fmt.Sprintf("http://127.0.0.1:%d/", port), fmt.Sprintf("http://127.0.0.1:%d/", renamedPort)
}

func TestCommandRegistered(t *testing.T) {
	registered, ok := caddycmd.Commands()["groq-webhook"]
	if !ok {
		t.Fatal("the groq-webhook command is not registered")
	}
	cmd := &cobra.Command{Use: registered.Name}
	registered.CobraFunc(cmd)
	var names []string
	for _, sub := range cmd.Commands() {
		names = append(names, sub.Name())
	}
	if strings.Join(names, ",") != "queue,send,sign" {
		t.Fatalf("subcommands %v, want queue, send and sign", names)
	}
	runGroqWebhook(t, "", "snd").mustFail(t, `unknown command "snd"`)
	if r := runGroqWebhook(t, "").mustSucceed(t); !strings.Contains(r.stdout, "groq-webhook send") {
		t.Errorf("no help without a subcommand:\n%s", r.stdout)
	}
	r := runGroqWebhook(t, "", "send", "--help").mustSucceed(t)
	for _, flag := range []string{"--url", "--repeat", "--ca-cert", "--insecure", "--secret-env", "--secret-file"} {
		if !strings.Contains(r.stdout, flag) {
			t.Errorf("send --help does not mention %s", flag)
		}
	}
}

func TestSignCommandKnownAnswer(t *testing.T) {
	t.Setenv(defaultSecretEnv, knownAnswerSecret)
	bodyFile := writeFile(t, "event.json", knownAnswerBody)
	want := "X-Groq-Timestamp: 1700000000\nX-Groq-Signature: " + knownAnswerSignature + "\n"

	r := runGroqWebhook(t, "", "sign", "--body-file", bodyFile, "--timestamp", "1700000000").mustSucceed(t)
	if r.stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "warning: the secret is 11 bytes long") {
		t.Errorf("no warning about the short secret on stderr: %q", r.stderr)
	}

	t.Run("stdin", func(t *testing.T) {
		r := runGroqWebhook(t, knownAnswerBody, "sign", "--timestamp", "1700000000").mustSucceed(t)
		if r.stdout != want {
			t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
		}
	})
	t.Run("secret file with CRLF", func(t *testing.T) {
		unsetEnv(t, defaultSecretEnv)
		secretFile := writeFile(t, "secret.txt", knownAnswerSecret+"\r\n")
		r := runGroqWebhook(t, "", "sign", "--body-file", bodyFile, "--timestamp", "1700000000",
			"--secret-file", secretFile).mustSucceed(t)
		if r.stdout != want {
			t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
		}
	})
	t.Run("other env and header names", func(t *testing.T) {
		t.Setenv("OTHER_GROQ_SECRET", knownAnswerSecret)
		r := runGroqWebhook(t, knownAnswerBody, "sign", "--timestamp", "1700000000", "--secret-env", "OTHER_GROQ_SECRET",
			"--signature-header", "X-Sig", "--timestamp-header", "X-Ts").mustSucceed(t)
		if want := "X-Ts: 1700000000\nX-Sig: " + knownAnswerSignature + "\n"; r.stdout != want {
			t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
		}
	})
	t.Run("timestamp defaults to now", func(t *testing.T) {
		before := time.Now().Unix()
		r := runGroqWebhook(t, knownAnswerBody, "sign").mustSucceed(t)
		headers := parseSignOutput(t, r.stdout)
		ts, err := strconv.ParseInt(headers[DefaultTimestampHeader], 10, 64)
		if err != nil || ts < before || ts > time.Now().Unix() {
			t.Fatalf("timestamp %q, want now", headers[DefaultTimestampHeader])
		}
		if got := headers[DefaultSignatureHeader]; got != Sign([]byte(knownAnswerSecret), headers[DefaultTimestampHeader], []byte(knownAnswerBody)) {
			t.Fatalf("signature %s does not match", got)
		}
	})
}

func TestSignCommandRejects(t *testing.T) {
	t.Setenv(defaultSecretEnv, testSecret)
	for _, ts := range []string{"-1", "+1700000000", "1e9", "1700000000.5", " 1700000000", "1234567890123", "abc"} {
		t.Run("timestamp "+ts, func(t *testing.T) {
			runGroqWebhook(t, "{}", "sign", "--timestamp", ts).mustFail(t, "--timestamp")
		})
	}
	t.Run("secret flag", func(t *testing.T) {
		r := runGroqWebhook(t, "{}", "sign", "--secret", testSecret).mustFail(t, "--secret-env", "--secret-file", "visible")
		if r.stdout != "" {
			t.Fatalf("printed %q", r.stdout)
		}
	})
	t.Run("missing env", func(t *testing.T) {
		unsetEnv(t, "GROQ_CMD_TEST_UNSET")
		runGroqWebhook(t, "{}", "sign", "--secret-env", "GROQ_CMD_TEST_UNSET").mustFail(t, "GROQ_CMD_TEST_UNSET", "not set")
	})
	t.Run("empty env", func(t *testing.T) {
		t.Setenv("GROQ_CMD_TEST_EMPTY", "")
		runGroqWebhook(t, "{}", "sign", "--secret-env", "GROQ_CMD_TEST_EMPTY").mustFail(t, "GROQ_CMD_TEST_EMPTY", "empty")
	})
	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "no-such-secret")
		runGroqWebhook(t, "{}", "sign", "--secret-file", missing).mustFail(t, missing)
	})
	t.Run("empty file", func(t *testing.T) {
		empty := writeFile(t, "secret.txt", "\n")
		runGroqWebhook(t, "{}", "sign", "--secret-file", empty).mustFail(t, empty, "empty")
	})
	t.Run("both secret sources", func(t *testing.T) {
		file := writeFile(t, "secret.txt", testSecret)
		runGroqWebhook(t, "{}", "sign", "--secret-file", file, "--secret-env", "X").mustFail(t, "not both")
	})
	t.Run("bad header name", func(t *testing.T) {
		runGroqWebhook(t, "{}", "sign", "--signature-header", "X Sig").mustFail(t, "--signature-header")
	})
	t.Run("missing body file", func(t *testing.T) {
		runGroqWebhook(t, "", "sign", "--body-file", filepath.Join(t.TempDir(), "none.json")).mustFail(t, "none.json")
	})
	t.Run("curl with a NUL byte inline", func(t *testing.T) {
		runGroqWebhook(t, "a\x00b", "sign", "--curl", "http://127.0.0.1/").mustFail(t, "NUL", "--body-file")
	})
	t.Run("curl to a non-http URL", func(t *testing.T) {
		runGroqWebhook(t, "{}", "sign", "--curl", "ftp://example.com/").mustFail(t, "--curl")
	})
}

// parseSignOutput reads the two header lines sign prints.
func parseSignOutput(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("sign printed %d lines, want 2:\n%s", len(lines), out)
	}
	headers := make(map[string]string)
	for _, line := range lines {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("not a header line: %q", line)
		}
		headers[name] = value
	}
	return headers
}

func TestSignCommandThroughCaddy(t *testing.T) {
	t.Setenv(defaultSecretEnv, testSecret)
	up := newUpstream(t)
	url, renamedURL := commandSites(t, up)

	t.Run("headers", func(t *testing.T) {
		body := `{"id":"evt_sign_headers","type":"resource.created"}`
		r := runGroqWebhook(t, body, "sign").mustSucceed(t)
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for name, value := range parseSignOutput(t, r.stdout) {
			req.Header.Set(name, value)
		}
		if resp := do(t, req); resp.Status != http.StatusOK || resp.Body != `{"upstream":true}` {
			t.Fatalf("got %d %s", resp.Status, resp.Body)
		}
		checkForwardedOnce(t, up, "evt_sign_headers", body)
	})

	t.Run("renamed headers", func(t *testing.T) {
		body := `{"id":"evt_sign_renamed"}`
		r := runGroqWebhook(t, body, "sign", "--signature-header", "X-Sig", "--timestamp-header", "X-Ts").mustSucceed(t)
		req, err := http.NewRequest(http.MethodPost, renamedURL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for name, value := range parseSignOutput(t, r.stdout) {
			req.Header.Set(name, value)
		}
		if resp := do(t, req); resp.Status != http.StatusOK {
			t.Fatalf("got %d %s", resp.Status, resp.Body)
		}
		checkForwardedOnce(t, up, "evt_sign_renamed", body)
	})

	t.Run("curl with body file", func(t *testing.T) {
		// A trailing newline and a quote in the path: both must survive.
		body := "{\"id\":\"evt_curl_file\", \"type\":\"resource.created\"}\n"
		bodyFile := writeFile(t, "it's event.json", body)
		r := runGroqWebhook(t, "", "sign", "--body-file", bodyFile, "--curl", url).mustSucceed(t)
		if !strings.Contains(r.stdout, "--data-binary") {
			t.Errorf("curl command without --data-binary:\n%s", r.stdout)
		}
		runCurl(t, r.stdout)
		checkForwardedOnce(t, up, "evt_curl_file", body)
	})

	t.Run("curl with inline body", func(t *testing.T) {
		body := `{"id":"evt_curl_inline","type":"it's \"quoted\" $HOME ` + "`id`" + ` \\ '' !x"}`
		r := runGroqWebhook(t, body, "sign", "--curl", url).mustSucceed(t)
		runCurl(t, r.stdout)
		checkForwardedOnce(t, up, "evt_curl_inline", body)
	})
}

// runCurl runs a curl command printed by sign with sh and checks that it
// got a 200.
func runCurl(t *testing.T, command string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	var stderr bytes.Buffer
	cmd := exec.Command("sh", "-c", command)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running the curl command: %v\n%s\n%s%s", err, command, out, stderr.Bytes())
	}
	if !strings.HasPrefix(string(out), "HTTP/1.1 200") {
		t.Fatalf("curl got:\n%s\ncommand:\n%s", out, command)
	}
}

// checkForwardedOnce checks that the upstream got the event with this id
// once, verified, with exactly body.
func checkForwardedOnce(t *testing.T, up *upstream, id, body string) recordedRequest {
	t.Helper()
	var found []recordedRequest
	for _, r := range up.received() {
		if r.Header.Get(EventIDHeader) == id {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("upstream got event %s %d times, want 1", id, len(found))
	}
	if got := found[0].Header.Get(DefaultVerifiedHeader); got != "true" {
		t.Errorf("%s: %q, want true", DefaultVerifiedHeader, got)
	}
	if body != "" && string(found[0].Body) != body {
		t.Errorf("upstream got body %q, want %q", found[0].Body, body)
	}
	return found[0]
}

func TestSendCommand(t *testing.T) {
	t.Setenv(defaultSecretEnv, testSecret)
	up := newUpstream(t)
	url, renamedURL := commandSites(t, up)

	t.Run("one event", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_send_one", "--data", `{"n": 1}`).mustSucceed(t)
		if r.stdout != "HTTP 200 {\"upstream\":true}\n" {
			t.Fatalf("stdout %q", r.stdout)
		}
		got := checkForwardedOnce(t, up, "evt_send_one", "")
		if got.Header.Get(EventTypeHeader) != "resource.created" || got.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", got.Header)
		}
		prefix := `{"id":"evt_send_one","type":"resource.created","data":{"n":1},"created":"`
		if !strings.HasPrefix(string(got.Body), prefix) {
			t.Fatalf("body %s, want it to start with %s", got.Body, prefix)
		}
		var event map[string]any
		if err := json.Unmarshal(got.Body, &event); err != nil || len(event) != 4 {
			t.Fatalf("body %s: %v", got.Body, err)
		}
		created, err := time.Parse(time.RFC3339, event["created"].(string))
		if err != nil || !strings.HasSuffix(event["created"].(string), "Z") ||
			created.Before(before) || created.After(time.Now()) {
			t.Fatalf("created %q, want now in UTC", event["created"])
		}
	})

	t.Run("generated id", func(t *testing.T) {
		countBefore := len(up.received())
		runGroqWebhook(t, "", "send", "--url", url, "--type", "resource.deleted").mustSucceed(t)
		got := up.received()
		if len(got) != countBefore+1 {
			t.Fatalf("upstream got %d new requests, want 1", len(got)-countBefore)
		}
		last := got[len(got)-1]
		if id := last.Header.Get(EventIDHeader); !regexp.MustCompile(`^evt_[0-9a-f]{16}$`).MatchString(id) {
			t.Fatalf("generated id %q", id)
		}
		if !strings.Contains(string(last.Body), `"type":"resource.deleted","data":{}`) {
			t.Fatalf("body %s", last.Body)
		}
	})

	t.Run("repeat", func(t *testing.T) {
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_send_repeat", "--repeat", "3").mustSucceed(t)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		want := []string{
			`HTTP 200 {"upstream":true}`,
			"HTTP 200 " + duplicateBody + " (duplicate)",
			"HTTP 200 " + duplicateBody + " (duplicate)",
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, strings.Join(want, "\n"))
		}
		checkForwardedOnce(t, up, "evt_send_repeat", "")
	})

	t.Run("wrong secret", func(t *testing.T) {
		t.Setenv("WRONG_GROQ_SECRET", wrongCommandSecret)
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_send_wrong", "--secret-env", "WRONG_GROQ_SECRET").
			mustFail(t, "1 of 1 answers were not 2xx")
		if !strings.HasPrefix(r.stdout, "HTTP 401 ") {
			t.Fatalf("stdout %q, want HTTP 401", r.stdout)
		}
		if n := up.countByEventID()["evt_send_wrong"]; n != 0 {
			t.Fatalf("upstream got the event %d times", n)
		}
	})

	t.Run("stale timestamp", func(t *testing.T) {
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_send_stale", "--timestamp", "1700000000").
			mustFail(t, "not 2xx")
		if !strings.HasPrefix(r.stdout, "HTTP 401 ") {
			t.Fatalf("stdout %q, want HTTP 401", r.stdout)
		}
	})

	t.Run("upstream failing", func(t *testing.T) {
		up.setStatus(http.StatusInternalServerError)
		defer up.setStatus(http.StatusOK)
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_send_500", "--repeat", "2").
			mustFail(t, "2 of 2 answers were not 2xx")
		if r.stdout != "HTTP 500 {\"upstream\":true}\nHTTP 500 {\"upstream\":true}\n" {
			t.Fatalf("stdout %q", r.stdout)
		}
	})

	t.Run("body file", func(t *testing.T) {
		body := "{ \"type\" : \"raw\",\n  \"id\": \"evt_send_file\" }\n\n"
		r := runGroqWebhook(t, "", "send", "--url", url, "--body-file", writeFile(t, "raw.json", body)).mustSucceed(t)
		if !strings.HasPrefix(r.stdout, "HTTP 200") {
			t.Fatalf("stdout %q", r.stdout)
		}
		checkForwardedOnce(t, up, "evt_send_file", body)
	})

	t.Run("renamed headers", func(t *testing.T) {
		runGroqWebhook(t, "", "send", "--url", renamedURL, "--id", "evt_send_renamed",
			"--signature-header", "X-Sig", "--timestamp-header", "X-Ts").mustSucceed(t)
		checkForwardedOnce(t, up, "evt_send_renamed", "")
	})

	// Nothing below reaches the upstream.
	t.Run("refusals", func(t *testing.T) {
		countBefore := len(up.received())
		tests := []struct {
			name  string
			args  []string
			wants []string
		}{
			{"invalid data", []string{"--data", `{"n":`}, []string{"--data", "not valid JSON"}},
			{"secret flag", []string{"--secret", testSecret}, []string{"--secret-env", "--secret-file"}},
			{"missing env", []string{"--secret-env", "GROQ_CMD_TEST_UNSET"}, []string{"GROQ_CMD_TEST_UNSET"}},
			{"repeat 0", []string{"--repeat", "0"}, []string{"--repeat"}},
			{"data and body file", []string{"--data", "{}", "--body-file", "x.json"}, []string{"body-file", "data"}},
			{"argument", []string{"extra"}, []string{"extra"}},
			{"bad ca cert", []string{"--ca-cert", writeFile(t, "ca.pem", "not a certificate")}, []string{"--ca-cert"}},
		}
		unsetEnv(t, "GROQ_CMD_TEST_UNSET")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				args := append([]string{"send", "--url", url}, tt.args...)
				r := runGroqWebhook(t, "", args...).mustFail(t, tt.wants...)
				if r.stdout != "" {
					t.Fatalf("printed %q", r.stdout)
				}
			})
		}
		t.Run("no url", func(t *testing.T) {
			runGroqWebhook(t, "", "send").mustFail(t, "url")
		})
		t.Run("not an http url", func(t *testing.T) {
			runGroqWebhook(t, "", "send", "--url", "127.0.0.1:8080").mustFail(t, "--url")
		})
		if n := len(up.received()); n != countBefore {
			t.Fatalf("upstream got %d requests", n-countBefore)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		dead := fmt.Sprintf("http://127.0.0.1:%d/", freePort(t))
		r := runGroqWebhook(t, "", "send", "--url", dead, "--timeout", "5s").mustFail(t, "attempt 1 of 1")
		if r.stdout != "" {
			t.Fatalf("printed %q", r.stdout)
		}
	})
}

func TestSendCommandHTTPS(t *testing.T) {
	t.Setenv(defaultSecretEnv, testSecret)
	up := newUpstream(t)
	site := startHTTPSSite(t, up)
	url, rootFile := site.url, site.rootFile

	t.Run("ca cert", func(t *testing.T) {
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_tls_ca", "--ca-cert", rootFile).mustSucceed(t)
		if r.stdout != "HTTP 200 {\"upstream\":true}\n" {
			t.Fatalf("stdout %q", r.stdout)
		}
		checkForwardedOnce(t, up, "evt_tls_ca", "")
	})
	t.Run("untrusted", func(t *testing.T) {
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_tls_untrusted").mustFail(t, "certificate", "--ca-cert")
		if r.stdout != "" {
			t.Fatalf("printed %q", r.stdout)
		}
		if n := up.countByEventID()["evt_tls_untrusted"]; n != 0 {
			t.Fatalf("upstream got the event %d times", n)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		r := runGroqWebhook(t, "", "send", "--url", url, "--id", "evt_tls_insecure", "--insecure").mustSucceed(t)
		if !strings.Contains(r.stderr, "warning: --insecure") {
			t.Errorf("no warning on stderr: %q", r.stderr)
		}
		checkForwardedOnce(t, up, "evt_tls_insecure", "")
	})
}

func TestCommandShellQuote(t *testing.T) {
	tests := map[string]string{
		"":           "''",
		"plain":      "'plain'",
		"it's":       `'it'\''s'`,
		"''":         `''\'''\'''`,
		"$HOME `x`":  "'$HOME `x`'",
		"a\nb \\ \"": "'a\nb \\ \"'",
	}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	// What the shell makes of it is the string itself.
	for in := range tests {
		out, err := exec.Command("sh", "-c", "printf '%s' "+shellQuote(in)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != in {
			t.Errorf("sh read %q back as %q", in, out)
		}
	}
}

func TestCommandBuildEvent(t *testing.T) {
	created := time.Date(2026, 11, 27, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	got, err := buildEvent("evt_1", "resource.created", "[1, 2]", created)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_1","type":"resource.created","data":[1,2],"created":"2026-11-27T12:00:00Z"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"", "{", "{'a':1}", "1 2"} {
		if _, err := buildEvent("evt_1", "t", bad, created); err == nil {
			t.Errorf("data %q accepted", bad)
		}
	}
}

func TestCommandReadSecret(t *testing.T) {
	for content, want := range map[string]string{
		"s":       "s",
		"s\n":     "s",
		"s\r\n":   "s",
		"s\n\n":   "s\n",
		" s \t\n": " s \t",
	} {
		got, err := readSecret("", writeFile(t, "secret", content))
		if err != nil || string(got) != want {
			t.Errorf("file %q: got %q, %v; want %q", content, got, err, want)
		}
	}
	t.Setenv("GROQ_CMD_TEST_SECRET", "s\n")
	if got, err := readSecret("GROQ_CMD_TEST_SECRET", ""); err != nil || string(got) != "s\n" {
		t.Errorf("env: got %q, %v; want it as it is", got, err)
	}
}
