package provider

import (
	"strings"
	"time"
)

// Standard is Standard Webhooks (also OpenAI's webhooks): base64
// HMAC-SHA256 over id "." timestamp "." body, in space-separated "v1,..."
// entries; a "whsec_" secret is base64.
var Standard = register(standardLike("standard", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"))

// Svix is Standard Webhooks under Svix's header names (Clerk, Resend).
var Svix = register(standardLike("svix", "Svix-Id", "Svix-Timestamp", "Svix-Signature"))

func standardLike(name, idHeader, timestampHeader, signatureHeader string) *Scheme {
	return &Scheme{
		Name:             name,
		SignatureHeaders: canonical(signatureHeader),
		Algorithm:        SHA256,
		Encoding:         Base64,
		ParseList:        parseVersioned,
		Message:          []Part{idPart, lit("."), tsPart, lit("."), bodyPart},
		Timestamp:        HeaderTimestamp,
		TimestampHeader:  timestampHeader,
		Tolerance:        5 * time.Minute,
		IDHeader:         idHeader,
		Event:            EventFields{Type: "type"},
		DecodeWhsec:      true,
		FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "v1,", " ") },
	}
}

// join writes each signature after prefix, separated by sep.
func join(sigs []string, prefix, sep string) string {
	var b strings.Builder
	for i, s := range sigs {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(prefix)
		b.WriteString(s)
	}
	return b.String()
}
