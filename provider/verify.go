package provider

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
)

// Limits of the wire formats. They bound the work an untrusted request can
// cause before any secret is involved.
const (
	MaxCandidates      = 8
	maxTimestampDigits = 12
	maxSignatureSize   = 64

	// maxKeptMessage bounds the message buffer a pooled Check keeps for
	// schemes that sign a copy of the body (Discord, Twilio): the default
	// max_body and a little more.
	maxKeptMessage = 1<<20 + 4<<10
)

// Config is what an operator configures for a scheme.
type Config struct {
	// Secrets, resolved, in order of preference. For Token schemes each
	// is the token itself.
	Secrets [][]byte
	// PublicKeys, for Ed25519 schemes, in hex.
	PublicKeys []string
	// URL is the address the sender calls, for schemes that sign it.
	URL string
	// Tolerance overrides the scheme's window; 0 keeps it.
	Tolerance time.Duration
}

// Verifier runs one scheme with one configuration. It is safe for
// concurrent use.
type Verifier struct {
	scheme     *Scheme
	secrets    [][]byte
	tokens     [][sha256.Size]byte
	publicKeys []ed25519.PublicKey
	url        string
	tolerance  time.Duration
	newHash    func() hash.Hash
	size       int
	// prefix and suffix are the parts before and after the body, when the
	// body can be hashed as it is read.
	prefix, suffix []Part
	streaming      bool
	pool           sync.Pool
}

// New checks cfg against the scheme and prepares what every request uses.
// Its errors name the scheme and the problem, never a secret.
func (s *Scheme) New(cfg Config) (*Verifier, error) {
	v := &Verifier{scheme: s, url: cfg.URL, tolerance: s.Tolerance, size: s.signatureSize()}
	if cfg.Tolerance != 0 {
		if !s.HasTimestamp() {
			return nil, fmt.Errorf("provider %s signs no timestamp: tolerance does not apply (de-duplication is its replay guard)", s.Name)
		}
		v.tolerance = cfg.Tolerance
	}
	if s.NeedsURL && cfg.URL == "" {
		return nil, fmt.Errorf("provider %s signs the url it is called at: set url to the exact address configured at the sender", s.Name)
	}
	if !s.NeedsURL && cfg.URL != "" {
		return nil, fmt.Errorf("provider %s does not sign a url: remove url", s.Name)
	}
	if s.Algorithm == Ed25519 {
		if len(cfg.Secrets) > 0 {
			return nil, fmt.Errorf("provider %s verifies with a public key: use public_key instead of secret", s.Name)
		}
		if len(cfg.PublicKeys) == 0 {
			return nil, fmt.Errorf("provider %s needs public_key: the application's Ed25519 public key in hex", s.Name)
		}
		for i, k := range cfg.PublicKeys {
			key, err := hex.DecodeString(k)
			if err != nil || len(key) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("provider %s: public_key %d is not %d bytes of hex", s.Name, i, ed25519.PublicKeySize)
			}
			v.publicKeys = append(v.publicKeys, ed25519.PublicKey(key))
		}
		v.size = ed25519.SignatureSize
	} else {
		if len(cfg.PublicKeys) > 0 {
			return nil, fmt.Errorf("provider %s verifies with a shared secret: public_key does not apply", s.Name)
		}
		if len(cfg.Secrets) == 0 {
			return nil, fmt.Errorf("provider %s needs a secret", s.Name)
		}
		for i, secret := range cfg.Secrets {
			key, err := s.decodeSecret(secret)
			if err != nil {
				return nil, fmt.Errorf("provider %s: secret %d %v", s.Name, i, err)
			}
			v.secrets = append(v.secrets, key)
		}
	}
	v.newHash = s.hash()
	if s.Algorithm == Token {
		for _, secret := range v.secrets {
			v.tokens = append(v.tokens, sha256.Sum256(secret))
		}
	}
	if v.newHash != nil && s.BuildMessage == nil {
		at := slicesIndexBody(s.Message)
		v.prefix, v.suffix = s.Message[:at], s.Message[at+1:]
		v.streaming = true
	}
	v.pool.New = func() any {
		c := &Check{v: v}
		if v.newHash != nil {
			for _, secret := range v.secrets {
				c.macs = append(c.macs, hmac.New(v.newHash, secret))
			}
		}
		return c
	}
	return v, nil
}

// hash returns the HMAC's hash, nil for schemes without one.
func (s *Scheme) hash() func() hash.Hash {
	switch s.Algorithm {
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	case SHA1:
		return sha1.New
	}
	return nil
}

