package groqwebhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// Request bodies are read whole, hashed in the same pass, and forwarded from
// memory. A body's buffer starts small and doubles as bytes arrive, each
// size drawn from the budget (budget.go) before it is taken, so memory
// follows what clients actually sent, not what they announced. Buffers come
// from and go back to free lists by size (buffers.go).

// requestBody is one request's body, read into a reusable buffer. The
// buffer goes back to its free list once the handler is done with the request
// and every reader handed to the next handler has been closed
// (reverse_proxy's transport closes the body once it has sent it). A reader
// that is never closed leaves the buffer to the garbage collector, so a
// buffer is never reused while anyone can still read it. A requestBody is
// never reused itself: a GetBody kept past the request finds it released.
type requestBody struct {
	mu      sync.Mutex
	buf     *bodyBuffer // nil for an empty body, and once released
	holders int         // open readers, plus one while the handler runs

	charged int64   // bytes of the budget held for buf, until finish
	probe   [1]byte // where a full buffer checks for one more byte
}

// bytes returns the body; it is valid while the caller holds the body.
func (b *requestBody) bytes() []byte {
	if b.buf == nil {
		return nil
	}
	return b.buf.b
}

// hold gives first a hold on the body and makes it a reader of it.
func (b *requestBody) hold(first *bodyReader) {
	b.mu.Lock()
	b.holders++
	b.mu.Unlock()
	*first = bodyReader{body: b}
}

// newReader is the request's GetBody, for a transport's retry.
func (b *requestBody) newReader() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf == nil {
		return nil, errBodyReleased
	}
	b.holders++
	return &bodyReader{body: b}, nil
}

// release drops a reader's hold. The last one, closed after the handler
// was done and the budget had the bytes back, leaves the buffer to the
// garbage collector.
func (b *requestBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holders--
	if b.holders == 0 {
		b.buf = nil
	}
}

// finish ends the handler's hold. With no reader left open, the buffer goes
// back to its free list. Otherwise (a transport still finishing its write)
// the budget gets the bytes back at once, and the last reader to close
// leaves the buffer to the garbage collector: a buffer is never reused
// while anyone can read it.
func (b *requestBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holders--
	switch {
	case b.buf == nil:
	case b.holders == 0:
		putBuffer(b.buf)
		b.buf = nil
	default:
		releaseBuffered(b.charged)
	}
	b.charged = 0
}

// grow moves the body into a buffer of capacity size, charged to the
// budget, and gives the old one back.
func (b *requestBody) grow(size, limit int64) error {
	next, ok := takeBuffer(size, limit)
	if !ok {
		return errServerBusy
	}
	if b.buf != nil {
		next.b = append(next.b, b.buf.b...)
		putBuffer(b.buf)
	}
	b.buf, b.charged = next, size
	return nil
}

// discard gives back what the body read, for a request that goes no
// further.
func (b *requestBody) discard() {
	if b.buf != nil {
		putBuffer(b.buf)
		b.buf = nil
	}
	b.charged = 0
}

var errBodyReleased = errors.New("request body already released")

// bodyReader reads a requestBody. Read and Close may be called
// concurrently, as http.Request.Body requires.
type bodyReader struct {
	body   *requestBody
	off    int
	closed bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	b := r.body
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if r.off >= len(b.buf.b) {
		return 0, io.EOF
	}
	n := copy(p, b.buf.b[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error {
	r.body.mu.Lock()
	already := r.closed
	r.closed = true
	r.body.mu.Unlock()
	if !already {
		r.body.release()
	}
	return nil
}

// readBody reads the whole body, at most MaxBody bytes, into body (whose
// caller then holds it, and ends with finish), hashing it in the same pass.
// A declared length over MaxBody, or over what is left of the budget, is
// refused before anything is read; a body that outgrows either while it is
// read is refused then, and what it held freed at once. An empty body
// leaves body without a buffer.
func (h *Handler) readBody(r *http.Request, digest io.Writer, body *requestBody) error {
	body.holders = 1
	if r.ContentLength > h.MaxBody {
		return ErrBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	if r.ContentLength > 0 && !fitsBuffered(r.ContentLength, h.MaxBuffered) {
		return errServerBusy
	}
	first := int64(initialBuffer)
	if r.ContentLength > 0 {
		first = min(first, r.ContentLength)
	}
	if err := body.grow(bufferSize(min(first, h.MaxBody)), h.MaxBuffered); err != nil {
		return err
	}
	for {
		b := body.buf.b
		room := min(int64(cap(b)), h.MaxBody)
		var n int
		var err error
		if int64(len(b)) < room {
			n, err = r.Body.Read(b[len(b):room])
			digest.Write(b[len(b) : len(b)+n])
			body.buf.b = b[:len(b)+n]
		} else {
			// Full: only a byte more says whether the body goes on, and
			// a body that ends exactly here never grows.
			n, err = r.Body.Read(body.probe[:])
			if n > 0 {
				if int64(len(b)) >= h.MaxBody {
					err = ErrBodyTooLarge
				} else if err = body.grow(min(bufferSize(int64(cap(b))+1), h.MaxBody), h.MaxBuffered); err == nil {
					digest.Write(body.probe[:n])
					body.buf.b = append(body.buf.b, body.probe[0])
				}
			}
		}
		switch {
		case err == io.EOF && len(body.buf.b) == 0:
			body.discard()
			return nil
		case err == io.EOF:
			return nil
		case err != nil:
			body.discard()
			return readError(err)
		}
	}
}

func readError(err error) error {
	if errors.Is(err, ErrBodyTooLarge) || errors.Is(err, errServerBusy) {
		return err
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return ErrBodyTooLarge
	}
	return fmt.Errorf("%w: %v", errUnreadableBody, err)
}

// forwardBody hands the body to the next handler with exact framing, from
// first, a reader whose storage the caller provides, and lets a retrying
// transport read it again through GetBody.
func forwardBody(r *http.Request, body *requestBody, first *bodyReader) {
	r.TransferEncoding = nil
	if body.buf == nil {
		r.ContentLength = 0
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		setContentLength(r.Header, 0)
		return
	}
	body.hold(first)
	r.ContentLength = int64(len(body.buf.b))
	r.Body = first
	r.GetBody = body.newReader
	setContentLength(r.Header, len(body.buf.b))
}

// setContentLength sets the Content-Length header to n, leaving it alone
// when it already says so, as it does unless the body came chunked.
func setContentLength(header http.Header, n int) {
	if values := header["Content-Length"]; len(values) == 1 {
		if declared, err := strconv.ParseInt(values[0], 10, 64); err == nil && declared == int64(n) {
			return
		}
	}
	header.Set("Content-Length", strconv.Itoa(n))
}

// headerSafe returns s if it can be sent as a header value, else "".
func headerSafe(s string) string {
	if !httpguts.ValidHeaderFieldValue(s) {
		return ""
	}
	return s
}
