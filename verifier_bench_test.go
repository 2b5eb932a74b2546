package groqwebhook

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// BenchmarkVerify measures a whole verification (headers parsed, body
// hashed, candidates compared) for typical body sizes and secret counts.
func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	for _, size := range []int{256, 4 << 10, 64 << 10} {
		for _, secrets := range []int{1, 2} {
			keys := make([][]byte, secrets)
			for i := range keys {
				keys[i] = []byte(fmt.Sprintf("bench-secret-%d-0123456789abcdef", i))
			}
			body := bytes.Repeat([]byte("x"), size)
			sig := Sign(keys[secrets-1], ts, body)
			v := NewVerifier(keys)
			b.Run(fmt.Sprintf("body=%d/secrets=%d", size, secrets), func(b *testing.B) {
				b.SetBytes(int64(size))
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
