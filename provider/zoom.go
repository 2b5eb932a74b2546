package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Zoom signs hex HMAC-SHA256 over "v0:" timestamp ":" body, in
// "x-zm-signature: v0=<hex>", and checks a new endpoint by asking for a
// token's HMAC.
var Zoom = register(&Scheme{
	Name:             "zoom",
	SignatureHeaders: canonical("X-Zm-Signature"),
	Algorithm:        SHA256,
	Encoding:         Hex,
	Prefixes:         []string{"v0="},
	PrefixRequired:   true,
	Message:          []Part{lit("v0:"), tsPart, lit(":"), bodyPart},
	Timestamp:        HeaderTimestamp,
	TimestampHeader:  "X-Zm-Request-Timestamp",
	Tolerance:        5 * time.Minute,
	Event:            EventFields{Type: "event"},
	Handshake:        &Handshake{Type: "endpoint.url_validation", Answer: zoomValidation},
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "v0=", ", ") },
})

// zoomValidation answers {"plainToken":P,"encryptedToken":hex(HMAC(secret, P))}.
func zoomValidation(body, secret []byte) ([]byte, bool) {
	var msg struct {
		Payload struct {
			PlainToken *string `json:"plainToken"`
		} `json:"payload"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Payload.PlainToken == nil {
		return nil, false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(*msg.Payload.PlainToken))
	answer, err := json.Marshal(map[string]string{
		"plainToken":     *msg.Payload.PlainToken,
		"encryptedToken": hex.EncodeToString(mac.Sum(nil)),
	})
	return answer, err == nil
}
