package provider

import (
	"encoding/json"
	"time"
)

// Slack signs hex HMAC-SHA256 over "v0:" timestamp ":" body, in
// "X-Slack-Signature: v0=<hex>", and checks a new endpoint with a
// url_verification challenge.
var Slack = register(&Scheme{
	Name:             "slack",
	SignatureHeaders: canonical("X-Slack-Signature"),
	Algorithm:        SHA256,
	Encoding:         Hex,
	Prefixes:         []string{"v0="},
	PrefixRequired:   true,
	Message:          []Part{lit("v0:"), tsPart, lit(":"), bodyPart},
	Timestamp:        HeaderTimestamp,
	TimestampHeader:  "X-Slack-Request-Timestamp",
	Tolerance:        5 * time.Minute,
	Event:            EventFields{ID: "event_id", Type: "type", TypeParent: "event"},
	Handshake:        &Handshake{Type: "url_verification", Answer: slackChallenge},
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "v0=", ", ") },
})

// slackChallenge echoes the challenge: {"challenge":C}.
func slackChallenge(body, _ []byte) ([]byte, bool) {
	var msg struct {
		Challenge *string `json:"challenge"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Challenge == nil {
		return nil, false
	}
	answer, err := json.Marshal(map[string]string{"challenge": *msg.Challenge})
	return answer, err == nil
}
