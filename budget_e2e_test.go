package groqwebhook

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The budget's end-to-end tests: a real Caddy in this process (so that the
// count itself can be read), real sockets, and clients that behave as
// attackers and broken senders do.

func init() {
	caddy.RegisterModule(panicHandler{})
	httpcaddyfile.RegisterHandlerDirective("groq_test_panic", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return panicHandler{}, nil
	})
	httpcaddyfile.RegisterDirectiveOrder("groq_test_panic", httpcaddyfile.Before, "reverse_proxy")
}

// panicHandler is a next handler that panics: a fault no real upstream can
// produce on demand.
type panicHandler struct{}

func (panicHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.groq_test_panic", New: func() caddy.Module { return panicHandler{} }}
}

func (panicHandler) ServeHTTP(http.ResponseWriter, *http.Request, caddyhttp.Handler) error {
	panic("a later handler blew up")
}

// rawUpload is a request written by hand on its own connection, so that a
// test can send a body as slowly, as partly or as framed as it likes.
type rawUpload struct {
	conn    net.Conn
	br      *bufio.Reader
	chunked bool
}

// startRawUpload writes the request head. contentLength < 0 sends the
// body chunked.
func startRawUpload(t *testing.T, addr, path string, header http.Header, contentLength int) *rawUpload {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpload{conn: conn, br: bufio.NewReader(conn), chunked: contentLength < 0}
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	for name, values := range header {
		for _, v := range values {
			fmt.Fprintf(&head, "%s: %s\r\n", name, v)
		}
	}
	if u.chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", contentLength)
	}
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	return u
}

// send writes part of the body; errors are the server's having closed.
func (u *rawUpload) send(p []byte) error {
	if u.chunked {
		if _, err := fmt.Fprintf(u.conn, "%x\r\n", len(p)); err != nil {
			return err
		}
		if _, err := u.conn.Write(p); err != nil {
			return err
		}
		_, err := io.WriteString(u.conn, "\r\n")
		return err
	}
	_, err := u.conn.Write(p)
	return err
}

// end writes the last chunk of a chunked body.
func (u *rawUpload) end() error {
	_, err := io.WriteString(u.conn, "0\r\n\r\n")
	return err
}

