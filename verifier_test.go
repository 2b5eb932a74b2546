package groqwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// knownAnswer is the protocol's published example.
var knownAnswer = struct {
	secret    string
	timestamp string
	body      string
	signature string
}{
	secret:    "test-secret",
	timestamp: "1700000000",
	body:      `{"id":"evt_123","type":"demo"}`,
	signature: "67fb787f6bf5159bdc6d8f76037d31a5c29e9bccb833e78407b7ccc22e10ba74",
}

// knownAnswerTime is the instant of knownAnswer.timestamp.
var knownAnswerTime = time.Unix(1700000000, 0)

const testTolerance = 5 * time.Minute

// referenceSign computes a signature with crypto/hmac directly, so that the
// tests do not only check Sign against itself.
func referenceSign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// wrongSignature returns a well-formed signature that matches nothing the
// tests sign.
func wrongSignature(n int) string {
	return referenceSign("wrong", strconv.Itoa(n), nil)
}

// candidateList returns n well-formed signatures with right at position at.
func candidateList(n, at int, right string) []string {
	list := make([]string, n)
	for i := range list {
		list[i] = wrongSignature(i)
	}
	list[at] = right
	return list
}

func TestSignKnownAnswer(t *testing.T) {
	got := Sign([]byte(knownAnswer.secret), knownAnswer.timestamp, []byte(knownAnswer.body))
	if got != knownAnswer.signature {
		t.Errorf("Sign = %s, want %s", got, knownAnswer.signature)
	}

	tests := []struct {
		secret, timestamp string
		body              []byte
	}{
		{"", "", nil},
		{"s", "0", []byte{}},
		{"test-secret", "1700000000", []byte{0xff, 0xfe, 0x00}},
		{strings.Repeat("k", 100), "999999999999", []byte(strings.Repeat("b", 1000))},
	}
	for _, tt := range tests {
		got := Sign([]byte(tt.secret), tt.timestamp, tt.body)
		want := referenceSign(tt.secret, tt.timestamp, tt.body)
		if got != want {
			t.Errorf("Sign(%q, %q, %q) = %s, want %s", tt.secret, tt.timestamp, tt.body, got, want)
		}
	}
}