func slicesIndexBody(parts []Part) int {
	for i, p := range parts {
		if p.Kind == PartBody {
			return i
		}
	}
	return len(parts)
}

// decodeSecret turns a configured secret into key bytes.
func (s *Scheme) decodeSecret(secret []byte) ([]byte, error) {
	if !s.DecodeWhsec || !strings.HasPrefix(string(secret), "whsec_") {
		return secret, nil
	}
	key, err := base64.StdEncoding.DecodeString(string(secret[len("whsec_"):]))
	if err != nil || len(key) == 0 {
		return nil, errors.New(`starts with "whsec_" but the rest is not valid base64`)
	}
	return key, nil
}

// Scheme returns the verifier's scheme.
func (v *Verifier) Scheme() *Scheme { return v.scheme }

// Tolerance returns the window in force, 0 for schemes without timestamp.
func (v *Verifier) Tolerance() time.Duration { return v.tolerance }

// Secret returns the key bytes of secret i, for a handshake.
func (v *Verifier) Secret(i int) []byte {
	if i < 0 || i >= len(v.secrets) {
		return nil
	}
	return v.secrets[i]
}

// candidate is one decoded signature from a header.
type candidate struct {
	b [maxSignatureSize]byte
	n int
}

// Check is one request's verification in progress: Begin, then Write the
// raw body, then Finish, then Release.
type Check struct {
	v     *Verifier
	macs  []hash.Hash
	cands [MaxCandidates]candidate
	n     int
	buf   []byte
	sum   []byte

	// Timestamp is the timestamp as sent, once it is known to be well-formed.
	Timestamp string
	// Skew is how far behind now the timestamp is, in seconds; HasSkew
	// says whether there is one.
	Skew    int64
	HasSkew bool
	// ID is the signed id (IDHeader), Delivery the unsigned one, Type the
	// type from TypeHeader.
	ID, Delivery, Type string

	contentType     string
	signedTimestamp string // from the signature header, until checked
	bodyTimestamp   []byte // from the body, in milliseconds
}

// TimestampText returns the timestamp as sent, once it is known to be
// well-formed; a timestamp read from the body is copied out of it.
func (c *Check) TimestampText() string {
	if c.Timestamp == "" && c.bodyTimestamp != nil {
		if _, err := parseTimestamp(c.bodyTimestamp, maxTimestampDigits+3); err == nil {
			return string(c.bodyTimestamp)
		}
	}
	return c.Timestamp
}

// Result is what a verified request proved.
type Result struct {
	// Secret is the index of the secret (or public key) that matched.
	Secret int
	// SignatureDigest is the SHA-256 of the signature that matched: the
	// same for the same signed bytes, and safe to log or store.
	SignatureDigest [sha256.Size]byte
}

// Begin does the checks that need no body and starts the signed message.
// The returned Check is never nil and goes back with Release.
func (v *Verifier) Begin(r Request, now time.Time) (*Check, error) {
	c := v.pool.Get().(*Check)
	c.n, c.Timestamp, c.signedTimestamp, c.Skew, c.HasSkew, c.ID, c.Delivery, c.Type = 0, "", "", 0, false, "", "", ""
	s := v.scheme
	c.contentType = first(r.Header["Content-Type"])
	for _, name := range s.DeliveryHeaders {
		if value := first(r.Header[name]); value != "" {
			c.Delivery = value
			break
		}
	}
	if s.TypeHeader != "" {
		c.Type = first(r.Header[s.TypeHeader])
	}
	if s.Timestamp == HeaderTimestamp {
		values := r.Header[s.TimestampHeader]
		if len(values) == 0 {
			return c, ErrMissingTimestamp
		}
		if len(values) > 1 {
			return c, fmt.Errorf("%w: %d timestamp headers", ErrMalformedTimestamp, len(values))
		}
		if err := c.checkTimestamp(values[0], now); err != nil {
			return c, err
		}
	}
	var signature []string
	for _, name := range s.SignatureHeaders {
		if signature = r.Header[name]; len(signature) > 0 {
			break
		}
	}
	if len(signature) == 0 || signature[0] == "" {
		return c, ErrMissingSignature
	}
	if len(signature) > 1 {
		return c, fmt.Errorf("%w: %d signature headers", ErrMalformedSignature, len(signature))
	}
	parse := s.ParseList
	if parse == nil {
		parse = parseSimpleList
	}
	if err := parse(signature[0], c); err != nil {
		return c, err
	}
	if s.Timestamp == SignatureTimestamp {
		if err := c.checkTimestamp(c.signedTimestamp, now); err != nil {
			return c, err
		}
	}
	if s.IDHeader != "" {
		values := r.Header[s.IDHeader]
		if len(values) != 1 || values[0] == "" {
			return c, ErrMissingID
		}
		c.ID = values[0]
	}
	if v.streaming {
		c.buf = v.appendParts(c.buf[:0], v.prefix, c, r.Query)
		for _, mac := range c.macs {
			mac.Write(c.buf)
		}
	}
	return c, nil
}

