package groqwebhook

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestBudgetConcurrentAccounting takes and gives back the budget from many
// goroutines at once (run it with -race): what is held never passes the
// limit nor goes below zero, and all of it comes back.
func TestBudgetConcurrentAccounting(t *testing.T) {
	const limit = 1 << 20
	// Free buffers left by earlier tests are given up first: the trim
	// timer would otherwise give them back in the middle of the count.
	evictFree(1 << 40)
	start := bufferedBytes.Load()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var overLimit, negative, granted, refused int
	for g := range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var held []int64
			for range 2000 {
				if len(held) > 0 && rng.IntN(2) == 0 {
					releaseBuffered(held[len(held)-1])
					held = held[:len(held)-1]
					continue
				}
				n := int64(1 + rng.IntN(64<<10))
				ok := acquireBuffered(n, limit+start)
				now := bufferedBytes.Load() - start
				mu.Lock()
				if ok {
					granted++
					held = append(held, n)
				} else {
					refused++
				}
				if now < 0 {
					negative++
				}
				mu.Unlock()
			}
			for _, n := range held {
				releaseBuffered(n)
			}
		})
	}
	// A watcher sees every state in between: a refused acquire may
	// overshoot for an instant, but granted bytes never exceed the limit.
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if bufferedBytes.Load()-start > 2*limit {
				mu.Lock()
				overLimit++
				mu.Unlock()
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-watched
	if negative > 0 || overLimit > 0 {
		t.Errorf("held bytes went below zero %d times, far over the limit %d times", negative, overLimit)
	}
	if granted == 0 || refused == 0 {
		t.Errorf("granted %d, refused %d: the test must reach the limit", granted, refused)
	}
	if left := bufferedBytes.Load() - start; left != 0 {
		t.Errorf("%d bytes still held after every hold was given back", left)
	}
}

// arrivalReader yields a body in pieces and records, at each read, how much
// of the budget is held: memory must follow what arrived.
type arrivalReader struct {
	data    []byte
	piece   int
	failAt  int   // after this many bytes, fail as a client gone would; 0: never
	sent    int   // bytes handed out so far
	reads   int   // calls to Read
	maxHeld int64 // the most held at any read
}

func (a *arrivalReader) Read(p []byte) (int, error) {
	a.reads++
	a.maxHeld = max(a.maxHeld, heldBytes())
	if len(a.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), a.piece)], a.data)
	a.data = a.data[n:]
	a.sent += n
	if a.failAt > 0 && a.sent >= a.failAt {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

func TestReadBodyBudget(t *testing.T) {
	tests := []struct {
		name         string
		size         int   // bytes the client sends
		declared     int64 // Content-Length; -1 for chunked
		failAt       int   // the client is gone after this many bytes
		maxBody      int64
		maxBuffered  int64
		held         int64 // held by other requests at the start
		wantErr      error
		wantCharged  int64 // budget held for the body once read
		wantMaxHeld  int64 // at most this held by this body while reading
		wantNoneRead bool
	}{
		{name: "1 KiB", size: 1 << 10, declared: 1 << 10, maxBody: 1 << 20, maxBuffered: 1 << 20,
			wantCharged: 1 << 10, wantMaxHeld: 1 << 10},
		{name: "64 KiB chunked fits its first buffer exactly", size: 64 << 10, declared: -1, maxBody: 1 << 20, maxBuffered: 1 << 20,
			wantCharged: 64 << 10, wantMaxHeld: 64 << 10},
		{name: "grows with what arrives, not with what is announced", size: 100 << 10, declared: 1 << 20, failAt: 100 << 10,
			maxBody: 1 << 20, maxBuffered: 4 << 20, wantErr: errUnreadableBody, wantMaxHeld: 128<<10 + 64<<10},
		{name: "1 MiB grows to 1 MiB", size: 1 << 20, declared: 1 << 20, maxBody: 1 << 20, maxBuffered: 4 << 20,
			wantCharged: 1 << 20, wantMaxHeld: 1<<20 + 512<<10},
		{name: "declared length over what is left", size: 600 << 10, declared: 600 << 10, maxBody: 1 << 20, maxBuffered: 1 << 20,
			held: 500 << 10, wantErr: errServerBusy, wantNoneRead: true},
		{name: "chunked body outgrows the budget", size: 900 << 10, declared: -1, maxBody: 1 << 20, maxBuffered: 1 << 20,
			held: 300 << 10, wantErr: errServerBusy, wantMaxHeld: 1 << 20},
		{name: "chunked body over max_body", size: 2 << 20, declared: -1, maxBody: 1 << 20, maxBuffered: 8 << 20,
			wantErr: ErrBodyTooLarge, wantMaxHeld: 1<<20 + 512<<10},
		{name: "declared over max_body", size: 2 << 20, declared: 2 << 20, maxBody: 1 << 20, maxBuffered: 8 << 20,
			wantErr: ErrBodyTooLarge, wantNoneRead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := heldBytes()
			releaseBuffered(-tt.held) // other requests' bytes
			defer releaseBuffered(tt.held)
			data := bytes.Repeat([]byte("x"), tt.size)
			src := &arrivalReader{data: data, piece: 16 << 10, failAt: tt.failAt}
			r, _ := http.NewRequest(http.MethodPost, "/", io.NopCloser(src))
			r.ContentLength = tt.declared
			h := &Handler{MaxBody: tt.maxBody, MaxBuffered: tt.maxBuffered}
			body := new(requestBody)
			err := h.readBody(r, io.Discard, body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("readBody: %v, want %v", err, tt.wantErr)
			}
			if got := body.charged; got != tt.wantCharged {
				t.Errorf("budget held for the body: %d, want %d", got, tt.wantCharged)
			}
			if tt.wantNoneRead && src.reads != 0 {
				t.Errorf("the body was read before it was refused")
			}
			if held := src.maxHeld - base - tt.held; held > tt.wantMaxHeld {
				t.Errorf("held %d bytes while reading, want at most %d", held, tt.wantMaxHeld)
			}
			if err == nil && !bytes.Equal(body.bytes(), data) {
				t.Errorf("read %d bytes that differ from the %d sent", len(body.bytes()), len(data))
			}
			body.finish()
			if left := heldBytes() - base - tt.held; left != 0 {
				t.Errorf("%d bytes still held after finish", left)
			}
		})
	}
}