func TestVerify(t *testing.T) {
	ka := knownAnswer
	body := []byte(ka.body)
	nonUTF8 := []byte{0xff, 0xfe, 0x00}

	tests := []struct {
		name      string
		secrets   []string // default: ka.secret alone
		timestamp string
		signature string
		body      []byte
		now       time.Time // default: knownAnswerTime
		wantIndex int
		wantErr   error
	}{
		{
			name:      "known answer",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      body,
		},
		{
			name:      "tampered body",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      []byte(`{"id":"evt_123","type":"demO"}`),
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "body with trailing newline",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      []byte(ka.body + "\n"),
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "tampered timestamp",
			timestamp: "1700000001",
			signature: ka.signature,
			body:      body,
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "signature for another timestamp",
			timestamp: ka.timestamp,
			signature: referenceSign(ka.secret, "1699999999", body),
			body:      body,
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "leading zero changes the signed string",
			timestamp: "0" + ka.timestamp,
			signature: ka.signature,
			body:      body,
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "leading zero signed as sent",
			timestamp: "0" + ka.timestamp,
			signature: referenceSign(ka.secret, "0"+ka.timestamp, body),
			body:      body,
		},
		{
			name:      "wrong secret",
			timestamp: ka.timestamp,
			signature: referenceSign("other-secret", ka.timestamp, body),
			body:      body,
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "rotation: second secret matches",
			secrets:   []string{"new-secret", ka.secret},
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      body,
			wantIndex: 1,
		},
		{
			name:      "rotation: first secret matches",
			secrets:   []string{"new-secret", ka.secret},
			timestamp: ka.timestamp,
			signature: referenceSign("new-secret", ka.timestamp, body),
			body:      body,
			wantIndex: 0,
		},
		{
			name:      "rotation: candidates for both secrets, first secret wins",
			secrets:   []string{"new-secret", ka.secret},
			timestamp: ka.timestamp,
			signature: ka.signature + "," + referenceSign("new-secret", ka.timestamp, body),
			body:      body,
			wantIndex: 0,
		},
		{
			name:      "rotation: neither secret matches",
			secrets:   []string{"new-secret", ka.secret},
			timestamp: ka.timestamp,
			signature: referenceSign("other-secret", ka.timestamp, body),
			body:      body,
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "no secrets",
			secrets:   []string{},
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      body,
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "uppercase hex",
			timestamp: ka.timestamp,
			signature: strings.ToUpper(ka.signature),
			body:      body,
		},
		{
			name:      "sha256= prefix",
			timestamp: ka.timestamp,
			signature: "sha256=" + ka.signature,
			body:      body,
		},
		{
			name:      "v1= prefix",
			timestamp: ka.timestamp,
			signature: "v1=" + ka.signature,
			body:      body,
		},
		{
			name:      "candidates separated by comma and space",
			timestamp: ka.timestamp,
			signature: strings.Join(candidateList(3, 2, ka.signature), ", "),
			body:      body,
		},
		{
			name:      "candidates separated by space",
			timestamp: ka.timestamp,
			signature: strings.Join(candidateList(3, 1, ka.signature), " "),
			body:      body,
		},
		{
			name:      "candidates separated by comma",
			timestamp: ka.timestamp,
			signature: strings.Join(candidateList(3, 1, ka.signature), ","),
			body:      body,
		},
		{
			name:      "mixed prefixes and separators",
			timestamp: ka.timestamp,
			signature: "v1=" + wrongSignature(0) + " ,sha256=" + ka.signature,
			body:      body,
		},
		{
			name:      "8 candidates, right one last",
			timestamp: ka.timestamp,
			signature: strings.Join(candidateList(8, 7, ka.signature), ","),
			body:      body,
		},
		{
			name:      "9 candidates, right one first",
			timestamp: ka.timestamp,
			signature: strings.Join(candidateList(9, 0, ka.signature), ","),
			body:      body,
			wantErr:   ErrMalformedSignature,
		},
		{
			name:      "right candidate followed by a malformed one",
			timestamp: ka.timestamp,
			signature: ka.signature + ",xyz",
			body:      body,
			wantErr:   ErrMalformedSignature,
		},
		{
			name:      "odd-length candidate",
			timestamp: ka.timestamp,
			signature: "abc",
			body:      body,
			wantErr:   ErrMalformedSignature,
		},
		{
			name:      "non-hex candidate",
			timestamp: ka.timestamp,
			signature: "zz" + ka.signature[2:],
			body:      body,
			wantErr:   ErrMalformedSignature,
		},
		{
			name:      "63 hex digits",
			timestamp: ka.timestamp,
			signature: ka.signature[:63],
			body:      body,
			wantErr:   ErrMalformedSignature,
		},
		{
			name:      "65 hex digits",
			timestamp: ka.timestamp,
			signature: ka.signature + "0",
			body:      body,
			wantErr:   ErrMalformedSignature,
		},
		{
			name:      "empty signature header",
			timestamp: ka.timestamp,
			signature: "",
			body:      body,
			wantErr:   ErrMissingSignature,
		},
		{
			name:      "only separators",
			timestamp: ka.timestamp,
			signature: " , ,,  ",
			body:      body,
			wantErr:   ErrMalformedSignature,
		},
		{
			name:      "empty timestamp",
			timestamp: "",
			signature: ka.signature,
			body:      body,
			wantErr:   ErrMissingTimestamp,
		},
		{
			name:      "timestamp with plus sign",
			timestamp: "+1700000000",
			signature: referenceSign(ka.secret, "+1700000000", body),
			body:      body,
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "timestamp with leading space",
			timestamp: " 1700000000",
			signature: referenceSign(ka.secret, " 1700000000", body),
			body:      body,
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "timestamp with trailing space",
			timestamp: "1700000000 ",
			signature: referenceSign(ka.secret, "1700000000 ", body),
			body:      body,
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "timestamp with fraction",
			timestamp: "1700000000.5",
			signature: referenceSign(ka.secret, "1700000000.5", body),
			body:      body,
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "timestamp with exponent",
			timestamp: "1.7e9",
			signature: referenceSign(ka.secret, "1.7e9", body),
			body:      body,
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "negative timestamp",
			timestamp: "-1700000000",
			signature: referenceSign(ka.secret, "-1700000000", body),
			body:      body,
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "13-digit timestamp",
			timestamp: "1700000000000",
			signature: referenceSign(ka.secret, "1700000000000", body),
			body:      body,
			now:       time.Unix(1700000000000, 0),
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "12-digit timestamp is well-formed",
			timestamp: "170000000000",
			signature: referenceSign(ka.secret, "170000000000", body),
			body:      body,
			now:       time.Unix(170000000000, 0),
		},
		{
			name:      "overflowing timestamp",
			timestamp: "99999999999999999999",
			signature: referenceSign(ka.secret, "99999999999999999999", body),
			body:      body,
			wantErr:   ErrMalformedTimestamp,
		},
		{
			name:      "past skew of exactly the tolerance",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      body,
			now:       knownAnswerTime.Add(300 * time.Second),
		},
		{
			name:      "past skew of one second more",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      body,
			now:       knownAnswerTime.Add(301 * time.Second),
			wantErr:   ErrStaleTimestamp,
		},
		{
			name:      "future skew of exactly the tolerance",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      body,
			now:       knownAnswerTime.Add(-300 * time.Second),
		},
		{
			name:      "future skew of one second more",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      body,
			now:       knownAnswerTime.Add(-301 * time.Second),
			wantErr:   ErrFutureTimestamp,
		},
		{
			name:      "empty body",
			timestamp: ka.timestamp,
			signature: referenceSign(ka.secret, ka.timestamp, nil),
			body:      []byte{},
		},
		{
			name:      "nil body",
			timestamp: ka.timestamp,
			signature: referenceSign(ka.secret, ka.timestamp, nil),
			body:      nil,
		},
		{
			name:      "empty body does not match a signed non-empty body",
			timestamp: ka.timestamp,
			signature: ka.signature,
			body:      nil,
			wantErr:   ErrInvalidSignature,
		},
		{
			name:      "non-UTF-8 body",
			timestamp: ka.timestamp,
			signature: referenceSign(ka.secret, ka.timestamp, nonUTF8),
			body:      nonUTF8,
		},
		{
			name:      "non-UTF-8 body tampered",
			timestamp: ka.timestamp,
			signature: referenceSign(ka.secret, ka.timestamp, nonUTF8),
			body:      []byte{0xff, 0xfe, 0x01},
			wantErr:   ErrInvalidSignature,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := tt.secrets
			if secrets == nil {
				secrets = []string{ka.secret}
			}
			now := tt.now
			if now.IsZero() {
				now = knownAnswerTime
			}
			v := NewVerifier(secretBytes(secrets))
			index, err := v.Verify(tt.timestamp, tt.signature, tt.body, now, testTolerance)
			checkVerify(t, index, err, tt.wantIndex, tt.wantErr)
		})
	}
}

