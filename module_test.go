package groqwebhook

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const e2eSite = `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {
		secret {{secret}} current
		secret {env.GROQ_TEST_OLD_SECRET} old
		max_body 1KiB
		dedupe off
	}
	reverse_proxy {{upstream}}
}
`

// TestHandlerEndToEnd sends real requests through Caddy and checks both the
// answer and exactly what reached the upstream.
func TestHandlerEndToEnd(t *testing.T) {
	up := newUpstream(t)
	port := freePort(t)
	t.Setenv("GROQ_TEST_SECRET", testSecret)
	t.Setenv("GROQ_TEST_OLD_SECRET", "old-secret-0123456789abcdef")
	tc := startCaddy(t, e2eSite, map[string]string{
		"port": strconv.Itoa(port), "secret": "{env.GROQ_TEST_SECRET}", "upstream": up.addr(),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks/groq", port)
	event := []byte(`{"id":"evt_1","type":"resource.created","data":{"n":1},"created":"2026-11-27T00:00:00Z"}`)
	now := time.Now()

	// sign returns a signed POST of body, then lets mutate change it.
	sign := func(secret string, ts time.Time, body []byte, mutate func(*http.Request)) func(*testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			req := signedRequest(t, url, secret, ts, body)
			if mutate != nil {
				mutate(req)
			}
			return req
		}
	}
	setHeader := func(name, value string) func(*http.Request) {
		return func(r *http.Request) { r.Header[name] = []string{value} }
	}
	unauthorized := `{"error":"invalid signature"}`
	tooLarge := `{"error":"payload too large"}`

	tests := []struct {
		name      string
		request   func(*testing.T) *http.Request
		status    int
		body      string
		forwarded func(*testing.T, recordedRequest) // nil: nothing may reach the upstream
	}{
		{
			name:    "valid event is forwarded with verified and event headers",
			request: sign(testSecret, now, event, nil),
			status:  http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				wantHeader(t, got.Header, "X-Groq-Verified", "true")
				wantHeader(t, got.Header, "X-Groq-Event-Id", "evt_1")
				wantHeader(t, got.Header, "X-Groq-Event-Type", "resource.created")
				wantBody(t, got, event)
			},
		},
		{
			name:    "old secret of a rotation still verifies",
			request: sign("old-secret-0123456789abcdef", now, event, nil),
			status:  http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				wantHeader(t, got.Header, "X-Groq-Verified", "true")
			},
		},
		{
			name: "spoofed verified and event headers never reach the upstream",
			request: sign(testSecret, now, []byte(`{"data":{}}`), func(r *http.Request) {
				r.Header["X-Groq-Verified"] = []string{"false", "true"}
				r.Header["x-groq-verified"] = []string{"spoof"}
				r.Header["X-Groq_Verified"] = []string{"spoof"}
				r.Header["X-Groq.Verified"] = []string{"spoof"}
				r.Header["X-Groq-Event-Id"] = []string{"evt_spoofed"}
				r.Header["x-groq_event_type"] = []string{"resource.deleted"}
			}),
			status: http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				wantHeader(t, got.Header, "X-Groq-Verified", "true")
				for name := range got.Header {
					switch headerMatchForm(name) {
					case "x-groq-event-id", "x-groq-event-type":
						t.Errorf("spoofed header %s reached the upstream: %q", name, got.Header[name])
					case "x-groq-verified":
						if name != "X-Groq-Verified" {
							t.Errorf("spoofed header %s reached the upstream", name)
						}
					}
				}
			},
		},
		{
			name: "trailers, which are not signed, are not forwarded",
			request: sign(testSecret, now, event, func(r *http.Request) {
				r.Body = io.NopCloser(bytes.NewReader(event))
				r.ContentLength = -1
				r.Trailer = http.Header{
					"X-Groq-Verified": {"true"}, "X-Groq-Event-Id": {"evt_spoofed"}, "X-Other": {"x"},
				}
			}),
			status: http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				if len(got.Trailer) != 0 {
					t.Errorf("upstream got trailers %v", got.Trailer)
				}
				wantHeader(t, got.Header, "X-Groq-Event-Id", "evt_1")
				wantBody(t, got, event)
			},
		},
		{
			name:    "event keys are matched exactly, as backends read them",
			request: sign(testSecret, now, []byte(`{"ID":"evt_upper","id":"evt_lower","Id":"evt_mixed","TYPE":"x"}`), nil),
			status:  http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				wantHeader(t, got.Header, "X-Groq-Event-Id", "evt_lower")
				if v, ok := got.Header["X-Groq-Event-Type"]; ok {
					t.Errorf("event type %q taken from TYPE", v)
				}
			},
		},
		{
			name: "chunked upload is forwarded with a Content-Length",
			request: sign(testSecret, now, event, func(r *http.Request) {
				r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(event[:10]), bytes.NewReader(event[10:])))
				r.ContentLength = -1
			}),
			status: http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				wantBody(t, got, event)
				if len(got.TE) != 0 {
					t.Errorf("upstream saw Transfer-Encoding %v", got.TE)
				}
			},
		},
		{
			name:    "non-UTF-8 body is forwarded byte for byte",
			request: sign(testSecret, now, []byte{0xff, 0xfe, 0x00, '{', 0x80}, nil),
			status:  http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				wantBody(t, got, []byte{0xff, 0xfe, 0x00, '{', 0x80})
				if _, ok := got.Header["X-Groq-Event-Id"]; ok {
					t.Error("event id header set for a body that is not JSON")
				}
			},
		},
		{
			name:    "empty body",
			request: sign(testSecret, now, nil, nil),
			status:  http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				wantBody(t, got, nil)
			},
		},
		{
			name:    "event id that cannot be a header value is left out",
			request: sign(testSecret, now, []byte(`{"id":"evt\r\nX-Injected: 1","type":7}`), nil),
			status:  http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) {
				for _, name := range []string{"X-Groq-Event-Id", "X-Groq-Event-Type", "X-Injected"} {
					if v, ok := got.Header[name]; ok {
						t.Errorf("upstream got %s: %q", name, v)
					}
				}
			},
		},
		{name: "tampered body", request: sign(testSecret, now, event, func(r *http.Request) {
			tampered := bytes.Replace(event, []byte("evt_1"), []byte("evt_2"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
		}), status: http.StatusUnauthorized, body: unauthorized},
		{name: "tampered timestamp", request: sign(testSecret, now, event,
			setHeader("X-Groq-Timestamp", strconv.FormatInt(now.Unix()-1, 10))),
			status: http.StatusUnauthorized, body: unauthorized},
		{name: "wrong secret", request: sign("wrong-secret-0123456789abcdef", now, event, nil),
			status: http.StatusUnauthorized, body: unauthorized},
		{name: "stale timestamp", request: sign(testSecret, now.Add(-6*time.Minute), event, nil),
			status: http.StatusUnauthorized, body: unauthorized},
		{name: "future timestamp", request: sign(testSecret, now.Add(6*time.Minute), event, nil),
			status: http.StatusUnauthorized, body: unauthorized},
		{name: "missing timestamp", request: sign(testSecret, now, event, func(r *http.Request) {
			r.Header.Del("X-Groq-Timestamp")
		}), status: http.StatusUnauthorized, body: unauthorized},
		{name: "missing signature", request: sign(testSecret, now, event, func(r *http.Request) {
			r.Header.Del("X-Groq-Signature")
		}), status: http.StatusUnauthorized, body: unauthorized},
		{name: "two timestamp headers", request: sign(testSecret, now, event, func(r *http.Request) {
			r.Header.Add("X-Groq-Timestamp", r.Header.Get("X-Groq-Timestamp"))
		}), status: http.StatusUnauthorized, body: unauthorized},
		{name: "two signature headers", request: sign(testSecret, now, event, func(r *http.Request) {
			r.Header.Add("X-Groq-Signature", r.Header.Get("X-Groq-Signature"))
		}), status: http.StatusUnauthorized, body: unauthorized},
		{name: "signed timestamp with a plus sign", request: func(t *testing.T) *http.Request {
			ts := "+" + strconv.FormatInt(now.Unix(), 10)
			req := signedRequest(t, url, testSecret, now, event)
			req.Header.Set("X-Groq-Timestamp", ts)
			req.Header.Set("X-Groq-Signature", Sign([]byte(testSecret), ts, event))
			return req
		}, status: http.StatusUnauthorized, body: unauthorized},
		{name: "nine candidates", request: sign(testSecret, now, event, func(r *http.Request) {
			sig := r.Header.Get("X-Groq-Signature")
			r.Header.Set("X-Groq-Signature", strings.Repeat(sig+",", 8)+sig)
		}), status: http.StatusUnauthorized, body: unauthorized},
		{name: "odd-length signature", request: sign(testSecret, now, event, func(r *http.Request) {
			r.Header.Set("X-Groq-Signature", r.Header.Get("X-Groq-Signature")[1:])
		}), status: http.StatusUnauthorized, body: unauthorized},
		{name: "oversize with Content-Length", request: sign(testSecret, now, bytes.Repeat([]byte("a"), 1025), nil),
			status: http.StatusRequestEntityTooLarge, body: tooLarge},
		{name: "oversize chunked", request: sign(testSecret, now, bytes.Repeat([]byte("a"), 1025), func(r *http.Request) {
			r.Body = io.NopCloser(bytes.NewReader(bytes.Repeat([]byte("a"), 1025)))
			r.ContentLength = -1
		}), status: http.StatusRequestEntityTooLarge, body: tooLarge},
		{name: "exactly max_body is accepted", request: sign(testSecret, now, bytes.Repeat([]byte("a"), 1024), nil),
			status: http.StatusOK, body: `{"upstream":true}`,
			forwarded: func(t *testing.T, got recordedRequest) { wantBody(t, got, bytes.Repeat([]byte("a"), 1024)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.received())
			resp := do(t, tt.request(t))
			if resp.Status != tt.status || resp.Body != tt.body {
				t.Fatalf("got %d %s, want %d %s", resp.Status, resp.Body, tt.status, tt.body)
			}
			if resp.Status >= 400 {
				wantHeader(t, resp.Header, "Content-Type", "application/json")
			}
			got := up.received()[before:]
			if tt.forwarded == nil {
				if len(got) != 0 {
					t.Fatalf("upstream received %d requests, want none", len(got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("upstream received %d requests, want 1", len(got))
			}
			tt.forwarded(t, got[0])
		})
	}

	t.Run("GET gets 405 with Allow", func(t *testing.T) {
		before := len(up.received())
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-Groq-Verified", "true")
		resp := do(t, req)
		if resp.Status != http.StatusMethodNotAllowed || resp.Body != `{"error":"method not allowed"}` {
			t.Fatalf("got %d %s", resp.Status, resp.Body)
		}
		wantHeader(t, resp.Header, "Allow", "POST")
		if n := len(up.received()) - before; n != 0 {
			t.Fatalf("upstream received %d requests", n)
		}
	})

	t.Run("rejections are logged without secret, signature or body", func(t *testing.T) {
		req := signedRequest(t, url, "wrong-secret-0123456789abcdef", now, []byte(`{"id":"evt_secretbody"}`))
		sig := req.Header.Get("X-Groq-Signature")
		do(t, req)
		logs := tc.logs(t)
		if !strings.Contains(logs, `"reason":"invalid_signature"`) {
			t.Fatalf("no rejection logged:\n%s", logs)
		}
		for _, secret := range []string{testSecret, "old-secret-0123456789abcdef", sig[:16], "evt_secretbody"} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains %q", secret)
			}
		}
	})
}

func wantHeader(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	if got := h.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("header %s = %q, want exactly %q", name, got, want)
	}
}

