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
			now := time.Now()
			ts := strconv.FormatInt(now.Unix(), 10)
			if tc.stale {
				ts = strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
			}
			events := newBenchEvents(tc.size)
			signatures := make([]string, b.N)
			for i := range signatures {
				signatures[i] = Sign([]byte(testSecret), ts, events.body(i))
				if tc.forge {
					signatures[i] = Sign([]byte("not-the-secret-0123456789"), ts, events.body(i))
				}
			}
			var forwarded int
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				if _, err := io.Copy(io.Discard, r.Body); err != nil {
					return err
				}
				forwarded++
				w.WriteHeader(http.StatusOK)
				return r.Body.Close()
			})
			body := &rewindableReader{}
			w := &discardResponse{header: make(http.Header)}
			req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/webhooks", nil)
			req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, nil)
			header := req.Header
			timestamp := []string{ts}
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				body.Reset(events.body(i))
				req.Body, req.ContentLength, req.Header = body, int64(tc.size), header
				header[DefaultTimestampHeader] = timestamp
				header[DefaultSignatureHeader] = signatures[i : i+1]
				header["Content-Length"] = events.contentLength
				w.status = 0
				if err := h.ServeHTTP(w, req, next); err != nil {
					if _, ok := err.(caddyhttp.HandlerError); !ok {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			want := b.N
			if tc.forge || tc.stale {
				want = 0
			}
			if forwarded != want {
				b.Fatalf("forwarded %d of %d requests, want %d", forwarded, b.N, want)
			}
		})
	}
}

func benchHandler(b *testing.B, dedupe bool) *Handler {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	h := &Handler{Secrets: []Secret{{Value: testSecret}}, Dedupe: &Dedupe{Disabled: !dedupe}}
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		b.Fatal(err)
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
