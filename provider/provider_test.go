package provider

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of every table: signed messages carry it.
var testNow = time.Unix(1_700_000_000, 0)

var (
	newSecret = []byte("new-secret-0123456789abcdef")
	oldSecret = []byte("old-secret-0123456789abcdef")
	// Ed25519 keys for Discord, from fixed seeds.
	newSeed = []byte("discord-seed-new-0123456789abcde")
	oldSeed = []byte("discord-seed-old-0123456789abcde")
)

// testHMAC is a Caddyfile-described scheme: base64 HMAC-SHA512 over the id,
// the timestamp and the body, with a prefix.
var testHMAC = func() *Scheme {
	s, err := HMACConfig{
		SignatureHeader: "X-Signature", SignaturePrefix: "sha512=", Encoding: "base64", Algorithm: "sha512",
		TimestampHeader: "X-Timestamp", IDHeader: "X-Event-Id", Signed: "{id}:{timestamp}:{body}",
	}.Scheme()
	if err != nil {
		panic(err)
	}
	return s
}()

// fixture is one provider's valid request, as its sender makes it.
type fixture struct {
	scheme *Scheme
	url    string // configured
	query  string
	ctype  string
	body   []byte
}

func fixtures() []fixture {
	ts := strconv.FormatInt(testNow.UnixMilli(), 10)
	form := url.Values{"CallSid": {"CA1"}, "From": {"+15550001"}, "Body": {"hello"}}
	return []fixture{
		{scheme: Groq, body: []byte(`{"id":"evt_1","type":"a.b"}`)},
		{scheme: Standard, body: []byte(`{"type":"a.b"}`)},
		{scheme: Svix, body: []byte(`{"type":"a.b"}`)},
		{scheme: Stripe, body: []byte(`{"id":"evt_1","type":"a.b"}`)},
		{scheme: GitHub, body: []byte(`{"action":"opened"}`)},
		{scheme: Slack, body: []byte(`{"event_id":"Ev1","event":{"type":"message"}}`)},
		{scheme: Shopify, body: []byte(`{"id":1}`)},
		{scheme: Paddle, body: []byte(`{"event_id":"evt_1","event_type":"a.b"}`)},
		{scheme: Linear, body: []byte(`{"type":"Issue","webhookTimestamp":` + ts + `}`)},
		{scheme: Zoom, body: []byte(`{"event":"meeting.started"}`)},
		{scheme: Discord, body: []byte(`{"id":"1","type":2}`)},
		{scheme: Square, url: "https://example.com/hooks/square", body: []byte(`{"event_id":"e1","type":"payment.created"}`)},
		{scheme: Twilio, url: "https://example.com/hooks/twilio", query: "a=1", ctype: "application/x-www-form-urlencoded", body: []byte(form.Encode())},
		{scheme: GitLab, body: []byte(`{"object_kind":"push"}`)},
		{scheme: testHMAC, body: []byte(`{"id":"evt_1"}`)},
	}
}

// keyFor returns what a sender signs with and what the verifier is given.
func (f fixture) config(keys ...[]byte) Config {
	cfg := Config{URL: f.url}
	for _, k := range keys {
		if f.scheme.Algorithm == Ed25519 {
			pub := ed25519.NewKeyFromSeed(k).Public().(ed25519.PublicKey)
			cfg.PublicKeys = append(cfg.PublicKeys, hex.EncodeToString(pub))
		} else {
			cfg.Secrets = append(cfg.Secrets, k)
		}
	}
	return cfg
}

