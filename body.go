package groqwebhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// Request bodies are read whole, hashed in the same pass, and forwarded from
// memory. The buffers they are read into are recycled: at a 64 KiB body, a
// fresh buffer per request costs more than the HMAC.

// bodyBuffers holds *bodyBuffer values free for reuse.
var bodyBuffers sync.Pool

// maxPooledBuffer is the largest buffer kept for reuse; bigger ones are left
// to the garbage collector.
const maxPooledBuffer = 4 << 20

type bodyBuffer struct{ b []byte }

// requestBody is one request's body, read into a reusable buffer. The
// buffer goes back to bodyBuffers once the handler is done with the request
// and every reader handed to the next handler has been closed
// (reverse_proxy's transport closes the body once it has sent it). A reader
// that is never closed leaves the buffer to the garbage collector, so a
// buffer is never reused while anyone can still read it. A requestBody is
// never reused itself: a GetBody kept past the request finds it released.
type requestBody struct {
	mu      sync.Mutex
	buf     *bodyBuffer // nil for an empty body, and once released
	holders int         // open readers, plus one while the handler runs
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

// release drops one hold; the last one frees the buffer.
func (b *requestBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holders--
	if b.holders > 0 || b.buf == nil {
		return
	}
	recycle(b.buf)
	b.buf = nil
}

func recycle(buf *bodyBuffer) {
	if cap(buf.b) <= maxPooledBuffer {
		bodyBuffers.Put(buf)
	}
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
// caller then holds it), hashing it in the same pass. The buffer is sized
// from the Content-Length, and a declared length over MaxBody is refused
// before anything is read. An empty body leaves body without a buffer.
func (h *Handler) readBody(r *http.Request, digest io.Writer, body *requestBody) error {
	body.holders = 1
	if r.ContentLength > h.MaxBody {
		return ErrBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	size := int64(bytes.MinRead)
	if r.ContentLength > 0 {
		size = r.ContentLength
	}
	// One byte of room past the end lets the read that finds the end of
	// the body land without growing the buffer.
	limit := h.MaxBody + 1
	buf, _ := bodyBuffers.Get().(*bodyBuffer)
	if buf == nil {
		buf = new(bodyBuffer)
	}
	if want := min(size+1, limit, maxPreallocation); int64(cap(buf.b)) < want {
		buf.b = make([]byte, 0, want)
	}
	b := buf.b[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):min(int64(cap(b)), limit)])
		digest.Write(b[len(b) : len(b)+n])
		b = b[:len(b)+n]
		buf.b = b
		switch {
		case int64(len(b)) > h.MaxBody:
			err = ErrBodyTooLarge
		case err == io.EOF && len(b) == 0:
			recycle(buf)
			return nil
		case err == io.EOF:
			body.buf = buf
			return nil
		}
		if err != nil {
			recycle(buf)
			return readError(err)
		}
	}
}

func readError(err error) error {
	if errors.Is(err, ErrBodyTooLarge) {
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
