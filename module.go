// Package groqwebhook is a Caddy HTTP handler that verifies signed webhooks
// at the edge and forwards only authentic, fresh events to the next handler.
package groqwebhook

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the handler's settings.
const (
	DefaultTolerance       = 5 * time.Minute
	DefaultMaxBody         = 1 << 20
	DefaultSignatureHeader = "X-Groq-Signature"
	DefaultTimestampHeader = "X-Groq-Timestamp"
	DefaultVerifiedHeader  = "X-Groq-Verified"

	// EventIDHeader and EventTypeHeader carry the verified event's id and
	// type to the upstream.
	EventIDHeader   = "X-Groq-Event-Id"
	EventTypeHeader = "X-Groq-Event-Type"

	// The modes of the handler.
	ModeEnforce = "enforce"
	ModeShadow  = "shadow"

	minSecretBytes = 16

	// maxMaxBody bounds max_body: the body is held in memory while it is
	// verified and forwarded.
	maxMaxBody = 1 << 30

	// maxMaxBuffered keeps max_buffered far from overflowing the count.
	maxMaxBuffered = 1 << 50
)

// Handler verifies signed webhooks: by default Groq's scheme, HMAC-SHA256
// over the timestamp, a dot and the raw body; with `provider`, the scheme
// of another sender (Standard Webhooks, Svix, Stripe, GitHub, Slack,
// Shopify, Paddle, Linear, Zoom, Discord, Square, Twilio, GitLab) or one
// described in the configuration. A request that passes reaches the next
// handler with the verified header set to "true", the event's id and type
// in headers, and the very bytes that were signed as its body; a sender's
// endpoint check (Slack, Zoom, Discord) is answered here once verified; any
// other request is answered here (401, 405, 413, or 503 when bodies would
// pass max_buffered, with a JSON error) and goes no further.
//
// Headers that only this handler may set (X-Groq-Verified,
// X-Groq-Event-Id, X-Groq-Event-Type, X-Webhook-Verified,
// X-Webhook-Event-Id, X-Webhook-Event-Type, X-Webhook-Provider and the
// configured verified header, in any case and with any punctuation for
// '-') are removed from every incoming request, whatever the provider, so a
// client can never spoof them.
//
// After it runs, these placeholders are set:
//
// Placeholder | Description
// ------------|-------------
// `{http.groq_webhook.verified}` | `true` when the signature verified, else `false`
// `{http.groq_webhook.event_id}` | The event's signed id (for groq, the JSON `id`), when it is a string
// `{http.groq_webhook.event_type}` | The event's type (for groq, the JSON `type`), when it is a string
// `{http.groq_webhook.provider}` | The provider's name, such as `groq` or `stripe`
// `{http.groq_webhook.delivery_id}` | An unsigned delivery id header's value (GitHub's X-GitHub-Delivery, ...)
// `{http.groq_webhook.key}` | In deliver routes: the queued event's key (signed bytes only), without key_prefix
// `{http.groq_webhook.timestamp}` | The timestamp header exactly as sent
// `{http.groq_webhook.secret}` | The label (or 0-based index) of the secret that matched
// `{http.groq_webhook.error}` | On rejection, a reason code such as `stale_timestamp`
type Handler struct {
	// The sender's signing scheme: groq, standard, svix, stripe, github,
	// slack, shopify, paddle, linear, zoom, discord, square, twilio,
	// gitlab, or hmac (described by HMAC). Default: groq.
	Provider string `json:"provider,omitempty"`

	// The scheme of provider hmac: headers, encoding, algorithm and the
	// signed bytes. Refused with any other provider.
	HMAC *provider.HMACConfig `json:"hmac,omitempty"`

	// The Ed25519 public key, 32 bytes in hex, that provider discord
	// verifies with instead of a secret. May be a placeholder.
	PublicKey string `json:"public_key,omitempty"`

	// The exact url the sender calls, which providers square and twilio
	// sign (twilio: the request's query string is added unless the url has
	// one). Required for them, refused for the others.
	URL string `json:"url,omitempty"`

	// A secret ("whsec_" and base64, or at least 16 bytes) with which every
	// forwarded request, synchronous or queued, is signed as Standard
	// Webhooks: fresh webhook-id (the event's key), webhook-timestamp and
	// webhook-signature over the forwarded body, replacing any the client
	// sent. May be an `{env.NAME}` or `{file.PATH}` placeholder.
	SignUpstream string `json:"sign_upstream,omitempty"`

	// Secrets shared with the sender. At least one is required; any of them
	// may match, so a secret is rotated by adding the new one, moving the
	// sender over, then removing the old one. Values may be `{env.NAME}` or
	// `{file.PATH}` placeholders, which are resolved once, at provision time.
	// Each secret must be at least 16 bytes long.
	Secrets []Secret `json:"secrets,omitempty"`

	// How far the timestamp may be from this server's clock, in the past or
	// in the future. A skew of exactly this much passes. Default: the
	// provider's window (5m; linear: 60s). Refused for providers that sign
	// no timestamp.
	Tolerance caddy.Duration `json:"tolerance,omitempty"`

	// The largest body accepted, in bytes. Larger bodies get 413, whether
	// they announce their length or not. Default: 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// The most body bytes that all groq_webhook handlers of the process
	// hold in memory at once, shared across sites and config reloads: a
	// body is buffered whole until its signature is checked, and anyone can
	// send one. A request whose announced length does not fit in what is
	// left, or whose body outgrows it while it is read, is answered 503
	// with Retry-After: 1, and the sender retries. Must be at least
	// max_body. Default: 256 MiB.
	MaxBuffered int64 `json:"max_buffered,omitempty"`

	// The header holding the signature(s), for provider groq. Default: X-Groq-Signature.
	SignatureHeader string `json:"signature_header,omitempty"`

	// The header holding the unix timestamp in seconds, for provider groq. Default: X-Groq-Timestamp.
	TimestampHeader string `json:"timestamp_header,omitempty"`

	// The header set to "true" on requests that verified, for the upstream
	// to check. Default: X-Groq-Verified for groq, else X-Webhook-Verified.
	VerifiedHeader string `json:"verified_header,omitempty"`

	// What happens to requests that fail verification: "enforce" answers
	// them here; "shadow" forwards them with the verified header set to
	// "false", and only logs and counts the failure, for a staged roll-out.
	// Bodies over max_body get 413 in both modes. Default: enforce.
	Mode string `json:"mode,omitempty"`

	// De-duplication of verified events. Default: on, in memory. With a
	// queue, the queue's store keeps the keys instead (for dedupe's ttl,
	// across restarts), and no dedupe store is used.
	Dedupe *Dedupe `json:"dedupe,omitempty"`

	// Store-and-forward: verified events are written to this queue store
	// and answered 202 once they are durable; workers then deliver them
	// through Deliver, with retries and dead letters. Without it, delivery
	// is synchronous, to the next handler. Requires Deliver.
	QueueRaw json.RawMessage `json:"queue,omitempty" caddy:"namespace=http.handlers.groq_webhook.queue inline_key=backend"`

	// The handler each delivery attempt of a queued event runs through,
	// usually a subroute ending in reverse_proxy; it sees the stored
	// request with the verified and event headers, the {http.groq_webhook.*}
	// placeholders, X-Groq-Delivery-Attempt and X-Groq-Received-At.
	// Required with Queue, refused without.
	DeliverRaw json.RawMessage `json:"deliver,omitempty" caddy:"namespace=http.handlers inline_key=handler"`

	prov     providerState
	secrets  []matchedSecret
	reserved []string
	logger   *zap.Logger
	now      func() time.Time

	deliverSegment *caddyfile.Dispenser // the deliver block, until the adapter parses it

	queueBackend QueueBackend
	queue        *queueEngine
	queueKey     string // the queue's name in the pool
	deliver      caddyhttp.MiddlewareHandler
	server       *atomic.Pointer[caddyhttp.Server] // of the latest accepted request
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groq_webhook",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves the secrets and fills in defaults, so that a request
// does no work that could be done once.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	toleranceSet := h.Tolerance != 0
	if h.MaxBody == 0 {
		h.MaxBody = DefaultMaxBody
	}
	if h.MaxBuffered == 0 {
		h.MaxBuffered = DefaultMaxBuffered
	}
	groq := h.Provider == "" || h.Provider == DefaultProvider
	if groq && h.SignatureHeader == "" {
		h.SignatureHeader = DefaultSignatureHeader
	}
	if groq && h.TimestampHeader == "" {
		h.TimestampHeader = DefaultTimestampHeader
	}
	if h.VerifiedHeader == "" {
		h.VerifiedHeader = DefaultVerifiedHeader
		if !groq {
			h.VerifiedHeader = WebhookVerifiedHeader
		}
	}
	h.SignatureHeader = http.CanonicalHeaderKey(h.SignatureHeader)
	h.TimestampHeader = http.CanonicalHeaderKey(h.TimestampHeader)
	h.VerifiedHeader = http.CanonicalHeaderKey(h.VerifiedHeader)
	h.reserved = h.reservedHeaders()

	if h.Mode == "" {
		h.Mode = ModeEnforce
	}

	var secrets [][]byte
	var labels []string
	if h.PublicKey != "" && len(h.Secrets) == 0 {
		labels = []string{"public_key"}
	} else {
		var err error
		if secrets, labels, err = resolveSecrets(h.Secrets); err != nil {
			return err
		}
	}
	if err := h.provisionProvider(toleranceSet, secrets); err != nil {
		return err
	}
	h.secrets = make([]matchedSecret, len(labels))
	for i, label := range labels {
		h.secrets[i] = matchedSecret{label: label, placeholder: label, matches: secretMatchesTotal.WithLabelValues(h.providerName(), label)}
	}

	if h.Dedupe == nil {
		h.Dedupe = new(Dedupe)
	}
	if err := h.Dedupe.provision(ctx, h.Mode == ModeShadow || h.QueueRaw != nil); err != nil {
		return err
	}
	h.warnUnguarded()
	if err := h.provisionQueue(ctx); err != nil {
		return err
	}
	return registerMetrics(ctx.GetMetricsRegistry())
}