// checkVerify compares what Verify returned with what a test expects. A
// failure always comes with index -1.
func checkVerify(t *testing.T, index int, err error, wantIndex int, wantErr error) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Errorf("Verify error = %v, want %v", err, wantErr)
		}
		if index != -1 {
			t.Errorf("Verify index = %d on failure, want -1", index)
		}
		return
	}
	if err != nil {
		t.Errorf("Verify error = %v, want nil", err)
	}
	if index != wantIndex {
		t.Errorf("Verify index = %d, want %d", index, wantIndex)
	}
}

func secretBytes(secrets []string) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = []byte(s)
	}
	return out
}

func TestParseSignatures(t *testing.T) {
	sig := knownAnswer.signature
	other := wrongSignature(0)

	tests := []struct {
		name    string
		value   string
		want    []string // lowercase hex of each candidate
		wantErr error
	}{
		{name: "one", value: sig, want: []string{sig}},
		{name: "uppercase", value: strings.ToUpper(sig), want: []string{sig}},
		{name: "mixed case", value: strings.ToUpper(sig[:32]) + sig[32:], want: []string{sig}},
		{name: "sha256= prefix", value: "sha256=" + sig, want: []string{sig}},
		{name: "v1= prefix", value: "v1=" + sig, want: []string{sig}},
		{name: "comma space", value: sig + ", " + other, want: []string{sig, other}},
		{name: "space", value: sig + " " + other, want: []string{sig, other}},
		{name: "comma", value: sig + "," + other, want: []string{sig, other}},
		{name: "runs of separators", value: " ,," + sig + " ,, " + other + ", ", want: []string{sig, other}},
		{name: "8 candidates", value: strings.Join(candidateList(8, 0, sig), ","), want: candidateList(8, 0, sig)},
		{name: "9 candidates", value: strings.Join(candidateList(9, 0, sig), ","), wantErr: ErrMalformedSignature},
		{name: "empty", value: "", wantErr: ErrMissingSignature},
		{name: "only separators", value: ", ,", wantErr: ErrMalformedSignature},
		{name: "single space", value: " ", wantErr: ErrMalformedSignature},
		{name: "prefix alone", value: "sha256=", wantErr: ErrMalformedSignature},
		{name: "two prefixes", value: "sha256=v1=" + sig, wantErr: ErrMalformedSignature},
		{name: "unknown prefix", value: "sha1=" + sig, wantErr: ErrMalformedSignature},
		{name: "0x prefix", value: "0x" + sig, wantErr: ErrMalformedSignature},
		{name: "63 digits", value: sig[:63], wantErr: ErrMalformedSignature},
		{name: "65 digits", value: sig + "a", wantErr: ErrMalformedSignature},
		{name: "odd length", value: "abc", wantErr: ErrMalformedSignature},
		{name: "non-hex", value: "g" + sig[1:], wantErr: ErrMalformedSignature},
		{name: "tab separator", value: sig + "\t" + other, wantErr: ErrMalformedSignature},
		{name: "semicolon separator", value: sig + ";" + other, wantErr: ErrMalformedSignature},
		{name: "good then bad", value: sig + ",nothex", wantErr: ErrMalformedSignature},
		{name: "base64", value: "Z/t4f2v1FZvcbY92A30xpcKem8y4M+eEB7fMwi4QunQ=", wantErr: ErrMalformedSignature},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignatures(tt.value)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("ParseSignatures error = %v, want %v", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("ParseSignatures = %d candidates on error, want nil", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSignatures error = %v", err)
			}
			if hexList := signaturesHex(got); !equalStrings(hexList, tt.want) {
				t.Errorf("ParseSignatures = %v, want %v", hexList, tt.want)
			}
		})
	}
}