func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// checkTimestamp parses a timestamp in seconds and checks it against the
// window.
func (c *Check) checkTimestamp(value string, now time.Time) error {
	t, err := parseTimestamp(value, maxTimestampDigits)
	if err != nil {
		return err
	}
	c.Timestamp = value
	c.Skew, err = CheckSkew(t, now, c.v.tolerance)
	c.HasSkew = true
	return err
}

// appendParts writes parts other than the body.
func (v *Verifier) appendParts(dst []byte, parts []Part, c *Check, query string) []byte {
	for _, p := range parts {
		switch p.Kind {
		case Literal:
			dst = append(dst, p.Literal...)
		case PartID:
			dst = append(dst, c.ID...)
		case PartTimestamp:
			dst = append(dst, c.Timestamp...)
		case PartURL:
			dst = appendURL(dst, v.url, query, v.scheme.QueryInURL)
		}
	}
	return dst
}

// appendURL writes the signed url: the configured one, with the request's
// query when the scheme signs it and the configured url has none.
func appendURL(dst []byte, configured, query string, withQuery bool) []byte {
	dst = append(dst, configured...)
	if withQuery && query != "" && !strings.Contains(configured, "?") {
		dst = append(append(dst, '?'), query...)
	}
	return dst
}

// Write adds body bytes to every secret's HMAC when the body is hashed as
// it is read; otherwise Finish reads the body. It never fails.
func (c *Check) Write(p []byte) (int, error) {
	if c.v.streaming {
		for _, mac := range c.macs {
			mac.Write(p)
		}
	}
	return len(p), nil
}

// Finish checks what needs the whole body and compares the signatures in
// constant time, every pair even after a match.
func (v *Verifier) Finish(c *Check, body []byte, query string, now time.Time) (Result, error) {
	s := v.scheme
	if s.Timestamp == BodyMillisTimestamp {
		c.bodyTimestamp = number(body, s.BodyTimestamp)
		t, err := parseTimestamp(c.bodyTimestamp, maxTimestampDigits+3)
		if err != nil {
			return Result{}, err
		}
		c.Skew, err = CheckSkew(t/1000, now, v.tolerance)
		c.HasSkew = true
		if err != nil {
			return Result{}, err
		}
	}
	match, err := v.match(c, body, query)
	if err != nil {
		return Result{}, err
	}
	cand := &c.cands[match.candidate]
	return Result{Secret: match.secret, SignatureDigest: sha256.Sum256(cand.b[:cand.n])}, nil
}

type matched struct{ secret, candidate int }

func (v *Verifier) match(c *Check, body []byte, query string) (matched, error) {
	m := matched{-1, -1}
	s := v.scheme
	switch {
	case s.Algorithm == Token:
		for i := range v.tokens {
			for j := 0; j < c.n; j++ {
				if subtle.ConstantTimeCompare(v.tokens[i][:], c.cands[j].b[:c.cands[j].n]) == 1 && m.secret < 0 {
					m = matched{i, j}
				}
			}
		}
	case s.Algorithm == Ed25519:
		c.buf = v.appendMessage(c.buf[:0], c, body, query)
		for i, key := range v.publicKeys {
			for j := 0; j < c.n; j++ {
				if ed25519.Verify(key, c.buf, c.cands[j].b[:c.cands[j].n]) && m.secret < 0 {
					m = matched{i, j}
				}
			}
		}
	default:
		if !v.streaming {
			var err error
			if s.BuildMessage != nil {
				c.buf, err = s.BuildMessage(c.buf[:0], string(appendURL(nil, v.url, query, s.QueryInURL)), c.contentType, body)
				if err != nil {
					return m, err
				}
			} else {
				c.buf = v.appendMessage(c.buf[:0], c, body, query)
			}
			for _, mac := range c.macs {
				mac.Write(c.buf)
			}
		} else if len(v.suffix) > 0 {
			c.buf = v.appendParts(c.buf[:0], v.suffix, c, query)
			for _, mac := range c.macs {
				mac.Write(c.buf)
			}
		}
		for i, mac := range c.macs {
			c.sum = mac.Sum(c.sum[:0])
			for j := 0; j < c.n; j++ {
				if hmac.Equal(c.sum, c.cands[j].b[:c.cands[j].n]) && m.secret < 0 {
					m = matched{i, j}
				}
			}
		}
	}
	if m.secret < 0 {
		return m, ErrInvalidSignature
	}
	return m, nil
}