// provisionQueue loads the queue store and the deliver routes, and joins
// the queue's engine, started by the first config that names the queue.
func (h *Handler) provisionQueue(ctx caddy.Context) error {
	switch {
	case h.QueueRaw == nil && h.DeliverRaw == nil:
		return nil
	case h.QueueRaw == nil:
		return fmt.Errorf("deliver is set without queue: deliver routes run only for queued events; add queue, or put the handlers after groq_webhook")
	case h.DeliverRaw == nil:
		return fmt.Errorf("queue is set without deliver: add a deliver block with the handlers that deliver each event (for example reverse_proxy)")
	case h.Mode == ModeShadow:
		return fmt.Errorf("mode shadow cannot be combined with queue: shadow mode forwards failed requests synchronously")
	}
	mod, err := ctx.LoadModule(h, "QueueRaw")
	if err != nil {
		return fmt.Errorf("loading queue store: %v", err)
	}
	backend, ok := mod.(QueueBackend)
	if !ok {
		return fmt.Errorf("queue store %T is not a groq_webhook QueueBackend", mod)
	}
	opts := backend.Options()
	opts.provision()
	if err := opts.validate(); err != nil {
		return err
	}
	mod, err = ctx.LoadModule(h, "DeliverRaw")
	if err != nil {
		return fmt.Errorf("loading deliver routes: %v", err)
	}
	deliver, ok := mod.(caddyhttp.MiddlewareHandler)
	if !ok {
		return fmt.Errorf("deliver %T is not an HTTP handler", mod)
	}
	h.queueBackend, h.deliver = backend, deliver
	h.server = new(atomic.Pointer[caddyhttp.Server])
	h.queueKey = "groq_webhook.queue." + opts.Name
	logger := h.logger
	engine, _, err := queues.LoadOrNew(h.queueKey, func() (caddy.Destructor, error) {
		store := &lazyStore{open: func() (QueueStore, error) { return backend.Open(ctx) }}
		if _, err := store.get(); err != nil {
			logger.Error("queue store cannot be opened; events are answered 503 until it can",
				zap.String("queue", opts.Name), zap.Error(err))
		}
		return newQueueEngine(opts.Name, store, logger), nil
	})
	if err != nil {
		return err
	}
	h.queue = engine.(*queueEngine)
	// The metrics registry is one per config: it tells this config's
	// handlers from those of the config being replaced.
	if err := h.queue.register(h, ctx.GetMetricsRegistry()); err != nil {
		_, _ = queues.Delete(h.queueKey)
		h.queue = nil
		return err
	}
	return nil
}

