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

// bodyBuffers holds *requestBody values whose buffers are free for reuse.
var bodyBuffers sync.Pool

// maxPooledBuffer is the largest buffer kept for reuse; bigger ones are left
// to the garbage collector.
const maxPooledBuffer = 4 << 20

// requestBody is a body read into a reusable buffer. The buffer goes back to
// bodyBuffers once the handler is done with the request and every reader
// handed to the next handler has been closed (reverse_proxy's transport
// closes the body once it has sent it). A reader that is never closed
// leaves the buffer to the garbage collector, so a buffer is never reused
// while anyone can still read it.
type requestBody struct {
	buf []byte

	// getBody hands out further readers, for a transport's retry. It is
	// bound once, when the requestBody is made, and outlives reuse: the
	// handler unsets Request.GetBody before it returns.
	getBody func() (io.ReadCloser, error)

	mu      sync.Mutex
	holders int  // open readers, plus one while the handler runs
	live    bool // false once the buffer is free for reuse
}

// newRequestBody returns an empty requestBody with room for size bytes,
// held by the caller.
func newRequestBody(size int64) *requestBody {
	b, _ := bodyBuffers.Get().(*requestBody)
	if b == nil {
		b = new(requestBody)
		b.getBody = b.newReader
	}
	if int64(cap(b.buf)) < size {
		b.buf = make([]byte, 0, size)
	}
	b.buf = b.buf[:0]
	b.holders, b.live = 1, true
	return b
}

// reader returns a reader over the body, held until it is closed. The
// handler gives the first one its own storage.
func (b *requestBody) reader(into *bodyReader) {
	b.mu.Lock()
	b.holders++
	b.mu.Unlock()
	*into = bodyReader{body: b}
}

func (b *requestBody) newReader() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.live {
		return nil, errBodyReleased
	}
	b.holders++
	return &bodyReader{body: b}, nil
}

// release drops one hold; the last one frees the buffer.
func (b *requestBody) release() {
	b.mu.Lock()
	b.holders--
	free := b.holders == 0
	if free {
		b.live = false
	}
	b.mu.Unlock()
	if free && cap(b.buf) <= maxPooledBuffer {
		bodyBuffers.Put(b)
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
	if r.off >= len(b.buf) {
		return 0, io.EOF
	}
	n := copy(p, b.buf[r.off:])
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

// readBody reads the whole body, at most MaxBody bytes, into a reusable
// buffer sized from the Content-Length, hashing it in the same pass. A
// declared length over MaxBody is refused before anything is read. It
// returns nil for an empty body.
func (h *Handler) readBody(r *http.Request, digest io.Writer) (*requestBody, error) {
	if r.ContentLength > h.MaxBody {
		return nil, ErrBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	size := int64(bytes.MinRead)
	if r.ContentLength > 0 {
		size = r.ContentLength
	}
	// One byte of room past the end lets the read that finds the end of
	// the body land without growing the buffer.
	limit := h.MaxBody + 1
	body := newRequestBody(min(size+1, limit, maxPreallocation))
	buf := body.buf
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		digest.Write(buf[len(buf) : len(buf)+n])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > h.MaxBody {
			err = ErrBodyTooLarge
		} else if err == io.EOF {
			body.buf = buf
			if len(buf) == 0 {
				body.release()
				return nil, nil
			}
			return body, nil
		}
		if err != nil {
			body.buf = buf
			body.release()
			return nil, readError(err)
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
	if body == nil {
		r.ContentLength = 0
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		setContentLength(r.Header, 0)
		return
	}
	body.reader(first)
	r.ContentLength = int64(len(body.buf))
	r.Body = first
	r.GetBody = body.getBody
	setContentLength(r.Header, len(body.buf))
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