// TestSmallBodiesAreChargedSmall: a buffer reused after a big body must not
// charge a small one for its size.
func TestSmallBodiesAreChargedSmall(t *testing.T) {
	h := &Handler{MaxBody: 1 << 20, MaxBuffered: DefaultMaxBuffered}
	for _, size := range []int{1 << 20, 1 << 10, 300 << 10, 2 << 10} {
		r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("y", size)))
		body := new(requestBody)
		if err := h.readBody(r, io.Discard, body); err != nil {
			t.Fatal(err)
		}
		if want := bufferSize(int64(size)); body.charged != want || int64(cap(body.buf.b)) != want {
			t.Errorf("%d-byte body: charged %d for a %d-byte buffer, want %d", size, body.charged, cap(body.buf.b), want)
		}
		body.finish()
	}
}

// TestMaxBufferedSettings: the directive, its default, and the values
// provisioning refuses, each named in the error.
func TestMaxBufferedSettings(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    int64
		wantErr []string
	}{
		{name: "default", input: `groq_webhook ` + testSecret, want: DefaultMaxBuffered},
		{name: "64MiB", input: "groq_webhook " + testSecret + " {\n max_buffered 64MiB\n}", want: 64 << 20},
		{name: "decimal units", input: "groq_webhook " + testSecret + " {\n max_buffered 2GB\n}", want: 2_000_000_000},
		{name: "equal to max_body", input: "groq_webhook " + testSecret + " {\n max_body 2MiB\n max_buffered 2MiB\n}", want: 2 << 20},
		{name: "missing", input: "groq_webhook " + testSecret + " {\n max_buffered\n}", wantErr: []string{"wrong argument count", "max_buffered"}},
		{name: "two values", input: "groq_webhook " + testSecret + " {\n max_buffered 1MiB 2MiB\n}", wantErr: []string{"wrong argument count"}},
		{name: "not a size", input: "groq_webhook " + testSecret + " {\n max_buffered lots\n}", wantErr: []string{`max_buffered "lots"`}},
		{name: "zero", input: "groq_webhook " + testSecret + " {\n max_buffered 0\n}", wantErr: []string{"max_buffered must be between", `"0"`}},
		{name: "below max_body", input: "groq_webhook " + testSecret + " {\n max_body 4MiB\n max_buffered 1MiB\n}",
			wantErr: []string{"max_buffered (1048576 bytes) must be at least max_body (4194304 bytes)"}},
		{name: "below the default max_body", input: "groq_webhook " + testSecret + " {\n max_buffered 512KiB\n}",
			wantErr: []string{"max_buffered", "max_body (1048576 bytes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil {
				err = cfProvision(t, h)
			}
			if checkError(t, err, tt.wantErr, nil) {
				return
			}
			if h.MaxBuffered != tt.want {
				t.Fatalf("max_buffered %d, want %d", h.MaxBuffered, tt.want)
			}
		})
	}
	t.Run("JSON over the upper bound", func(t *testing.T) {
		h := &Handler{Secrets: []Secret{{Value: testSecret}}, MaxBuffered: 1 << 62}
		checkError(t, cfProvision(t, h), []string{"max_buffered must be at most"}, nil)
	})
}
