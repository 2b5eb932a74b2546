package groqwebhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"
)

// benchSizes are the body sizes of the verification benchmarks: a typical
// event, a large one, and the default max_body.
var benchSizes = []struct {
	name string
	size int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

// BenchmarkVerify measures a whole verification (timestamp and signature
// header parsed, body hashed, candidates compared) beside raw HMAC-SHA256
// over the same bytes with a reused hash, the floor for any verifier. One
// run gives the ratio:
//
//	go test -run '^$' -bench BenchmarkVerify -count 6 .
func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	keys := [][]byte{
		[]byte("bench-secret-new-0123456789abcdef"),
		[]byte("bench-secret-old-0123456789abcdef"),
	}
	for _, bs := range benchSizes {
		body := bytes.Repeat([]byte("x"), bs.size)
		b.Run(bs.name+"/raw_hmac", func(b *testing.B) {
			mac := hmac.New(sha256.New, keys[0])
			message := []byte(ts + ".")
			var sum []byte
			b.SetBytes(int64(bs.size))
			b.ReportAllocs()
			for b.Loop() {
				mac.Reset()
				mac.Write(message)
				mac.Write(body)
				sum = mac.Sum(sum[:0])
			}
		})
		// The sender signs with the last secret, so two secrets means
		// two HMACs: a rotation in progress.
		for _, secrets := range []int{1, 2} {
			v := NewVerifier(keys[:secrets])
			sig := Sign(keys[secrets-1], ts, body)
			b.Run(bs.name+"/verify/secrets="+strconv.Itoa(secrets), func(b *testing.B) {
				b.SetBytes(int64(bs.size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ts, sig, body, now, 5*time.Minute); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