func wantBody(t *testing.T, got recordedRequest, want []byte) {
	t.Helper()
	if !bytes.Equal(got.Body, want) {
		t.Errorf("upstream body = %q, want %q", got.Body, want)
	}
	if got.ContentLength != int64(len(want)) {
		t.Errorf("upstream Content-Length = %d, want %d", got.ContentLength, len(want))
	}
}

// TestRejectionBeforeBodyClosesConnection holds the body back after the
// headers: the answer must come anyway, and the connection must close.
func TestRejectionBeforeBodyClosesConnection(t *testing.T) {
	up := newUpstream(t)
	port := freePort(t)
	t.Setenv("GROQ_TEST_OLD_SECRET", "old-secret-0123456789abcdef")
	startCaddy(t, e2eSite, map[string]string{
		"port": strconv.Itoa(port), "secret": testSecret, "upstream": up.addr(),
	})
	tests := []struct {
		name, head string
		status     int
	}{
		{"no signature", "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Groq-Timestamp: " +
			strconv.FormatInt(time.Now().Unix(), 10) + "\r\nContent-Length: 500\r\n\r\n", 401},
		{"declared too large", "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Groq-Timestamp: " +
			strconv.FormatInt(time.Now().Unix(), 10) + "\r\nX-Groq-Signature: " + strings.Repeat("ab", 32) +
			"\r\nContent-Length: 999999\r\n\r\n", 413},
		{"wrong method", "PUT / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, tt.head); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body is held back: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !resp.Close {
				t.Fatalf("got %d (close=%v), want %d with Connection: close", resp.StatusCode, resp.Close, tt.status)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("connection still open after the answer: %v", err)
			}
		})
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("upstream received %d requests", n)
	}
}

