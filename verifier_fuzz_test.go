package groqwebhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParseSignatures(f *testing.F) {
	sig := knownAnswer.signature
	f.Add(sig)
	f.Add(strings.ToUpper(sig))
	f.Add("sha256=" + sig)
	f.Add("v1=" + sig + ", " + wrongSignature(0))
	f.Add(strings.Join(candidateList(8, 3, sig), " "))
	f.Add(strings.Join(candidateList(9, 3, sig), ","))
	f.Add("")
	f.Add(" , ,")
	f.Add(sig[:63])

	f.Fuzz(func(t *testing.T, value string) {
		sigs, err := ParseSignatures(value)
		if err != nil {
			if !errors.Is(err, ErrMissingSignature) && !errors.Is(err, ErrMalformedSignature) {
				t.Fatalf("ParseSignatures(%q) error = %v, want a signature header error", value, err)
			}
			if sigs != nil {
				t.Fatalf("ParseSignatures(%q) = %d candidates with error %v", value, len(sigs), err)
			}
			if errors.Is(err, ErrMissingSignature) != (value == "") {
				t.Fatalf("ParseSignatures(%q) error = %v, want ErrMissingSignature only for an empty value", value, err)
			}
			return
		}
		if len(sigs) < 1 || len(sigs) > maxCandidates {
			t.Fatalf("ParseSignatures(%q) = %d candidates, want 1 to %d", value, len(sigs), maxCandidates)
		}
		lower := strings.ToLower(value)
		for _, s := range sigs {
			if !strings.Contains(lower, hex.EncodeToString(s[:])) {
				t.Fatalf("ParseSignatures(%q) returned %x, which is not in the input", value, s)
			}
		}

		// The candidates, written out again, parse to the same candidates.
		again, err := ParseSignatures(strings.Join(signaturesHex(sigs), ","))
		if err != nil || !equalStrings(signaturesHex(again), signaturesHex(sigs)) {
			t.Fatalf("ParseSignatures(%q) does not round-trip: %x, %v", value, again, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	ka := knownAnswer
	f.Add([]byte(ka.secret), []byte("other-secret"), ka.timestamp, []byte(ka.body), []byte(ka.body+" "))
	f.Add([]byte(ka.secret), []byte(ka.secret+"\x00"), ka.timestamp, []byte(ka.body), []byte(ka.body))
	f.Add([]byte{}, []byte{0}, "0", []byte{}, []byte{0xff, 0xfe, 0x00})
	f.Add([]byte(strings.Repeat("k", 65)), []byte("k"), "999999999999", []byte("a"), []byte("b"))
	f.Add([]byte(ka.secret), []byte("x"), "1700000000.5", []byte(ka.body), []byte(ka.signature))
	f.Add([]byte(ka.secret), []byte("x"), "", []byte(ka.body), []byte(""))

	f.Fuzz(func(t *testing.T, secret, otherSecret []byte, timestamp string, body, otherBody []byte) {
		sig := Sign(secret, timestamp, body)
		v := NewVerifier([][]byte{secret})

		ts, tsErr := ParseTimestamp(timestamp)
		now := time.Unix(ts, 0)

		// An arbitrary signature header must not cause a panic.
		v.Verify(timestamp, string(otherBody), body, now, testTolerance)

		index, err := v.Verify(timestamp, sig, body, now, testTolerance)
		if tsErr != nil {
			if !errors.Is(err, tsErr) {
				t.Fatalf("Verify with timestamp %q: error = %v, want %v", timestamp, err, tsErr)
			}
			return
		}
		if err != nil || index != 0 {
			t.Fatalf("Verify of own signature = %d, %v, want 0, nil", index, err)
		}

		if !equivalentHMACKeys(secret, otherSecret) {
			other := NewVerifier([][]byte{otherSecret})
			index, err := other.Verify(timestamp, sig, body, now, testTolerance)
			wantInvalid(t, "other secret", index, err)

			rotated := NewVerifier([][]byte{otherSecret, secret})
			index, err = rotated.Verify(timestamp, sig, body, now, testTolerance)
			if err != nil || index != 1 {
				t.Fatalf("Verify with rotated secrets = %d, %v, want 1, nil", index, err)
			}
		}

		if !bytes.Equal(body, otherBody) {
			index, err := v.Verify(timestamp, sig, otherBody, now, testTolerance)
			wantInvalid(t, "other body", index, err)
		}

		for _, otherTimestamp := range []string{"0" + timestamp, strconv.FormatInt(ts+1, 10)} {
			index, err := v.Verify(otherTimestamp, sig, body, now, testTolerance)
			if _, parseErr := ParseTimestamp(otherTimestamp); parseErr != nil {
				if err == nil {
					t.Fatalf("Verify with malformed timestamp %q succeeded", otherTimestamp)
				}
				continue
			}
			wantInvalid(t, "timestamp "+otherTimestamp, index, err)
		}
	})
}

// wantInvalid fails unless Verify reported that no signature matches.
func wantInvalid(t *testing.T, what string, index int, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidSignature) || index != -1 {
		t.Fatalf("Verify with %s = %d, %v, want -1, %v", what, index, err, ErrInvalidSignature)
	}
}

// equivalentHMACKeys reports whether two keys give the same HMAC. HMAC
// replaces a key longer than the hash's block by its hash, then pads it with
// zero bytes to a full block; keys with the same padded block are the same key.
func equivalentHMACKeys(a, b []byte) bool {
	return hmacKeyBlock(a) == hmacKeyBlock(b)
}

func hmacKeyBlock(key []byte) [sha256.BlockSize]byte {
	var block [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	copy(block[:], key)
	return block
}
