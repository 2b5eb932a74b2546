package groqwebhook

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestBodiesArriveIntactUnderConcurrency sends many events of mixed sizes
// at once, some with a Content-Length and some chunked, through a real
// Caddy to a recording upstream. Body buffers are reused between requests:
// each event must still reach the upstream exactly once, byte for byte.
func TestBodiesArriveIntactUnderConcurrency(t *testing.T) {
	up := newUpstream(t)
	url := startDedupeSite(t, up, "")
	const events, workers = 240, 16
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make(map[string][]byte, events)
	var ids []string
	for i := range events {
		id := fmt.Sprintf("evt_intact_%03d", i)
		pad := make([]byte, rng.IntN(150<<10))
		for j := range pad {
			pad[j] = 'a' + byte(rng.IntN(26))
		}
		bodies[id] = []byte(`{"id":"` + id + `","type":"t","data":"` + string(pad) + `"}`)
		ids = append(ids, id)
	}

	work := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range work {
				body := bodies[id]
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				var reader io.Reader = bytes.NewReader(body)
				if len(body)%2 == 1 {
					reader = io.MultiReader(reader) // no length known: sent chunked
				}
				req, _ := http.NewRequest(http.MethodPost, url, reader)
				req.Header.Set(DefaultTimestampHeader, ts)
				req.Header.Set(DefaultSignatureHeader, Sign([]byte(testSecret), ts, body))
				resp, err := testClient.Do(req)
				if err != nil {
					t.Errorf("%s: %v", id, err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: got %d", id, resp.StatusCode)
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()

	got := up.received()
	if len(got) != events {
		t.Fatalf("upstream received %d requests, want %d", len(got), events)
	}
	seen := make(map[string]bool)
	for _, r := range got {
		id := r.Header.Get(EventIDHeader)
		if seen[id] {
			t.Errorf("%s forwarded twice", id)
		}
		seen[id] = true
		if want := bodies[id]; !bytes.Equal(r.Body, want) {
			t.Errorf("%s: upstream got %d bytes that differ from the %d sent", id, len(r.Body), len(want))
		}
		if r.ContentLength != int64(len(r.Body)) {
			t.Errorf("%s: Content-Length %d for a %d-byte body", id, r.ContentLength, len(r.Body))
		}
	}
}
