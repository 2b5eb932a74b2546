package provider

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// HMACConfig describes a scheme in the configuration: an HMAC over a
// template of the id, the timestamp and the body.
type HMACConfig struct {
	// The header holding the signature(s). Required. Several signatures
	// may be listed, separated by commas or spaces.
	SignatureHeader string `json:"signature_header,omitempty"`

	// A label each signature carries before its value, such as "sha256=".
	SignaturePrefix string `json:"signature_prefix,omitempty"`

	// How signatures are written: hex (either case) or base64. Default: hex.
	Encoding string `json:"encoding,omitempty"`

	// The HMAC's hash: sha256, sha512 or sha1. Default: sha256.
	Algorithm string `json:"algorithm,omitempty"`

	// The header holding the unix time in seconds. When set, the timestamp
	// must be within tolerance and the template must sign {timestamp}.
	TimestampHeader string `json:"timestamp_header,omitempty"`

	// The header holding the event's id. When the template signs {id} it
	// keys de-duplication; otherwise it is only exposed as delivery_id.
	IDHeader string `json:"id_header,omitempty"`

	// The signed bytes: {id}, {timestamp} and {body} (exactly once) among
	// literal separators. Default: "{timestamp}.{body}" with a
	// timestamp_header, else "{body}".
	Signed string `json:"signed,omitempty"`
}

// Scheme checks the description and builds its scheme.
func (c HMACConfig) Scheme() (*Scheme, error) {
	fail := func(format string, args ...any) (*Scheme, error) {
		return nil, fmt.Errorf("provider hmac: "+format, args...)
	}
	if c.SignatureHeader == "" {
		return fail("signature_header is required")
	}
	for setting, name := range map[string]string{"signature_header": c.SignatureHeader, "timestamp_header": c.TimestampHeader, "id_header": c.IDHeader} {
		if name != "" && !httpguts.ValidHeaderFieldName(name) {
			return fail("%s %q is not a valid header name", setting, name)
		}
	}
	s := &Scheme{
		Name:             "hmac",
		SignatureHeaders: canonical(c.SignatureHeader),
		Event:            EventFields{ID: "id", Type: "type"},
	}
	switch c.Encoding {
	case "", "hex":
		s.Encoding = Hex
	case "base64":
		s.Encoding = Base64
	default:
		return fail("encoding must be hex or base64, got %q", c.Encoding)
	}
	switch c.Algorithm {
	case "", "sha256":
		s.Algorithm = SHA256
	case "sha512":
		s.Algorithm = SHA512
	case "sha1":
		s.Algorithm = SHA1
	default:
		return fail("algorithm must be sha256, sha512 or sha1, got %q", c.Algorithm)
	}
	if c.SignaturePrefix != "" {
		if strings.ContainsAny(c.SignaturePrefix, ", ") {
			return fail("signature_prefix %q may not contain a comma or a space, which separate signatures", c.SignaturePrefix)
		}
		s.Prefixes, s.PrefixRequired = []string{c.SignaturePrefix}, true
	}
	signed := c.Signed
	if signed == "" {
		signed = "{body}"
		if c.TimestampHeader != "" {
			signed = "{timestamp}.{body}"
		}
	}
	parts, err := parseTemplate(signed)
	if err != nil {
		return fail("signed %q: %v", signed, err)
	}
	s.Message = parts
	hasTS := strings.Contains(signed, "{timestamp}")
	hasID := strings.Contains(signed, "{id}")
	switch {
	case hasTS && c.TimestampHeader == "":
		return fail("signed uses {timestamp}: set timestamp_header")
	case !hasTS && c.TimestampHeader != "":
		return fail("timestamp_header is set but signed %q does not sign {timestamp}: an unsigned timestamp proves nothing", signed)
	case hasID && c.IDHeader == "":
		return fail("signed uses {id}: set id_header")
	}
	if c.TimestampHeader != "" {
		s.Timestamp, s.TimestampHeader, s.Tolerance = HeaderTimestamp, http.CanonicalHeaderKey(c.TimestampHeader), 5*time.Minute
	}
	if c.IDHeader != "" {
		if hasID {
			s.IDHeader = http.CanonicalHeaderKey(c.IDHeader)
		} else {
			s.DeliveryHeaders = canonical(c.IDHeader)
		}
	}
	if s.SignatureHeaders[0] == s.TimestampHeader || s.SignatureHeaders[0] == http.CanonicalHeaderKey(c.IDHeader) {
		return fail("signature_header %q is also the timestamp or id header", c.SignatureHeader)
	}
	prefix := c.SignaturePrefix
	s.FormatHeader = func(_ string, sigs []string) string { return join(sigs, prefix, ", ") }
	return s, nil
}
