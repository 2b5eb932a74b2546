package groqwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// The Caddy side of providers: which scheme a handler runs, the headers
// and keys it derives from a verified request, handshakes, and the
// signature of the hop to the upstream. The schemes themselves live in
// the provider package.

// DefaultProvider is the scheme used when none is configured.
const DefaultProvider = "groq"

// The headers every provider other than groq sets on verified requests.
const (
	WebhookVerifiedHeader  = "X-Webhook-Verified"
	WebhookEventIDHeader   = "X-Webhook-Event-Id"
	WebhookEventTypeHeader = "X-Webhook-Event-Type"
	WebhookProviderHeader  = "X-Webhook-Provider"
)

// The Standard Webhooks headers of sign_upstream.
const (
	upstreamIDHeader        = "Webhook-Id"
	upstreamTimestampHeader = "Webhook-Timestamp"
	upstreamSignatureHeader = "Webhook-Signature"
)

// providerState is what Provision prepares for the configured provider.
type providerState struct {
	scheme   *provider.Scheme
	engine   *provider.Verifier
	groq     bool
	idHeader string // where the event id goes: X-Groq-Event-Id or X-Webhook-Event-Id
	typeHdr  string
	// signedKeys: the event id is part of the signed bytes and may key
	// de-duplication.
	signedKeys  bool
	upstreamKey []byte // sign_upstream's key, decoded

	namePlaceholder any // the name, converted once

	verified, duplicate, queued, handshakes prometheus.Counter
}

// provisionProvider resolves the provider and checks the settings that
// depend on it. Errors name the provider and the setting.
func (h *Handler) provisionProvider(toleranceSet bool, secrets [][]byte) error {
	name := h.Provider
	if name == "" {
		name = DefaultProvider
	}
	p := &h.prov
	switch name {
	case "hmac":
		if h.HMAC == nil {
			return fmt.Errorf("provider hmac needs its description: signature_header and what is signed (an hmac block)")
		}
		scheme, err := h.HMAC.Scheme()
		if err != nil {
			return err
		}
		p.scheme = scheme
	default:
		scheme, ok := provider.Lookup(name)
		if !ok {
			return fmt.Errorf("unknown provider %q: known providers are %s", name, strings.Join(provider.Names(), ", "))
		}
		if h.HMAC != nil {
			return fmt.Errorf("provider %s: the hmac description applies only to provider hmac", name)
		}
		p.scheme = scheme
	}
	p.groq = name == DefaultProvider
	if !p.groq && (h.SignatureHeader != "" || h.TimestampHeader != "") {
		return fmt.Errorf("provider %s: signature_header and timestamp_header apply only to provider groq; describe other schemes with provider hmac", name)
	}
	if p.groq {
		// Today's groq settings: the header names may be changed.
		groq := *provider.Groq
		groq.SignatureHeaders = []string{h.SignatureHeader}
		groq.TimestampHeader = h.TimestampHeader
		p.scheme = &groq
	}
	cfg := provider.Config{Secrets: secrets, URL: h.URL}
	if h.PublicKey != "" {
		key, err := caddy.NewReplacer().ReplaceOrErr(h.PublicKey, true, true)
		if err != nil || key == "" {
			return fmt.Errorf("provider %s: public_key is empty after placeholder replacement", name)
		}
		cfg.PublicKeys = []string{key}
	}
	if toleranceSet {
		cfg.Tolerance = time.Duration(h.Tolerance)
	}
	engine, err := p.scheme.New(cfg)
	if err != nil {
		return err
	}
	p.engine = engine
	h.Tolerance = caddy.Duration(engine.Tolerance())
	p.signedKeys = p.scheme.SignsID() || p.scheme.Event.ID != ""
	if p.groq {
		p.idHeader, p.typeHdr = EventIDHeader, EventTypeHeader
	} else {
		p.idHeader, p.typeHdr = WebhookEventIDHeader, WebhookEventTypeHeader
	}
	if h.SignUpstream != "" {
		if p.upstreamKey, err = resolveUpstreamKey(h.SignUpstream); err != nil {
			return err
		}
	}
	p.namePlaceholder = p.scheme.Name
	p.verified = requestsTotal.WithLabelValues(name, "verified")
	p.duplicate = requestsTotal.WithLabelValues(name, "duplicate")
	p.queued = requestsTotal.WithLabelValues(name, "queued")
	p.handshakes = requestsTotal.WithLabelValues(name, "handshake")
	return nil
}

