package groqwebhook

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every provider end to end through a real Caddy: one site with a handle
// per provider, each proxying to an upstream of its own that records what
// it got. Requests are signed by the senders' npm packages where they
// publish one, else as the sender documents (provider_signers_test.go).

// providerCase is one sender: how the site is configured for it, a valid
// event, how the sender signs it, and what the upstream must then see.
type providerCase struct {
	name   string
	config string // the lines inside groq_webhook
	// secret signs the valid request and wrong the forgery (for discord:
	// the hex seeds of two Ed25519 keys).
	secret, wrong string
	body          string
	contentType   string // default application/json
	// goSign signs body as the sender documents: the request's path and
	// query, and its headers. npm, instead, is the job for sign.js.
	goSign func(t *testing.T, secret string, ts time.Time, body string) (string, http.Header)
	npm    func(secret string, ts time.Time, body string) npmJob
	// unsigned are headers the sender sends unsigned: event type, delivery id.
	unsigned http.Header
	// deliveryHeader is the unsigned delivery id header a replayer may change.
	deliveryHeader string
	// What the upstream must see: X-*-Event-Id ("" for none), the event
	// type ("" for none) and {http.groq_webhook.delivery_id}.
	wantID, wantType, wantDelivery string
}

const siteBase = "https://hooks.example.test"

// The senders' secrets. Standard Webhooks and Svix secrets are whsec_ and
// base64; the bytes after whsec_ are the key.
const (
	stdSecret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	stdWrongSecret = "whsec_bm90LXRoZS1zZW5kZXJzLXNlY3JldC0wMDA="
	rawWrongSecret = "not-the-senders-secret-0123456789"
	discordSeed    = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	discordWrong   = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
)