func signaturesHex(sigs []Signature) []string {
	out := make([]string, len(sigs))
	for i, sig := range sigs {
		out[i] = hex.EncodeToString(sig[:])
	}
	return out
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		value   string
		want    int64
		wantErr error
	}{
		{"1700000000", 1700000000, nil},
		{"0", 0, nil},
		{"000000000000", 0, nil},
		{"999999999999", 999999999999, nil},
		{"01700000000", 1700000000, nil},
		{"", 0, ErrMissingTimestamp},
		{"1000000000000", 0, ErrMalformedTimestamp},
		{"99999999999999999999", 0, ErrMalformedTimestamp},
		{"+1700000000", 0, ErrMalformedTimestamp},
		{"-1700000000", 0, ErrMalformedTimestamp},
		{" 1700000000", 0, ErrMalformedTimestamp},
		{"1700000000 ", 0, ErrMalformedTimestamp},
		{"1700000000.5", 0, ErrMalformedTimestamp},
		{"1.7e9", 0, ErrMalformedTimestamp},
		{"0x10", 0, ErrMalformedTimestamp},
		{"１７", 0, ErrMalformedTimestamp}, // fullwidth digits
	}
	for _, tt := range tests {
		got, err := ParseTimestamp(tt.value)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseTimestamp(%q) error = %v, want %v", tt.value, err, tt.wantErr)
		}
		if err == nil && got != tt.want {
			t.Errorf("ParseTimestamp(%q) = %d, want %d", tt.value, got, tt.want)
		}
	}
}

