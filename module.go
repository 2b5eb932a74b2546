// Package groqwebhook is a Caddy HTTP handler that verifies signed webhooks
// at the edge and forwards only authentic, fresh events to the next handler.
package groqwebhook

import (
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

// Handler verifies webhooks signed with HMAC-SHA256 over the timestamp, a
// dot and the raw body. A request that passes reaches the next handler with
// the verified header set to "true", the event's id and type in headers, and
// the very bytes that were signed as its body; any other request is answered
// here (401, 405, 413, or 503 when bodies would pass max_buffered, with a
// JSON error) and goes no further.
//
// Headers that only this handler may set (the verified header, and the
// event id and type headers, in any case and with any punctuation for '-')
// are removed from every incoming request, so a client can never spoof them.
//
// After it runs, these placeholders are set:
//
// Placeholder | Description
// ------------|-------------
// `{http.groq_webhook.verified}` | `true` when the signature verified, else `false`
// `{http.groq_webhook.event_id}` | The event's JSON `id`, when it is a string
// `{http.groq_webhook.event_type}` | The event's JSON `type`, when it is a string
// `{http.groq_webhook.timestamp}` | The timestamp header exactly as sent
// `{http.groq_webhook.secret}` | The label (or 0-based index) of the secret that matched
// `{http.groq_webhook.error}` | On rejection, a reason code such as `stale_timestamp`
type Handler struct {
	// Secrets shared with the sender. At least one is required; any of them
	// may match, so a secret is rotated by adding the new one, moving the
	// sender over, then removing the old one. Values may be `{env.NAME}` or
	// `{file.PATH}` placeholders, which are resolved once, at provision time.
	// Each secret must be at least 16 bytes long.
	Secrets []Secret `json:"secrets,omitempty"`

	// How far the timestamp may be from this server's clock, in the past or
	// in the future. A skew of exactly this much passes. Default: 5m.
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

	// The header holding the signature(s). Default: X-Groq-Signature.
	SignatureHeader string `json:"signature_header,omitempty"`

	// The header holding the unix timestamp in seconds. Default: X-Groq-Timestamp.
	TimestampHeader string `json:"timestamp_header,omitempty"`

	// The header set to "true" on requests that verified, for the upstream
	// to check. Default: X-Groq-Verified.
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

	verifier *Verifier
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
	if h.Tolerance == 0 {
		h.Tolerance = caddy.Duration(DefaultTolerance)
	}
	if h.MaxBody == 0 {
		h.MaxBody = DefaultMaxBody
	}
	if h.MaxBuffered == 0 {
		h.MaxBuffered = DefaultMaxBuffered
	}
	if h.SignatureHeader == "" {
		h.SignatureHeader = DefaultSignatureHeader
	}
	if h.TimestampHeader == "" {
		h.TimestampHeader = DefaultTimestampHeader
	}
	if h.VerifiedHeader == "" {
		h.VerifiedHeader = DefaultVerifiedHeader
	}
	h.SignatureHeader = http.CanonicalHeaderKey(h.SignatureHeader)
	h.TimestampHeader = http.CanonicalHeaderKey(h.TimestampHeader)
	h.VerifiedHeader = http.CanonicalHeaderKey(h.VerifiedHeader)
	h.reserved = []string{
		headerMatchForm(h.VerifiedHeader),
		headerMatchForm(EventIDHeader),
		headerMatchForm(EventTypeHeader),
		headerMatchForm(DeliveryAttemptHeader),
		headerMatchForm(ReceivedAtHeader),
	}

	if h.Mode == "" {
		h.Mode = ModeEnforce
	}

	secrets, labels, err := resolveSecrets(h.Secrets)
	if err != nil {
		return err
	}
	h.verifier = NewVerifier(secrets)
	h.secrets = make([]matchedSecret, len(labels))
	for i, label := range labels {
		h.secrets[i] = matchedSecret{label: label, placeholder: label, matches: secretMatchesTotal.WithLabelValues(label)}
	}

	if h.Dedupe == nil {
		h.Dedupe = new(Dedupe)
	}
	if err := h.Dedupe.provision(ctx, h.Mode == ModeShadow || h.QueueRaw != nil); err != nil {
		return err
	}
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
	if h.Tolerance < caddy.Duration(time.Second) {
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
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("%s %q is not a valid header name", setting, name)
		}
	}
	for _, setting := range []string{"signature_header", "timestamp_header"} {
		for _, reserved := range h.reserved {
			if sameHeaderName(names[setting], reserved) {
				return fmt.Errorf("%s %q clashes with a header this handler sets", setting, names[setting])
			}
		}
	}
	if sameHeaderName(h.SignatureHeader, headerMatchForm(h.TimestampHeader)) {
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
	if id := headerSafe(v.event.ID); id != "" {
		d.headers[1], d.id = id, placeholder(id)
		r.Header[EventIDHeader] = d.headers[1:2:2]
		repl.Set("http.groq_webhook.event_id", &d.id)
	}
	if typ := headerSafe(v.event.Type); typ != "" {
		d.headers[2], d.typ = typ, placeholder(typ)
		r.Header[EventTypeHeader] = d.headers[2:3:3]
		repl.Set("http.groq_webhook.event_type", &d.typ)
	}
	secret := &h.secrets[v.secret]
	secret.matches.Inc()
	repl.Set("http.groq_webhook.verified", true)
	repl.Set("http.groq_webhook.timestamp", &d.timestamp)
	repl.Set("http.groq_webhook.secret", secret.placeholder)
	if c := h.logger.Check(zapcore.DebugLevel, "webhook verified"); c != nil {
		c.Write(zap.String("event_id", d.headers[1]), zap.String("event_type", d.headers[2]), zap.String("secret", secret.label))
	}

	if h.queue != nil {
		return h.enqueue(w, r, repl, d, h.eventKey(v), secret.label)
	}
	forwardBody(r, &d.body, &d.first)
	// Once this handler returns, the body's buffer is reused as soon as its
	// readers are closed: later handlers get no new reader.
	defer func() { r.GetBody = nil }()
	if h.Dedupe.store == nil {
		verifiedTotal.Inc()
		return next.ServeHTTP(w, r)
	}
	return h.deliverOnce(w, r, repl, h.Dedupe.key(v.event.ID, v.signature), next)
}

// delivery is what a request that got as far as its body carries on, in
// one allocation: the body and its first reader, and, once verified, the
// values of the headers this handler sets and of its placeholders.
type delivery struct {
	body               requestBody
	first              bodyReader
	headers            [3]string // verified, event id, event type
	id, typ, timestamp placeholder
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
	timestamp string    // the timestamp header, once it is known to be well-formed
	secret    int       // index of the secret that matched
	signature Signature // the candidate that matched
	event     event
	delivery  *delivery // once the headers passed: holds the body

	// bodyRead is true once the body has been consumed.
	bodyRead bool
	// forwardable is true when a failed request can still be passed on
	// intact, as shadow mode does.
	forwardable bool
}

// verify runs every check, cheapest first. Once the headers pass, it reads
// the body into a delivery, whose body the caller then releases.
func (h *Handler) verify(r *http.Request) (verification, error) {
	if r.Method != http.MethodPost {
		return verification{forwardable: true}, errMethodNotAllowed
	}
	var storage [maxCandidates]Signature
	timestamp, candidates, err := h.checkHeaders(r.Header, storage[:0])
	v := verification{timestamp: timestamp, forwardable: true}
	if err != nil {
		return v, err
	}

	digest := h.verifier.Begin(timestamp)
	defer h.verifier.Release(digest)
	v.delivery = new(delivery)
	if err := h.readBody(r, digest, &v.delivery.body); err != nil {
		return verification{timestamp: timestamp, delivery: v.delivery}, err
	}
	v.bodyRead = true
	var candidate int
	v.secret, candidate, err = digest.Match(candidates)
	if err != nil {
		return v, err
	}
	v.signature = candidates[candidate]
	v.event = parseEvent(v.delivery.body.bytes())
	return v, nil
}

// checkHeaders does the cheap checks that need no body: exactly one
// timestamp, within the window, and exactly one well-formed signature header.
func (h *Handler) checkHeaders(header http.Header, candidates []Signature) (string, []Signature, error) {
	timestamps := header[h.TimestampHeader]
	if len(timestamps) == 0 {
		return "", nil, ErrMissingTimestamp
	}
	if len(timestamps) > 1 {
		return "", nil, fmt.Errorf("%w: %d timestamp headers", ErrMalformedTimestamp, len(timestamps))
	}
	ts, err := ParseTimestamp(timestamps[0])
	if err != nil {
		return "", nil, err
	}
	skew, err := CheckSkew(ts, h.now(), time.Duration(h.Tolerance))
	timestampSkew.Observe(float64(skew))
	if err != nil {
		return timestamps[0], nil, err
	}
	signatures := header[h.SignatureHeader]
	if len(signatures) == 0 {
		return timestamps[0], nil, ErrMissingSignature
	}
	if len(signatures) > 1 {
		return timestamps[0], nil, fmt.Errorf("%w: %d signature headers", ErrMalformedSignature, len(signatures))
	}
	candidates, err = appendSignatures(candidates, signatures[0])
	if err != nil {
		return timestamps[0], nil, err
	}
	return timestamps[0], candidates, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
