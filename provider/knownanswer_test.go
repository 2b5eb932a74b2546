package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The known answers the senders publish, checked by signing and by
// verifying.

func TestStandardKnownAnswer(t *testing.T) {
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	secret := []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	m := Message{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: "1614265330", Body: []byte(`{"test": 2432232314}`)}
	header, err := Standard.Sign(secret, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := header.Get("Webhook-Signature"); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	v, err := Standard.New(Config{Secrets: [][]byte{secret}})
	if err != nil {
		t.Fatal(err)
	}
	header.Set("Webhook-Signature", want)
	if _, err := v.Verify(Request{Header: header}, m.Body, time.Unix(1614265330, 0)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestGitHubKnownAnswer(t *testing.T) {
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	header, err := GitHub.Sign(secret, Message{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if got := header.Get("X-Hub-Signature-256"); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	v, err := GitHub.New(Config{Secrets: [][]byte{secret}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(Request{Header: http.Header{"X-Hub-Signature-256": {want}}}, body, time.Now()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// Twilio's token "12345" is shorter than the handler's 16-byte minimum,
// so the scheme's message function is checked directly.
func TestTwilioKnownAnswer(t *testing.T) {
	const want = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
	form := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
	msg, err := twilioMessage(nil, "https://mycompany.com/myapp.php?foo=1&bar=2",
		"application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha1.New, []byte("12345"))
	mac.Write(msg)
	if got := base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("signature = %q, want %q", got, want)
	}
	header, err := Twilio.Sign([]byte("12345"), Message{
		URL: "https://mycompany.com/myapp.php?foo=1&bar=2", ContentType: "application/x-www-form-urlencoded", Body: []byte(form.Encode()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := header.Get("X-Twilio-Signature"); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	v, err := Twilio.New(Config{Secrets: [][]byte{[]byte("12345")}, URL: "https://mycompany.com/myapp.php"})
	if err != nil {
		t.Fatal(err)
	}
	r := Request{Header: http.Header{"X-Twilio-Signature": {want}, "Content-Type": {"application/x-www-form-urlencoded"}}, Query: "foo=1&bar=2"}
	if _, err := v.Verify(r, []byte(form.Encode()), time.Now()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}
