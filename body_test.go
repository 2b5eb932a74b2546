package groqwebhook

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// readIntoBody reads s through the handler's body reader.
func readIntoBody(t *testing.T, s string) *requestBody {
	t.Helper()
	h := &Handler{MaxBody: 1 << 20, MaxBuffered: DefaultMaxBuffered}
	r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(s))
	body := new(requestBody)
	if err := h.readBody(r, io.Discard, body); err != nil {
		t.Fatal(err)
	}
	return body
}

// TestRequestBodyLifetime checks when a body's buffer may be reused: only
// after the handler released it and every reader was closed.
func TestRequestBodyLifetime(t *testing.T) {
	tests := []struct {
		name      string
		steps     func(b *requestBody, first *bodyReader) // after the first reader is handed out
		wantFreed bool
	}{
		{"handler released, reader open", func(b *requestBody, first *bodyReader) {
			b.finish()
		}, false},
		{"reader closed, handler running", func(b *requestBody, first *bodyReader) {
			first.Close()
		}, false},
		{"reader closed twice, handler running", func(b *requestBody, first *bodyReader) {
			first.Close()
			first.Close()
		}, false},
		{"both done", func(b *requestBody, first *bodyReader) {
			first.Close()
			b.finish()
		}, true},
		{"retry reader still open", func(b *requestBody, first *bodyReader) {
			if _, err := b.newReader(); err != nil {
				t.Fatal(err)
			}
			first.Close()
			b.finish()
		}, false},
		{"retry reader closed too", func(b *requestBody, first *bodyReader) {
			again, err := b.newReader()
			if err != nil {
				t.Fatal(err)
			}
			b.finish()
			first.Close()
			again.Close()
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := readIntoBody(t, `{"id":"evt_1"}`)
			var first bodyReader
			b.hold(&first)
			tt.steps(b, &first)
			b.mu.Lock()
			freed := b.buf == nil
			b.mu.Unlock()
			if freed != tt.wantFreed {
				t.Fatalf("buffer free for reuse = %v, want %v", freed, tt.wantFreed)
			}
			if !freed && b.holders > 0 && b.charged > 0 {
				b.finish() // the handler's hold, where the case left it running
			}
		})
	}
}

func TestBodyReaderAfterRelease(t *testing.T) {
	b := readIntoBody(t, "signed bytes")
	var first bodyReader
	b.hold(&first)
	got, err := io.ReadAll(&first)
	if err != nil || string(got) != "signed bytes" {
		t.Fatalf("read %q, %v", got, err)
	}
	first.Close()
	if _, err := first.Read(make([]byte, 8)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("read after close: %v, want ErrBodyReadAfterClose", err)
	}
	b.finish()
	if _, err := b.newReader(); !errors.Is(err, errBodyReleased) {
		t.Fatalf("GetBody after release: %v, want errBodyReleased", err)
	}
	// The buffer now serves another request: the first one's GetBody, if
	// someone kept it, still finds its own body released.
	other := readIntoBody(t, "another request's bytes")
	defer other.finish()
	if _, err := b.newReader(); !errors.Is(err, errBodyReleased) {
		t.Fatalf("kept GetBody after the buffer was reused: %v, want errBodyReleased", err)
	}
}

// TestBodyReadersConcurrent has many bodies in flight at once, each read by
// two readers while other requests take and free buffers, as a transport
// still sending one body while the next request arrives would: every reader
// must see its own body, whole.
func TestBodyReadersConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				want := bytes.Repeat([]byte{byte('a' + g)}, 1+(i*977)%70000)
				h := &Handler{MaxBody: 1 << 20, MaxBuffered: DefaultMaxBuffered}
				r, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(want))
				b := new(requestBody)
				if err := h.readBody(r, io.Discard, b); err != nil {
					t.Error(err)
					return
				}
				var first bodyReader
				b.hold(&first)
				again, _ := b.newReader()
				b.finish()
				for _, rd := range []io.ReadCloser{&first, again} {
					got, err := io.ReadAll(rd)
					rd.Close()
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("reader got %d bytes (%v), want %d bytes of %q", len(got), err, len(want), want[0])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
