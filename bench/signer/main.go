// Command signer writes the pre-signed events that bench/signed.lua sends with
// wrk: event n has the body prefix + id(n) + suffix, exactly -size bytes, and
// its signature is groqwebhook.Sign(secret, timestamp, body). wrk's Lua has no
// HMAC, so the scripts run this right before each wrk run (timestamps stay
// fresh) with a new -start, so no event id is ever sent twice.
//
// With -provider stripe the signature is the same hex HMAC-SHA256 over
// timestamp "." body (signed.lua sends it as Stripe-Signature: t=..,v1=..);
// with -provider standard it is Standard Webhooks' base64 HMAC-SHA256 over
// id "." timestamp "." body, the id being the event's (sent as webhook-id),
// the secret used raw as the standard provider does for a value without
// the whsec_ prefix.
//
// Output, one item per line: the timestamp, the body prefix, the body suffix,
// then one "<id> <signature>" line per event. The secret is read from the
// environment variable named by -secret-env, never from the command line.
package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	groqwebhook "github.com/groqwebhook/caddy-groq-webhook"
)

const (
	prefix    = `{"id":"`
	idPrefix  = "evt_"
	idDigits  = 12
	suffixTop = `","type":"bench.event","data":{"pad":"`
	suffixEnd = `"}}`

	knownAnswer = "67fb787f6bf5159bdc6d8f76037d31a5c29e9bccb833e78407b7ccc22e10ba74"

	// Standard Webhooks' published known answer: the key is the base64
	// after whsec_ in whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw.
	standardKey    = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	standardID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	standardTS     = "1614265330"
	standardBody   = `{"test": 2432232314}`
	standardAnswer = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func main() {
	size := flag.Int("size", 1024, "body size in bytes")
	count := flag.Int("count", 10000, "number of events")
	start := flag.Int64("start", 0, "index of the first event id")
	secretEnv := flag.String("secret-env", "GROQ_WEBHOOK_SECRET", "environment variable holding the secret")
	out := flag.String("out", "-", "output file (- for stdout)")
	provider := flag.String("provider", "groq", "signing scheme: groq, stripe (the same HMAC) or standard")
	flag.Parse()
	log.SetFlags(0)

	secret := []byte(os.Getenv(*secretEnv))
	if len(secret) < 16 {
		log.Fatalf("signer: $%s must hold a secret of at least 16 bytes", *secretEnv)
	}
	pad := *size - len(prefix) - len(idPrefix) - idDigits - len(suffixTop) - len(suffixEnd)
	if pad < 0 {
		log.Fatalf("signer: -size %d is smaller than the smallest event", *size)
	}
	suffix := suffixTop + strings.Repeat("x", pad) + suffixEnd
	ts := strconv.FormatInt(time.Now().Unix(), 10)

	// Sign must give README.md's known answer, and the fast path below must
	// agree with Sign.
	if groqwebhook.Sign([]byte("test-secret"), "1700000000", []byte(`{"id":"evt_123","type":"demo"}`)) != knownAnswer {
		log.Fatal("signer: groqwebhook.Sign does not give README.md's known answer")
	}
	id0 := eventID(*start)
	body0 := []byte(prefix + id0 + suffix)
	switch *provider {
	case "groq", "stripe":
		if got := sign(hmac.New(sha256.New, secret), ts, id0, suffix); got != groqwebhook.Sign(secret, ts, body0) {
			log.Fatal("signer: fast signature differs from groqwebhook.Sign")
		}
	case "standard":
		key, _ := base64.StdEncoding.DecodeString(standardKey)
		if got := signStandardBody(hmac.New(sha256.New, key), standardID, standardTS, []byte(standardBody)); got != standardAnswer {
			log.Fatal("signer: the Standard Webhooks signature does not give the published known answer")
		}
		if signStandard(hmac.New(sha256.New, secret), ts, id0, suffix) != signStandardBody(hmac.New(sha256.New, secret), id0, ts, body0) {
			log.Fatal("signer: fast Standard Webhooks signature differs from the plain one")
		}
	default:
		log.Fatalf("signer: -provider %q: want groq, stripe or standard", *provider)
	}
	signEvent := sign
	if *provider == "standard" {
		signEvent = signStandard
	}

	// Sign in parallel, one HMAC per worker, reset between events.
	sigs := make([]string, *count)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			mac := hmac.New(sha256.New, secret)
			for i := w; i < *count; i += workers {
				sigs[i] = signEvent(mac, ts, eventID(*start+int64(i)), suffix)
			}
		})
	}
	wg.Wait()

	f := os.Stdout
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			log.Fatal(err)
		}
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "%s\n%s\n%s\n", ts, prefix, suffix)
	for i, sig := range sigs {
		fmt.Fprintf(w, "%s %s\n", eventID(*start+int64(i)), sig)
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// eventID is the fixed-width id of event n, so every body has the same size.
func eventID(n int64) string {
	return fmt.Sprintf("%s%0*d", idPrefix, idDigits, n)
}

// mac is a reusable HMAC.
type mac interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
	Reset()
}

// sign computes what groqwebhook.Sign would over prefix + id + suffix,
// writing the pieces instead of building the body.
func sign(mac mac, ts, id, suffix string) string {
	mac.Reset()
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write([]byte(prefix))
	mac.Write([]byte(id))
	mac.Write([]byte(suffix))
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0]))
}

// signStandard is Standard Webhooks' signature (without its "v1,") of the
// event whose body is prefix + id + suffix, its id being the webhook-id.
func signStandard(mac mac, ts, id, suffix string) string {
	mac.Reset()
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write([]byte(prefix))
	mac.Write([]byte(id))
	mac.Write([]byte(suffix))
	var sum [sha256.Size]byte
	return base64.StdEncoding.EncodeToString(mac.Sum(sum[:0]))
}

// signStandardBody is the same signature over a whole body, written the
// plain way, to check the one above.
func signStandardBody(mac mac, id, ts string, body []byte) string {
	mac.Reset()
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
