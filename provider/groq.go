package provider

import "time"

// Groq signs hex HMAC-SHA256 over the timestamp, a dot and the body; the
// signature may carry "sha256=" or "v1=", and a header may list several.
var Groq = register(&Scheme{
	Name:             "groq",
	SignatureHeaders: canonical("X-Groq-Signature"),
	Algorithm:        SHA256,
	Encoding:         Hex,
	Prefixes:         []string{"sha256=", "v1="},
	Message:          []Part{tsPart, lit("."), bodyPart},
	Timestamp:        HeaderTimestamp,
	TimestampHeader:  "X-Groq-Timestamp",
	Tolerance:        5 * time.Minute,
	Event:            EventFields{ID: "id", Type: "type"},
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "", ", ") },
})
