package groqwebhook

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// These tests drive the handler directly, for every provider: what reaches
// the next handler (headers, body, placeholders), handshakes, keys. The
// end-to-end tests through a real Caddy are in provider_e2e_test.go.

const handlerDiscordSeed = "discord-seed-0123456789abcdefghi" // 32 bytes

// providerSite is one provider's configuration and a valid event for it.
type providerSite struct {
	name, url, query, contentType string
	body                          []byte
	signedID, eventType           string // what the upstream must be told
	deliveryHeader, deliveryID    string // an unsigned id the sender adds
}

var providerSites = []providerSite{
	{name: "standard", body: []byte(`{"type":"invoice.paid","data":{}}`), signedID: "msg_1", eventType: "invoice.paid"},
	{name: "svix", body: []byte(`{"type":"user.created"}`), signedID: "msg_1", eventType: "user.created"},
	{name: "stripe", body: []byte(`{"id":"evt_1","type":"charge.succeeded"}`), signedID: "evt_1", eventType: "charge.succeeded"},
	{name: "github", body: []byte(`{"action":"opened"}`), eventType: "pull_request", deliveryHeader: "X-GitHub-Delivery", deliveryID: "d-1"},
	{name: "slack", body: []byte(`{"event_id":"Ev1","type":"event_callback","event":{"type":"app_mention"}}`), signedID: "Ev1", eventType: "app_mention"},
	{name: "shopify", body: []byte(`{"id":7}`), eventType: "orders/create", deliveryHeader: "X-Shopify-Event-Id", deliveryID: "s-1"},
	{name: "paddle", body: []byte(`{"event_id":"evt_p","event_type":"transaction.completed"}`), signedID: "evt_p", eventType: "transaction.completed"},
	{name: "linear", eventType: "Issue", deliveryHeader: "Linear-Delivery", deliveryID: "l-1"},
	{name: "zoom", body: []byte(`{"event":"meeting.started"}`), eventType: "meeting.started"},
	{name: "discord", body: []byte(`{"id":"i1","type":2}`), signedID: "i1", eventType: "2"},
	{name: "square", url: "https://example.com/hooks/square", body: []byte(`{"event_id":"sq1","type":"payment.created"}`), signedID: "sq1", eventType: "payment.created"},
	{name: "twilio", url: "https://example.com/hooks/twilio", query: "x=1", contentType: "application/x-www-form-urlencoded", body: []byte("Body=hi&From=%2B1555"), deliveryHeader: "I-Twilio-Idempotency-Token", deliveryID: "t-1"},
	{name: "gitlab", body: []byte(`{"object_kind":"push"}`), eventType: "Push Hook", deliveryHeader: "Idempotency-Key", deliveryID: "g-1"},
}

