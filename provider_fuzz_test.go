package groqwebhook

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// The list parsers of Stripe, Paddle and Standard Webhooks, fuzzed through
// the whole verification: any header value may be refused, none may panic,
// and one is accepted only if it holds the right signature as an entry of
// its own.

var fuzzBody = []byte(`{"id":"evt_1","type":"a.b"}`)

const fuzzTimestamp = "1700000000"

// fuzzHeader verifies value as scheme's signature header.
func fuzzHeader(t *testing.T, scheme *provider.Scheme, value string, extra http.Header, rightEntry func(field string) bool, sep string) {
	v, err := scheme.New(provider.Config{Secrets: [][]byte{[]byte(testSecret)}})
	if err != nil {
		t.Fatal(err)
	}
	header := extra.Clone()
	header[scheme.SignatureHeaders[0]] = []string{value}
	_, err = v.Verify(provider.Request{Header: header}, fuzzBody, time.Unix(1700000000, 0))
	if err != nil {
		return
	}
	for _, field := range strings.FieldsFunc(value, func(r rune) bool { return strings.ContainsRune(sep, r) }) {
		if rightEntry(field) {
			return
		}
	}
	t.Fatalf("accepted %q, which holds no right signature", value)
}

func rightSignature(t testing.TB, scheme *provider.Scheme, extra http.Header) string {
	header, err := scheme.Sign([]byte(testSecret), provider.Message{ID: extra.Get("Webhook-Id"), Timestamp: fuzzTimestamp, Body: fuzzBody})
	if err != nil {
		t.Fatal(err)
	}
	return header.Get(scheme.SignatureHeaders[0])
}

func FuzzStripeHeader(f *testing.F) {
	right := rightSignature(f, provider.Stripe, nil)
	f.Add(right)
	f.Add("t=" + fuzzTimestamp + ",v0=" + strings.Repeat("0", 64) + "," + right[len("t="+fuzzTimestamp+","):])
	f.Add("v1=" + strings.Repeat("a", 64))
	f.Add("t=,v1=")
	f.Add(strings.Repeat("v1=0,", 20))
	hexSig := strings.ToLower(right[strings.LastIndex(right, "=")+1:])
	f.Fuzz(func(t *testing.T, value string) {
		fuzzHeader(t, provider.Stripe, value, http.Header{}, func(field string) bool {
			return strings.EqualFold(strings.TrimPrefix(field, "v1="), hexSig) && strings.HasPrefix(field, "v1=")
		}, ",")
	})
}

func FuzzPaddleHeader(f *testing.F) {
	right := rightSignature(f, provider.Paddle, nil)
	f.Add(right)
	f.Add("h1=" + strings.Repeat("0", 64))
	f.Add("ts=" + fuzzTimestamp + ";h1=" + strings.Repeat("0", 64) + ";" + right[len("ts="+fuzzTimestamp+";"):])
	f.Add("ts=1;ts=2;h1=")
	hexSig := right[strings.LastIndex(right, "=")+1:]
	f.Fuzz(func(t *testing.T, value string) {
		fuzzHeader(t, provider.Paddle, value, http.Header{}, func(field string) bool {
			return strings.HasPrefix(field, "h1=") && strings.EqualFold(field[3:], hexSig)
		}, ";")
	})
}

func FuzzStandardHeader(f *testing.F) {
	extra := http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {fuzzTimestamp}}
	right := rightSignature(f, provider.Standard, extra)
	f.Add(right)
	f.Add("v1a,abc v2,xyz " + right)
	f.Add("v1," + strings.Repeat("A", 43) + "= " + right)
	f.Add("v1,!!! v1,")
	f.Add(strings.Repeat("v1,x ", 20))
	f.Fuzz(func(t *testing.T, value string) {
		fuzzHeader(t, provider.Standard, value, extra, func(field string) bool {
			return bytes.Equal([]byte(field), []byte(right))
		}, " ")
	})
}
