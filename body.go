package groqwebhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// readBody reads at most MaxBody+1 bytes into one buffer sized from the
// Content-Length, hashing them in the same pass. A declared length over
// MaxBody is refused before anything is read. The buffer is not pooled:
// it becomes the forwarded body, which an upstream transport may still be
// reading after the next handler has returned.
func (h *Handler) readBody(r *http.Request, digest io.Writer) ([]byte, error) {
	if r.ContentLength > h.MaxBody {
		return nil, ErrBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	size := int64(bytes.MinRead)
	if r.ContentLength >= 0 {
		size = r.ContentLength
	}
	limit := h.MaxBody + 1
	buf := make([]byte, 0, min(size+1, limit, maxPreallocation))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		digest.Write(buf[len(buf) : len(buf)+n])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > h.MaxBody {
			return nil, ErrBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, ErrBodyTooLarge
			}
			return nil, fmt.Errorf("%w: %v", errUnreadableBody, err)
		}
	}
}

// replaceBody hands the verified bytes to the next handler with exact
// framing, and lets a retrying proxy read them again.
func replaceBody(r *http.Request, body []byte) {
	r.TransferEncoding = nil
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	if len(body) == 0 {
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
}

// event holds the fields of a webhook event that the handler uses.
type event struct {
	ID   string
	Type string
}

// parseEvent reads the id and type of a JSON object body, matching the
// keys exactly, as backends do (encoding/json alone would also take "ID").
// A body that is not a JSON object, or fields that are not strings, yield
// empty fields: the event is still forwarded.
func parseEvent(body []byte) event {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return event{}
	}
	var e event
	_ = json.Unmarshal(fields["id"], &e.ID)
	_ = json.Unmarshal(fields["type"], &e.Type)
	return e
}

// headerSafe returns s if it can be sent as a header value, else "".
func headerSafe(s string) string {
	if !httpguts.ValidHeaderFieldValue(s) {
		return ""
	}
	return s
}