// request signs f's body (or body, when given) with key at t.
func (f fixture) request(t *testing.T, key []byte, at time.Time, body []byte) Request {
	t.Helper()
	signedURL := f.url
	if f.query != "" {
		signedURL += "?" + f.query
	}
	header, err := f.scheme.Sign(key, Message{
		ID: "msg_1", Timestamp: strconv.FormatInt(at.Unix(), 10), URL: signedURL, ContentType: f.ctype, Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.ctype != "" {
		header.Set("Content-Type", f.ctype)
	}
	return Request{Header: header, Query: f.query}
}

func (f fixture) verifier(t *testing.T, keys ...[]byte) *Verifier {
	t.Helper()
	v, err := f.scheme.New(f.config(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestProviders runs every provider through the checks all of them share.
func TestProviders(t *testing.T) {
	for _, f := range fixtures() {
		key, other := newSecret, oldSecret
		if f.scheme.Algorithm == Ed25519 {
			key, other = newSeed, oldSeed
		}
		t.Run(f.scheme.Name, func(t *testing.T) {
			v := f.verifier(t, key)
			check := func(t *testing.T, v *Verifier, r Request, body []byte, want error) Result {
				t.Helper()
				res, err := v.Verify(r, body, testNow)
				if !errors.Is(err, want) || (want == nil && err != nil) {
					t.Fatalf("Verify = %v, want %v", err, want)
				}
				return res
			}
			t.Run("valid", func(t *testing.T) {
				check(t, v, f.request(t, key, testNow, f.body), f.body, nil)
			})
			t.Run("same bytes, same signature digest", func(t *testing.T) {
				a := check(t, v, f.request(t, key, testNow, f.body), f.body, nil)
				b := check(t, v, f.request(t, key, testNow, f.body), f.body, nil)
				if a.SignatureDigest != b.SignatureDigest {
					t.Fatal("digests differ")
				}
			})
			t.Run("tampered body", func(t *testing.T) {
				if f.scheme.Algorithm == Token {
					t.Skip("a token signs nothing")
				}
				tampered := append([]byte(nil), f.body...)
				tampered[len(tampered)-2] ^= 1
				check(t, v, f.request(t, key, testNow, f.body), tampered, ErrInvalidSignature)
			})
			t.Run("wrong secret", func(t *testing.T) {
				check(t, v, f.request(t, other, testNow, f.body), f.body, ErrInvalidSignature)
			})
			t.Run("rotation", func(t *testing.T) {
				both := f.verifier(t, other, key)
				if res := check(t, both, f.request(t, key, testNow, f.body), f.body, nil); res.Secret != 1 {
					t.Fatalf("matched secret %d, want 1", res.Secret)
				}
				if res := check(t, both, f.request(t, other, testNow, f.body), f.body, nil); res.Secret != 0 {
					t.Fatalf("matched secret %d, want 0", res.Secret)
				}
			})
			t.Run("missing signature", func(t *testing.T) {
				r := f.request(t, key, testNow, f.body)
				for _, name := range f.scheme.SignatureHeaders {
					r.Header.Del(name)
				}
				check(t, v, r, f.body, ErrMissingSignature)
			})
			t.Run("two signature headers", func(t *testing.T) {
				r := f.request(t, key, testNow, f.body)
				name := f.scheme.SignatureHeaders[0]
				r.Header[name] = append(r.Header[name], r.Header[name][0])
				check(t, v, r, f.body, ErrMalformedSignature)
			})
			if f.scheme.Timestamp == HeaderTimestamp || f.scheme.Timestamp == SignatureTimestamp {
				window := v.Tolerance()
				t.Run("past timestamp", func(t *testing.T) {
					at := testNow.Add(-window - time.Second)
					check(t, v, f.request(t, key, at, f.body), f.body, ErrStaleTimestamp)
				})
				t.Run("future timestamp", func(t *testing.T) {
					at := testNow.Add(window + time.Second)
					check(t, v, f.request(t, key, at, f.body), f.body, ErrFutureTimestamp)
				})
				t.Run("edge of the window", func(t *testing.T) {
					check(t, v, f.request(t, key, testNow.Add(-window), f.body), f.body, nil)
					check(t, v, f.request(t, key, testNow.Add(window), f.body), f.body, nil)
				})
				t.Run("tampered timestamp", func(t *testing.T) {
					r := f.request(t, key, testNow, f.body)
					old, changed := strconv.FormatInt(testNow.Unix(), 10), strconv.FormatInt(testNow.Unix()+1, 10)
					for name, values := range r.Header {
						r.Header[name] = []string{strings.Replace(values[0], old, changed, 1)}
					}
					check(t, v, r, f.body, ErrInvalidSignature)
				})
			}
			if f.scheme.IDHeader != "" {
				t.Run("tampered id", func(t *testing.T) {
					r := f.request(t, key, testNow, f.body)
					r.Header.Set(f.scheme.IDHeader, "msg_2")
					check(t, v, r, f.body, ErrInvalidSignature)
				})
				t.Run("missing id", func(t *testing.T) {
					r := f.request(t, key, testNow, f.body)
					r.Header.Del(f.scheme.IDHeader)
					check(t, v, r, f.body, ErrMissingID)
				})
			}
		})
	}
}

// TestMalformedHeaders covers each provider's own ways of being wrong.
func TestMalformedHeaders(t *testing.T) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	body := []byte(`{"id":"evt_1"}`)
	sign := func(s *Scheme, m Message) string {
		m.Body = body
		h, err := s.Sign(newSecret, m)
		if err != nil {
			t.Fatal(err)
		}
		return h.Get(s.SignatureHeaders[0])
	}
	stripeHex := strings.TrimPrefix(sign(Stripe, Message{Timestamp: ts}), "t="+ts+",v1=")
	paddleHex := strings.TrimPrefix(sign(Paddle, Message{Timestamp: ts}), "ts="+ts+";h1=")
	standardB64 := strings.TrimPrefix(sign(Standard, Message{ID: "msg_1", Timestamp: ts}), "v1,")
	githubHex := strings.TrimPrefix(sign(GitHub, Message{}), "sha256=")
	zeros := strings.Repeat("0", 64)
	tests := []struct {
		name   string
		scheme *Scheme
		header http.Header
		want   error
	}{
		{"stripe valid", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + stripeHex}}, nil},
		{"stripe several v1, one right", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + zeros + ",v1=" + stripeHex}}, nil},
		{"stripe v0 and unknown keys ignored", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v0=" + zeros + ",v2=x,v1=" + stripeHex}}, nil},
		{"stripe without t", Stripe, http.Header{"Stripe-Signature": {"v1=" + stripeHex}}, ErrMalformedSignature},
		{"stripe two t", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",t=" + ts + ",v1=" + stripeHex}}, ErrMalformedSignature},
		{"stripe v0 only", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v0=" + stripeHex}}, ErrMalformedSignature},
		{"stripe bad hex", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + stripeHex[:63] + "g"}}, ErrMalformedSignature},
		{"stripe short hex", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",v1=abc"}}, ErrMalformedSignature},
		{"stripe field without =", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ",junk,v1=" + stripeHex}}, ErrMalformedSignature},
		{"stripe lenient timestamp", Stripe, http.Header{"Stripe-Signature": {"t=+" + ts + ",v1=" + stripeHex}}, ErrMalformedTimestamp},
		{"stripe timestamp with fraction", Stripe, http.Header{"Stripe-Signature": {"t=" + ts + ".5,v1=" + stripeHex}}, ErrMalformedTimestamp},
		{"paddle valid", Paddle, http.Header{"Paddle-Signature": {"ts=" + ts + ";h1=" + paddleHex}}, nil},
		{"paddle several h1", Paddle, http.Header{"Paddle-Signature": {"ts=" + ts + ";h1=" + zeros + ";h1=" + paddleHex}}, nil},
		{"paddle h1 only", Paddle, http.Header{"Paddle-Signature": {"h1=" + paddleHex}}, ErrMalformedSignature},
		{"paddle ts only", Paddle, http.Header{"Paddle-Signature": {"ts=" + ts}}, ErrMalformedSignature},
		{"paddle comma-separated", Paddle, http.Header{"Paddle-Signature": {"ts=" + ts + ",h1=" + paddleHex}}, ErrMalformedSignature},
		{"standard valid", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v1," + standardB64}}, nil},
		{"standard other versions ignored", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v1a,xyz v2,abc v1," + standardB64}}, nil},
		{"standard several v1", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v1," + strings.Repeat("A", 43) + "= v1," + standardB64}}, nil},
		{"standard v1 with bad base64", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v1,!!!" + standardB64[3:]}}, ErrMalformedSignature},
		{"standard v1 of the wrong length", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v1," + standardB64[:40]}}, ErrMalformedSignature},
		{"standard entry without comma", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {standardB64}}, ErrMalformedSignature},
		{"standard no v1", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v2," + standardB64}}, ErrMalformedSignature},
		{"standard missing timestamp", Standard, http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Signature": {"v1," + standardB64}}, ErrMissingTimestamp},
		{"github valid", GitHub, http.Header{"X-Hub-Signature-256": {"sha256=" + githubHex}}, nil},
		{"github sha1= never verifies", GitHub, http.Header{"X-Hub-Signature-256": {"sha1=" + githubHex[:40]}}, ErrMalformedSignature},
		{"github SHA-1 header alone", GitHub, http.Header{"X-Hub-Signature": {"sha1=" + githubHex[:40]}}, ErrMissingSignature},
		{"github without prefix", GitHub, http.Header{"X-Hub-Signature-256": {githubHex}}, ErrMalformedSignature},
		{"github odd length", GitHub, http.Header{"X-Hub-Signature-256": {"sha256=" + githubHex[:63]}}, ErrMalformedSignature},
		{"slack without v0=", Slack, http.Header{"X-Slack-Request-Timestamp": {ts}, "X-Slack-Signature": {zeros}}, ErrMalformedSignature},
		{"zoom without timestamp", Zoom, http.Header{"X-Zm-Signature": {"v0=" + zeros}}, ErrMissingTimestamp},
		{"shopify lower-case header name", Shopify, http.Header{"Shopify-Hmac-Sha256": {sign(Shopify, Message{})}}, nil},
		{"shopify hex instead of base64", Shopify, http.Header{"X-Shopify-Hmac-Sha256": {githubHex}}, ErrMalformedSignature},
		{"discord short signature", Discord, http.Header{"X-Signature-Timestamp": {ts}, "X-Signature-Ed25519": {zeros}}, ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Secrets: [][]byte{newSecret}}
			if tt.scheme.Algorithm == Ed25519 {
				cfg = fixture{scheme: Discord}.config(newSeed)
			}
			v, err := tt.scheme.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(Request{Header: tt.header}, body, testNow)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestBoundedHeaders: a header with thousands of entries is refused after
// MaxCandidates signatures, before any HMAC is compared with them.
func TestBoundedHeaders(t *testing.T) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	zeros := strings.Repeat("0", 64)
	b64 := strings.Repeat("A", 43) + "="
	many := func(entry, sep string) string { return strings.TrimSuffix(strings.Repeat(entry+sep, 5000), sep) }
	tests := []struct {
		scheme *Scheme
		header http.Header
	}{
		{Groq, http.Header{"X-Groq-Timestamp": {ts}, "X-Groq-Signature": {many(zeros, ",")}}},
		{Stripe, http.Header{"Stripe-Signature": {"t=" + ts + "," + many("v1="+zeros, ",")}}},
		{Paddle, http.Header{"Paddle-Signature": {"ts=" + ts + ";" + many("h1="+zeros, ";")}}},
		{Standard, http.Header{"Webhook-Id": {"m"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {many("v1,"+b64, " ")}}},
		{GitHub, http.Header{"X-Hub-Signature-256": {many("sha256="+zeros, ",")}}},
	}
	for _, tt := range tests {
		t.Run(tt.scheme.Name, func(t *testing.T) {
			v, err := tt.scheme.New(Config{Secrets: [][]byte{newSecret}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Begin(Request{Header: tt.header}, testNow)
			defer v.Release(c)
			if !errors.Is(err, ErrMalformedSignature) {
				t.Fatalf("Begin = %v, want %v", err, ErrMalformedSignature)
			}
			if c.n > MaxCandidates {
				t.Fatalf("%d candidates kept", c.n)
			}
		})
	}
}

// TestVerifyAllocations: every HMAC provider verifies without allocating.
func TestVerifyAllocations(t *testing.T) {
	for _, f := range fixtures() {
		if f.scheme.Algorithm == Ed25519 || f.scheme.Algorithm == Token || f.scheme.BuildMessage != nil {
			continue
		}
		t.Run(f.scheme.Name, func(t *testing.T) {
			v := f.verifier(t, oldSecret, newSecret)
			r := f.request(t, newSecret, testNow, f.body)
			allocs := testing.AllocsPerRun(100, func() {
				if res, err := v.Verify(r, f.body, testNow); err != nil || res.Secret != 1 {
					t.Fatalf("Verify = %+v, %v", res, err)
				}
			})
			if allocs != 0 && !raceEnabled {
				t.Errorf("Verify allocates %v times, want 0", allocs)
			}
		})
	}
}