func providerCases(t *testing.T, now time.Time) []providerCase {
	discordPublic := hex.EncodeToString(ed25519Key(t, discordSeed).Public().(ed25519.PublicKey))
	return []providerCase{
		{
			name:   "groq",
			config: "secret {{secret_groq}}",
			secret: testSecret, wrong: rawWrongSecret,
			body: `{"id":"evt_groq_e2e","type":"resource.created","data":{}}`,
			goSign: func(t *testing.T, secret string, ts time.Time, body string) (string, http.Header) {
				return "/hooks/groq", headerOf("X-Groq-Timestamp", unixString(ts),
					"X-Groq-Signature", hmacSHA256Hex(secret, unixString(ts), ".", body))
			},
			wantID: "evt_groq_e2e", wantType: "resource.created",
		},
		{
			name:   "standard",
			config: "provider standard\n\t\t\tsecret {{secret_standard}}",
			secret: stdSecret, wrong: stdWrongSecret,
			body: `{"type":"invoice.paid","data":{"amount":1200}}`,
			npm: func(secret string, ts time.Time, body string) npmJob {
				return npmJob{Provider: "standard", Secret: secret, ID: "msg_std_e2e", Timestamp: ts.Unix(), Body: &body}
			},
			wantID: "msg_std_e2e", wantType: "invoice.paid",
		},
		{
			name:   "svix",
			config: "provider svix\n\t\t\tsecret {{secret_svix}}",
			secret: stdSecret, wrong: stdWrongSecret,
			body: `{"type":"user.created","data":{"id":"user_1"}}`,
			npm: func(secret string, ts time.Time, body string) npmJob {
				return npmJob{Provider: "svix", Secret: secret, ID: "msg_svix_e2e", Timestamp: ts.Unix(), Body: &body}
			},
			wantID: "msg_svix_e2e", wantType: "user.created",
		},
		{
			name:   "stripe",
			config: "provider stripe\n\t\t\tsecret {{secret_stripe}}",
			secret: "whsec_stripe_e2e_0123456789abcdef", wrong: "whsec_not_the_senders_0123456789",
			body: `{"id":"evt_stripe_e2e","object":"event","type":"payment_intent.succeeded","data":{"object":{}}}`,
			npm: func(secret string, ts time.Time, body string) npmJob {
				return npmJob{Provider: "stripe", Secret: secret, Timestamp: ts.Unix(), Body: &body}
			},
			wantID: "evt_stripe_e2e", wantType: "payment_intent.succeeded",
		},
		{
			name:   "github",
			config: "provider github\n\t\t\tsecret {{secret_github}}",
			secret: "github-e2e-secret-0123456789", wrong: rawWrongSecret,
			body: `{"action":"opened","number":7,"repository":{"full_name":"octo/repo"}}`,
			npm: func(secret string, _ time.Time, body string) npmJob {
				return npmJob{Provider: "github", Secret: secret, Body: &body}
			},
			unsigned: headerOf("X-GitHub-Event", "pull_request",
				"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
			deliveryHeader: "X-GitHub-Delivery",
			wantType:       "pull_request", wantDelivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		},
		{
			name:   "slack",
			config: "provider slack\n\t\t\tsecret {{secret_slack}}",
			secret: "slack-e2e-signing-secret-0123", wrong: rawWrongSecret,
			body: `{"token":"x","team_id":"T1","type":"event_callback","event_id":"Ev_slack_e2e",` +
				`"event":{"type":"app_mention","text":"hi"}}`,
			goSign: func(t *testing.T, secret string, ts time.Time, body string) (string, http.Header) {
				return "/hooks/slack", headerOf("X-Slack-Request-Timestamp", unixString(ts),
					"X-Slack-Signature", "v0="+hmacSHA256Hex(secret, "v0:", unixString(ts), ":", body))
			},
			wantID: "Ev_slack_e2e", wantType: "app_mention",
		},
		{
			name:   "shopify",
			config: "provider shopify\n\t\t\tsecret {{secret_shopify}}",
			secret: "shopify-e2e-client-secret-0123", wrong: rawWrongSecret,
			body: `{"id":820982911946154500,"email":"jon@example.com","total_price":"10.00"}`,
			goSign: func(t *testing.T, secret string, _ time.Time, body string) (string, http.Header) {
				return "/hooks/shopify", headerOf("X-Shopify-Hmac-Sha256", hmacSHA256Base64(secret, body))
			},
			unsigned: headerOf("X-Shopify-Topic", "orders/create",
				"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
			deliveryHeader: "X-Shopify-Event-Id",
			wantType:       "orders/create", wantDelivery: "98880550-7158-44d4-b7cd-2c97c8a091b5",
		},
		{
			name:   "paddle",
			config: "provider paddle\n\t\t\tsecret {{secret_paddle}}",
			secret: "pdl_ntfset_e2e_0123456789abcdef", wrong: rawWrongSecret,
			body: `{"event_id":"evt_paddle_e2e","event_type":"transaction.completed","data":{}}`,
			goSign: func(t *testing.T, secret string, ts time.Time, body string) (string, http.Header) {
				return "/hooks/paddle", headerOf("Paddle-Signature",
					"ts="+unixString(ts)+";h1="+hmacSHA256Hex(secret, unixString(ts), ":", body))
			},
			wantID: "evt_paddle_e2e", wantType: "transaction.completed",
		},
		{
			name:   "linear",
			config: "provider linear\n\t\t\tsecret {{secret_linear}}",
			secret: "lin_wh_e2e_0123456789abcdef", wrong: rawWrongSecret,
			body: `{"action":"create","type":"Issue","data":{"id":"i1"},"webhookTimestamp":` +
				strconv.FormatInt(now.UnixMilli(), 10) + `}`,
			goSign: func(t *testing.T, secret string, _ time.Time, body string) (string, http.Header) {
				return "/hooks/linear", headerOf("Linear-Signature", hmacSHA256Hex(secret, body))
			},
			unsigned:       headerOf("Linear-Event", "Issue", "Linear-Delivery", "234d1a4e-b617-4388-90fe-adc3633d6b72"),
			deliveryHeader: "Linear-Delivery",
			wantType:       "Issue", wantDelivery: "234d1a4e-b617-4388-90fe-adc3633d6b72",
		},
		{
			name:   "zoom",
			config: "provider zoom\n\t\t\tsecret {{secret_zoom}}",
			secret: "zoom-e2e-secret-token-0123", wrong: rawWrongSecret,
			body:     `{"event":"meeting.started","event_ts":1626230691572,"payload":{"object":{"id":"1"}}}`,
			goSign:   zoomSign,
			wantType: "meeting.started",
		},
		{
			name:   "discord",
			config: "provider discord\n\t\t\tpublic_key " + discordPublic,
			secret: discordSeed, wrong: discordWrong,
			body:   `{"id":"1141231234567890123","type":2,"data":{"name":"ping"}}`,
			goSign: discordSign,
			wantID: "1141231234567890123", wantType: "2",
		},
		{
			name:   "square",
			config: "provider square\n\t\t\tsecret {{secret_square}}\n\t\t\turl " + siteBase + "/hooks/square",
			secret: "square-e2e-signature-key-0123", wrong: rawWrongSecret,
			body: `{"merchant_id":"M1","type":"payment.updated","event_id":"sq_evt_e2e","data":{}}`,
			goSign: func(t *testing.T, secret string, _ time.Time, body string) (string, http.Header) {
				return "/hooks/square", headerOf("x-square-hmacsha256-signature",
					hmacSHA256Base64(secret, siteBase+"/hooks/square", body))
			},
			wantID: "sq_evt_e2e", wantType: "payment.updated",
		},
		{
			name:   "twilio",
			config: "provider twilio\n\t\t\tsecret {{secret_twilio}}\n\t\t\turl " + siteBase + "/hooks/twilio",
			secret: "twilio-e2e-auth-token-0123456", wrong: rawWrongSecret,
			body:        url.Values{"CallSid": {"CA1234567890ABCDE"}, "Digits": {"1234"}, "From": {"+12349013030"}}.Encode(),
			contentType: "application/x-www-form-urlencoded",
			npm: func(secret string, _ time.Time, body string) npmJob {
				form, _ := url.ParseQuery(body)
				params := map[string]string{}
				for k := range form {
					params[k] = form.Get(k)
				}
				return npmJob{Provider: "twilio", Secret: secret, URL: siteBase + "/hooks/twilio", Params: params}
			},
			unsigned:       headerOf("I-Twilio-Idempotency-Token", "0b6f5b08-0f8a-4a4c-9d9e-0c0d2a3f7e11"),
			deliveryHeader: "I-Twilio-Idempotency-Token",
			wantDelivery:   "0b6f5b08-0f8a-4a4c-9d9e-0c0d2a3f7e11",
		},
		{
			name:   "twilio-json",
			config: "provider twilio\n\t\t\tsecret {{secret_twilio-json}}\n\t\t\turl " + siteBase + "/hooks/twilio-json",
			secret: "twilio-e2e-auth-token-0123456", wrong: rawWrongSecret,
			body: `{"CallSid":"CA1234567890ABCDE","CallStatus":"completed"}`,
			npm: func(secret string, _ time.Time, body string) npmJob {
				return npmJob{Provider: "twilio", Secret: secret, URL: siteBase + "/hooks/twilio-json", Body: &body}
			},
		},
		{
			name:   "gitlab",
			config: "provider gitlab\n\t\t\tsecret {{secret_gitlab}}",
			secret: "gitlab-e2e-secret-token-0123", wrong: rawWrongSecret,
			body: `{"object_kind":"push","ref":"refs/heads/main","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}`,
			goSign: func(t *testing.T, secret string, _ time.Time, body string) (string, http.Header) {
				return "/hooks/gitlab", headerOf("X-Gitlab-Token", secret)
			},
			unsigned: headerOf("X-Gitlab-Event", "Push Hook",
				"Idempotency-Key", "f5a9e2c4-58f0-4cc5-9ad6-6e3a4f0e2a61"),
			deliveryHeader: "Idempotency-Key",
			wantType:       "Push Hook", wantDelivery: "f5a9e2c4-58f0-4cc5-9ad6-6e3a4f0e2a61",
		},
		{
			name: "hmac",
			config: `provider hmac {
				signature_header X-Acme-Signature
				signature_prefix sha256=
				encoding base64
				timestamp_header X-Acme-Timestamp
				id_header X-Acme-Delivery
				signed "{id}:{timestamp}:{body}"
			}
			secret {{secret_hmac}}`,
			secret: "acme-e2e-secret-0123456789", wrong: rawWrongSecret,
			body: `{"type":"order.shipped","order":42}`,
			goSign: func(t *testing.T, secret string, ts time.Time, body string) (string, http.Header) {
				return "/hooks/hmac", headerOf("X-Acme-Delivery", "acme_e2e_1", "X-Acme-Timestamp", unixString(ts),
					"X-Acme-Signature", "sha256="+hmacSHA256Base64(secret, "acme_e2e_1:", unixString(ts), ":", body))
			},
			wantID: "acme_e2e_1", wantType: "order.shipped",
		},
	}
}

// zoomSign signs as Zoom documents: v0= hex HMAC-SHA256 of "v0:" ts ":" body.
func zoomSign(t *testing.T, secret string, ts time.Time, body string) (string, http.Header) {
	return "/hooks/zoom", headerOf("x-zm-request-timestamp", unixString(ts),
		"x-zm-signature", "v0="+hmacSHA256Hex(secret, "v0:", unixString(ts), ":", body))
}

// discordSign signs as Discord does: Ed25519 over the timestamp then the
// body, hex. The secret is the key's seed.
func discordSign(t *testing.T, seed string, ts time.Time, body string) (string, http.Header) {
	sig := ed25519.Sign(ed25519Key(t, seed), []byte(unixString(ts)+body))
	return "/hooks/discord", headerOf("X-Signature-Timestamp", unixString(ts),
		"X-Signature-Ed25519", hex.EncodeToString(sig))
}

// providerRequest is a signed request, ready to send any number of times.
type providerRequest struct {
	target string // path and query
	header http.Header
	body   string
}

func (p providerRequest) build(t *testing.T, site string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, site+p.target, strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range p.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	return req
}

// signProviderRequests signs each case's valid event with its secret and a
// forgery (the same event, signed with the wrong secret), the npm ones in
// one run of node.
func signProviderRequests(t *testing.T, cases []providerCase, ts time.Time) (valid, forged map[string]providerRequest) {
	t.Helper()
	valid, forged = map[string]providerRequest{}, map[string]providerRequest{}
	var jobs []npmJob
	var jobCases []providerCase
	for _, c := range cases {
		if c.npm != nil {
			jobs = append(jobs, c.npm(c.secret, ts, c.body), c.npm(c.wrong, ts, c.body))
			jobCases = append(jobCases, c)
			continue
		}
		target, h := c.goSign(t, c.secret, ts, c.body)
		valid[c.name] = providerRequest{target, withSent(c, h), c.body}
		target, h = c.goSign(t, c.wrong, ts, c.body)
		forged[c.name] = providerRequest{target, withSent(c, h), c.body}
	}
	signed := npmSign(t, jobs)
	for i, c := range jobCases {
		for j, into := range []map[string]providerRequest{valid, forged} {
			s := signed[2*i+j]
			target := "/hooks/" + c.name
			if s.URL != "" {
				u, err := url.Parse(s.URL)
				if err != nil {
					t.Fatal(err)
				}
				target = u.RequestURI()
			}
			h := http.Header{}
			for k, v := range s.Headers {
				h[k] = []string{v}
			}
			into[c.name] = providerRequest{target, withSent(c, h), c.body}
		}
	}
	return valid, forged
}

// withSent adds what every request of the case carries besides its
// signature: the content type and the sender's unsigned headers.
func withSent(c providerCase, signature http.Header) http.Header {
	h := signature.Clone()
	ct := c.contentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	for k, vs := range c.unsigned {
		h[k] = append(h[k], vs...)
	}
	return h
}

// clientCopies are the verified headers of both families, as a client
// might send them itself, some spelled with other punctuation, which
// backends read alike.
var clientCopies = headerOf(
	"X-Groq-Verified", "true", "X-Groq-Event-Id", "evt_forged", "X-Groq-Event-Type", "forged.type",
	"X-Webhook-Verified", "true", "X-Webhook-Event-Id", "evt_forged", "X-Webhook-Event-Type", "forged.type",
	"X-Webhook-Provider", "forged", "X-Webhook_Event_Id", "evt_forged_underscore", "x-webhook.provider", "forged.dot",
)

// verifiedNames are the folded names of every verified header.
var verifiedNames = []string{
	"x-groq-verified", "x-groq-event-id", "x-groq-event-type",
	"x-webhook-verified", "x-webhook-event-id", "x-webhook-event-type", "x-webhook-provider",
}

// wantVerifiedHeaders checks that the upstream saw exactly the verified
// headers of the case's family, once each, with the right values.
func wantVerifiedHeaders(t *testing.T, c providerCase, got http.Header) {
	t.Helper()
	want := map[string]string{}
	provider := strings.TrimSuffix(c.name, "-json")
	if provider == "groq" {
		want["x-groq-verified"] = "true"
		want["x-groq-event-id"] = c.wantID
		want["x-groq-event-type"] = c.wantType
	} else {
		want["x-webhook-verified"] = "true"
		want["x-webhook-provider"] = provider
		want["x-webhook-event-id"] = c.wantID
		want["x-webhook-event-type"] = c.wantType
	}
	seen := map[string][]string{}
	for name, vs := range got {
		folded := headerMatchForm(name)
		for _, v := range verifiedNames {
			if folded == v {
				seen[v] = append(seen[v], vs...)
			}
		}
	}
	for _, name := range verifiedNames {
		switch w := want[name]; {
		case w == "" && len(seen[name]) > 0:
			t.Errorf("upstream got %s %q, want none", name, seen[name])
		case w != "" && (len(seen[name]) != 1 || seen[name][0] != w):
			t.Errorf("upstream got %s %q, want exactly %q", name, seen[name], w)
		}
	}
	if p := got.Get("X-Seen-Provider"); p != provider {
		t.Errorf("{http.groq_webhook.provider} = %q, want %q", p, provider)
	}
	// Without a delivery id the placeholder is empty, not its own text.
	if d := got.Get("X-Seen-Delivery-Id"); d != c.wantDelivery {
		t.Errorf("{http.groq_webhook.delivery_id} = %q, want %q", d, c.wantDelivery)
	}
}

// providersSite is one site with a handle per case, each proxying to its
// upstream and passing two placeholders on as headers.
func providersSite(cases []providerCase) string {
	var b strings.Builder
	b.WriteString("http://127.0.0.1:{{port}} {\n\tbind 127.0.0.1\n")
	for _, c := range cases {
		fmt.Fprintf(&b, `	handle /hooks/%s {
		groq_webhook {
			%s
		}
		reverse_proxy {{upstream_%s}} {
			header_up X-Seen-Provider {http.groq_webhook.provider}
			header_up X-Seen-Delivery-Id {http.groq_webhook.delivery_id}
		}
	}
`, c.name, c.config, c.name)
	}
	b.WriteString("}\n")
	return b.String()
}

func TestProvidersEndToEnd(t *testing.T) {
	now := time.Now()
	cases := providerCases(t, now)
	valid, forged := signProviderRequests(t, cases, now)
	vars := map[string]string{}
	upstreams := map[string]*upstream{}
	for _, c := range cases {
		upstreams[c.name] = newUpstream(t)
		vars["upstream_"+c.name] = upstreams[c.name].addr()
		vars["secret_"+c.name] = c.secret
	}
	// The port is picked last: a port freed before the upstreams listen
	// could be given to one of them.
	vars["port"] = strconv.Itoa(freePort(t))
	startCaddy(t, providersSite(cases), vars)
	site := "http://127.0.0.1:" + vars["port"]

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := upstreams[c.name]

			// A forgery: the same event signed with another secret.
			got := do(t, forged[c.name].build(t, site))
			if got.Status != http.StatusUnauthorized || got.Body != `{"error":"invalid signature"}` {
				t.Errorf("forgery: got %d %s, want 401 invalid signature", got.Status, got.Body)
			}
			if n := len(up.received()); n != 0 {
				t.Fatalf("forgery: upstream got %d requests, want none", n)
			}

			// The valid event, with client copies of the verified headers.
			req := valid[c.name].build(t, site)
			for k, vs := range clientCopies {
				req.Header[k] = append(req.Header[k], vs...)
			}
			got = do(t, req)
			if got.Status != http.StatusOK || got.Body != `{"upstream":true}` {
				t.Fatalf("valid event: got %d %s, want the upstream's 200", got.Status, got.Body)
			}
			received := up.received()
			if len(received) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(received))
			}
			if r := received[0]; !bytes.Equal(r.Body, []byte(c.body)) || r.ContentLength != int64(len(c.body)) {
				t.Errorf("upstream got body %q (Content-Length %d), want the %d bytes sent: %q",
					r.Body, r.ContentLength, len(c.body), c.body)
			}
			wantVerifiedHeaders(t, c, received[0].Header)

			// The same event again, with its unsigned delivery id changed:
			// de-duplication keys only on signed bytes.
			replay := valid[c.name]
			replay.header = replay.header.Clone()
			if c.deliveryHeader != "" {
				replay.header.Set(c.deliveryHeader, "replayed-"+c.wantDelivery)
			}
			got = do(t, replay.build(t, site))
			if got.Status != http.StatusOK || got.Body != duplicateBody {
				t.Errorf("replay: got %d %s, want 200 %s", got.Status, got.Body, duplicateBody)
			}
			wantHeader(t, got.Header, DuplicateHeader, "true")
			if n := len(up.received()); n != 1 {
				t.Errorf("after the replay the upstream got %d requests, want 1", n)
			}
		})
	}
}