// Cleanup leaves the queue; the last config to leave it stops it.
func (h *Handler) Cleanup() error {
	if h.queue == nil {
		return nil
	}
	h.queue.unregister(h)
	_, err := queues.Delete(h.queueKey)
	return err
}

// describe names the handler in errors, by its secrets' labels.
func (h *Handler) describe() string {
	labels := make([]string, len(h.secrets))
	for i, s := range h.secrets {
		labels[i] = s.label
	}
	return "the handler with secrets " + strings.Join(labels, ",")
}

// Validate checks settings that Provision cannot default.
func (h *Handler) Validate() error {
	if h.prov.scheme != nil && h.prov.scheme.HasTimestamp() && h.Tolerance < caddy.Duration(time.Second) {
		return fmt.Errorf("tolerance must be at least 1s (timestamps are in whole seconds), got %s", time.Duration(h.Tolerance))
	}
	if h.MaxBody <= 0 || h.MaxBody > maxMaxBody {
		return fmt.Errorf("max_body must be between 1 and %d bytes, got %d", maxMaxBody, h.MaxBody)
	}
	if h.MaxBuffered > maxMaxBuffered {
		return fmt.Errorf("max_buffered must be at most %d bytes, got %d", int64(maxMaxBuffered), h.MaxBuffered)
	}
	if h.MaxBuffered < h.MaxBody {
		return fmt.Errorf("max_buffered (%d bytes) must be at least max_body (%d bytes), or the largest events never fit", h.MaxBuffered, h.MaxBody)
	}
	if h.Mode != ModeEnforce && h.Mode != ModeShadow {
		return fmt.Errorf("mode must be enforce or shadow, got %q", h.Mode)
	}
	if err := h.Dedupe.validate(); err != nil {
		return err
	}
	names := map[string]string{
		"signature_header": h.SignatureHeader,
		"timestamp_header": h.TimestampHeader,
		"verified_header":  h.VerifiedHeader,
	}
	for setting, name := range names {
		if (name != "" || setting == "verified_header") && !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("%s %q is not a valid header name", setting, name)
		}
	}
	for _, setting := range []string{"signature_header", "timestamp_header"} {
		for _, reserved := range h.reserved {
			if names[setting] != "" && sameHeaderName(names[setting], reserved) {
				return fmt.Errorf("%s %q clashes with a header this handler sets", setting, names[setting])
			}
		}
	}
	if h.SignatureHeader != "" && sameHeaderName(h.SignatureHeader, headerMatchForm(h.TimestampHeader)) {
		return fmt.Errorf("signature_header and timestamp_header are both %q", h.SignatureHeader)
	}
	return nil
}

