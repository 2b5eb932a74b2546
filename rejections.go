package groqwebhook

import (
	"errors"
	"net/http"
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