// handler provisions a handler for the site, with changes applied.
func (s providerSite) handler(t testing.TB, change func(*Handler)) *Handler {
	t.Helper()
	h := &Handler{Provider: s.name, URL: s.url, Dedupe: &Dedupe{Disabled: s.name != "github" && s.name != "gitlab" && s.name != "standard"}}
	if s.name == "discord" {
		h.PublicKey = hex.EncodeToString(ed25519.NewKeyFromSeed([]byte(handlerDiscordSeed)).Public().(ed25519.PublicKey))
	} else {
		h.Secrets = []Secret{{Value: testSecret}}
	}
	if change != nil {
		change(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return h
}

// request signs body as the site's sender does, at ts.
func (s providerSite) request(t testing.TB, body []byte, ts time.Time) *http.Request {
	t.Helper()
	scheme, _ := provider.Lookup(s.name)
	key := []byte(testSecret)
	if s.name == "discord" {
		key = []byte(handlerDiscordSeed)
	}
	if s.name == "linear" && body == nil {
		body = []byte(`{"type":"Issue","webhookTimestamp":` + strconv.FormatInt(ts.UnixMilli(), 10) + `}`)
	}
	signedURL := s.url
	if s.query != "" {
		signedURL += "?" + s.query
	}
	header, err := scheme.Sign(key, provider.Message{ID: "msg_1", Timestamp: strconv.FormatInt(ts.Unix(), 10), URL: signedURL, ContentType: s.contentType, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	target := "/hooks"
	if s.query != "" {
		target += "?" + s.query
	}
	req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	for name, values := range header {
		req.Header[name] = values
	}
	if s.contentType != "" {
		req.Header.Set("Content-Type", s.contentType)
	}
	if s.deliveryHeader != "" {
		req.Header.Set(s.deliveryHeader, s.deliveryID)
	}
	switch s.name {
	case "github":
		req.Header.Set("X-GitHub-Event", s.eventType)
	case "shopify":
		req.Header.Set("X-Shopify-Topic", s.eventType)
	case "gitlab":
		req.Header.Set("X-Gitlab-Event", s.eventType)
	}
	return req
}

// handlerSaw is what the next handler saw.
type handlerSaw struct {
	header       http.Header
	body         []byte
	placeholders map[string]string
	unknown      []string // placeholders the replacer did not know
}

// serveOnce runs req through h and returns the answer and what was
// forwarded, if anything.
func serveOnce(t *testing.T, h *Handler, req *http.Request) (*httptest.ResponseRecorder, *handlerSaw) {
	t.Helper()
	var got *handlerSaw
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		got = &handlerSaw{header: r.Header.Clone(), body: body, placeholders: map[string]string{}}
		for _, name := range []string{"verified", "provider", "event_id", "event_type", "delivery_id", "timestamp", "secret"} {
			value, known := repl.GetString("http.groq_webhook." + name)
			got.placeholders[name] = value
			if !known {
				got.unknown = append(got.unknown, name)
			}
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	w := httptest.NewRecorder()
	req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, nil)
	if err := h.ServeHTTP(w, req, next); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return w, got
}

// TestProviderHandler: a valid event of every provider is forwarded
// byte-identical with the X-Webhook-* headers and placeholders; spoofed
// copies of both header families are gone; a tampered one is refused.
func TestProviderHandler(t *testing.T) {
	for _, s := range providerSites {
		t.Run(s.name, func(t *testing.T) {
			h := s.handler(t, nil)
			now := time.Now()
			req := s.request(t, s.body, now)
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			for _, name := range []string{"X-Groq-Verified", "X-Groq-Event-Id", "X-Groq-Event-Type", "X-Webhook-Verified", "X-Webhook-Event-Id", "X-Webhook-Event-Type", "X-Webhook-Provider"} {
				req.Header[name] = []string{"spoofed"}
			}
			req.Header["x-webhook_provider"] = []string{"spoofed"}
			w, got := serveOnce(t, h, req)
			if w.Code != http.StatusOK || got == nil {
				t.Fatalf("status %d %s, forwarded %v", w.Code, w.Body, got != nil)
			}
			if !bytes.Equal(got.body, body) {
				t.Errorf("forwarded body %q, want %q", got.body, body)
			}
			want := map[string]string{
				"X-Webhook-Verified": "true", "X-Webhook-Provider": s.name,
				"X-Webhook-Event-Id": s.signedID, "X-Webhook-Event-Type": s.eventType,
				"X-Groq-Verified": "", "X-Groq-Event-Id": "", "X-Groq-Event-Type": "", "X-Webhook_provider": "",
			}
			for name, value := range want {
				if values := got.header[name]; strings.Join(values, ",") != value {
					t.Errorf("header %s = %q, want %q", name, values, value)
				}
			}
			if len(got.header["x-webhook_provider"]) != 0 {
				t.Error("spoofed x-webhook_provider forwarded")
			}
			wantPlaceholders := map[string]string{
				"verified": "true", "provider": s.name, "event_id": s.signedID, "event_type": s.eventType, "delivery_id": s.deliveryID,
			}
			for name, value := range wantPlaceholders {
				if got.placeholders[name] != value {
					t.Errorf("{http.groq_webhook.%s} = %q, want %q", name, got.placeholders[name], value)
				}
			}
			// Empty ones are set too, or header_up would send their text.
			if len(got.unknown) != 0 {
				t.Errorf("placeholders not set: %v", got.unknown)
			}

			// The same request with one body byte changed never goes on
			// (a GitLab token signs nothing, so a wrong token instead).
			forged := s.request(t, s.body, now)
			if s.name == "gitlab" {
				forged.Header.Set("X-Gitlab-Token", "wrong-token-0123456789abcdef")
			} else {
				tampered, _ := io.ReadAll(forged.Body)
				tampered[len(tampered)-2] ^= 1
				forged.Body = io.NopCloser(bytes.NewReader(tampered))
			}
			w, got = serveOnce(t, h, forged)
			if w.Code != http.StatusUnauthorized || got != nil {
				t.Fatalf("forgery: status %d, forwarded %v", w.Code, got != nil)
			}
		})
	}
}

// TestGroqHeadersUnchanged: provider groq keeps its X-Groq-* headers and no
// client can send an X-Webhook-* one through it either.
func TestGroqHeadersUnchanged(t *testing.T) {
	h := provisionedHandler(t)
	body := []byte(`{"id":"evt_g","type":"a.b"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set(DefaultTimestampHeader, ts)
	req.Header.Set(DefaultSignatureHeader, Sign([]byte(testSecret), ts, body))
	req.Header.Set("X-Webhook-Verified", "true")
	req.Header.Set("X-Webhook-Provider", "stripe")
	w, got := serveOnce(t, h, req)
	if w.Code != http.StatusOK || got == nil {
		t.Fatalf("status %d", w.Code)
	}
	for name, value := range map[string]string{"X-Groq-Verified": "true", "X-Groq-Event-Id": "evt_g", "X-Groq-Event-Type": "a.b", "X-Webhook-Verified": "", "X-Webhook-Provider": ""} {
		if v := got.header.Get(name); v != value {
			t.Errorf("%s = %q, want %q", name, v, value)
		}
	}
	if got.placeholders["provider"] != "groq" {
		t.Errorf("provider placeholder %q", got.placeholders["provider"])
	}
}

// TestHandshakes: endpoint checks are answered only once verified, never
// forwarded, and not recorded by de-duplication (the same check twice is
// answered twice).
func TestHandshakes(t *testing.T) {
	tests := []struct {
		site providerSite
		body string
		want func(t *testing.T, answer map[string]any)
	}{
		{providerSites[4], `{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`, func(t *testing.T, a map[string]any) {
			if a["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" || len(a) != 1 {
				t.Errorf("answer %v", a)
			}
		}},
		{providerSites[8], `{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1}`, func(t *testing.T, a map[string]any) {
			mac := hmac.New(sha256.New, []byte(testSecret))
			mac.Write([]byte("qgg8vlvZRS6UYooatFL8Aw"))
			if a["plainToken"] != "qgg8vlvZRS6UYooatFL8Aw" || a["encryptedToken"] != hex.EncodeToString(mac.Sum(nil)) {
				t.Errorf("answer %v", a)
			}
		}},
		{providerSites[9], `{"id":"ping1","type":1,"application_id":"a"}`, func(t *testing.T, a map[string]any) {
			if a["type"] != float64(1) || len(a) != 1 {
				t.Errorf("answer %v", a)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.site.name, func(t *testing.T) {
			h := tt.site.handler(t, func(h *Handler) { h.Dedupe = nil })
			for i := range 2 {
				w, got := serveOnce(t, h, tt.site.request(t, []byte(tt.body), time.Now()))
				if w.Code != http.StatusOK || got != nil {
					t.Fatalf("try %d: status %d, forwarded %v", i, w.Code, got != nil)
				}
				if w.Header().Get(DuplicateHeader) != "" {
					t.Fatalf("try %d answered as a duplicate", i)
				}
				var answer map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
					t.Fatalf("answer %q: %v", w.Body, err)
				}
				tt.want(t, answer)
			}
			forged := tt.site.request(t, []byte(tt.body), time.Now())
			forged.Body = io.NopCloser(strings.NewReader(strings.Replace(tt.body, "{", "{ ", 1)))
			if w, got := serveOnce(t, h, forged); w.Code != http.StatusUnauthorized || got != nil || strings.Contains(w.Body.String(), "challenge") || strings.Contains(w.Body.String(), "Token") {
				t.Fatalf("unsigned handshake: status %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestProviderKeys: de-duplication keys come from signed bytes only.
func TestProviderKeys(t *testing.T) {
	site := func(name string) providerSite {
		for _, s := range providerSites {
			if s.name == name {
				return s
			}
		}
		t.Fatalf("no site %s", name)
		return providerSite{}
	}
	tests := []struct {
		name   string
		site   providerSite
		second func(t *testing.T, s providerSite) *http.Request // sent after the first
		dup    bool
	}{
		{"github delivery id changed", site("github"), func(t *testing.T, s providerSite) *http.Request {
			r := s.request(t, s.body, time.Now())
			r.Header.Set("X-GitHub-Delivery", "d-2")
			return r
		}, true},
		{"github other body", site("github"), func(t *testing.T, s providerSite) *http.Request {
			return s.request(t, []byte(`{"action":"closed"}`), time.Now())
		}, false},
		{"gitlab idempotency key changed", site("gitlab"), func(t *testing.T, s providerSite) *http.Request {
			r := s.request(t, s.body, time.Now())
			r.Header.Set("Idempotency-Key", "g-2")
			return r
		}, true},
		{"standard re-signed later, same id", site("standard"), func(t *testing.T, s providerSite) *http.Request {
			return s.request(t, s.body, time.Now().Add(time.Second*30))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.site.handler(t, func(h *Handler) { h.Dedupe = nil; h.now = time.Now })
			if w, got := serveOnce(t, h, tt.site.request(t, tt.site.body, time.Now())); w.Code != http.StatusOK || got == nil {
				t.Fatalf("first: status %d", w.Code)
			}
			w, got := serveOnce(t, h, tt.second(t, tt.site))
			if dup := w.Header().Get(DuplicateHeader) == "true"; dup != tt.dup || (got == nil) != tt.dup {
				t.Fatalf("second: duplicate %v, forwarded %v; want duplicate %v", dup, got != nil, tt.dup)
			}
		})
	}
}

// TestSignUpstream: the forwarded request carries a Standard Webhooks
// signature over the forwarded body, which a stock verifier accepts, in
// place of the client's copies.
func TestSignUpstream(t *testing.T) {
	const upstreamSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s := providerSites[2] // stripe
	h := s.handler(t, func(h *Handler) { h.SignUpstream = upstreamSecret })
	req := s.request(t, s.body, time.Now())
	req.Header.Set("Webhook-Id", "forged")
	req.Header.Set("webhook-signature", "v1,forged")
	w, got := serveOnce(t, h, req)
	if w.Code != http.StatusOK || got == nil {
		t.Fatalf("status %d", w.Code)
	}
	if id := got.header.Get("Webhook-Id"); id != "stripe:event:evt_1" || len(got.header["Webhook-Signature"]) != 1 {
		t.Fatalf("webhook-id %q, signatures %q", id, got.header["Webhook-Signature"])
	}
	v, err := provider.Standard.New(provider.Config{Secrets: [][]byte{[]byte(upstreamSecret)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(provider.Request{Header: got.header}, got.body, time.Now()); err != nil {
		t.Fatalf("upstream signature does not verify: %v", err)
	}
}

// TestProviderProvisionErrors: each misconfiguration names the provider
// and the problem.
func TestProviderProvisionErrors(t *testing.T) {
	secret := []Secret{{Value: testSecret}}
	tests := []struct {
		name string
		h    Handler
		want []string
	}{
		{"unknown provider", Handler{Provider: "stripey", Secrets: secret}, []string{`unknown provider "stripey"`, "discord", "github", "hmac", "stripe", "twilio"}},
		{"whsec not base64", Handler{Provider: "standard", Secrets: []Secret{{Value: "whsec_not*base64*at*all!!"}}}, []string{"provider standard", "whsec_", "base64"}},
		{"svix whsec not base64", Handler{Provider: "svix", Secrets: []Secret{{Value: "whsec_not*base64*at*all!!"}}}, []string{"provider svix", "base64"}},
		{"discord short key", Handler{Provider: "discord", PublicKey: "abcd"}, []string{"provider discord", "public_key", "32 bytes of hex"}},
		{"discord no key", Handler{Provider: "discord", Secrets: secret}, []string{"provider discord", "public_key"}},
		{"square without url", Handler{Provider: "square", Secrets: secret}, []string{"provider square", "url"}},
		{"twilio without url", Handler{Provider: "twilio", Secrets: secret}, []string{"provider twilio", "url"}},
		{"public_key for stripe", Handler{Provider: "stripe", Secrets: secret, PublicKey: strings.Repeat("00", 32)}, []string{"provider stripe", "public_key does not apply"}},
		{"url for github", Handler{Provider: "github", Secrets: secret, URL: "https://x"}, []string{"provider github", "remove url"}},
		{"tolerance for github", Handler{Provider: "github", Secrets: secret, Tolerance: caddy.Duration(time.Minute)}, []string{"provider github", "no timestamp", "tolerance"}},
		{"tolerance for gitlab", Handler{Provider: "gitlab", Secrets: secret, Tolerance: caddy.Duration(time.Minute)}, []string{"provider gitlab", "tolerance"}},
		{"signature_header for stripe", Handler{Provider: "stripe", Secrets: secret, SignatureHeader: "X-Sig"}, []string{"provider stripe", "signature_header", "provider hmac"}},
		{"hmac without description", Handler{Provider: "hmac", Secrets: secret}, []string{"provider hmac", "signature_header"}},
		{"hmac description for stripe", Handler{Provider: "stripe", Secrets: secret, HMAC: &provider.HMACConfig{SignatureHeader: "X"}}, []string{"provider stripe", "hmac"}},
		{"hmac bad encoding", Handler{Provider: "hmac", Secrets: secret, HMAC: &provider.HMACConfig{SignatureHeader: "X-Sig", Encoding: "base32"}}, []string{"provider hmac", "encoding"}},
		{"hmac bad algorithm", Handler{Provider: "hmac", Secrets: secret, HMAC: &provider.HMACConfig{SignatureHeader: "X-Sig", Algorithm: "md5"}}, []string{"provider hmac", "algorithm"}},
		{"hmac template without body", Handler{Provider: "hmac", Secrets: secret, HMAC: &provider.HMACConfig{SignatureHeader: "X-Sig", Signed: "{timestamp}"}}, []string{"provider hmac", "{body}"}},
		{"hmac unknown field", Handler{Provider: "hmac", Secrets: secret, HMAC: &provider.HMACConfig{SignatureHeader: "X-Sig", Signed: "{nonce}.{body}"}}, []string{"provider hmac", "{nonce}"}},
		{"hmac timestamp not signed", Handler{Provider: "hmac", Secrets: secret, HMAC: &provider.HMACConfig{SignatureHeader: "X-Sig", TimestampHeader: "X-Ts", Signed: "{body}"}}, []string{"provider hmac", "timestamp_header"}},
		{"hmac timestamp without header", Handler{Provider: "hmac", Secrets: secret, HMAC: &provider.HMACConfig{SignatureHeader: "X-Sig", Signed: "{timestamp}.{body}"}}, []string{"provider hmac", "set timestamp_header"}},
		{"hmac tolerance without timestamp", Handler{Provider: "hmac", Secrets: secret, Tolerance: caddy.Duration(time.Minute), HMAC: &provider.HMACConfig{SignatureHeader: "X-Sig"}}, []string{"provider hmac", "tolerance"}},
		{"sign_upstream bad whsec", Handler{Provider: "stripe", Secrets: secret, SignUpstream: "whsec_***"}, []string{"sign_upstream", "base64"}},
		{"sign_upstream short", Handler{Provider: "stripe", Secrets: secret, SignUpstream: "short"}, []string{"sign_upstream", "16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			checkError(t, cfProvision(t, &h), tt.want, []string{testSecret})
		})
	}
}

// TestUnguardedProviders: with dedupe off, providers that sign no
// timestamp have no replay guard, which provisioning warns about.
func TestUnguardedProviders(t *testing.T) {
	for _, s := range providerSites {
		h := s.handler(t, func(h *Handler) { h.Dedupe = &Dedupe{Disabled: true} })
		want := map[string]bool{"github": true, "shopify": true, "square": true, "twilio": true, "gitlab": true}[s.name]
		if h.unguarded() != want {
			t.Errorf("%s: unguarded = %v, want %v", s.name, h.unguarded(), want)
		}
	}
}

// TestProviderCaddyfile: the provider subdirectives and their errors.
func TestProviderCaddyfile(t *testing.T) {
	tests := []struct {
		name, input string
		want        func(t *testing.T, h *Handler)
		wantErr     string
	}{
		{"provider", `groq_webhook s0123456789abcdef { 
			provider stripe
		}`, func(t *testing.T, h *Handler) {
			if h.Provider != "stripe" {
				t.Errorf("provider %q", h.Provider)
			}
		}, ""},
		{"discord with public_key, no secret", `groq_webhook {
			provider discord
			public_key abcd
			sign_upstream {env.UP}
		}`, func(t *testing.T, h *Handler) {
			if h.PublicKey != "abcd" || h.SignUpstream != "{env.UP}" || len(h.Secrets) != 0 {
				t.Errorf("got %+v", h)
			}
		}, ""},
		{"url", `groq_webhook s0123456789abcdef {
			provider square
			url https://example.com/hooks
		}`, func(t *testing.T, h *Handler) {
			if h.URL != "https://example.com/hooks" {
				t.Errorf("url %q", h.URL)
			}
		}, ""},
		{"hmac block", `groq_webhook s0123456789abcdef {
			provider hmac {
				signature_header X-Sig
				signature_prefix sha256=
				encoding base64
				algorithm sha512
				timestamp_header X-Ts
				id_header X-Id
				tolerance 2m
				signed "{id}.{timestamp}.{body}"
			}
		}`, func(t *testing.T, h *Handler) {
			want := provider.HMACConfig{SignatureHeader: "X-Sig", SignaturePrefix: "sha256=", Encoding: "base64", Algorithm: "sha512", TimestampHeader: "X-Ts", IDHeader: "X-Id", Signed: "{id}.{timestamp}.{body}"}
			if h.HMAC == nil || *h.HMAC != want || h.Tolerance != caddy.Duration(2*time.Minute) {
				t.Errorf("got %+v, tolerance %v", h.HMAC, h.Tolerance)
			}
		}, ""},
		{"provider twice", "groq_webhook s0123456789abcdef {\nprovider stripe\nprovider github\n}", nil, "provider is set twice"},
		{"provider without name", "groq_webhook s0123456789abcdef {\nprovider\n}", nil, "wrong argument count"},
		{"hmac without block", "groq_webhook s0123456789abcdef {\nprovider hmac\n}", nil, "signature_header"},
		{"block for stripe", "groq_webhook s0123456789abcdef {\nprovider stripe {\nsigned x\n}\n}", nil, "takes no block"},
		{"unknown hmac subdirective", "groq_webhook s0123456789abcdef {\nprovider hmac {\nsignature_header X\nnonce_header Y\n}\n}", nil, `unrecognized provider hmac subdirective "nonce_header"`},
		{"hmac field twice", "groq_webhook s0123456789abcdef {\nprovider hmac {\nsignature_header X\nsignature_header Y\n}\n}", nil, "set twice"},
		{"no secret, no key", "groq_webhook {\nprovider stripe\n}", nil, "needs a secret"},
		{"sign_upstream two args", "groq_webhook s0123456789abcdef {\nsign_upstream a b\n}", nil, "one secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, h)
		})
	}
}

// TestHandshakeWithQueue: with store-and-forward, a verified endpoint
// check is still answered at once, not queued; a normal event is queued.
func TestHandshakeWithQueue(t *testing.T) {
	slack := providerSites[4]
	h := slack.handler(t, func(h *Handler) {
		h.Dedupe = nil
		h.QueueRaw = json.RawMessage(`{"backend":"file","name":"handshake-test","path":` + strconvQuote(t.TempDir()) + `}`)
		h.DeliverRaw = json.RawMessage(`{"handler":"subroute","routes":[{"handle":[{"handler":"static_response","status_code":204}]}]}`)
	})
	defer h.Cleanup()
	challenge := `{"token":"x","challenge":"c-123","type":"url_verification"}`
	w, got := serveOnce(t, h, slack.request(t, []byte(challenge), time.Now()))
	if w.Code != http.StatusOK || got != nil || w.Body.String() != `{"challenge":"c-123"}` || w.Header().Get(QueuedHeader) != "" {
		t.Fatalf("handshake: status %d %s, queued %q", w.Code, w.Body, w.Header().Get(QueuedHeader))
	}
	w, _ = serveOnce(t, h, slack.request(t, slack.body, time.Now()))
	if w.Code != http.StatusAccepted || w.Header().Get(QueuedHeader) != "true" {
		t.Fatalf("event: status %d %s", w.Code, w.Body)
	}
}