// TestRoutingByEventType sends events of two types through one site and
// checks that stock matchers route them to different upstreams.
func TestRoutingByEventType(t *testing.T) {
	created, deleted := newUpstream(t), newUpstream(t)
	port := freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	@deleted vars {http.groq_webhook.event_type} resource.deleted
	reverse_proxy @deleted {{deleted}}
	@updated expression "{http.groq_webhook.event_type} == 'resource.updated'"
	reverse_proxy @updated {{created}} {
		header_up X-Matched-By-Expression {http.groq_webhook.event_id}
	}
	reverse_proxy {{created}} {
		header_up X-Matched-Secret {http.groq_webhook.secret}
		header_up X-Signed-At {http.groq_webhook.timestamp}
	}
}
`, map[string]string{
		"port": strconv.Itoa(port), "secret": testSecret,
		"created": created.addr(), "deleted": deleted.addr(),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	now := time.Now()
	for _, typ := range []string{"resource.created", "resource.deleted", "resource.updated"} {
		body := []byte(`{"id":"evt_` + typ + `","type":"` + typ + `"}`)
		if resp := do(t, signedRequest(t, url, testSecret, now, body)); resp.Status != http.StatusOK {
			t.Fatalf("%s: got %d %s", typ, resp.Status, resp.Body)
		}
	}
	gotCreated, gotDeleted := created.received(), deleted.received()
	if len(gotDeleted) != 1 || gotDeleted[0].Header.Get("X-Groq-Event-Type") != "resource.deleted" {
		t.Fatalf("deleted upstream got %d requests", len(gotDeleted))
	}
	if len(gotCreated) != 2 {
		t.Fatalf("default upstream got %d requests, want 2", len(gotCreated))
	}
	matched := 0
	for _, got := range gotCreated {
		if v := got.Header.Get("X-Matched-By-Expression"); v != "" {
			wantHeader(t, got.Header, "X-Matched-By-Expression", "evt_resource.updated")
			matched++
			continue
		}
		wantHeader(t, got.Header, "X-Matched-Secret", "0")
		wantHeader(t, got.Header, "X-Signed-At", strconv.FormatInt(now.Unix(), 10))
	}
	if matched != 1 {
		t.Fatalf("the expression matcher took %d events, want 1", matched)
	}
}

// TestProxyRetryReplaysVerifiedBody makes the first upstream read the body
// and drop the connection: the retry must carry the same bytes.
func TestProxyRetryReplaysVerifiedBody(t *testing.T) {
	good := newUpstream(t)
	bad, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	go func() {
		for {
			conn, err := bad.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
			}
			conn.Close()
		}
	}()
	port := freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	reverse_proxy {{bad}} {{good}} {
		lb_policy first
		fail_duration 1m
		lb_retries 1
		lb_retry_match {
			method POST
		}
		request_buffers 1MiB
	}
}
`, map[string]string{
		"port": strconv.Itoa(port), "secret": testSecret,
		"bad": bad.Addr().String(), "good": good.addr(),
	})
	body := []byte(`{"id":"evt_retry","type":"resource.updated"}`)
	resp := do(t, signedRequest(t, fmt.Sprintf("http://127.0.0.1:%d/", port), testSecret, time.Now(), body))
	if resp.Status != http.StatusOK {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	got := good.received()
	if len(got) != 1 {
		t.Fatalf("second upstream got %d requests, want 1", len(got))
	}
	wantBody(t, got[0], body)
	wantHeader(t, got[0].Header, "X-Groq-Verified", "true")
}

