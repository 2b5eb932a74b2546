package groqwebhook

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogsNeverHoldSecrets runs a wrong and a right signature through a
// Caddy logging as an operator would: Caddy at INFO, this module at DEBUG,
// and an access log with the signature filtered out as the README shows.
// Every log must tell what happened and none may hold the secret, a
// signature or the body.
func TestLogsNeverHoldSecrets(t *testing.T) {
	up := newUpstream(t)
	port := freePort(t)
	dir := t.TempDir()
	moduleLog, accessLog := filepath.Join(dir, "groq.log"), filepath.Join(dir, "access.log")
	t.Setenv("GROQ_TEST_SECRET", testSecret)
	tc := startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {
		secret {env.GROQ_TEST_SECRET} current
	}
	reverse_proxy {{upstream}}
	log {
		output file {{access}}
		format filter {
			request>headers>X-Groq-Signature delete
		}
	}
}
`, map[string]string{
		"port": strconv.Itoa(port), "upstream": up.addr(), "access": accessLog,
		"log_level": "INFO",
		"global": `log groq {
		output file ` + moduleLog + `
		include http.handlers.groq_webhook
		level DEBUG
	}`,
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/hook?x=1", port)
	body := []byte(`{"id":"evt_logged","type":"resource.updated","data":{"card":"4242-body-marker"}}`)
	forged := signedRequest(t, url, "wrong-secret-0123456789abcdef", time.Now(), body)
	good := signedRequest(t, url, testSecret, time.Now(), body)
	// Without an id, the de-duplication key comes from the signature: a
	// duplicate's log line must not give the signature away.
	noID := []byte(`{"type":"resource.updated","data":{"card":"4242-body-marker"}}`)
	noIDAt := time.Now()
	signatures := []string{
		forged.Header.Get(DefaultSignatureHeader), good.Header.Get(DefaultSignatureHeader),
		Sign([]byte(testSecret), strconv.FormatInt(noIDAt.Unix(), 10), noID),
	}
	if resp := do(t, forged); resp.Status != 401 {
		t.Fatalf("forged: %d", resp.Status)
	}
	if resp := do(t, good); resp.Status != 200 {
		t.Fatalf("good: %d", resp.Status)
	}
	for range 2 {
		do(t, signedRequest(t, url, testSecret, noIDAt, noID))
	}

	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	module := read(moduleLog)
	for _, want := range []string{
		`"msg":"webhook rejected"`, `"reason":"invalid_signature"`, `"remote_ip":"127.0.0.1"`,
		`"uri":"/hook?x=1"`, `"request_id":"`,
		`"msg":"webhook verified"`, `"event_id":"evt_logged"`, `"event_type":"resource.updated"`, `"secret":"current"`,
		`"msg":"duplicate of a delivered event"`,
	} {
		if !strings.Contains(module, want) {
			t.Errorf("module log lacks %s:\n%s", want, module)
		}
	}
	if !strings.Contains(read(accessLog), `"status":401`) {
		t.Error("access log lacks the rejected request")
	}

	forbidden := []string{testSecret, "wrong-secret-0123456789abcdef", "4242-body-marker"}
	for _, sig := range signatures {
		// No full signature, and no piece long enough to matter.
		forbidden = append(forbidden, sig[:16], sig[24:40], sig[48:])
	}
	for name, text := range map[string]string{"module": module, "access": read(accessLog), "caddy": tc.logs(t)} {
		for _, secret := range forbidden {
			if strings.Contains(text, secret) {
				t.Errorf("%s log contains %q", name, secret)
			}
		}
	}
}
