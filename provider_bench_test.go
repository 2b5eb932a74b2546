package groqwebhook

import (
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

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// providerRun sends one provider's signed request through a handler again
// and again, reusing the request, so that only the handler allocates.
type providerRun struct {
	h         *Handler
	req       *http.Request
	header    http.Header
	body      []byte
	reader    *rewindableReader
	w         *discardResponse
	next      caddyhttp.Handler
	forwarded int
}

func newProviderRun(tb testing.TB, name string, size int) *providerRun {
	tb.Helper()
	var site providerSite
	for _, s := range providerSites {
		if s.name == name {
			site = s
		}
	}
	events := newBenchEvents(size)
	run := &providerRun{h: site.handler(tb, func(h *Handler) { h.Dedupe = &Dedupe{Disabled: true} }), body: events.body(1)}
	run.h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	signed := site.request(tb, run.body, time.Now())
	run.header = signed.Header
	run.reader = &rewindableReader{}
	run.w = &discardResponse{header: make(http.Header)}
	run.next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return err
		}
		run.forwarded++
		return r.Body.Close()
	})
	req := httptest.NewRequest(http.MethodPost, "/hooks", nil)
	run.req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), run.w, nil)
	return run
}

func (run *providerRun) serve() error {
	run.reader.Reset(run.body)
	run.req.Body, run.req.ContentLength = run.reader, int64(len(run.body))
	for name, values := range run.header {
		run.req.Header[name] = values
	}
	return run.h.ServeHTTP(run.w, run.req, run.next)
}

// TestProviderServeHTTPAllocations holds every HMAC provider to the same
// budget as groq's verified request (TestServeHTTPAllocations).
func TestProviderServeHTTPAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	for _, name := range []string{"standard", "stripe", "github", "slack", "paddle", "shopify", "zoom"} {
		t.Run(name, func(t *testing.T) {
			run := newProviderRun(t, name, 1<<10)
			run.req.Header = http.Header{}
			const runs = 200
			allocs := testing.AllocsPerRun(runs, func() {
				if err := run.serve(); err != nil {
					t.Fatal(err)
				}
			})
			if run.forwarded != runs+1 {
				t.Fatalf("forwarded %d of %d", run.forwarded, runs+1)
			}
			if allocs > 3 {
				t.Errorf("a verified %s request costs %v allocations, want at most 3", name, allocs)
			}
		})
	}
}

// TestProviderVerifyAllocations: the engine verifies every HMAC provider
// without allocating (the provider package's own test, run here too so
// that CI's allocation step, which runs this package, holds it).
func TestProviderVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	for _, site := range providerSites {
		scheme, _ := provider.Lookup(site.name)
		if scheme.Algorithm == provider.Ed25519 || scheme.Algorithm == provider.Token || scheme.BuildMessage != nil {
			continue
		}
		t.Run(site.name, func(t *testing.T) {
			body := site.body
			if body == nil {
				body = []byte(`{"type":"Issue","webhookTimestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `}`)
			}
			v, err := scheme.New(provider.Config{Secrets: [][]byte{[]byte("old-secret-0123456789abcdef"), []byte(testSecret)}, URL: site.url})
			if err != nil {
				t.Fatal(err)
			}
			r := provider.Request{Header: site.request(t, body, time.Now()).Header}
			now := time.Now()
			allocs := testing.AllocsPerRun(100, func() {
				if res, err := v.Verify(r, body, now); err != nil || res.Secret != 1 {
					t.Fatalf("Verify = %+v, %v", res, err)
				}
			})
			if allocs != 0 {
				t.Errorf("Verify allocates %v times, want 0", allocs)
			}
		})
	}
}

// BenchmarkProviderServeHTTP measures a verified request through the
// handler for a few providers beside groq (BenchmarkServeHTTP):
//
//	go test -run '^$' -bench BenchmarkProviderServeHTTP -count 6 .
func BenchmarkProviderServeHTTP(b *testing.B) {
	for _, name := range []string{"standard", "stripe", "github"} {
		for _, size := range []int{1 << 10, 64 << 10} {
			b.Run(name+"/"+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
				run := newProviderRun(b, name, size)
				run.req.Header = http.Header{}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if err := run.serve(); err != nil {
						b.Fatal(err)
					}
				}
				if run.forwarded == 0 {
					b.Fatal("nothing forwarded")
				}
			})
		}
	}
}