// TestHTTPSSite serves the webhook over HTTPS with Caddy's internal CA and
// checks the certificate against that CA.
func TestHTTPSSite(t *testing.T) {
	up := newUpstream(t)
	site := startHTTPSSite(t, up)
	body := []byte(`{"id":"evt_tls","type":"resource.created"}`)
	resp := doWith(t, site.client, signedRequest(t, site.url, testSecret, time.Now(), body))
	if resp.Status != http.StatusOK {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	got := up.received()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests", len(got))
	}
	wantBody(t, got[0], body)
}

// TestHandleErrorsShapesRejections checks that a site with handle_errors
// gets each rejection as a handler error, with its status and reason code.
func TestHandleErrorsShapesRejections(t *testing.T) {
	up := newUpstream(t)
	port := freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	reverse_proxy {{upstream}}
	handle_errors {
		respond "rejected: {http.groq_webhook.error} ({http.error.status_code})"
	}
}
http://localhost:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	reverse_proxy {{upstream}}
}
`, map[string]string{"port": strconv.Itoa(port), "secret": testSecret, "upstream": up.addr()})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	body := []byte(`{"id":"evt_1"}`)

	stale := signedRequest(t, url, testSecret, time.Now().Add(-time.Hour), body)
	forged := signedRequest(t, url, "wrong-secret-0123456789abcdef", time.Now(), body)
	get, _ := http.NewRequest(http.MethodGet, url, nil)
	tests := []struct {
		req    *http.Request
		status int
		body   string
	}{
		{stale, 401, "rejected: stale_timestamp (401)"},
		{forged, 401, "rejected: invalid_signature (401)"},
		{get, 405, "rejected: method_not_allowed (405)"},
	}
	for _, tt := range tests {
		resp := do(t, tt.req)
		if resp.Status != tt.status || resp.Body != tt.body {
			t.Errorf("got %d %q, want %d %q", resp.Status, resp.Body, tt.status, tt.body)
		}
	}
	// Another site on the same server has no error routes: its rejections
	// keep the JSON answers.
	other := signedRequest(t, url, "wrong-secret-0123456789abcdef", time.Now(), body)
	other.Host = "localhost"
	if resp := do(t, other); resp.Status != 401 || resp.Body != `{"error":"invalid signature"}` {
		t.Errorf("site without handle_errors: got %d %q", resp.Status, resp.Body)
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("upstream received %d requests", n)
	}
	resp := do(t, signedRequest(t, url, testSecret, time.Now(), body))
	if resp.Status != http.StatusOK || len(up.received()) != 1 {
		t.Fatalf("valid event: got %d, upstream %d requests", resp.Status, len(up.received()))
	}
}

// TestHandleErrorsGetsRejectedBody routes rejections to an upstream of
// their own (a quarantine, say): it must get the rejected request's body
// whole, and nothing marking it verified.
func TestHandleErrorsGetsRejectedBody(t *testing.T) {
	quarantine := newUpstream(t)
	port := freePort(t)
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	respond "forwarded"
	handle_errors {
		reverse_proxy {{quarantine}}
	}
}
`, map[string]string{"port": strconv.Itoa(port), "secret": testSecret, "quarantine": quarantine.addr()})
	body := []byte(`{"id":"evt_forged","type":"resource.created","data":{"pad":"` + strings.Repeat("x", 5000) + `"}}`)
	resp := do(t, signedRequest(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "not-the-secret-0123456789abcdef", time.Now(), body))
	if resp.Status != http.StatusOK || resp.Body != `{"upstream":true}` {
		t.Fatalf("got %d %q, want the quarantine's answer", resp.Status, resp.Body)
	}
	got := quarantine.received()
	if len(got) != 1 {
		t.Fatalf("quarantine got %d requests, want 1", len(got))
	}
	wantBody(t, got[0], body)
	if v := got[0].Header.Get(DefaultVerifiedHeader); v != "" {
		t.Errorf("quarantine got %s: %q", DefaultVerifiedHeader, v)
	}
}
