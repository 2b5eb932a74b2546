package groqwebhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults of de-duplication.
const (
	DefaultDedupeTTL       = 168 * time.Hour
	DefaultDedupeLease     = 30 * time.Second
	DefaultDedupeKeyPrefix = "groq_webhook:"

	// DuplicateHeader is set on the answer to a duplicate of a delivered event.
	DuplicateHeader = "X-Groq-Duplicate"

	// storeRetryAfter is what a sender is told to wait when the store fails.
	storeRetryAfter = "5"
)

// Store remembers which events are being delivered and which were. Stores
// are guest modules in the http.handlers.groq_webhook.dedupe namespace, so
// another backend can be plugged in without changing this handler.
//
// Claim must be atomic: of any number of concurrent claims of one absent
// key, exactly one is Claimed.
type Store interface {
	// Claim takes key for lease, tagged with token, if no one holds it.
	Claim(ctx context.Context, key, token string, lease time.Duration) (Claim, error)

	// Commit marks key delivered for ttl, whoever holds it.
	Commit(ctx context.Context, key string, ttl time.Duration) error

	// Release frees key if it is still claimed with token, so that a
	// retry can be delivered. A key claimed by someone else, or delivered,
	// is left alone.
	Release(ctx context.Context, key, token string) error
}

// ClaimState is the outcome of a claim.
type ClaimState int

// The outcomes of a claim.
const (
	Claimed    ClaimState = iota // the caller holds the key and should deliver
	Delivered                    // the event was delivered already
	InProgress                   // someone else holds the key
)

// Claim is what a store answers to a claim.
type Claim struct {
	State ClaimState

	// For InProgress, how long the current holder's lease still runs.
	RetryAfter time.Duration
}

// Dedupe configures de-duplication: each event is forwarded until the next
// handler answers 2xx once, and duplicates are answered here. It is on, with
// the memory store, unless disabled.
type Dedupe struct {
	// Turns de-duplication off.
	Disabled bool `json:"disabled,omitempty"`

	// Where claims and deliveries are kept. Default: the memory store.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.groq_webhook.dedupe inline_key=backend"`

	// How long a delivered event id is remembered. Default: 168h.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// How long an in-flight delivery blocks duplicates, if it never
	// finishes (for example when Caddy stops mid-request). Default: 30s.
	Lease caddy.Duration `json:"lease,omitempty"`

	// Prepended to every key. Default: "groq_webhook:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// What to do when the store fails: "reject" answers 503 with
	// Retry-After, so the sender retries later and nothing is lost;
	// "forward" forwards without de-duplication. Default: reject.
	OnStoreError string `json:"on_store_error,omitempty"`

	store Store
}

// provision fills in defaults and loads the store module, unless
// de-duplication is disabled, the handler is in shadow mode, where nothing
// is held back, or the handler queues events, whose store keeps the keys.
func (d *Dedupe) provision(ctx caddy.Context, noStore bool) error {
	if d.TTL == 0 {
		d.TTL = caddy.Duration(DefaultDedupeTTL)
	}
	if d.Lease == 0 {
		d.Lease = caddy.Duration(DefaultDedupeLease)
	}
	if d.KeyPrefix == "" {
		d.KeyPrefix = DefaultDedupeKeyPrefix
	}
	if d.OnStoreError == "" {
		d.OnStoreError = "reject"
	}
	if d.Disabled || noStore {
		return nil
	}
	if d.StoreRaw == nil {
		d.StoreRaw = json.RawMessage(`{"backend":"memory"}`)
	}
	mod, err := ctx.LoadModule(d, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading dedupe store: %v", err)
	}
	store, ok := mod.(Store)
	if !ok {
		return fmt.Errorf("dedupe store %T is not a groq_webhook dedupe Store", mod)
	}
	d.store = store
	return nil
}

func (d *Dedupe) validate() error {
	if d.TTL < caddy.Duration(time.Millisecond) || d.Lease < caddy.Duration(time.Millisecond) {
		return fmt.Errorf("dedupe ttl and lease must be at least 1ms, got %s and %s",
			time.Duration(d.TTL), time.Duration(d.Lease))
	}
	if d.OnStoreError != "reject" && d.OnStoreError != "forward" {
		return fmt.Errorf("dedupe on_store_error must be reject or forward, got %q", d.OnStoreError)
	}
	return nil
}

