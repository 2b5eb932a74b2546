package provider

import (
	"fmt"
	"strings"
)

// The forms a signature header takes. Each parser stops at the first
// malformed field or past MaxCandidates signatures, so its work is bounded
// by the header's length and the HMACs compared by MaxCandidates.

// parseSimpleList reads signatures separated by commas and/or spaces, each
// with one of the scheme's prefixes (required or optional).
func parseSimpleList(value string, c *Check) error {
	s := c.v.scheme
	for value != "" {
		var field string
		field, value = cut(value, ", ")
		if field == "" {
			continue
		}
		prefixed := false
		for _, prefix := range s.Prefixes {
			if strings.HasPrefix(field, prefix) {
				field, prefixed = field[len(prefix):], true
				break
			}
		}
		if s.PrefixRequired && !prefixed {
			return ErrMalformedSignature
		}
		if err := c.add(field); err != nil {
			return err
		}
	}
	if c.n == 0 {
		return ErrMalformedSignature
	}
	return nil
}

// cut splits value at its first byte that is in seps.
func cut(value, seps string) (field, rest string) {
	if i := strings.IndexAny(value, seps); i >= 0 {
		return value[:i], value[i+1:]
	}
	return value, ""
}

// parsePairs reads "key=value" pairs separated by sep: exactly one
// timestamp under tsKey, and signatures under sigKey; other keys are
// ignored (Stripe's v0 test signature, new schemes).
func parsePairs(value string, c *Check, sep, tsKey, sigKey string) error {
	timestamps := 0
	for value != "" {
		var field string
		field, value = cut(value, sep)
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			if strings.TrimSpace(field) == "" {
				continue
			}
			return ErrMalformedSignature
		}
		key = strings.TrimSpace(key)
		switch key {
		case tsKey:
			timestamps++
			c.signedTimestamp = val
		case sigKey:
			if err := c.add(val); err != nil {
				return err
			}
		}
	}
	switch {
	case timestamps == 0:
		return fmt.Errorf("%w: no %s= timestamp", ErrMalformedSignature, tsKey)
	case timestamps > 1:
		return fmt.Errorf("%w: %d %s= timestamps", ErrMalformedSignature, timestamps, tsKey)
	case c.n == 0:
		return fmt.Errorf("%w: no %s= signature", ErrMalformedSignature, sigKey)
	}
	return nil
}

// parseStripe reads "t=<ts>,v1=<hex>[,v1=<hex>...]"; only v1 counts.
func parseStripe(value string, c *Check) error {
	return parsePairs(value, c, ",", "t", "v1")
}

// parsePaddle reads "ts=<ts>;h1=<hex>[;h1=<hex>...]".
func parsePaddle(value string, c *Check) error {
	return parsePairs(value, c, ";", "ts", "h1")
}

// parseVersioned reads Standard Webhooks' space-separated "v1,<base64>"
// entries; entries of other versions are ignored, but one must be v1.
func parseVersioned(value string, c *Check) error {
	for value != "" {
		var field string
		field, value = cut(value, " ")
		if field == "" {
			continue
		}
		version, sig, ok := strings.Cut(field, ",")
		if !ok {
			return ErrMalformedSignature
		}
		if version != "v1" {
			continue
		}
		if err := c.add(sig); err != nil {
			return err
		}
	}
	if c.n == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrMalformedSignature)
	}
	return nil
}
