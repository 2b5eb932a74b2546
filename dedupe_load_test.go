package groqwebhook

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestDedupeLoadTwoInstances sends 5,000 signed events, a fifth of them
// duplicates, 32 at a time, through two instances sharing one redis-server:
// each event must reach the upstream exactly once, and nothing may get a
// 5xx. It prints its counts (go test -run TestDedupeLoad -v).
func TestDedupeLoadTwoInstances(t *testing.T) {
	const (
		total       = 5000
		duplicates  = total / 5
		concurrency = 32
	)
	rd := startRedis(t)
	up := newUpstream(t)
	urlA, urlB := startTwoInstances(t, up, rd.addr, "")

	// The originals, then copies of randomly chosen ones, all shuffled, so
	// a copy may arrive before, during or after its original's delivery.
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 0, total)
	for i := range total - duplicates {
		ids = append(ids, fmt.Sprintf("evt_load_%05d", i))
	}
	for range duplicates {
		ids = append(ids, ids[rng.IntN(total-duplicates)])
	}
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: concurrency,
	}}
	defer client.CloseIdleConnections()
	work := make(chan int)
	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				url := urlA
				if i%2 == 1 {
					url = urlB
				}
				resp := doWith(t, client, signedRequest(t, url, testSecret, time.Now(), eventBody(ids[i])))
				key := fmt.Sprint(resp.Status)
				if resp.Body == duplicateBody {
					key += " duplicate"
				}
				mu.Lock()
				statuses[key]++
				mu.Unlock()
			}
		})
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	counts := up.countByEventID()
	var once, more int
	for _, n := range counts {
		if n == 1 {
			once++
		} else {
			more++
		}
	}
	t.Logf("sent %d requests (%d distinct events, %d duplicates) at concurrency %d through 2 instances in %v",
		total, total-duplicates, duplicates, concurrency, elapsed.Round(time.Millisecond))
	t.Logf("answers: %v", statuses)
	t.Logf("upstream: %d distinct events, %d exactly once, %d more than once", len(counts), once, more)

	for status := range statuses {
		if status[0] == '5' {
			t.Errorf("%d requests got %s", statuses[status], status)
		}
	}
	if len(counts) != total-duplicates || more != 0 {
		t.Fatalf("want each of %d events exactly once upstream", total-duplicates)
	}
}