// maxKeyedIDLength bounds the event ids used in keys as they are; longer
// ones are keyed by their SHA-256, so a key stays small.
const maxKeyedIDLength = 200

// key names a verified event in the store: its id when the body has one,
// else a digest of the signature that matched, which is unique to these
// bytes and, unlike the signature, says nothing a log should not hold.
func (d *Dedupe) key(eventID string, matched Signature) string {
	switch {
	case eventID == "":
		digest := sha256.Sum256(matched[:])
		return d.KeyPrefix + "sig:" + hex.EncodeToString(digest[:])
	case len(eventID) > maxKeyedIDLength:
		digest := sha256.Sum256([]byte(eventID))
		return d.KeyPrefix + "event-sha256:" + hex.EncodeToString(digest[:])
	}
	return d.KeyPrefix + "event:" + eventID
}

// errInProgress and errStoreUnavailable are the answers of the store that
// stop a verified request.
var (
	errInProgress       = errors.New("event in progress")
	errStoreUnavailable = errors.New("dedupe store unavailable")
)

// deliverOnce forwards a verified event unless it was delivered or is in
// flight: claim, forward, then commit on a 2xx answer or release on any
// other outcome (an error status, an upstream error, a panic, a client
// gone), so that the sender's retry gets through.
func (h *Handler) deliverOnce(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, key string, next caddyhttp.Handler) (err error) {
	d := h.Dedupe
	token := newToken()
	claim, err := d.store.Claim(r.Context(), key, token, time.Duration(d.Lease))
	if err != nil {
		if d.OnStoreError == "forward" {
			h.logger.Error("dedupe store failed; forwarding without de-duplication", zap.Error(err))
			requestsTotal.WithLabelValues(h.providerName(), "store_error").Inc()
			return next.ServeHTTP(w, r)
		}
		w.Header().Set("Retry-After", storeRetryAfter)
		return h.reject(w, r, repl, fmt.Errorf("%w: %v", errStoreUnavailable, err), true)
	}

	switch claim.State {
	case Delivered:
		return h.answerDuplicate(w, repl, key)
	case InProgress:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(claim.RetryAfter)))
		return h.reject(w, r, repl, errInProgress, true)
	}

	repl.Set("http.groq_webhook.duplicate", false)
	h.prov.verified.Inc()
	rec := caddyhttp.NewResponseRecorder(w, nil, nil)
	finished := false
	defer func() {
		// Deferred, so that a panic in a later handler releases the claim.
		// A 2xx status was sent by the upstream, even if the response
		// broke off after it; a handler that wrote nothing and returned no
		// error gets Caddy's empty 200.
		status := rec.Status()
		accepted := 200 <= status && status <= 299 || (finished && err == nil && status == 0)
		ctx := context.WithoutCancel(r.Context())
		if accepted {
			if err := d.store.Commit(ctx, key, time.Duration(d.TTL)); err != nil {
				// The claim stays until its lease ends: until then copies
				// are held off, after it a retry may be forwarded again.
				h.logger.Error("marking event delivered failed", zap.String("key", key), zap.Error(err))
			}
			return
		}
		if err := d.store.Release(ctx, key, token); err != nil {
			h.logger.Error("releasing dedupe claim failed; retries wait for the lease to end",
				zap.String("key", key), zap.Duration("lease", time.Duration(d.Lease)), zap.Error(err))
		}
	}()
	err = next.ServeHTTP(rec, r)
	finished = true
	return err
}

// answerDuplicate answers a copy of an event that was delivered (or, with
// a queue, is queued or dead).
func (h *Handler) answerDuplicate(w http.ResponseWriter, repl *caddy.Replacer, key string) error {
	repl.Set("http.groq_webhook.duplicate", true)
	h.prov.duplicate.Inc()
	if c := h.logger.Check(zapcore.DebugLevel, "duplicate of a delivered event"); c != nil {
		c.Write(zap.String("key", key))
	}
	w.Header().Set(DuplicateHeader, "true")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(`{"received":true,"duplicate":true}`))
	return err
}

// eventKey is the queue's de-duplication key for a verified event, or ""
// with de-duplication off.
func (h *Handler) eventKey(v verification) string {
	if h.Dedupe.Disabled {
		return ""
	}
	return h.Dedupe.KeyPrefix + h.prov.eventKey(&v)
}

// retryAfterSeconds rounds a wait up to whole seconds, at least one.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// newToken returns a random claim token, unique to one delivery attempt.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