// unguarded reports whether nothing guards against replays: the provider
// signs no timestamp and de-duplication is off.
func (h *Handler) unguarded() bool {
	return !h.prov.scheme.HasTimestamp() && h.Dedupe.Disabled
}

// warnUnguarded says so at provision time.
func (h *Handler) warnUnguarded() {
	if !h.unguarded() {
		return
	}
	h.logger.Warn("dedupe is off and this provider signs no timestamp: a captured request can be replayed forever",
		zap.String("provider", h.providerName()))
}

// providerName is the configured provider's name.
func (h *Handler) providerName() string {
	return h.prov.scheme.Name
}

// resolveUpstreamKey reads sign_upstream: a "whsec_" secret is base64,
// anything else is used as it is.
func resolveUpstreamKey(value string) ([]byte, error) {
	secret, err := caddy.NewReplacer().ReplaceOrErr(value, true, true)
	if err != nil || secret == "" {
		return nil, fmt.Errorf("sign_upstream is empty after placeholder replacement: check %s", placeholdersIn(value))
	}
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(key) < minSecretBytes {
			return nil, fmt.Errorf(`sign_upstream starts with "whsec_" but the rest is not base64 of at least %d bytes`, minSecretBytes)
		}
		return key, nil
	}
	if len(secret) < minSecretBytes {
		return nil, fmt.Errorf("sign_upstream is %d bytes long; use at least %d random bytes", len(secret), minSecretBytes)
	}
	return []byte(secret), nil
}

// reservedHeaders are the headers no client may send, whatever the
// provider: both families of verified and event headers.
func (h *Handler) reservedHeaders() []string {
	names := []string{
		h.VerifiedHeader, DefaultVerifiedHeader, EventIDHeader, EventTypeHeader,
		WebhookVerifiedHeader, WebhookEventIDHeader, WebhookEventTypeHeader, WebhookProviderHeader,
		DeliveryAttemptHeader, ReceivedAtHeader,
	}
	var folded []string
	for _, name := range names {
		if f := headerMatchForm(name); !slices.Contains(folded, f) {
			folded = append(folded, f)
		}
	}
	return folded
}

// eventKey names a verified event from signed bytes only: the signed id
// where there is one, else the digest of the verified signature (gitlab:
// of the body, since its token is the same on every request). Keys of
// providers other than groq are namespaced by the provider.
func (p *providerState) eventKey(v *verification) string {
	var key string
	switch {
	case v.event.ID != "" && p.signedKeys && len(v.event.ID) > maxKeyedIDLength:
		digest := sha256.Sum256([]byte(v.event.ID))
		key = "event-sha256:" + hex.EncodeToString(digest[:])
	case v.event.ID != "" && p.signedKeys:
		key = "event:" + v.event.ID
	case p.scheme.KeyFromBody:
		key = "body:" + hex.EncodeToString(v.bodyDigest[:])
	default:
		key = "sig:" + hex.EncodeToString(v.sigDigest[:])
	}
	if p.groq {
		return key
	}
	return p.scheme.Name + ":" + key
}

// answerHandshake answers a verified endpoint check, if this is one. It
// is neither forwarded, nor queued, nor recorded by de-duplication.
func (h *Handler) answerHandshake(w http.ResponseWriter, v *verification) (bool, error) {
	hs := h.prov.scheme.Handshake
	if hs == nil || v.event.Type != hs.Type {
		return false, nil
	}
	answer, ok := hs.Answer(v.delivery.body.bytes(), h.prov.engine.Secret(v.secret))
	if !ok {
		return false, nil
	}
	h.prov.handshakes.Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(answer)
	return true, err
}

// signUpstream sets fresh Standard Webhooks headers over the forwarded
// body, replacing any the client sent.
func (p *providerState) signUpstream(header http.Header, key string, body []byte, now time.Time) {
	if p.upstreamKey == nil {
		return
	}
	for name := range header {
		switch http.CanonicalHeaderKey(name) {
		case upstreamIDHeader, upstreamTimestampHeader, upstreamSignatureHeader:
			delete(header, name)
		}
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, p.upstreamKey)
	mac.Write([]byte(key))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	header[upstreamIDHeader] = []string{key}
	header[upstreamTimestampHeader] = []string{ts}
	header[upstreamSignatureHeader] = []string{"v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))}
}
