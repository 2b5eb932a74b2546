package groqwebhook

import (
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// TestSignCommandProviders: `sign --provider` prints headers that the
// handler configured for that provider accepts.
func TestSignCommandProviders(t *testing.T) {
	body := `{"id":"evt_cli","type":"cli.test"}`
	file := writeFile(t, "event.json", body)
	for _, s := range providerSites {
		t.Run(s.name, func(t *testing.T) {
			secret := testSecret
			if s.name == "discord" {
				secret = hex.EncodeToString([]byte(handlerDiscordSeed))
			}
			t.Setenv("GROQ_WEBHOOK_SECRET", secret)
			args := []string{"sign", "--provider", s.name, "--body-file", file}
			target := "/hooks"
			switch {
			case s.query != "":
				args = append(args, "--url", s.url+"?"+s.query)
				target += "?" + s.query
			case s.url != "":
				args = append(args, "--url", s.url)
			}
			if s.name == "gitlab" {
				runGroqWebhook(t, "", args...).mustFail(t, "never printed")
				return
			}
			result := runGroqWebhook(t, "", args...).mustSucceed(t)
			out := result.stdout
			if s.name == "twilio" {
				// A JSON body is signed through bodySHA256 in the url,
				// which sign names.
				_, posted, _ := strings.Cut(strings.Fields(result.stderr)[2], "?")
				target = "/hooks?" + posted
			}
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				name, value, ok := strings.Cut(line, ": ")
				if !ok {
					t.Fatalf("not a header line: %q", line)
				}
				req.Header.Set(name, value)
			}
			req.Header.Set("Content-Type", "application/json")
			scheme, _ := provider.Lookup(s.name)
			if s.name == "linear" {
				// Linear's timestamp is in the body: none here, so the
				// signature alone is checked.
				v, _ := scheme.New(provider.Config{Secrets: [][]byte{[]byte(testSecret)}})
				c, err := v.Begin(provider.Request{Header: req.Header}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				_, err = v.Finish(c, []byte(body), "", time.Now())
				if err != provider.ErrMissingTimestamp {
					t.Fatalf("Finish = %v", err)
				}
				return
			}
			h := s.handler(t, nil)
			w, got := serveOnce(t, h, req)
			if w.Code != http.StatusOK || got == nil {
				t.Fatalf("status %d %s\n%s", w.Code, w.Body, out)
			}
		})
	}
}

// TestSendCommandProvider: `send --provider stripe` posts an event the
// stripe handler forwards.
func TestSendCommandProvider(t *testing.T) {
	s := providerSites[2] // stripe
	h := s.handler(t, nil)
	var forwardedType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
		_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			forwardedType = r.Header.Get(WebhookEventTypeHeader)
			_, err := w.Write([]byte(`{"upstream":true}`))
			return err
		}))
	}))
	defer srv.Close()
	t.Setenv("GROQ_WEBHOOK_SECRET", testSecret)
	out := runGroqWebhook(t, "", "send", "--provider", "stripe", "--url", srv.URL, "--type", "charge.refunded").mustSucceed(t).stdout
	if !strings.HasPrefix(out, "HTTP 200") || forwardedType != "charge.refunded" {
		t.Fatalf("answer %q, forwarded type %q", out, forwardedType)
	}
}

// TestSignCommandProviderRejects: flags that do not fit the provider.
func TestSignCommandProviderRejects(t *testing.T) {
	t.Setenv("GROQ_WEBHOOK_SECRET", testSecret)
	runGroqWebhook(t, "{}", "sign", "--provider", "stripey").mustFail(t, `unknown --provider "stripey"`, "stripe")
	runGroqWebhook(t, "{}", "sign", "--provider", "square").mustFail(t, "--provider square", "--url")
	runGroqWebhook(t, "{}", "sign", "--provider", "stripe", "--signature-header", "X-S").mustFail(t, "--provider groq")
	runGroqWebhook(t, "{}", "sign", "--provider", "discord").mustFail(t, "Ed25519", "seed")
	seed := hex.EncodeToString([]byte(handlerDiscordSeed))
	t.Setenv("GROQ_WEBHOOK_SECRET", seed)
	out := runGroqWebhook(t, "{}", "sign", "--provider", "discord", "--timestamp", "1700000000").mustSucceed(t).stdout
	pub := ed25519.NewKeyFromSeed([]byte(handlerDiscordSeed)).Public().(ed25519.PublicKey)
	sig, _ := hex.DecodeString(strings.TrimPrefix(strings.Split(out, "\n")[0], "X-Signature-Ed25519: "))
	if !ed25519.Verify(pub, []byte(strconv.Itoa(1700000000)+"{}"), sig) {
		t.Fatalf("discord signature does not verify:\n%s", out)
	}
}
