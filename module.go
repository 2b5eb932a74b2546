// Package groqwebhook is a Caddy HTTP handler that verifies signed webhooks
// at the edge and forwards only authentic, fresh events to the next handler.
package groqwebhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
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
// Headers that only this handler may set (the verified header, in any case
// or underscore spelling, and the event id and type headers) are removed from
// every incoming request, so a client can never spoof them.
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

// Secret is one shared secret and the name it goes by in logs and the
// {http.groq_webhook.secret} placeholder.
type Secret struct {
	// The secret itself, or a `{env.NAME}` / `{file.PATH}` placeholder.
	Value string `json:"value"`

	// A name for this secret, such as "2026-q4". Default: its 0-based index.
	Label string `json:"label,omitempty"`
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

// resolveSecrets replaces the placeholders in every secret and checks what
// they resolve to. Errors name the secret and the placeholder, never a value.
func resolveSecrets(configured []Secret) ([][]byte, []string, error) {
	if len(configured) == 0 {
		return nil, nil, errors.New("no secret configured: add at least one 'secret'")
	}
	repl := caddy.NewReplacer()
	secrets := make([][]byte, len(configured))
	labels := make([]string, len(configured))
	for i, s := range configured {
		labels[i] = s.Label
		if labels[i] == "" {
			labels[i] = strconv.Itoa(i)
		}
		name := fmt.Sprintf("secret %q", labels[i])
		if s.Value == "" {
			return nil, nil, fmt.Errorf("%s is empty", name)
		}
		value, err := repl.ReplaceOrErr(s.Value, true, true)
		if err != nil || value == "" {
			return nil, nil, fmt.Errorf("%s is empty after placeholder replacement: check %s",
				name, placeholdersIn(s.Value))
		}
		if len(value) < minSecretBytes {
			return nil, nil, fmt.Errorf("%s is %d bytes long; use at least %d random bytes",
				name, len(value), minSecretBytes)
		}
		secrets[i] = []byte(value)
	}
	return secrets, labels, nil
}

// placeholdersIn names the {env.*} and {file.*} placeholders in a configured
// secret, so an error can point at them without repeating any other part of
// the value, which may be a literal secret that happens to contain braces.
func placeholdersIn(value string) string {
	var found []string
	for _, prefix := range []string{"{env.", "{file."} {
		rest := value
		for {
			start := strings.Index(rest, prefix)
			if start < 0 {
				break
			}
			end := strings.IndexByte(rest[start:], '}')
			if end < 0 {
				break
			}
			found = append(found, rest[start:start+end+1])
			rest = rest[start+end+1:]
		}
	}
	if len(found) == 0 {
		return "that it is a literal or a known {env.*} or {file.*} placeholder"
	}
	return strings.Join(found, ", ")
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

// readBody reads at most MaxBody+1 bytes into one buffer sized from the
// Content-Length, hashing them in the same pass. A declared length over
// MaxBody is refused before anything is read. The buffer is not pooled:
// it becomes the forwarded body, which an upstream transport may still be
// reading after the next handler has returned.
func (h *Handler) readBody(r *http.Request, digest io.Writer) ([]byte, error) {
	if r.ContentLength > h.MaxBody {
		return nil, ErrBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	size := int64(bytes.MinRead)
	if r.ContentLength >= 0 {
		size = r.ContentLength
	}
	limit := h.MaxBody + 1
	buf := make([]byte, 0, min(size+1, limit, maxPreallocation))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		digest.Write(buf[len(buf) : len(buf)+n])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > h.MaxBody {
			return nil, ErrBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, ErrBodyTooLarge
			}
			return nil, fmt.Errorf("%w: %v", errUnreadableBody, err)
		}
	}
}

// replaceBody hands the verified bytes to the next handler with exact
// framing, and lets a retrying proxy read them again.
func replaceBody(r *http.Request, body []byte) {
	r.TransferEncoding = nil
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	if len(body) == 0 {
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
}

// event holds the fields of a webhook event that the handler uses.
type event struct {
	ID   string
	Type string
}

// parseEvent reads the id and type of a JSON object body, matching the
// keys exactly, as backends do (encoding/json alone would also take "ID").
// A body that is not a JSON object, or fields that are not strings, yield
// empty fields: the event is still forwarded.
func parseEvent(body []byte) event {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return event{}
	}
	var e event
	_ = json.Unmarshal(fields["id"], &e.ID)
	_ = json.Unmarshal(fields["type"], &e.Type)
	return e
}

// headerSafe returns s if it can be sent as a header value, else "".
func headerSafe(s string) string {
	if !httpguts.ValidHeaderFieldValue(s) {
		return ""
	}
	return s
}

// removeReserved deletes every header a client must not set, matching names
// in any case and with any other punctuation read as '-': backends behind
// CGI and some frameworks read X-Groq_Verified or X-Groq.Verified alike.
func (h *Handler) removeReserved(header http.Header) {
	for name := range header {
		for _, reserved := range h.reserved {
			if sameHeaderName(name, reserved) {
				delete(header, name)
				break
			}
		}
	}
}

// headerMatchForm folds a header name to lower case, with every byte that
// is not a letter or a digit read as '-'.
func headerMatchForm(name string) string {
	folded := []byte(name)
	for i, c := range folded {
		folded[i] = foldHeaderByte(c)
	}
	return string(folded)
}

// sameHeaderName reports whether name, folded as by headerMatchForm, equals
// folded, without allocating: it runs for every header of every request.
func sameHeaderName(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldHeaderByte(name[i]) != folded[i] {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return c
	}
	return '-'
}

// reject answers a request that is not forwarded and logs why. When the
// site has handle_errors routes, the rejection is handed to them as a
// handler error instead, so operators can shape the answer.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, err error, bodyRead bool) error {
	rej := h.logRejection(r, repl, err, "webhook rejected")
	if rej.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if !bodyRead {
		// Nobody will read the body: stop the server from waiting to drain
		// a body held back, and over HTTP/1 close the connection after the
		// answer (over HTTP/2 that would end every stream on it).
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	if hasErrorRoutes(r) {
		return caddyhttp.Error(rej.status, err)
	}
	writeJSONError(w, rej.status, rej.message)
	return nil
}

// logRejection records a failed request: the reason goes to the
// {http.groq_webhook.error} placeholder, the metrics and one warn line,
// which never holds the secret, a signature or the body.
func (h *Handler) logRejection(r *http.Request, repl *caddy.Replacer, err error, msg string) rejection {
	rej := rejectionFor(err)
	repl.Set("http.groq_webhook.error", rej.reason)
	requestsTotal.WithLabelValues(rej.reason).Inc()
	h.logger.Warn(msg,
		zap.String("reason", rej.reason),
		zap.Error(err),
		zap.String("remote_ip", remoteIP(r)),
		zap.String("uri", r.RequestURI),
		zap.String("request_id", repl.ReplaceAll("{http.request.uuid}", "")),
	)
	return rej
}

// hasErrorRoutes reports whether handle_errors routes would take this
// request. Error routes belong to the server, which may hold other sites
// too, so a route counts only if its matchers (the site's host, usually)
// match the request.
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv.Errors == nil {
		return false
	}
	for _, route := range srv.Errors.Routes {
		if route.MatcherSets.AnyMatch(r) {
			return true
		}
	}
	return false
}

func remoteIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
