package groqwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// The wire protocol: a sender puts the unix time in seconds in the timestamp
// header and lowercase hex of HMAC-SHA256(secret, timestamp + "." + body) in
// the signature header. Nothing in this file knows about Caddy or net/http, so
// the protocol can be used and tested on its own.

// Errors returned by verification. Callers map them to statuses, log reasons
// and metric labels with errors.Is; ReasonCode does that mapping once.
// The protocol's errors are the provider engine's, so that one mapping
// serves every provider.
var (
	ErrMissingTimestamp   = provider.ErrMissingTimestamp
	ErrMalformedTimestamp = provider.ErrMalformedTimestamp
	ErrStaleTimestamp     = provider.ErrStaleTimestamp
	ErrFutureTimestamp    = provider.ErrFutureTimestamp
	ErrMissingSignature   = provider.ErrMissingSignature
	ErrMalformedSignature = provider.ErrMalformedSignature
	ErrInvalidSignature   = provider.ErrInvalidSignature
	ErrBodyTooLarge       = errors.New("body too large")
)

// Limits of the wire format. They bound the work an untrusted request can
// cause before any secret is involved.
const (
	maxCandidates = 8
	signatureSize = sha256.Size
)

// signaturePrefixes are the optional labels a sender may put before each hex
// signature. They carry no meaning here beyond being accepted.
var signaturePrefixes = []string{"sha256=", "v1="}

// Signature is one decoded candidate from a signature header.
type Signature [signatureSize]byte

// Sign returns the lowercase hex signature a sender puts in the signature
// header for this secret, timestamp (exactly as sent) and raw body.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// ParseTimestamp reads a timestamp header value: 1 to 12 ASCII digits, and
// nothing else (no sign, space, fraction or exponent).
func ParseTimestamp(value string) (int64, error) { return provider.ParseTimestamp(value) }

// CheckSkew reports whether a timestamp is within tolerance of now, on either
// side. It returns the skew in seconds (positive when the timestamp is in the
// past). A skew of exactly the tolerance passes.
func CheckSkew(ts int64, now time.Time, tolerance time.Duration) (int64, error) {
	return provider.CheckSkew(ts, now, tolerance)
}

// ParseSignatures reads a signature header value: 1 to 8 candidates separated
// by commas and/or spaces, each 64 hex digits in any case, optionally
// prefixed with "sha256=" or "v1=". It stops at the first malformed field or
// the ninth candidate, so its work is bounded by the header's length.
func ParseSignatures(value string) ([]Signature, error) {
	return appendSignatures(nil, value)
}

// appendSignatures is ParseSignatures appending to dst, so that a caller
// can parse into storage of its own and allocate nothing.
func appendSignatures(dst []Signature, value string) ([]Signature, error) {
	if value == "" {
		return nil, ErrMissingSignature
	}
	first := len(dst)
	for value != "" {
		var field string
		field, value = nextSignatureField(value)
		if field == "" {
			continue
		}
		if len(dst)-first == maxCandidates {
			return nil, ErrMalformedSignature
		}
		for _, prefix := range signaturePrefixes {
			if strings.HasPrefix(field, prefix) {
				field = field[len(prefix):]
				break
			}
		}
		var sig Signature
		if !provider.DecodeHex(sig[:], field) {
			return nil, ErrMalformedSignature
		}
		dst = append(dst, sig)
	}
	if len(dst) == first {
		return nil, ErrMalformedSignature
	}
	return dst, nil
}

// nextSignatureField splits value at its first comma or space.
func nextSignatureField(value string) (field, rest string) {
	if i := strings.IndexAny(value, ", "); i >= 0 {
		return value[:i], value[i+1:]
	}
	return value, ""
}

// Verifier checks signatures against one or more secrets. Any configured
// secret may match, which is how a secret is rotated without downtime.
// A Verifier is safe for concurrent use.
type Verifier struct {
	secrets [][]byte
	pool    sync.Pool
}

// NewVerifier returns a Verifier for the given secrets, in order of
// preference. The slices are not copied and must not be changed afterwards.
func NewVerifier(secrets [][]byte) *Verifier {
	v := &Verifier{secrets: secrets}
	v.pool.New = func() any {
		d := &Digest{macs: make([]hash.Hash, len(secrets))}
		for i, secret := range secrets {
			d.macs[i] = hmac.New(sha256.New, secret)
		}
		return d
	}
	return v
}

// Digest computes the signed message's HMAC under every secret at once, so
// that the body is hashed in the same pass that reads it.
type Digest struct {
	macs   []hash.Hash
	sum    []byte
	prefix []byte // the timestamp and the dot, kept to write them without allocating
}

// Begin returns a Digest that has absorbed the timestamp and the separating
// dot; write the raw body to it, then call Match and Release.
func (v *Verifier) Begin(timestamp string) *Digest {
	d := v.pool.Get().(*Digest)
	d.prefix = append(append(d.prefix[:0], timestamp...), '.')
	for _, mac := range d.macs {
		mac.Write(d.prefix)
	}
	return d
}

// Write adds body bytes to every secret's HMAC. It never fails.
func (d *Digest) Write(p []byte) (int, error) {
	for _, mac := range d.macs {
		mac.Write(p)
	}
	return len(p), nil
}

// Match compares every candidate with every secret's HMAC in constant time
// and returns the index of the first secret that matches and of the
// candidate it matched. It compares all pairs even after a match, so timing
// says nothing about which one matched.
func (d *Digest) Match(candidates []Signature) (secret, candidate int, err error) {
	secret, candidate = -1, -1
	for i, mac := range d.macs {
		d.sum = mac.Sum(d.sum[:0])
		for j := range candidates {
			if hmac.Equal(d.sum, candidates[j][:]) && secret < 0 {
				secret, candidate = i, j
			}
		}
	}
	if secret < 0 {
		return -1, -1, ErrInvalidSignature
	}
	return secret, candidate, nil
}

// Release returns the Digest to its Verifier for reuse.
func (v *Verifier) Release(d *Digest) {
	for _, mac := range d.macs {
		mac.Reset()
	}
	v.pool.Put(d)
}

// Verify checks a complete request: the two header values and the raw body.
// It returns the index of the matching secret.
func (v *Verifier) Verify(timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) (int, error) {
	ts, err := ParseTimestamp(timestamp)
	if err != nil {
		return -1, err
	}
	if _, err := CheckSkew(ts, now, tolerance); err != nil {
		return -1, err
	}
	var storage [maxCandidates]Signature
	candidates, err := appendSignatures(storage[:0], signature)
	if err != nil {
		return -1, err
	}
	d := v.Begin(timestamp)
	defer v.Release(d)
	d.Write(body)
	secret, _, err := d.Match(candidates)
	return secret, err
}
