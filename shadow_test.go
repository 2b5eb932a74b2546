package groqwebhook

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestShadowMode checks the roll-out mode: every request that can be
// forwarded intact is, marked with whether it verified, and failures are
// only logged; a body over max_body still gets 413.
func TestShadowMode(t *testing.T) {
	up := newUpstream(t)
	port := freePort(t)
	tc := startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}}
		mode shadow
		max_body 1KiB
	}
	reverse_proxy {{upstream}}
}
`, map[string]string{"port": strconv.Itoa(port), "secret": testSecret, "upstream": up.addr()})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	body := eventBody("evt_shadow")
	now := time.Now()

	forged := signedRequest(t, url, "wrong-secret-0123456789abcdef", now, body)
	forged.Header.Set("X-Groq-Verified", "true")
	forged.Header["x-groq_verified"] = []string{"true"}
	missing := signedRequest(t, url, testSecret, now, body)
	missing.Header.Del(DefaultSignatureHeader)
	get, _ := http.NewRequest(http.MethodGet, url, nil)

	tests := []struct {
		name     string
		req      *http.Request
		verified string
		body     []byte
		reason   string
	}{
		{"valid", signedRequest(t, url, testSecret, now, body), "true", body, ""},
		{"forged, with a spoofed verified header", forged, "false", body, "invalid_signature"},
		{"stale", signedRequest(t, url, testSecret, now.Add(-time.Hour), body), "false", body, "stale_timestamp"},
		{"missing signature", missing, "false", body, "missing_header"},
		{"GET", get, "false", nil, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.received())
			resp := do(t, tt.req)
			if resp.Status != http.StatusOK || resp.Body != `{"upstream":true}` {
				t.Fatalf("got %d %s, want the upstream's answer", resp.Status, resp.Body)
			}
			got := up.received()[before:]
			if len(got) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(got))
			}
			wantHeader(t, got[0].Header, "X-Groq-Verified", tt.verified)
			for name := range got[0].Header {
				if name != "X-Groq-Verified" && sameHeaderName(name, "x-groq-verified") {
					t.Errorf("spoofed %s reached the upstream", name)
				}
			}
			if !bytes.Equal(got[0].Body, tt.body) {
				t.Errorf("upstream body %q, want %q", got[0].Body, tt.body)
			}
			if tt.reason != "" && !strings.Contains(tc.logs(t), `"reason":"`+tt.reason+`"`) {
				t.Errorf("no log line with reason %s", tt.reason)
			}
		})
	}

	large := bytes.Repeat([]byte("a"), 2048)
	unsigned := func(chunked bool) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(large))
		if chunked {
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(large)), -1
		}
		return req
	}
	for name, req := range map[string]*http.Request{
		"oversize signed":            signedRequest(t, url, testSecret, now, large),
		"oversize unsigned":          unsigned(false),
		"oversize unsigned, chunked": unsigned(true),
	} {
		t.Run(name+" still gets 413", func(t *testing.T) {
			before := len(up.received())
			resp := do(t, req)
			if resp.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("got %d %s, want 413", resp.Status, resp.Body)
			}
			if n := len(up.received()) - before; n != 0 {
				t.Fatalf("upstream got %d requests", n)
			}
		})
	}

	if !strings.Contains(tc.logs(t), "forwarded in shadow mode") {
		t.Error("shadow-mode failures are not logged as forwarded")
	}
}
