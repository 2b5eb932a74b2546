// Command upstream is the benchmarks' backend: on 127.0.0.1:-port it drains
// every request body and answers 200 {"ok":true} (keep-alive), counting the
// requests, the body bytes and the requests marked X-Groq-Verified: true.
// GET /__bench/count reports the counters as JSON; POST /__bench/reset
// reports them and sets them to zero. Control requests are not counted.
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
	requests, bytes, verified atomic.Int64
}

func (c *counters) snapshot(reset bool) map[string]int64 {
	if reset {
		return map[string]int64{"requests": c.requests.Swap(0), "bytes": c.bytes.Swap(0), "verified": c.verified.Swap(0)}
	}
	return map[string]int64{"requests": c.requests.Load(), "bytes": c.bytes.Load(), "verified": c.verified.Load()}
}

func main() {
	port := flag.Int("port", 9001, "port to listen on, on 127.0.0.1")
	flag.Parse()

	var c counters
	ok := []byte(`{"ok":true}`)
	report := func(reset bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(c.snapshot(reset))
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__bench/count", report(false))
	mux.HandleFunc("POST /__bench/reset", report(true))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		if r.Header.Get("X-Groq-Verified") == "true" {
			c.verified.Add(1)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		c.bytes.Add(n)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(ok)))
		_, _ = w.Write(ok)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+strconv.Itoa(*port), mux))
}
