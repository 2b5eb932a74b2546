package groqwebhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The Caddy side of the queue: what is stored of a request when it is
// accepted, and how an attempt rebuilds the request and runs it through
// the deliver routes.

var errQueueUnavailable = errors.New("queue unavailable")

// enqueue is the queue's way of delivering a verified event: it is stored,
// and the sender is answered at once, 202 once the store has it durably.
// key is its de-duplication key ("" without de-duplication); eventKey, the
// same without the prefix, is the webhook-id of sign_upstream.
func (h *Handler) enqueue(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, d *delivery, key, eventKey, secret string) error {
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil {
		h.server.Store(srv)
	}
	ev := &QueuedEvent{
		Key:        key,
		Method:     r.Method,
		Host:       r.Host,
		URI:        r.RequestURI,
		RemoteAddr: r.RemoteAddr,
		Header:     h.storedHeader(r.Header),
		Body:       d.body.bytes(),
		Vars: map[string]string{
			"event_id":    d.headers[1],
			"event_type":  d.headers[2],
			"timestamp":   string(d.timestamp),
			"secret":      secret,
			"provider":    h.providerName(),
			"delivery_id": string(d.deliveryID),
			"key":         eventKey,
		},
		ReceivedAt: h.now().UTC(),
	}
	err := h.queue.accept(r.Context(), ev)
	switch {
	case err == nil:
		h.prov.queued.Inc()
		w.Header().Set(QueuedHeader, "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, err := w.Write([]byte(`{"received":true,"queued":true}`))
		return err
	case errors.Is(err, ErrQueueDuplicate):
		return h.answerDuplicate(w, repl, key)
	case errors.Is(err, ErrQueueFull):
		w.Header().Set("Retry-After", queueRetryAfter)
		return h.reject(w, r, repl, err, true)
	}
	w.Header().Set("Retry-After", queueRetryAfter)
	return h.reject(w, r, repl, fmt.Errorf("%w: %v", errQueueUnavailable, err), true)
}

// hopByHopHeaders belong to one connection and are not stored.
var hopByHopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// storedHeader is what is kept of the request's header: all but hop-by-hop
// headers, the framing, and the headers this handler sets at delivery.
func (h *Handler) storedHeader(in http.Header) http.Header {
	out := in.Clone()
	for _, name := range in.Values("Connection") {
		for _, listed := range strings.Split(name, ",") {
			out.Del(strings.TrimSpace(listed))
		}
	}
	for _, name := range hopByHopHeaders {
		delete(out, name)
	}
	for _, name := range []string{"Content-Length", h.VerifiedHeader, h.prov.idHeader, h.prov.typeHdr, WebhookProviderHeader} {
		delete(out, name)
	}
	return out
}

// attemptResult is the outcome of one delivery attempt.
type attemptResult struct {
	delivered  bool
	permanent  bool // refused for good: dead at once
	status     int
	errText    string
	retryAfter time.Duration
}

// deliverQueued runs one attempt: the stored request, rebuilt, through the
// deliver routes, with the verified and event headers and placeholders as
// in synchronous delivery, plus the attempt number and the time received.
func (h *Handler) deliverQueued(parent context.Context, ev *QueuedEvent, timeout time.Duration) (result attemptResult) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, ev.Method, ev.URI, bytes.NewReader(ev.Body))
	if err != nil {
		return attemptResult{permanent: true, errText: "stored request: " + err.Error()}
	}
	body := ev.Body
	req.RequestURI, req.Host, req.RemoteAddr = ev.URI, ev.Host, ev.RemoteAddr
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header = ev.Header.Clone()
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.Header[h.VerifiedHeader] = []string{"true"}
	if id := ev.Vars["event_id"]; id != "" {
		req.Header[h.prov.idHeader] = []string{id}
	}
	if typ := ev.Vars["event_type"]; typ != "" {
		req.Header[h.prov.typeHdr] = []string{typ}
	}
	if !h.prov.groq {
		req.Header[WebhookProviderHeader] = []string{h.providerName()}
	}
	if h.prov.upstreamKey != nil {
		key := ev.Vars["key"]
		if key == "" {
			key = ev.Key
		}
		h.prov.signUpstream(req.Header, key, body, time.Now())
	}
	req.Header[DeliveryAttemptHeader] = []string{strconv.Itoa(ev.Attempts)}
	req.Header[ReceivedAtHeader] = []string{ev.ReceivedAt.UTC().Format(time.RFC3339)}

	srv := h.server.Load()
	if srv == nil {
		srv = new(caddyhttp.Server) // nothing accepted since a restart
	}
	repl := caddy.NewReplacer()
	rec := &attemptRecorder{header: make(http.Header)}
	req = caddyhttp.PrepareRequest(req, repl, rec, srv)
	repl.Set("http.groq_webhook.verified", true)
	for name, value := range ev.Vars {
		repl.Set("http.groq_webhook."+name, value) // empty ones too, as on receipt
	}
	repl.Set("http.groq_webhook.attempt", ev.Attempts)

	defer func() {
		if p := recover(); p != nil {
			result = attemptResult{errText: fmt.Sprintf("deliver handler panicked: %v", p)}
		}
	}()
	err = h.deliver.ServeHTTP(rec, req, unanswered)
	return outcome(rec, err)
}

// unanswered ends the deliver routes when none of them answered.
var unanswered = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
	return errNoDeliverRoute
})

var errNoDeliverRoute = errors.New("no deliver route answered")

// outcome reads an attempt's result. Only a complete 2xx answer delivers;
// 408, 425, 429, 5xx, 1xx, 3xx and no answer are retried; any other 4xx
// is the upstream refusing the event for good.
func outcome(rec *attemptRecorder, err error) attemptResult {
	status := rec.status
	if herr, ok := errors.AsType[caddyhttp.HandlerError](err); ok && status == 0 {
		status = herr.StatusCode
	}
	result := attemptResult{status: status, retryAfter: parseRetryAfter(rec.header.Get("Retry-After"))}
	if err != nil {
		result.errText = err.Error()
		if len(result.errText) > 200 {
			result.errText = result.errText[:200]
		}
	}
	switch {
	case err == nil && status >= 200 && status <= 299:
		result.delivered = true
	case err == nil && status == 0:
		// A handler that wrote nothing and returned no error: Caddy would
		// send an empty 200, but nothing reached an upstream.
		result.errText = errNoDeliverRoute.Error()
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests:
	case status >= 400 && status <= 499:
		result.permanent = true
	}
	return result
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// attemptRecorder is the response writer of an attempt: it keeps the
// status and headers, and drops the body, which nobody reads.
type attemptRecorder struct {
	header http.Header
	status int
}

func (r *attemptRecorder) Header() http.Header { return r.header }

func (r *attemptRecorder) WriteHeader(status int) {
	if r.status == 0 && status >= 200 {
		r.status = status
	}
}

func (r *attemptRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(p), nil
}

// Flush lets handlers that stream, as reverse_proxy may, flush.
func (r *attemptRecorder) Flush() {}
