package groqwebhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// BenchmarkServeHTTP measures the handler alone: a signed request in, the
// next handler draining and closing the body as reverse_proxy's transport
// does. Every iteration is a new event id, so de-duplication claims and
// commits each one. Allocations are those of the handler: the request and
// response are reused across iterations.
//
//	go test -run '^$' -bench BenchmarkServeHTTP -count 6 .
func BenchmarkServeHTTP(b *testing.B) {
	cases := []struct {
		name    string
		size    int
		dedupe  bool
		forge   bool // a wrong signature: 401
		stale   bool // a timestamp out of tolerance: 401 before the body is read
		wantErr bool
	}{
		{name: "verified/1KiB/dedupe=off", size: 1 << 10},
		{name: "verified/1KiB/dedupe=memory", size: 1 << 10, dedupe: true},
		{name: "verified/64KiB/dedupe=off", size: 64 << 10},
		{name: "verified/64KiB/dedupe=memory", size: 64 << 10, dedupe: true},
		{name: "invalid_signature/1KiB", size: 1 << 10, forge: true},
		{name: "stale_timestamp/1KiB", size: 1 << 10, stale: true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			h := benchHandler(b, tc.dedupe)
			ts := time.Now()
			if tc.stale {
				ts = ts.Add(-time.Hour)
			}
			secret := testSecret
			if tc.forge {
				secret = "not-the-secret-0123456789"
			}
			run := newServeRun(h, tc.size, secret, ts, b.N)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := run.serve(i); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			want := b.N
			if tc.forge || tc.stale {
				want = 0
			}
			if run.forwarded != want {
				b.Fatalf("forwarded %d of %d requests, want %d", run.forwarded, b.N, want)
			}
		})
	}
}

// TestServeHTTPAllocations holds the handler to its allocation budget for
// a verified request: its delivery state, the event's strings, and the
// request's GetBody, bound to this request so that a GetBody kept past it
// can never read another request's body. The body buffer is reused.
func TestServeHTTPAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	h := benchHandler(t, false)
	const runs = 200
	run := newServeRun(h, 1<<10, testSecret, time.Now(), runs+1)
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if err := run.serve(i); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs > 3 {
		t.Errorf("a verified request costs %v allocations, want at most 3", allocs)
	}
	if run.forwarded != i {
		t.Fatalf("forwarded %d of %d", run.forwarded, i)
	}
}

// serveRun sends signed events of one size, each with a new id, through a
// handler, reusing one request so that only the handler allocates.
type serveRun struct {
	h          *Handler
	events     *benchEvents
	signatures []string
	timestamp  []string
	req        *http.Request
	header     http.Header
	body       *rewindableReader
	w          *discardResponse
	next       caddyhttp.Handler
	forwarded  int
}

func newServeRun(h *Handler, size int, secret string, ts time.Time, n int) *serveRun {
	timestamp := strconv.FormatInt(ts.Unix(), 10)
	run := &serveRun{h: h, events: newBenchEvents(size), timestamp: []string{timestamp}}
	run.signatures = make([]string, n)
	for i := range run.signatures {
		run.signatures[i] = Sign([]byte(secret), timestamp, run.events.body(i))
	}
	run.next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return err
		}
		if n != int64(size) {
			return fmt.Errorf("next handler read %d bytes of a %d-byte body", n, size)
		}
		run.forwarded++
		w.WriteHeader(http.StatusOK)
		return r.Body.Close()
	})
	run.body = &rewindableReader{}
	run.w = &discardResponse{header: make(http.Header)}
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/webhooks", nil)
	run.req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), run.w, nil)
	run.header = run.req.Header
	return run
}

// serve sends event i. A rejection is not an error here.
func (run *serveRun) serve(i int) error {
	body := run.events.body(i)
	run.body.Reset(body)
	run.req.Body, run.req.ContentLength, run.req.Header = run.body, int64(len(body)), run.header
	run.header[DefaultTimestampHeader] = run.timestamp
	run.header[DefaultSignatureHeader] = run.signatures[i : i+1]
	run.header["Content-Length"] = run.events.contentLength
	err := run.h.ServeHTTP(run.w, run.req, run.next)
	if _, ok := err.(caddyhttp.HandlerError); ok {
		return nil
	}
	return err
}

func benchHandler(tb testing.TB, dedupe bool) *Handler {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	h := &Handler{Secrets: []Secret{{Value: testSecret}}, Dedupe: &Dedupe{Disabled: !dedupe}}
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		tb.Fatal(err)
	}
	// Caddy logs at INFO unless told otherwise; lines are encoded, then dropped.
	h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	return h
}

// benchEvents makes event bodies of one size that differ only in their id,
// written in place into one buffer, so that making them costs no allocation.
type benchEvents struct {
	buf           []byte
	idAt          int
	contentLength []string
}

const benchIDDigits = 12

func newBenchEvents(size int) *benchEvents {
	head := `{"id":"evt_`
	tail := `","type":"bench.event","data":{"pad":"`
	end := `"}}`
	pad := size - len(head) - benchIDDigits - len(tail) - len(end)
	if pad < 0 {
		panic("body too small")
	}
	buf := fmt.Appendf(nil, "%s%0*d%s%s%s", head, benchIDDigits, 0, tail, bytes.Repeat([]byte("x"), pad), end)
	return &benchEvents{buf: buf, idAt: len(head), contentLength: []string{strconv.Itoa(size)}}
}

// body returns event i's body; it is valid until the next call.
func (e *benchEvents) body(i int) []byte {
	digits := e.buf[e.idAt : e.idAt+benchIDDigits]
	for j := len(digits) - 1; j >= 0; j-- {
		digits[j] = byte('0' + i%10)
		i /= 10
	}
	return e.buf
}

// rewindableReader is a request body that can be reused.
type rewindableReader struct{ bytes.Reader }

func (*rewindableReader) Close() error { return nil }

// discardResponse is a ResponseWriter that keeps nothing but the status.
type discardResponse struct {
	header http.Header
	status int
}

func (w *discardResponse) Header() http.Header         { return w.header }
func (w *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardResponse) WriteHeader(status int)      { w.status = status }
