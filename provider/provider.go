// Package provider verifies the webhooks of many senders on one engine. A
// provider is a Scheme: data (header names, the bytes signed, algorithm,
// encoding, where the timestamp, id and type come from) plus, where a
// sender needs one, a small function (how its header lists parse, its
// handshake). Nothing here knows about Caddy.
package provider

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Errors returned by verification. Callers map them to statuses, log
// reasons and metric labels with errors.Is.
var (
	ErrMissingTimestamp   = errors.New("missing timestamp header")
	ErrMalformedTimestamp = errors.New("malformed timestamp")
	ErrStaleTimestamp     = errors.New("timestamp too old")
	ErrFutureTimestamp    = errors.New("timestamp too far in the future")
	ErrMissingSignature   = errors.New("missing signature header")
	ErrMalformedSignature = errors.New("malformed signature header")
	ErrInvalidSignature   = errors.New("no signature matches")
	ErrMissingID          = errors.New("missing id header")
)

// Algorithm is how a signature is made.
type Algorithm string

// The algorithms.
const (
	SHA256  Algorithm = "sha256"  // HMAC-SHA256
	SHA512  Algorithm = "sha512"  // HMAC-SHA512
	SHA1    Algorithm = "sha1"    // HMAC-SHA1
	Ed25519 Algorithm = "ed25519" // an Ed25519 signature, checked with public keys
	Token   Algorithm = "token"   // the secret itself, sent as is
)

// Encoding is how a signature is written in its header.
type Encoding string

// The encodings.
const (
	Hex    Encoding = "hex"    // either case
	Base64 Encoding = "base64" // standard, padded
)

// TimestampSource says where a scheme's timestamp is.
type TimestampSource int

// The timestamp sources.
const (
	NoTimestamp         TimestampSource = iota // nothing signed says when
	HeaderTimestamp                            // TimestampHeader, unix seconds
	SignatureTimestamp                         // inside the signature header (Stripe's t=, Paddle's ts=)
	BodyMillisTimestamp                        // the body's BodyTimestamp member, unix milliseconds
)

// PartKind is what a part of the signed message holds.
type PartKind int

// The parts of a signed message.
const (
	Literal PartKind = iota
	PartID
	PartTimestamp
	PartBody
	PartURL
)

// Part is one piece of the signed message.
type Part struct {
	Kind    PartKind
	Literal string
}

// Scheme is a provider: how its sender signs and what its requests carry.
type Scheme struct {
	// Name is what `provider <name>` selects.
	Name string

	// SignatureHeaders are the canonical names of the signature header;
	// the first one present is read, and it must be present once.
	SignatureHeaders []string
	Algorithm        Algorithm
	Encoding         Encoding
	// Prefixes are the labels a signature may carry, in the simple list
	// form; with PrefixRequired one of them must be there.
	Prefixes       []string
	PrefixRequired bool
	// ParseList reads the signature header into candidates (and, for
	// SignatureTimestamp, the timestamp). Default: the simple list form,
	// signatures separated by commas or spaces.
	ParseList func(value string, c *Check) error

	// Message is the signed bytes, in order. At most one part is the body.
	Message []Part
	// BuildMessage, when set, makes the signed bytes from the whole body
	// instead of Message (Twilio's sorted form parameters).
	BuildMessage func(dst []byte, url, contentType string, body []byte) ([]byte, error)

	Timestamp       TimestampSource
	TimestampHeader string
	BodyTimestamp   string
	// Tolerance is the default window on either side of now.
	Tolerance time.Duration

	// IDHeader holds an id that is part of the signed message.
	IDHeader string
	// DeliveryHeaders hold an unsigned id: exposed, never used as a key.
	DeliveryHeaders []string
	// TypeHeader holds the event type, unsigned, instead of the body.
	TypeHeader string
	// Event says where the body holds the id and type.
	Event EventFields
	// KeyFromBody keys an event by the digest of its body (GitLab, whose
	// token signs nothing).
	KeyFromBody bool

	// DecodeWhsec decodes secrets written "whsec_" + base64.
	DecodeWhsec bool
	// NeedsURL requires the url the sender calls, which it signs.
	NeedsURL bool
	// QueryInURL appends the request's query string to the url, unless
	// the configured url has one.
	QueryInURL bool

	// Handshake answers the sender's endpoint checks, once verified.
	Handshake *Handshake

	// FormatHeader writes the signature header's value from a timestamp
	// and encoded signatures, for Sign. Default: each with Prefixes[0],
	// separated by ", ".
	FormatHeader func(timestamp string, signatures []string) string
}

// Handshake is a sender's endpoint check: a verified request whose event
// type is Type is answered with Answer's body, never forwarded.
type Handshake struct {
	Type   string
	Answer func(body, secret []byte) ([]byte, bool)
}

// HasTimestamp reports whether the scheme signs a timestamp, so that a
// window applies to it.
func (s *Scheme) HasTimestamp() bool { return s.Timestamp != NoTimestamp }

// SignsID reports whether IDHeader's value is signed.
func (s *Scheme) SignsID() bool {
	return slices.ContainsFunc(s.Message, func(p Part) bool { return p.Kind == PartID })
}

// signatureSize is the decoded size of one signature.
func (s *Scheme) signatureSize() int {
	switch s.Algorithm {
	case SHA1:
		return 20
	case SHA512, Ed25519:
		return 64
	}
	return 32
}

// registry holds the built-in schemes by name.
var registry = map[string]*Scheme{}

func register(s *Scheme) *Scheme {
	registry[s.Name] = s
	return s
}

// Lookup returns the built-in scheme called name.
func Lookup(name string) (*Scheme, bool) {
	s, ok := registry[name]
	return s, ok
}

// Names lists the known providers, sorted, with hmac, which the Caddyfile
// describes.
func Names() []string {
	names := []string{"hmac"}
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Request is what verification reads of an HTTP request before its body.
type Request struct {
	Header http.Header
	// Query is the request URL's raw query.
	Query string
}

// canonical returns the canonical form of header names.
func canonical(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}

// parseTemplate reads a signed-bytes template such as "{timestamp}.{body}".
func parseTemplate(template string) ([]Part, error) {
	var parts []Part
	rest := template
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			parts = append(parts, Part{Kind: Literal, Literal: rest})
			break
		}
		if open > 0 {
			parts = append(parts, Part{Kind: Literal, Literal: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, errors.New("unclosed '{'")
		}
		switch name := rest[open+1 : open+end]; name {
		case "id":
			parts = append(parts, Part{Kind: PartID})
		case "timestamp":
			parts = append(parts, Part{Kind: PartTimestamp})
		case "body":
			parts = append(parts, Part{Kind: PartBody})
		default:
			return nil, errors.New("unknown field {" + name + "}: use {id}, {timestamp} and {body}")
		}
		rest = rest[open+end+1:]
	}
	bodies := 0
	for _, p := range parts {
		if p.Kind == PartBody {
			bodies++
		}
	}
	if bodies != 1 {
		return nil, errors.New("must contain {body} exactly once")
	}
	return parts, nil
}

// lit and the parts below build messages.
func lit(s string) Part { return Part{Kind: Literal, Literal: s} }

var (
	idPart   = Part{Kind: PartID}
	tsPart   = Part{Kind: PartTimestamp}
	bodyPart = Part{Kind: PartBody}
	urlPart  = Part{Kind: PartURL}
)
