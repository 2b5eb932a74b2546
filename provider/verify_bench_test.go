package provider

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkVerify measures every provider's whole verification (headers
// parsed, body hashed, candidates compared) beside the raw HMAC (Discord:
// Ed25519) over the very bytes the provider signs, with a reused hash: the
// floor for any verifier of that scheme. One run gives the ratios:
//
//	go test -run '^$' -bench BenchmarkVerify -count 6 ./provider
func BenchmarkVerify(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}} {
		for _, f := range fixtures() {
			f.body = benchBody(f, size.n)
			key := newSecret
			if f.scheme.Algorithm == Ed25519 {
				key = newSeed
			}
			t := &testing.T{}
			v := f.verifier(t, key)
			r := f.request(t, key, testNow, f.body)
			message := f.signedBytes(r)
			b.Run(size.name+"/"+f.scheme.Name+"/raw", func(b *testing.B) {
				b.SetBytes(int64(len(f.body)))
				b.ReportAllocs()
				switch f.scheme.Algorithm {
				case Token:
					b.Skip("a token signs nothing")
				case Ed25519:
					priv := ed25519.NewKeyFromSeed(key)
					pub := priv.Public().(ed25519.PublicKey)
					sig := ed25519.Sign(priv, message)
					for b.Loop() {
						if !ed25519.Verify(pub, message, sig) {
							b.Fatal("raw Ed25519 failed")
						}
					}
				default:
					mac := hmac.New(f.scheme.hash(), key)
					var sum []byte
					for b.Loop() {
						mac.Reset()
						mac.Write(message)
						sum = mac.Sum(sum[:0])
					}
				}
			})
			b.Run(size.name+"/"+f.scheme.Name+"/verify", func(b *testing.B) {
				b.SetBytes(int64(len(f.body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(r, f.body, testNow); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// benchBody returns a body of n bytes of the fixture's kind.
func benchBody(f fixture, n int) []byte {
	if f.scheme == Twilio {
		form := url.Values{"CallSid": {"CA1"}, "From": {"+15550001"}}
		form.Set("Body", strings.Repeat("x", n-len(form.Encode())-len("&Body=")))
		return []byte(form.Encode())
	}
	if f.scheme == Linear {
		head := []byte(`{"type":"Issue","webhookTimestamp":` + strings.TrimSpace(strings.Split(string(f.body), ":")[2]))
		head = head[:len(head)-1]
		return append(append(head, `,"pad":"`...), append(bytes.Repeat([]byte("x"), n-len(head)-len(`,"pad":"`)-2), `"}`...)...)
	}
	pad := n - len(f.body) - len(`,"pad":""`)
	return append(append(f.body[:len(f.body)-1:len(f.body)-1], `,"pad":"`+strings.Repeat("x", pad)+`"`...), '}')
}

// signedBytes returns what the fixture's request signs.
func (f fixture) signedBytes(r Request) []byte {
	c := &Check{ID: r.Header.Get(f.scheme.IDHeader), Timestamp: "1700000000"}
	v := &Verifier{scheme: f.scheme, url: f.url}
	if f.scheme.BuildMessage != nil {
		msg, err := f.scheme.BuildMessage(nil, string(appendURL(nil, f.url, f.query, true)), f.ctype, f.body)
		if err != nil {
			panic(err)
		}
		return msg
	}
	return v.appendMessage(nil, c, f.body, r.Query)
}

// BenchmarkVerifyRatio alternates the raw HMAC (or Ed25519) and the
// provider's verification of the same 64 KiB request on every iteration and
// reports raw time / verify time as "raw/verify", both read from the
// thread's CPU clock (on Linux): on a loaded machine, such as a shared CI
// runner, time spent preempted would otherwise swamp the difference, and
// alternating keeps both under the same cache conditions.
//
//	go test -run '^$' -bench BenchmarkVerifyRatio -count 6 ./provider
func BenchmarkVerifyRatio(b *testing.B) {
	for _, f := range fixtures() {
		if f.scheme.Algorithm == Token {
			continue
		}
		f.body = benchBody(f, 64<<10)
		key := newSecret
		if f.scheme.Algorithm == Ed25519 {
			key = newSeed
		}
		t := &testing.T{}
		v := f.verifier(t, key)
		r := f.request(t, key, testNow, f.body)
		message := f.signedBytes(r)
		raw := rawVerifier(f.scheme, key, message, f.body)
		b.Run(f.scheme.Name, func(b *testing.B) {
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var rawTime, verifyTime time.Duration
			verify := func() {
				if _, err := v.Verify(r, f.body, testNow); err != nil {
					b.Fatal(err)
				}
			}
			// Whichever runs second finds the body in cache: the order
			// alternates, so that neither always does.
			first, second, firstTime, secondTime := raw, verify, &rawTime, &verifyTime
			for b.Loop() {
				start := threadCPU()
				first()
				mid := threadCPU()
				second()
				*firstTime += mid - start
				*secondTime += threadCPU() - mid
				first, second, firstTime, secondTime = second, first, secondTime, firstTime
			}
			b.ReportMetric(float64(rawTime)/float64(verifyTime), "raw/verify")
		})
	}
}

// rawVerifier returns the floor for a scheme: its HMAC over message with a
// reused hash, or an Ed25519 verification of message. When message ends
// with body, the HMAC reads the body from where verification reads it.
func rawVerifier(s *Scheme, key, message, body []byte) func() {
	if s.Algorithm == Ed25519 {
		priv := ed25519.NewKeyFromSeed(key)
		pub := priv.Public().(ed25519.PublicKey)
		sig := ed25519.Sign(priv, message)
		return func() {
			if !ed25519.Verify(pub, message, sig) {
				panic("raw Ed25519 failed")
			}
		}
	}
	var prefix []byte
	if bytes.HasSuffix(message, body) {
		prefix, message = message[:len(message)-len(body)], body
	}
	mac := hmac.New(s.hash(), key)
	var sum []byte
	return func() {
		mac.Reset()
		mac.Write(prefix)
		mac.Write(message)
		sum = mac.Sum(sum[:0])
	}
}