// handshakeCase is a sender's endpoint check, answered by the edge.
type handshakeCase struct {
	provider string
	body     string
	sign     func(t *testing.T, secret string, ts time.Time, body string) (string, http.Header)
	secret   string
	wrong    string
	want     map[string]any
}

func TestProviderHandshakes(t *testing.T) {
	const (
		slackSecret = "slack-e2e-signing-secret-0123"
		zoomSecret  = "zoom-e2e-secret-token-0123"
		challenge   = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
		plainToken  = "qgg8vlvZRS6UYooatFL8Aw"
	)
	discordPublic := hex.EncodeToString(ed25519Key(t, discordSeed).Public().(ed25519.PublicKey))
	slackSign := func(t *testing.T, secret string, ts time.Time, body string) (string, http.Header) {
		return "/hooks/slack", headerOf("X-Slack-Request-Timestamp", unixString(ts),
			"X-Slack-Signature", "v0="+hmacSHA256Hex(secret, "v0:", unixString(ts), ":", body))
	}
	cases := []handshakeCase{
		{
			provider: "slack", secret: slackSecret, wrong: rawWrongSecret, sign: slackSign,
			body: `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"` + challenge + `","type":"url_verification"}`,
			want: map[string]any{"challenge": challenge},
		},
		{
			provider: "zoom", secret: zoomSecret, wrong: rawWrongSecret, sign: zoomSign,
			body: `{"payload":{"plainToken":"` + plainToken + `"},"event_ts":1654503849680,"event":"endpoint.url_validation"}`,
			// Zoom's documented answer: the token, and its hex HMAC-SHA256
			// under the secret token.
			want: map[string]any{"plainToken": plainToken, "encryptedToken": hmacSHA256Hex(zoomSecret, plainToken)},
		},
		{
			provider: "discord", secret: discordSeed, wrong: discordWrong, sign: discordSign,
			body: `{"id":"1141231234567890124","application_id":"11412312345","type":1,"version":1}`,
			want: map[string]any{"type": float64(1)},
		},
	}
	up := newUpstream(t)
	port := strconv.Itoa(freePort(t))
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	handle /hooks/slack {
		groq_webhook {
			provider slack
			secret {{slack}}
		}
		reverse_proxy {{upstream}}
	}
	handle /hooks/zoom {
		groq_webhook {
			provider zoom
			secret {{zoom}}
		}
		reverse_proxy {{upstream}}
	}
	handle /hooks/discord {
		groq_webhook {
			provider discord
			public_key {{discord}}
		}
		reverse_proxy {{upstream}}
	}
}
`, map[string]string{"port": port, "upstream": up.addr(), "slack": slackSecret, "zoom": zoomSecret, "discord": discordPublic})
	site := "http://127.0.0.1:" + port

	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			send := func(secret string) response {
				target, h := c.sign(t, secret, time.Now(), c.body)
				h.Set("Content-Type", "application/json")
				return do(t, providerRequest{target, h, c.body}.build(t, site))
			}
			// Unverified, the handshake is a forgery like any other.
			if got := send(c.wrong); got.Status != http.StatusUnauthorized {
				t.Errorf("handshake signed with the wrong secret: got %d %s, want 401", got.Status, got.Body)
			}
			// Twice: de-duplication must not record a handshake, or the
			// sender's second check would get a duplicate's answer.
			for i := range 2 {
				got := send(c.secret)
				if got.Status != http.StatusOK {
					t.Fatalf("handshake %d: got %d %s, want 200", i+1, got.Status, got.Body)
				}
				if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("handshake %d: Content-Type %q, want application/json", i+1, ct)
				}
				var answer map[string]any
				if err := json.Unmarshal([]byte(got.Body), &answer); err != nil {
					t.Fatalf("handshake %d: answer %q is not JSON: %v", i+1, got.Body, err)
				}
				if fmt.Sprint(answer) != fmt.Sprint(c.want) {
					t.Errorf("handshake %d: answer %s, want %v", i+1, got.Body, c.want)
				}
			}
		})
	}
	if n := len(up.received()); n != 0 {
		t.Errorf("the upstream got %d requests; handshakes must not be forwarded", n)
	}
}

// TestProviderSignUpstream checks sign_upstream with a backend that
// verifies Standard Webhooks signatures with the standardwebhooks npm
// package, as a backend on another host would.
func TestProviderSignUpstream(t *testing.T) {
	const (
		upstreamSecret = "whsec_dXBzdHJlYW0tZTJlLXNlY3JldC0wMTIzNDU2Nzg5"
		stripeSecret   = "whsec_stripe_e2e_0123456789abcdef"
	)
	node := startNodeUpstream(t, upstreamSecret)
	now := time.Now()
	stripeBody := `{"id":"evt_signed_hop","object":"event","type":"charge.refunded"}`
	stdBody := `{"type":"invoice.paid","data":{"n":2}}`
	signed := npmSign(t, []npmJob{
		{Provider: "stripe", Secret: stripeSecret, Timestamp: now.Unix(), Body: &stripeBody},
		{Provider: "standard", Secret: stdSecret, ID: "msg_signed_hop", Timestamp: now.Unix(), Body: &stdBody},
		{Provider: "stripe", Secret: stripeSecret, Timestamp: now.Unix(), Body: &stdBody},
	})
	port := strconv.Itoa(freePort(t))
	startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	handle /hooks/stripe {
		groq_webhook {
			provider stripe
			secret {{stripe}}
			sign_upstream {{upstream_secret}}
		}
		reverse_proxy {{node}}
	}
	handle /hooks/standard {
		groq_webhook {
			provider standard
			secret {{standard}}
			sign_upstream {{upstream_secret}}
		}
		reverse_proxy {{node}}
	}
	handle /hooks/unsigned-hop {
		groq_webhook {
			provider stripe
			secret {{stripe}}
		}
		reverse_proxy {{node}}
	}
}
`, map[string]string{"port": port, "node": node.addr, "upstream_secret": upstreamSecret,
		"stripe": stripeSecret, "standard": stdSecret})
	site := "http://127.0.0.1:" + port

	send := func(path, body string, h map[string]string, extra ...string) response {
		header := headerOf(extra...)
		for k, v := range h {
			header.Set(k, v)
		}
		header.Set("Content-Type", "application/json")
		return do(t, providerRequest{path, header, body}.build(t, site))
	}
	// A stripe event whose client also sent webhook-* headers of its own:
	// they must be replaced.
	if got := send("/hooks/stripe", stripeBody, signed[0].Headers,
		"webhook-id", "msg_client", "webhook-timestamp", unixString(now), "webhook-signature", "v1,AAAA"); got.Status != http.StatusOK {
		t.Fatalf("stripe event: got %d %s, want 200 from the verifying upstream", got.Status, got.Body)
	}
	// A Standard Webhooks event: the sender's webhook-* headers are signed
	// with the sender's secret; the upstream must get ones signed with its own.
	if got := send("/hooks/standard", stdBody, signed[1].Headers); got.Status != http.StatusOK {
		t.Fatalf("standard event: got %d %s, want 200 from the verifying upstream", got.Status, got.Body)
	}
	// Without sign_upstream the backend refuses: it does verify.
	if got := send("/hooks/unsigned-hop", stdBody, signed[2].Headers); got.Status != http.StatusUnauthorized {
		t.Errorf("event forwarded without sign_upstream: got %d %s, want the upstream's 401", got.Status, got.Body)
	}

	records := node.received(t)
	if len(records) != 3 {
		t.Fatalf("node upstream got %d requests, want 3", len(records))
	}
	for i, want := range []struct {
		body string
		id   string
	}{{stripeBody, "evt_signed_hop"}, {stdBody, "msg_signed_hop"}} {
		r := records[i]
		if !r.Verified {
			t.Errorf("request %d: standardwebhooks refused it: %s (headers %v)", i, r.Error, r.Headers)
		}
		if string(r.Body) != want.body {
			t.Errorf("request %d: body %q, want %q", i, r.Body, want.body)
		}
		if id := r.Headers["webhook-id"]; id == "" || id == "msg_client" || !strings.Contains(id, want.id) {
			t.Errorf("request %d: webhook-id %q, want the event's key (holding %q)", i, id, want.id)
		}
		if sig := r.Headers["webhook-signature"]; strings.Contains(sig, "AAAA") {
			t.Errorf("request %d: webhook-signature %q still holds the client's", i, sig)
		}
	}
	if records[2].Verified {
		t.Errorf("the upstream verified a request forwarded without sign_upstream: it checks nothing")
	}
}

