// Package groqwebhook is a Caddy HTTP handler that verifies signed webhooks
// at the edge and forwards only authentic, fresh events to the next handler.
package groqwebhook

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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

	// maxPreallocation bounds the buffer sized from a client's
	// Content-Length before any of the body has arrived.
	maxPreallocation = 1 << 20
)

// Handler verifies webhooks signed with HMAC-SHA256 over the timestamp, a
// dot and the raw body. A request that passes reaches the next handler with
// the verified header set to "true", the event's id and type in headers, and
// the very bytes that were signed as its body; any other request is answered
// here (401, 405 or 413 with a JSON error) and goes no further.
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

	// De-duplication of verified events. Default: on, in memory.
	Dedupe *Dedupe `json:"dedupe,omitempty"`

	verifier *Verifier
	labels   []string
	reserved []string
	logger   *zap.Logger
	now      func() time.Time
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
	}

	if h.Mode == "" {
		h.Mode = ModeEnforce
	}

	secrets, labels, err := resolveSecrets(h.Secrets)
	if err != nil {
		return err
	}
	h.verifier = NewVerifier(secrets)
	h.labels = labels

	if h.Dedupe == nil {
		h.Dedupe = new(Dedupe)
	}
	if err := h.Dedupe.provision(ctx, h.Mode == ModeShadow); err != nil {
		return err
	}
	return registerMetrics(ctx.GetMetricsRegistry())
}

// Validate checks settings that Provision cannot default.
func (h *Handler) Validate() error {
	if h.Tolerance < caddy.Duration(time.Second) {
		return fmt.Errorf("tolerance must be at least 1s (timestamps are in whole seconds), got %s", time.Duration(h.Tolerance))
	}
	if h.MaxBody <= 0 || h.MaxBody > maxMaxBody {
		return fmt.Errorf("max_body must be between 1 and %d bytes, got %d", maxMaxBody, h.MaxBody)
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

	v, err := h.verify(r, repl)
	if err != nil && h.Mode == ModeShadow && v.forwardable {
		return h.forwardUnverified(w, r, repl, err, v.bodyRead, next)
	}
	if err != nil {
		return h.reject(w, r, repl, err, v.bodyRead)
	}

	id, typ := headerSafe(v.event.ID), headerSafe(v.event.Type)
	label := h.labels[v.secret]
	secretMatchesTotal.WithLabelValues(label).Inc()
	r.Header.Set(h.VerifiedHeader, "true")
	if id != "" {
		r.Header.Set(EventIDHeader, id)
		repl.Set("http.groq_webhook.event_id", id)
	}
	if typ != "" {
		r.Header.Set(EventTypeHeader, typ)
		repl.Set("http.groq_webhook.event_type", typ)
	}
	repl.Set("http.groq_webhook.verified", true)
	repl.Set("http.groq_webhook.secret", label)
	if c := h.logger.Check(zapcore.DebugLevel, "webhook verified"); c != nil {
		c.Write(zap.String("event_id", id), zap.String("event_type", typ), zap.String("secret", label))
	}

	if h.Dedupe.store == nil {
		requestsTotal.WithLabelValues("verified").Inc()
		return next.ServeHTTP(w, r)
	}
	return h.deliverOnce(w, r, repl, h.Dedupe.key(v.event.ID, v.signature), next)
}

// forwardUnverified is shadow mode's answer to a failed request: it is
// logged and counted as a rejection would be, then forwarded marked as not
// verified. Its body is still bounded by max_body.
func (h *Handler) forwardUnverified(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, err error, bodyRead bool, next caddyhttp.Handler) error {
	if !bodyRead && r.Body != nil && r.Body != http.NoBody {
		body, readErr := h.readBody(r, io.Discard)
		if readErr != nil {
			return h.reject(w, r, repl, readErr, false)
		}
		replaceBody(r, body)
	}
	h.logRejection(r, repl, err, "webhook failed verification; forwarded in shadow mode")
	r.Header.Set(h.VerifiedHeader, "false")
	return next.ServeHTTP(w, r)
}

// verification is what verify learned about a request.
type verification struct {
	secret    int       // index of the secret that matched
	signature Signature // the candidate that matched
	event     event

	// bodyRead is true once the body has been consumed (and, if it was
	// read whole, put back for the next handler).
	bodyRead bool
	// forwardable is true when a failed request can still be passed on
	// intact, as shadow mode does.
	forwardable bool
}

// verify runs every check, cheapest first. On success, and whenever the body
// was read whole, the next handler gets the very bytes that were read.
func (h *Handler) verify(r *http.Request, repl *caddy.Replacer) (verification, error) {
	if r.Method != http.MethodPost {
		return verification{forwardable: true}, errMethodNotAllowed
	}
	timestamp, candidates, err := h.checkHeaders(r.Header)
	if err != nil {
		return verification{forwardable: true}, err
	}
	repl.Set("http.groq_webhook.timestamp", timestamp)

	digest := h.verifier.Begin(timestamp)
	defer h.verifier.Release(digest)
	body, err := h.readBody(r, digest)
	if err != nil {
		return verification{}, err
	}
	replaceBody(r, body)
	v := verification{bodyRead: true, forwardable: true}
	var candidate int
	v.secret, candidate, err = digest.Match(candidates)
	if err != nil {
		return v, err
	}
	v.signature = candidates[candidate]
	v.event = parseEvent(body)
	return v, nil
}

// checkHeaders does the cheap checks that need no body: exactly one
// timestamp, within the window, and exactly one well-formed signature header.
func (h *Handler) checkHeaders(header http.Header) (string, []Signature, error) {
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
		return "", nil, err
	}
	signatures := header[h.SignatureHeader]
	if len(signatures) == 0 {
		return "", nil, ErrMissingSignature
	}
	if len(signatures) > 1 {
		return "", nil, fmt.Errorf("%w: %d signature headers", ErrMalformedSignature, len(signatures))
	}
	candidates, err := ParseSignatures(signatures[0])
	if err != nil {
		return "", nil, err
	}
	return timestamps[0], candidates, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
