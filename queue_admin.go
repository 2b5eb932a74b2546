package groqwebhook

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The admin API of the queues: an operator sees how much waits and what is
// dead, replays dead letters once the upstream is fixed, and drops those
// that should never be delivered. It reports only metadata: a dead letter's
// body, headers and signature stay in the store, so nothing a sender signed
// or a secret placeholder resolved to ever reaches the admin endpoint or its
// logs.
//
//	GET    /groq_webhook/queues                       every running queue's counts
//	GET    /groq_webhook/queues/<name>/dead?limit=N   its dead letters, oldest first
//	POST   /groq_webhook/queues/<name>/replay         {"ids":[...]} or {"all":true}
//	DELETE /groq_webhook/queues/<name>/dead/<id>      drops one dead letter
//
// Names and ids are single path segments, percent-encoded where needed.

func init() {
	caddy.RegisterModule(queueAdmin{})
}

// Limits of the admin API.
const (
	defaultDeadLimit = 100
	maxDeadLimit     = 10000
	// maxReplayBody bounds what a replay request may make the server read;
	// a million ids is more than any store should be asked for at once.
	maxReplayBody = 1 << 20
)

// queueAdminNow is the admin API's clock, replaced in tests.
var queueAdminNow = time.Now

// queueAdminPrefix is the admin route the queue endpoints live under. The
// admin server's mux routes by prefix, so the rest of the path is parsed
// here.
const queueAdminPrefix = "/groq_webhook/"

// queueAdmin is the admin.api.groq_webhook module: the queue endpoints of
// Caddy's admin API. It holds no state: the engines are found by name in
// runningQueues, so it sees the queues of whatever config is loaded.
type queueAdmin struct{}

// CaddyModule returns the Caddy module information.
func (queueAdmin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.groq_webhook",
		New: func() caddy.Module { return new(queueAdmin) },
	}
}

// Routes returns the one prefix route that serves every queue endpoint.
func (a queueAdmin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: queueAdminPrefix,
		Handler: caddy.AdminHandlerFunc(a.serve),
	}}
}

// queueSummary is one queue in the answer to GET /groq_webhook/queues.
type queueSummary struct {
	Name     string `json:"name"`
	Queued   int    `json:"queued"`
	InFlight int    `json:"in_flight"`
	Dead     int    `json:"dead"`
	// OldestQueuedSeconds is how long the longest-waiting event has
	// waited: a number, so that monitoring can compare it without parsing.
	OldestQueuedSeconds float64 `json:"oldest_queued_seconds"`
}

