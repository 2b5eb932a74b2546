package provider

import "time"

// Discord signs timestamp and body, with no separator, with the
// application's Ed25519 key; a PING (type 1) is answered {"type":1}.
var Discord = register(&Scheme{
	Name:             "discord",
	SignatureHeaders: canonical("X-Signature-Ed25519"),
	Algorithm:        Ed25519,
	Encoding:         Hex,
	Message:          []Part{tsPart, bodyPart},
	Timestamp:        HeaderTimestamp,
	TimestampHeader:  "X-Signature-Timestamp",
	Tolerance:        5 * time.Minute,
	Event:            EventFields{ID: "id", Type: "type", Numbers: true},
	Handshake: &Handshake{Type: "1", Answer: func([]byte, []byte) ([]byte, bool) {
		return []byte(`{"type":1}`), true
	}},
	FormatHeader: func(_ string, sigs []string) string { return join(sigs, "", ", ") },
})