// ServeHTTP verifies the request and passes it on only if it is authentic
// (in shadow mode: passes it on either way, marked).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.removeReserved(r.Header)
	// Trailers are not signed, and a client could name the reserved
	// headers in them: none are forwarded.
	r.Trailer = nil
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.groq_webhook.verified", false)
	repl.Set("http.groq_webhook.provider", h.prov.namePlaceholder)

	v, err := h.verify(r)
	d := v.delivery
	if d != nil {
		defer d.body.finish()
	}
	if err != nil {
		if v.timestamp != "" {
			repl.Set("http.groq_webhook.timestamp", v.timestamp)
		}
		shadow := h.Mode == ModeShadow && v.forwardable
		if v.bodyRead && (shadow || hasErrorRoutes(r)) {
			// The body goes on, to the next handler or to handle_errors.
			forwardBody(r, &d.body, &d.first)
			defer func() { r.GetBody = nil }()
		}
		if shadow {
			return h.forwardUnverified(w, r, repl, err, v.bodyRead, next)
		}
		return h.reject(w, r, repl, err, v.bodyRead)
	}

	d.timestamp = placeholder(v.timestamp)
	d.headers[0] = "true"
	r.Header[h.VerifiedHeader] = d.headers[0:1:1]
	// An event without an id, a type or a delivery id still has these
	// placeholders, empty, so that a header_up naming one sends an empty
	// value, not the placeholder's text.
	if id := headerSafe(v.event.ID); id != "" {
		d.headers[1], d.id = id, placeholder(id)
		r.Header[h.prov.idHeader] = d.headers[1:2:2]
		repl.Set("http.groq_webhook.event_id", &d.id)
	} else {
		repl.Set("http.groq_webhook.event_id", "")
	}
	if typ := headerSafe(v.event.Type); typ != "" {
		d.headers[2], d.typ = typ, placeholder(typ)
		r.Header[h.prov.typeHdr] = d.headers[2:3:3]
		repl.Set("http.groq_webhook.event_type", &d.typ)
	} else {
		repl.Set("http.groq_webhook.event_type", "")
	}
	if !h.prov.groq {
		d.headers[3] = h.prov.scheme.Name
		r.Header[WebhookProviderHeader] = d.headers[3:4:4]
	}
	if v.deliveryID != "" {
		d.deliveryID = placeholder(v.deliveryID)
		repl.Set("http.groq_webhook.delivery_id", &d.deliveryID)
	} else {
		repl.Set("http.groq_webhook.delivery_id", "")
	}
	secret := &h.secrets[v.secret]
	secret.matches.Inc()
	repl.Set("http.groq_webhook.verified", true)
	repl.Set("http.groq_webhook.timestamp", &d.timestamp)
	repl.Set("http.groq_webhook.secret", secret.placeholder)
	if c := h.logger.Check(zapcore.DebugLevel, "webhook verified"); c != nil {
		c.Write(zap.String("provider", h.providerName()), zap.String("event_id", d.headers[1]), zap.String("event_type", d.headers[2]), zap.String("secret", secret.label))
	}

	if answered, err := h.answerHandshake(w, &v); answered {
		return err
	}
	if h.queue != nil {
		return h.enqueue(w, r, repl, d, h.eventKey(v), h.prov.eventKey(&v), secret.label)
	}
	if h.prov.upstreamKey != nil {
		h.prov.signUpstream(r.Header, h.prov.eventKey(&v), d.body.bytes(), h.now())
	}
	forwardBody(r, &d.body, &d.first)
	// Once this handler returns, the body's buffer is reused as soon as its
	// readers are closed: later handlers get no new reader.
	defer func() { r.GetBody = nil }()
	if h.Dedupe.store == nil {
		h.prov.verified.Inc()
		return next.ServeHTTP(w, r)
	}
	return h.deliverOnce(w, r, repl, h.Dedupe.KeyPrefix+h.prov.eventKey(&v), next)
}

