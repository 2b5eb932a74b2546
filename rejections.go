package groqwebhook

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Errors of the HTTP exchange itself, next to the protocol's errors in
// verifier.go.
var (
	errMethodNotAllowed = errors.New("method not allowed")
	errUnreadableBody   = errors.New("request body could not be read")
)

// rejection is what a client is told about a request that is not forwarded.
// The reason code is finer than the message: it goes to logs, metrics and
// the {http.groq_webhook.error} placeholder, never to the client.
type rejection struct {
	status  int
	reason  string
	message string
}

// rejectionFor is the one place that maps errors to answers and reasons.
// Every verification failure gets the same message so that a prober learns
// nothing about which check failed.
func rejectionFor(err error) rejection {
	unauthorized := func(reason string) rejection {
		return rejection{http.StatusUnauthorized, reason, "invalid signature"}
	}
	switch {
	case errors.Is(err, errMethodNotAllowed):
		return rejection{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"}
	case errors.Is(err, ErrBodyTooLarge):
		return rejection{http.StatusRequestEntityTooLarge, "too_large", "payload too large"}
	case errors.Is(err, errInProgress):
		return rejection{http.StatusConflict, "in_progress", "event in progress"}
	case errors.Is(err, errServerBusy):
		return rejection{http.StatusServiceUnavailable, "busy", "server busy"}
	case errors.Is(err, ErrQueueFull):
		return rejection{http.StatusServiceUnavailable, "queue_full", "queue full"}
	case errors.Is(err, errQueueUnavailable):
		return rejection{http.StatusServiceUnavailable, "queue_unavailable", "queue unavailable"}
	case errors.Is(err, errStoreUnavailable):
		return rejection{http.StatusServiceUnavailable, "store_error", "dedupe store unavailable"}
	case errors.Is(err, errUnreadableBody):
		return rejection{http.StatusBadRequest, "malformed", "unreadable body"}
	case errors.Is(err, ErrMissingTimestamp), errors.Is(err, ErrMissingSignature):
		return unauthorized("missing_header")
	case errors.Is(err, ErrStaleTimestamp):
		return unauthorized("stale_timestamp")
	case errors.Is(err, ErrFutureTimestamp):
		return unauthorized("future_timestamp")
	case errors.Is(err, ErrInvalidSignature):
		return unauthorized("invalid_signature")
	}
	return unauthorized("malformed")
}

// writeJSONError answers with a small JSON object. The message is one of the
// fixed strings above, so it needs no escaping.
func writeJSONError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + message + `"}`))
}

// reject answers a request that is not forwarded and logs why. When the
// site has handle_errors routes, the rejection is handed to them as a
// handler error instead, so operators can shape the answer.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, err error, bodyRead bool) error {
	rej := h.logRejection(r, repl, err, "webhook rejected")
	switch rej.reason {
	case "method_not_allowed":
		w.Header().Set("Allow", http.MethodPost)
	case "busy":
		w.Header().Set("Retry-After", "1")
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
// {http.groq_webhook.error} placeholder, the metrics and one warn line
// (for requests turned away by the budget, one a second), which never holds
// the secret, a signature or the body.
func (h *Handler) logRejection(r *http.Request, repl *caddy.Replacer, err error, msg string) rejection {
	rej := rejectionFor(err)
	repl.Set("http.groq_webhook.error", rej.reason)
	requestsTotal.WithLabelValues(h.providerName(), rej.reason).Inc()
	if rej.reason == "busy" {
		h.logBusy()
		return rej
	}
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
	if !ok || srv == nil || srv.Errors == nil {
		return false
	}
	for _, route := range srv.Errors.Routes {
		if matched, err := route.MatcherSets.AnyMatchWithError(r); err == nil && matched {
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