// response reads the answer, waiting at most wait.
func (u *rawUpload) response(wait time.Duration) (response, error) {
	_ = u.conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(u.br, nil)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.Close {
		// ReadResponse consumes the header it reads resp.Close from.
		resp.Header.Set("Connection", "close")
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, err
}

func (u *rawUpload) close() { u.conn.Close() }

// signedHeader is the header of a signed event, for raw uploads.
func signedHeader(secret string, body []byte) http.Header {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	return http.Header{
		DefaultTimestampHeader: {ts},
		DefaultSignatureHeader: {Sign([]byte(secret), ts, body)},
		"Content-Type":         {"application/json"},
	}
}

// forgedHeader has a fresh timestamp and a well-formed signature that is
// wrong: what anyone can send without the secret.
func forgedHeader() http.Header {
	return http.Header{
		DefaultTimestampHeader: {strconv.FormatInt(time.Now().Unix(), 10)},
		DefaultSignatureHeader: {strings.Repeat("0", 64)},
	}
}

// paddedEvent is an event of about size bytes.
func paddedEvent(id string, size int) []byte {
	head := `{"id":"` + id + `","type":"padded","data":"`
	return []byte(head + strings.Repeat("p", max(0, size-len(head)-2)) + `"}`)
}

// waitBudgetHolds waits until the budget holds want bytes.
func waitBudgetHolds(t *testing.T, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for heldBytes() != want {
		if time.Now().After(deadline) {
			t.Fatalf("the budget holds %d bytes, want %d", heldBytes(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantBusy(t *testing.T, what string, got response) {
	t.Helper()
	if got.Status != http.StatusServiceUnavailable || got.Body != `{"error":"server busy"}` {
		t.Fatalf("%s: %d %s, want 503 server busy", what, got.Status, got.Body)
	}
	wantHeader(t, got.Header, "Retry-After", "1")
	wantHeader(t, got.Header, "Connection", "close")
}

// TestBudgetChunkedBodyGrowsPastIt: a chunked body that outgrows what is
// left gets 503 while it is read, its bytes come back at once, the body
// already holding the budget goes through, and the turned-away sender's
// retry is accepted.
func TestBudgetChunkedBodyGrowsPastIt(t *testing.T) {
	up := newUpstream(t)
	url := startDedupeSite(t, up, "max_buffered 1536KiB")
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	waitBudgetHolds(t, 0)

	holder := paddedEvent("evt_holder", 750<<10)
	a := startRawUpload(t, addr, "/", signedHeader(testSecret, holder), -1)
	defer a.close()
	for off := 0; off < 700<<10; off += 50 << 10 {
		if err := a.send(holder[off : off+50<<10]); err != nil {
			t.Fatal(err)
		}
	}
	waitBudgetHolds(t, 1<<20) // 700 KiB arrived: a 1 MiB buffer

	grower := paddedEvent("evt_grower", 700<<10)
	b := startRawUpload(t, addr, "/", signedHeader(testSecret, grower), -1)
	defer b.close()
	go func() {
		for off := 0; off < len(grower); off += 50 << 10 {
			if b.send(grower[off:min(off+50<<10, len(grower))]) != nil {
				return
			}
		}
		_ = b.end()
	}()
	got, err := b.response(10 * time.Second)
	if err != nil {
		t.Fatalf("the growing body got no answer: %v", err)
	}
	wantBusy(t, "a chunked body past the budget", got)
	waitBudgetHolds(t, 1<<20) // only the holder's buffer is left

	if err := a.send(holder[700<<10:]); err != nil {
		t.Fatal(err)
	}
	if err := a.end(); err != nil {
		t.Fatal(err)
	}
	if got, err := a.response(10 * time.Second); err != nil || got.Status != http.StatusOK {
		t.Fatalf("the body within the budget: %d %s, %v; want 200", got.Status, got.Body, err)
	}
	waitBudgetHolds(t, 0)

	retry := do(t, signedRequest(t, url, testSecret, time.Now(), grower))
	if retry.Status != http.StatusOK {
		t.Fatalf("the sender's retry: %d %s, want 200", retry.Status, retry.Body)
	}
	counts := up.countByEventID()
	if counts["evt_holder"] != 1 || counts["evt_grower"] != 1 || len(counts) != 2 {
		t.Fatalf("upstream got %v, want each event once", counts)
	}
	waitBudgetHolds(t, 0)
}

// TestBudgetSmallRequestsWithinIt: many small requests at once, after big
// ones have left big buffers for reuse, are all accepted.
func TestBudgetSmallRequestsWithinIt(t *testing.T) {
	up := newUpstream(t)
	url := startDedupeSite(t, up, "max_buffered 2MiB")
	for i := range 3 {
		if got := do(t, signedRequest(t, url, testSecret, time.Now(), paddedEvent(fmt.Sprintf("evt_big_%d", i), 1<<20-64))); got.Status != http.StatusOK {
			t.Fatalf("a 1 MiB event: %d %s", got.Status, got.Body)
		}
	}
	const workers, each = 64, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := paddedEvent(fmt.Sprintf("evt_small_%d_%d", w, i), 1<<10+(w*131+i*17)%(3<<10))
				resp, err := client.Do(signedRequest(t, url, testSecret, time.Now(), body))
				mu.Lock()
				if err != nil {
					statuses[-1]++
				} else {
					statuses[resp.StatusCode]++
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if statuses[http.StatusOK] != workers*each {
		t.Fatalf("answers by status: %v, want %d times 200", statuses, workers*each)
	}
	waitBudgetHolds(t, 0)
}

// TestBudgetFreeAfterEveryPath sends thousands of requests that end in
// every way a request can end, at once, and then finds the budget empty.
func TestBudgetFreeAfterEveryPath(t *testing.T) {
	up := newUpstream(t)
	port, errorsPort := freePort(t), freePort(t)
	tc := startCaddy(t, `
http://127.0.0.1:{{port}} {
	bind 127.0.0.1
	handle /enforce {
		groq_webhook {
			secret {{secret}}
			max_body 64KiB
		}
		reverse_proxy {{upstream}}
	}
	handle /panic {
		groq_webhook {
			secret {{secret}}
			dedupe off
		}
		groq_test_panic
	}
	handle /shadow {
		groq_webhook {
			secret {{secret}}
			mode shadow
		}
		reverse_proxy {{upstream}}
	}
	handle /queue {
		groq_webhook {
			secret {{secret}}
			queue {
				path {{queue_dir}}
			}
			deliver {
				reverse_proxy {{upstream}}
			}
		}
	}
	handle /busy {
		groq_webhook {
			secret {{secret}}
			max_body 64KiB
			max_buffered 64KiB
		}
		reverse_proxy {{upstream}}
	}
}
http://127.0.0.1:{{errors_port}} {
	bind 127.0.0.1
	groq_webhook {{secret}}
	reverse_proxy {{upstream}}
	handle_errors {
		respond "{http.groq_webhook.error}" {http.error.status_code}
	}
}
`, map[string]string{"port": strconv.Itoa(port), "errors_port": strconv.Itoa(errorsPort), "secret": testSecret, "upstream": up.addr(),
		"queue_dir": t.TempDir()})
	base := fmt.Sprintf("127.0.0.1:%d", port)
	errorsBase := fmt.Sprintf("127.0.0.1:%d", errorsPort)
	waitBudgetHolds(t, 0)

	// While the other requests run, one upload on /busy holds that
	// handler's whole budget, so every other request there is turned away.
	hog := startRawUpload(t, base, "/busy", forgedHeader(), -1)
	defer hog.close()
	if err := hog.send(bytes.Repeat([]byte("h"), 1<<10)); err != nil {
		t.Fatal(err)
	}
	waitBudgetHolds(t, initialBuffer)

	at := func(addr, path string, size int, secret string) func(id string) *http.Request {
		return func(id string) *http.Request {
			return signedRequest(t, "http://"+addr+path, secret, time.Now(), paddedEvent(id, size))
		}
	}
	chunked := func(make func(string) *http.Request) func(string) *http.Request {
		return func(id string) *http.Request {
			req := make(id)
			req.Body = io.NopCloser(io.MultiReader(req.Body))
			req.ContentLength, req.GetBody = -1, nil
			return req
		}
	}
	kinds := []struct {
		name    string
		request func(id string) *http.Request // nil: the kind writes by hand
		raw     func(t *testing.T, id string) // for requests no client sends
		want    int                           // status; 0: none expected
		// The answer may come while the client is still sending, which
		// then sees its connection closed instead.
		mayDrop bool
	}{
		{name: "verified", request: at(base, "/enforce", 8<<10, testSecret), want: 200},
		{name: "invalid signature", request: at(base, "/enforce", 8<<10, "wrong-secret-0123456789abcdef"), want: 401},
		{name: "declared over max_body", request: at(base, "/enforce", 100<<10, testSecret), want: 413, mayDrop: true},
		{name: "chunked over max_body", request: chunked(at(base, "/enforce", 100<<10, testSecret)), want: 413, mayDrop: true},
		{name: "shadow, forwarded unverified", request: at(base, "/shadow", 8<<10, "wrong-secret-0123456789abcdef"), want: 200},
		{name: "handle_errors", request: at(errorsBase, "/", 8<<10, "wrong-secret-0123456789abcdef"), want: 401},
		{name: "busy", request: at(base, "/busy", 8<<10, testSecret), want: 503},
		{name: "queued", request: at(base, "/queue", 8<<10, testSecret), want: 202},
		{name: "panic in a later handler", request: at(base, "/panic", 8<<10, testSecret)},
		{name: "client gone mid-body", raw: func(t *testing.T, id string) {
			body := paddedEvent(id, 32<<10)
			u := startRawUpload(t, base, "/enforce", signedHeader(testSecret, body), len(body))
			_ = u.send(body[:12<<10])
			u.close()
		}},
	}
	const each, workers = 300, 16
	busyLoggedAt.Store(0) // a line from an earlier test must not hold this one's back
	began := time.Now()
	type job struct {
		kind int
		id   string
	}
	jobs := make(chan job)
	var mu sync.Mutex
	got := make([]map[int]int, len(kinds))
	for i := range got {
		got[i] = map[int]int{}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				k := kinds[j.kind]
				if k.raw != nil {
					k.raw(t, j.id)
					continue
				}
				status := -1
				if resp, err := client.Do(k.request(j.id)); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				got[j.kind][status]++
				mu.Unlock()
			}
		})
	}
	for i := range each {
		for k := range kinds {
			jobs <- job{k, fmt.Sprintf("evt_path_%d_%d", k, i)}
		}
	}
	close(jobs)
	wg.Wait()
	for i, k := range kinds {
		answered := got[i][k.want]
		if k.mayDrop {
			answered += got[i][-1]
		}
		if k.want != 0 && (answered != each || got[i][k.want] == 0) {
			t.Errorf("%s: answers by status %v, want %d times %d", k.name, got[i], each, k.want)
		}
	}
	hog.close()
	waitBudgetHolds(t, 0)

	// The turned-away requests are logged once a second, with a count.
	logs := tc.logs(t)
	lines := strings.Count(logs, "turning requests away")
	if most := int(time.Since(began)/time.Second) + 1; lines == 0 || lines > most {
		t.Errorf("%d log lines for %d requests turned away over %v, want 1 to %d", lines, each, time.Since(began), most)
	}
	if strings.Contains(logs, `"reason":"busy"`) {
		t.Errorf("a request turned away was logged on its own")
	}
}