// TestProviderQueuedDelivery runs a GitHub delivery through store-and-
// forward, in a `caddy run` process: it is answered 202, then delivered
// by deliver { reverse_proxy } with the provider's headers and a
// sign_upstream signature the standardwebhooks package accepts.
func TestProviderQueuedDelivery(t *testing.T) {
	const (
		githubSecret   = "github-e2e-secret-0123456789"
		upstreamSecret = "whsec_dXBzdHJlYW0tZTJlLXNlY3JldC0wMTIzNDU2Nzg5"
	)
	node := startNodeUpstream(t, upstreamSecret)
	body := `{"action":"completed","check_run":{"id":4}}`
	signed := npmSign(t, []npmJob{{Provider: "github", Secret: githubSecret, Body: &body}})
	port := strconv.Itoa(freePort(t))
	startCaddyProcess(t, `
http://127.0.0.1:`+port+` {
	bind 127.0.0.1
	groq_webhook {
		provider github
		secret `+githubSecret+`
		sign_upstream `+upstreamSecret+`
		queue {
			path `+t.TempDir()+`
			retry 200ms
		}
		deliver {
			reverse_proxy `+node.addr+`
		}
	}
}
`)
	site := "http://127.0.0.1:" + port
	header := headerOf("Content-Type", "application/json", "X-GitHub-Event", "check_run",
		"X-GitHub-Delivery", "d1e5c0de-0000-4000-8000-000000000001", "X-Webhook-Provider", "forged")
	for k, v := range signed[0].Headers {
		header.Set(k, v)
	}
	wantQueued(t, do(t, providerRequest{"/", header, body}.build(t, site)))

	var records []nodeRecord
	waitFor(t, 15*time.Second, "the queued event reached the upstream", func() bool {
		records = node.received(t)
		return len(records) > 0
	})
	r := records[0]
	if !r.Verified {
		t.Errorf("queued delivery: standardwebhooks refused its signature: %s", r.Error)
	}
	if string(r.Body) != body {
		t.Errorf("queued delivery: body %q, want %q", r.Body, body)
	}
	for name, want := range map[string]string{
		"x-webhook-verified": "true", "x-webhook-provider": "github", "x-webhook-event-type": "check_run",
		"x-webhook-event-id": "", "x-groq-verified": "",
	} {
		if got := r.Headers[name]; got != want {
			t.Errorf("queued delivery: %s = %q, want %q", name, got, want)
		}
	}
	// The same delivery again, with a new X-GitHub-Delivery: a duplicate.
	header.Set("X-GitHub-Delivery", "d1e5c0de-0000-4000-8000-000000000002")
	got := do(t, providerRequest{"/", header, body}.build(t, site))
	if got.Status != http.StatusOK || got.Body != duplicateBody {
		t.Errorf("replayed delivery: got %d %s, want 200 %s", got.Status, got.Body, duplicateBody)
	}
	time.Sleep(500 * time.Millisecond) // a wrongly queued copy would be delivered by now
	if n := len(node.received(t)); n != 1 {
		t.Errorf("upstream got %d deliveries, want 1", n)
	}
}