func TestCheckSkew(t *testing.T) {
	const ts = 1700000000
	at := func(offset int64) time.Time { return time.Unix(ts+offset, 0) }

	tests := []struct {
		name      string
		now       time.Time
		tolerance time.Duration
		wantSkew  int64
		wantErr   error
	}{
		{"no skew", at(0), 5 * time.Minute, 0, nil},
		{"past, exactly tolerance", at(300), 5 * time.Minute, 300, nil},
		{"past, one second more", at(301), 5 * time.Minute, 301, ErrStaleTimestamp},
		{"future, exactly tolerance", at(-300), 5 * time.Minute, -300, nil},
		{"future, one second more", at(-301), 5 * time.Minute, -301, ErrFutureTimestamp},
		{"1.5s tolerance, past 1", at(1), 1500 * time.Millisecond, 1, nil},
		{"1.5s tolerance, past 2", at(2), 1500 * time.Millisecond, 2, ErrStaleTimestamp},
		{"1.5s tolerance, future 1", at(-1), 1500 * time.Millisecond, -1, nil},
		{"1.5s tolerance, future 2", at(-2), 1500 * time.Millisecond, -2, ErrFutureTimestamp},
		{"zero tolerance, no skew", at(0), 0, 0, nil},
		{"zero tolerance, past 1", at(1), 0, 1, ErrStaleTimestamp},
		{"zero tolerance, future 1", at(-1), 0, -1, ErrFutureTimestamp},
		{"far past", at(ts), 5 * time.Minute, ts, ErrStaleTimestamp},
		{"far future", at(-ts), 5 * time.Minute, -ts, ErrFutureTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skew, err := CheckSkew(ts, tt.now, tt.tolerance)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("CheckSkew error = %v, want %v", err, tt.wantErr)
			}
			if skew != tt.wantSkew {
				t.Errorf("CheckSkew skew = %d, want %d", skew, tt.wantSkew)
			}
		})
	}
}

// TestCheckSkewNegativeTimestamp: a negative timestamp (which ParseTimestamp
// never returns, but a direct caller might pass) must not overflow into the
// window.
func TestCheckSkewNegativeTimestamp(t *testing.T) {
	for _, ts := range []int64{-1, math.MinInt64} {
		if _, err := CheckSkew(ts, time.Unix(1700000000, 0), 5*time.Minute); !errors.Is(err, ErrMalformedTimestamp) {
			t.Errorf("CheckSkew(%d) error = %v, want ErrMalformedTimestamp", ts, err)
		}
	}
}

// mustParseSignatures parses a header value that the test knows is valid.
func mustParseSignatures(t *testing.T, value string) []Signature {
	t.Helper()
	sigs, err := ParseSignatures(value)
	if err != nil {
		t.Fatalf("ParseSignatures(%q): %v", value, err)
	}
	return sigs
}

// longBody returns n bytes that cross many SHA-256 block boundaries.
func longBody(n int) []byte {
	body := make([]byte, n)
	for i := range body {
		body[i] = byte(i * 7)
	}
	return body
}

