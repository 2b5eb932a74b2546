package groqwebhook

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// These tests drive the handler directly with next handlers that fail in
// ways a real upstream cannot be made to on demand (a panic, a client that
// is gone, an error with no status): each must release the claim so that
// the sender's retry is forwarded. The end-to-end tests cover the rest.

func provisionedHandler(t *testing.T) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{Secrets: []Secret{{Value: testSecret}}}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return h
}

// serve runs one signed request for event id through h into next.
func serve(t *testing.T, h *Handler, ctx context.Context, id string, next caddyhttp.HandlerFunc) (*httptest.ResponseRecorder, error) {
	t.Helper()
	body := eventBody(id)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set(DefaultTimestampHeader, ts)
	req.Header.Set(DefaultSignatureHeader, Sign([]byte(testSecret), ts, body))
	w := httptest.NewRecorder()
	req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, nil)
	return w, h.ServeHTTP(w, req, next)
}

func TestDedupeReleasesClaimOnFailure(t *testing.T) {
	accept := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	tests := []struct {
		name string
		ctx  func() context.Context
		next caddyhttp.HandlerFunc
	}{
		{"next handler panics", context.Background, func(http.ResponseWriter, *http.Request) error {
			panic("upstream handler blew up")
		}},
		{"next handler errors without writing", context.Background, func(http.ResponseWriter, *http.Request) error {
			return errors.New("dial tcp: connection refused")
		}},
		{"client gone", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, func(_ http.ResponseWriter, r *http.Request) error {
			return caddyhttp.Error(499, r.Context().Err())
		}},
		{"upstream answers 503", context.Background, func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusServiceUnavailable)
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provisionedHandler(t)
			id := "evt_" + t.Name()
			func() {
				defer func() { _ = recover() }()
				_, _ = serve(t, h, tt.ctx(), id, tt.next)
			}()
			w, err := serve(t, h, context.Background(), id, accept)
			if err != nil || w.Code != http.StatusNoContent {
				t.Fatalf("retry after the failure: %d, %v; want it forwarded", w.Code, err)
			}
			w, _ = serve(t, h, context.Background(), id, accept)
			if w.Body.String() != duplicateBody {
				t.Fatalf("after delivery: %d %s, want a duplicate", w.Code, w.Body)
			}
		})
	}
}
