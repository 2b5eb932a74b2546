// Command upstream is the benchmarks' backend: on 127.0.0.1:-port it drains
// every request body and answers 200 {"ok":true} (keep-alive), counting the
// requests, the body bytes and the requests marked X-Groq-Verified: true
// (or X-Webhook-Verified: true, the mark of the other providers).
// GET /__bench/count reports the counters as JSON; POST /__bench/reset
// reports them and sets them to zero. POST /__bench/down makes it answer
// every other request 503 {"ok":false} (counted as refused, not as requests)
// until POST /__bench/up: an outage for bench/drain.sh, with the queue
// retrying the 503s. Control requests are not counted.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"
)

type counters struct {
	requests, bytes, verified, refused atomic.Int64
}

func (c *counters) snapshot(reset bool) map[string]int64 {
	if reset {
		return map[string]int64{"requests": c.requests.Swap(0), "bytes": c.bytes.Swap(0), "verified": c.verified.Swap(0), "refused": c.refused.Swap(0)}
	}
	return map[string]int64{"requests": c.requests.Load(), "bytes": c.bytes.Load(), "verified": c.verified.Load(), "refused": c.refused.Load()}
}

func main() {
	port := flag.Int("port", 9001, "port to listen on, on 127.0.0.1")
	flag.Parse()

	var c counters
	var down atomic.Bool
	ok, unavailable := []byte(`{"ok":true}`), []byte(`{"ok":false}`)
	report := func(reset bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(c.snapshot(reset))
		}
	}
	toggle := func(d bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			down.Store(d)
			report(false)(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__bench/count", report(false))
	mux.HandleFunc("POST /__bench/reset", report(true))
	mux.HandleFunc("POST /__bench/down", toggle(true))
	mux.HandleFunc("POST /__bench/up", toggle(false))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		body, status := ok, http.StatusOK
		if down.Load() {
			c.refused.Add(1)
			body, status = unavailable, http.StatusServiceUnavailable
		} else {
			c.requests.Add(1)
			if r.Header.Get("X-Groq-Verified") == "true" || r.Header.Get("X-Webhook-Verified") == "true" {
				c.verified.Add(1)
			}
			c.bytes.Add(n)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+strconv.Itoa(*port), mux))
}