func TestDigestStreamingMatchesSign(t *testing.T) {
	secrets := []string{"first-secret", "second-secret", "third-secret"}
	v := NewVerifier(secretBytes(secrets))
	body := longBody(1000)
	const timestamp = "1700000000"

	for _, chunk := range []int{1, 3, 63, 64, 65, 1000} {
		for i, secret := range secrets {
			t.Run(fmt.Sprintf("chunk %d secret %d", chunk, i), func(t *testing.T) {
				candidates := mustParseSignatures(t, Sign([]byte(secret), timestamp, body))
				d := v.Begin(timestamp)
				defer v.Release(d)
				for start := 0; start < len(body); start += chunk {
					end := min(start+chunk, len(body))
					n, err := d.Write(body[start:end])
					if n != end-start || err != nil {
						t.Fatalf("Write = %d, %v, want %d, nil", n, err, end-start)
					}
				}
				index, _, err := d.Match(candidates)
				checkVerify(t, index, err, i, nil)
			})
		}
	}
}

func TestDigestEmptyWrites(t *testing.T) {
	v := NewVerifier(secretBytes([]string{knownAnswer.secret}))
	d := v.Begin(knownAnswer.timestamp)
	defer v.Release(d)
	d.Write(nil)
	d.Write([]byte(knownAnswer.body))
	d.Write([]byte{})
	index, _, err := d.Match(mustParseSignatures(t, knownAnswer.signature))
	checkVerify(t, index, err, 0, nil)
}

func TestDigestReuseAfterRelease(t *testing.T) {
	ka := knownAnswer
	v := NewVerifier(secretBytes([]string{"new-secret", ka.secret}))
	otherBody := []byte("other body")

	// Alternate between two different requests many times, so that most
	// calls get a Digest a previous call has released. State left over from
	// an earlier call would break the known answer.
	for i := range 20 {
		index, err := v.Verify(ka.timestamp, ka.signature, []byte(ka.body), knownAnswerTime, testTolerance)
		checkVerify(t, index, err, 1, nil)

		sig := Sign([]byte("new-secret"), "1700000001", otherBody)
		index, err = v.Verify("1700000001", sig, otherBody, knownAnswerTime, testTolerance)
		checkVerify(t, index, err, 0, nil)

		// A Digest abandoned half-way, without Match, must not leak either.
		d := v.Begin(strconv.Itoa(i))
		d.Write([]byte("abandoned"))
		v.Release(d)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	ka := knownAnswer
	v := NewVerifier(secretBytes([]string{"new-secret", ka.secret}))
	secrets := []string{"new-secret", ka.secret, "unknown-secret"}

	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for i := range 20 {
				secretIndex := (g + i) % len(secrets)
				timestamp := strconv.Itoa(1700000000 + g)
				body := []byte(fmt.Sprintf(`{"goroutine":%d,"request":%d}`, g, i))
				sig := Sign([]byte(secrets[secretIndex]), timestamp, body)

				index, err := v.Verify(timestamp, sig, body, knownAnswerTime, testTolerance)
				if secretIndex == 2 {
					if !errors.Is(err, ErrInvalidSignature) || index != -1 {
						t.Errorf("goroutine %d: Verify = %d, %v, want -1, %v", g, index, err, ErrInvalidSignature)
					}
					continue
				}
				if err != nil || index != secretIndex {
					t.Errorf("goroutine %d: Verify = %d, %v, want %d, nil", g, index, err, secretIndex)
				}
			}
		})
	}
	wg.Wait()
}

// TestVerifyAllocations: a verification reuses its hashes and parses the
// signature header in place, so it allocates nothing in steady state.
func TestVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"id":"evt_1","type":"resource.created"}`)
	secrets := [][]byte{[]byte("old-secret-0123456789abcdef"), []byte(testSecret)}
	v := NewVerifier(secrets)
	header := "v1=" + strings.Repeat("0", 64) + ", " + Sign(secrets[1], ts, body)
	allocs := testing.AllocsPerRun(100, func() {
		if index, err := v.Verify(ts, header, body, now, testTolerance); err != nil || index != 1 {
			t.Fatalf("Verify = %d, %v", index, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Verify allocates %v times, want 0", allocs)
	}
}