// delivery is what a request that got as far as its body carries on, in
// one allocation: the body and its first reader, and, once verified, the
// values of the headers this handler sets and of its placeholders.
type delivery struct {
	body                           requestBody
	first                          bodyReader
	headers                        [4]string // verified, event id, event type, provider
	id, typ, timestamp, deliveryID placeholder
}

// placeholder is a placeholder's value, set by pointer: a pointer goes into
// the replacer without an allocation, where a string would need one.
type placeholder string

func (p *placeholder) String() string { return string(*p) }

// matchedSecret is what the handler reports when a secret matches.
type matchedSecret struct {
	label       string
	placeholder any // the label, converted once
	matches     prometheus.Counter
}

// forwardUnverified is shadow mode's answer to a failed request: it is
// logged and counted as a rejection would be, then forwarded marked as not
// verified. Its body is still bounded by max_body.
func (h *Handler) forwardUnverified(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, err error, bodyRead bool, next caddyhttp.Handler) error {
	if !bodyRead && r.Body != nil && r.Body != http.NoBody {
		d := new(delivery)
		readErr := h.readBody(r, io.Discard, &d.body)
		defer d.body.finish()
		if readErr != nil {
			return h.reject(w, r, repl, readErr, false)
		}
		forwardBody(r, &d.body, &d.first)
		defer func() { r.GetBody = nil }()
	}
	h.logRejection(r, repl, err, "webhook failed verification; forwarded in shadow mode")
	r.Header.Set(h.VerifiedHeader, "false")
	return next.ServeHTTP(w, r)
}