// deadLetter is what the admin API shows of a dead event. It is a type of
// its own, not QueuedEvent, so that a field added to QueuedEvent (which
// holds headers, signature and secret placeholders) cannot leak here.
type deadLetter struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"last_status"`
	LastError  string `json:"last_error"`
	ReceivedAt string `json:"received_at"`
	DeadAt     string `json:"dead_at"`
}

// replayRequest is the body of POST .../replay.
type replayRequest struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

// serve routes a request under /groq_webhook/. The path is split on its
// escaped form so that a name or id holding "/" can still be addressed.
func (a queueAdmin) serve(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), queueAdminPrefix)
	if !ok {
		return apiError(http.StatusNotFound, errors.New("not found"))
	}
	segments := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	for i, s := range segments {
		unescaped, err := url.PathUnescape(s)
		if err != nil {
			return apiError(http.StatusBadRequest, fmt.Errorf("bad path segment %q: %v", s, err))
		}
		segments[i] = unescaped
	}
	switch {
	case len(segments) == 1 && segments[0] == "queues":
		if err := allowMethod(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.listQueues(w, r)
	case len(segments) == 3 && segments[0] == "queues" && segments[2] == "dead":
		if err := allowMethod(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.listDead(w, r, segments[1])
	case len(segments) == 3 && segments[0] == "queues" && segments[2] == "replay":
		if err := allowMethod(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.replay(w, r, segments[1])
	case len(segments) == 4 && segments[0] == "queues" && segments[2] == "dead":
		if err := allowMethod(w, r, http.MethodDelete); err != nil {
			return err
		}
		return a.drop(w, r, segments[1], segments[3])
	}
	return apiError(http.StatusNotFound, fmt.Errorf("not found: %s", r.URL.Path))
}

// listQueues answers GET /groq_webhook/queues.
func (queueAdmin) listQueues(w http.ResponseWriter, r *http.Request) error {
	var engines []*queueEngine
	runningQueues.Range(func(_, value any) bool {
		if e, ok := value.(*queueEngine); ok {
			engines = append(engines, e)
		}
		return true
	})
	slices.SortFunc(engines, func(x, y *queueEngine) int { return cmp.Compare(x.name, y.name) })

	now := queueAdminNow()
	summaries := make([]queueSummary, 0, len(engines)) // [] rather than null when none runs
	for _, e := range engines {
		stats, err := e.stats(r.Context())
		if err != nil {
			return apiError(http.StatusInternalServerError, fmt.Errorf("queue %q: counting events: %v", e.name, err))
		}
		summaries = append(summaries, queueSummary{
			Name:                e.name,
			Queued:              stats.Queued,
			InFlight:            stats.InFlight,
			Dead:                stats.Dead,
			OldestQueuedSeconds: waitedSeconds(stats.OldestQueued, now),
		})
	}
	return writeJSON(w, summaries)
}

// waitedSeconds returns the seconds from since to now, to the millisecond:
// 0 for the zero time (nothing waits) and for a since in the future (the
// clock of another node of a shared store may run ahead).
func waitedSeconds(since, now time.Time) float64 {
	if since.IsZero() || !since.Before(now) {
		return 0
	}
	return math.Round(now.Sub(since).Seconds()*1000) / 1000
}

// listDead answers GET /groq_webhook/queues/<name>/dead.
func (queueAdmin) listDead(w http.ResponseWriter, r *http.Request, name string) error {
	e, err := lookupQueue(name)
	if err != nil {
		return err
	}
	limit, err := parseDeadLimit(r.URL.Query())
	if err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	events, err := e.store.Dead(r.Context(), limit)
	if err != nil {
		return apiError(http.StatusInternalServerError, fmt.Errorf("queue %q: listing dead letters: %v", name, err))
	}
	letters := make([]deadLetter, 0, len(events))
	for _, ev := range events {
		letters = append(letters, deadLetter{
			ID:         ev.ID,
			Type:       ev.Vars["event_type"],
			Attempts:   ev.Attempts,
			LastStatus: ev.LastStatus,
			LastError:  ev.LastError,
			ReceivedAt: formatAdminTime(ev.ReceivedAt),
			DeadAt:     formatAdminTime(ev.DeadAt),
		})
	}
	return writeJSON(w, letters)
}

// parseDeadLimit reads ?limit=, which must be a plain number from 1 to
// maxDeadLimit. Out of range is refused rather than clamped, so that a
// caller never mistakes a shortened list for the whole of it.
func parseDeadLimit(query url.Values) (int, error) {
	values, ok := query["limit"]
	if !ok {
		return defaultDeadLimit, nil
	}
	if len(values) != 1 {
		return 0, errors.New("limit is given more than once")
	}
	limit, err := strconv.Atoi(values[0])
	if err != nil || limit < 1 || limit > maxDeadLimit || values[0] != strconv.Itoa(limit) {
		return 0, fmt.Errorf("limit must be a whole number from 1 to %d, got %q", maxDeadLimit, values[0])
	}
	return limit, nil
}

// formatAdminTime formats t in RFC 3339, UTC; the zero time is "".
func formatAdminTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// replay answers POST /groq_webhook/queues/<name>/replay.
func (queueAdmin) replay(w http.ResponseWriter, r *http.Request, name string) error {
	e, err := lookupQueue(name)
	if err != nil {
		return err
	}
	req, err := decodeReplayRequest(w, r)
	if err != nil {
		return err
	}
	n, err := e.store.Replay(r.Context(), req.IDs, req.All)
	if err != nil {
		return apiError(http.StatusInternalServerError, fmt.Errorf("queue %q: replaying dead letters: %v", name, err))
	}
	// Replayed events are due now; without a wake-up the scheduler would
	// only see them when it next woke by itself.
	e.signal()
	return writeJSON(w, map[string]int{"replayed": n})
}

// decodeReplayRequest reads and checks a replay body: one JSON object
// with either a non-empty ids list or "all": true. Unknown fields are
// refused, so that a misspelt {"id": ...} is not taken for "nothing".
func decodeReplayRequest(w http.ResponseWriter, r *http.Request) (replayRequest, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReplayBody))
	dec.DisallowUnknownFields()
	var req replayRequest
	err := dec.Decode(&req)
	switch {
	case errors.Is(err, io.EOF):
		err = errors.New("the body is empty")
	case err == nil:
		var extra json.RawMessage
		if err = dec.Decode(&extra); errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return req, apiError(http.StatusRequestEntityTooLarge, fmt.Errorf("replay request is larger than %d bytes", maxReplayBody))
		}
		return req, apiError(http.StatusBadRequest, fmt.Errorf("decoding replay request: %v", err))
	}
	switch {
	case len(req.IDs) > 0 && req.All:
		return req, apiError(http.StatusBadRequest, errors.New(`give either "ids" or "all", not both`))
	case len(req.IDs) == 0 && !req.All:
		return req, apiError(http.StatusBadRequest, errors.New(`give "ids" (a non-empty list) or "all": true`))
	case slices.Contains(req.IDs, ""):
		return req, apiError(http.StatusBadRequest, errors.New(`"ids" holds an empty id`))
	}
	return req, nil
}

// drop answers DELETE /groq_webhook/queues/<name>/dead/<id>.
func (queueAdmin) drop(w http.ResponseWriter, r *http.Request, name, id string) error {
	e, err := lookupQueue(name)
	if err != nil {
		return err
	}
	if id == "" {
		return apiError(http.StatusBadRequest, errors.New("empty dead letter id"))
	}
	if err := e.store.Drop(r.Context(), id); err != nil {
		if errors.Is(err, ErrQueueEventNotFound) {
			return apiError(http.StatusNotFound, errors.New("no such dead letter"))
		}
		return apiError(http.StatusInternalServerError, fmt.Errorf("queue %q: dropping a dead letter: %v", name, err))
	}
	return writeJSON(w, map[string]int{"dropped": 1})
}

// lookupQueue returns the running engine of the queue name.
func lookupQueue(name string) (*queueEngine, error) {
	if v, ok := runningQueues.Load(name); ok {
		if e, ok := v.(*queueEngine); ok {
			return e, nil
		}
	}
	return nil, apiError(http.StatusNotFound, fmt.Errorf("no such queue %q", name))
}

// allowMethod refuses any method but method, naming it in Allow.
func allowMethod(w http.ResponseWriter, r *http.Request, method string) error {
	if r.Method == method {
		return nil
	}
	w.Header().Set("Allow", method)
	return apiError(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed: use %s", r.Method, method))
}

// apiError is the error the admin server turns into {"error": "..."}
// with this status.
func apiError(status int, err error) error {
	return caddy.APIError{HTTPStatus: status, Err: err}
}

// writeJSON encodes v before writing anything, so that an encoding error
// can still become a 500 rather than half an answer. A failed write is
// not returned: the client is gone, and the admin server would only try
// to write an error answer after the status line was sent.
func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return apiError(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// Interface guards
var (
	_ caddy.Module      = (*queueAdmin)(nil)
	_ caddy.AdminRouter = (*queueAdmin)(nil)
)
