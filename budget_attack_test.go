package groqwebhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// attackMargin is what Caddy may hold above its idle RSS and max_buffered
// (64 MiB here) under the attack below, as the README states it:
//   - the garbage collector's headroom: with GOGC=100 the heap grows to
//     twice what is live before a collection, and the budget's buffers are
//     live, so 2 x 64 MiB;
//   - Caddy's own state per open connection (a goroutine, bufio buffers,
//     the request), garbage included: about 64 KiB for each of 1,000.
//
// Measured on a 2-core machine: peaks 192 to 210 MiB over the idle RSS,
// against the bound of 64 + 128 + 62.5 = 254.5 MiB.
const attackMargin = 2*64<<20 + 1000*64<<10

// TestBudgetBoundsSlowUploadAttack is the attack anyone can mount without
// the secret: 1,000 connections that each announce a 1 MiB body with a
// fresh timestamp and a well-formed but fake signature, and trickle it at
// 64 KiB/s, reconnecting whenever they are turned away. With max_buffered
// 64MiB, Caddy's memory stays within its idle RSS + 64 MiB + attackMargin,
// a real event sent during the attack gets 200 or 503 with Retry-After
// (never a hang or a reset), and once the attackers are gone it gets 200
// and the budget is empty.
func TestBudgetBoundsSlowUploadAttack(t *testing.T) {
	up := newUpstream(t)
	port := freePort(t)
	caddy := startCaddyProcess(t, fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	groq_webhook {
		secret {env.GROQ_WEBHOOK_SECRET}
		max_buffered 64MiB
	}
	reverse_proxy %s
}
`, port, up.addr()))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	url := "http://" + addr + "/"
	waitForPort(t, addr)
	for i := range 20 {
		if got := do(t, signedRequest(t, url, testSecret, time.Now(), paddedEvent(fmt.Sprintf("evt_warm_%d", i), 64<<10))); got.Status != http.StatusOK {
			t.Fatalf("warm-up event: %d %s", got.Status, got.Body)
		}
	}
	time.Sleep(500 * time.Millisecond)
	idle := caddy.rssKiB()

	const connections, declared, piece, every = 1000, 1 << 20, 8 << 10, 125 * time.Millisecond
	const attackFor = 12 * time.Second
	ctx, stopAttack := context.WithTimeout(context.Background(), attackFor)
	defer stopAttack()
	var uploads, turnedAway atomic.Int64
	var attackers sync.WaitGroup
	chunk := bytes.Repeat([]byte("a"), piece)
	for range connections {
		attackers.Go(func() {
			for ctx.Err() == nil {
				u := startRawUpload(t, addr, "/", forgedHeader(), declared)
				uploads.Add(1)
				tick := time.NewTicker(every)
				for sent := 0; sent < declared && ctx.Err() == nil; sent += piece {
					if u.send(chunk) != nil {
						turnedAway.Add(1)
						break
					}
					select {
					case <-tick.C:
					case <-ctx.Done():
					}
				}
				tick.Stop()
				u.close()
			}
		})
	}

	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			peak.Store(max(peak.Load(), int64(caddy.rssKiB())))
			time.Sleep(50 * time.Millisecond)
		}
	}()

	// A real sender during the attack.
	client := &http.Client{Timeout: 10 * time.Second}
	statuses := map[int]int{}
	time.Sleep(time.Second)
	for i := 0; ctx.Err() == nil; i++ {
		req := signedRequest(t, url, testSecret, time.Now(), paddedEvent(fmt.Sprintf("evt_during_%d", i), 1<<10))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("a real event during the attack got no answer: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") != "1" {
				t.Errorf("503 during the attack with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		default:
			t.Errorf("a real event during the attack got %d", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	attackers.Wait()
	<-sampled

	after := do(t, signedRequest(t, url, testSecret, time.Now(), paddedEvent("evt_after", 1<<10)))
	if after.Status != http.StatusOK {
		t.Fatalf("a real event after the attack: %d %s", after.Status, after.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for caddy.metric("caddy_groq_webhook_buffered_bytes") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("caddy_groq_webhook_buffered_bytes reads %v after the attack, want 0", caddy.metric("caddy_groq_webhook_buffered_bytes"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	busy := caddy.metric(`caddy_groq_webhook_requests_total{provider="groq",result="busy"}`)
	bound := int64(idle) + (64<<20+attackMargin)>>10
	t.Logf("idle RSS %d MiB, peak %d MiB during the attack (bound %d MiB); %d uploads, %.0f answered busy, %d cut off; real events: %v",
		idle>>10, peak.Load()>>10, bound>>10, uploads.Load(), busy, turnedAway.Load(), statuses)
	if peak.Load() > bound {
		t.Errorf("peak RSS %d MiB over the bound of %d MiB", peak.Load()>>10, bound>>10)
	}
	if busy < 1 {
		t.Errorf("no request was turned away: the attack did not reach the budget")
	}
	if statuses[http.StatusOK] == 0 {
		t.Errorf("no real event got through during the attack: %v", statuses)
	}
}