// verification is what verify learned about a request.
type verification struct {
	timestamp  string // the timestamp, once it is known to be well-formed
	deliveryID string // an unsigned delivery id, only to be shown
	secret     int    // index of the secret that matched
	// sigDigest is the SHA-256 of the signature that matched, bodyDigest
	// (for providers keyed by their body) of the body.
	sigDigest, bodyDigest [sha256.Size]byte
	event                 event
	delivery              *delivery // once the headers passed: holds the body

	// bodyRead is true once the body has been consumed.
	bodyRead bool
	// forwardable is true when a failed request can still be passed on
	// intact, as shadow mode does.
	forwardable bool
}

// verify runs every check, cheapest first. Once the headers pass, it reads
// the body into a delivery, whose body the caller then releases; the body
// is hashed as it is read.
func (h *Handler) verify(r *http.Request) (verification, error) {
	if r.Method != http.MethodPost {
		return verification{forwardable: true}, errMethodNotAllowed
	}
	engine := h.prov.engine
	now := h.now()
	var query string
	if r.URL != nil {
		query = r.URL.RawQuery
	}
	c, err := engine.Begin(provider.Request{Header: r.Header, Query: query}, now)
	defer engine.Release(c)
	defer func() {
		if c.HasSkew {
			timestampSkew.Observe(float64(c.Skew))
		}
	}()
	v := verification{timestamp: c.Timestamp, forwardable: true}
	if err != nil {
		return v, err
	}
	v.delivery = new(delivery)
	if err := h.readBody(r, c, &v.delivery.body); err != nil {
		return verification{timestamp: c.Timestamp, delivery: v.delivery}, err
	}
	v.bodyRead = true
	body := v.delivery.body.bytes()
	result, err := engine.Finish(c, body, query, now)
	v.timestamp = c.TimestampText()
	if err != nil {
		return v, err
	}
	v.secret, v.sigDigest = result.Secret, result.SignatureDigest
	v.event = h.eventOf(body, c)
	v.deliveryID = headerSafe(c.Delivery)
	if h.prov.scheme.KeyFromBody {
		v.bodyDigest = sha256.Sum256(body)
	}
	return v, nil
}

// eventOf finds a verified event's id and type where its provider puts
// them: the body, or a header.
func (h *Handler) eventOf(body []byte, c *provider.Check) event {
	s := h.prov.scheme
	if h.prov.groq {
		return parseEvent(body)
	}
	var ev event
	ev.ID, ev.Type = provider.ParseEvent(body, s.Event)
	if s.SignsID() {
		ev.ID = c.ID
	}
	if s.TypeHeader != "" {
		ev.Type = c.Type
	}
	return ev
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