// appendMessage writes the whole signed message.
func (v *Verifier) appendMessage(dst []byte, c *Check, body []byte, query string) []byte {
	at := slicesIndexBody(v.scheme.Message)
	dst = v.appendParts(dst, v.scheme.Message[:at], c, query)
	if at < len(v.scheme.Message) {
		dst = append(dst, body...)
		dst = v.appendParts(dst, v.scheme.Message[at+1:], c, query)
	}
	return dst
}

// Release returns the Check for reuse.
func (v *Verifier) Release(c *Check) {
	for _, mac := range c.macs {
		mac.Reset()
	}
	if cap(c.buf) > maxKeptMessage {
		c.buf = nil // a message this large is rare: it is not kept
	}
	c.ID, c.Delivery, c.Type, c.Timestamp, c.contentType, c.bodyTimestamp = "", "", "", "", "", nil
	v.pool.Put(c)
}

// Verify checks a complete request in one call.
func (v *Verifier) Verify(r Request, body []byte, now time.Time) (Result, error) {
	c, err := v.Begin(r, now)
	defer v.Release(c)
	if err != nil {
		return Result{}, err
	}
	c.Write(body)
	return v.Finish(c, body, r.Query, now)
}

// add decodes one signature into the next candidate slot.
func (c *Check) add(encoded string) error {
	if c.n == MaxCandidates {
		return fmt.Errorf("%w: more than %d signatures", ErrMalformedSignature, MaxCandidates)
	}
	cand := &c.cands[c.n]
	if c.v.scheme.Algorithm == Token {
		if len(encoded) > 1024 {
			return ErrMalformedSignature
		}
		sum := sha256.Sum256([]byte(encoded))
		cand.n = copy(cand.b[:], sum[:])
		c.n++
		return nil
	}
	n, ok := decodeSignature(cand.b[:c.v.size], encoded, c.v.scheme.Encoding)
	if !ok {
		return ErrMalformedSignature
	}
	cand.n = n
	c.n++
	return nil
}

// decodeSignature fills dst, exactly, from encoded.
func decodeSignature(dst []byte, encoded string, enc Encoding) (int, bool) {
	if enc == Base64 {
		if len(encoded) != base64.StdEncoding.EncodedLen(len(dst)) {
			return 0, false
		}
		// Decode needs room for what the padding rounds up to, and a
		// []byte of the header on the stack, not the heap.
		var src [base64Max]byte
		var out [base64Max]byte
		n, err := base64.StdEncoding.Strict().Decode(out[:], src[:copy(src[:], encoded)])
		if err != nil || n != len(dst) {
			return 0, false
		}
		return copy(dst, out[:n]), true
	}
	return len(dst), DecodeHex(dst, encoded)
}

// base64Max is the encoded length of the largest signature.
const base64Max = (maxSignatureSize + 2) / 3 * 4

// DecodeHex fills dst from s, which must be exactly twice as long, in hex
// digits of either case. It allocates nothing.
func DecodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := hexValue(s[2*i])
		lo, ok2 := hexValue(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ParseTimestamp reads a timestamp in seconds: 1 to 12 ASCII digits, and
// nothing else (no sign, space, fraction or exponent).
func ParseTimestamp(value string) (int64, error) {
	return parseTimestamp(value, maxTimestampDigits)
}

func parseTimestamp[T string | []byte](value T, maxDigits int) (int64, error) {
	if len(value) == 0 {
		return 0, ErrMissingTimestamp
	}
	if len(value) > maxDigits {
		return 0, ErrMalformedTimestamp
	}
	var t int64
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < '0' || c > '9' {
			return 0, ErrMalformedTimestamp
		}
		t = t*10 + int64(c-'0')
	}
	return t, nil
}

// CheckSkew reports whether a timestamp is within tolerance of now, on either
// side. It returns the skew in seconds (positive when the timestamp is in the
// past). A skew of exactly the tolerance passes.
func CheckSkew(t int64, now time.Time, tolerance time.Duration) (int64, error) {
	if t < 0 {
		return 0, ErrMalformedTimestamp
	}
	skew := now.Unix() - t
	limit := int64(tolerance / time.Second)
	switch {
	case skew > limit:
		return skew, ErrStaleTimestamp
	case -skew > limit:
		return skew, ErrFutureTimestamp
	}
	return skew, nil
}
