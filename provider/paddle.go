package provider

import "time"

// Paddle (Billing) signs hex HMAC-SHA256 over ts ":" body, in
// "Paddle-Signature: ts=..;h1=..[;h1=..]".
var Paddle = register(&Scheme{
	Name:             "paddle",
	SignatureHeaders: canonical("Paddle-Signature"),
	Algorithm:        SHA256,
	Encoding:         Hex,
	ParseList:        parsePaddle,
	Message:          []Part{tsPart, lit(":"), bodyPart},
	Timestamp:        SignatureTimestamp,
	Tolerance:        5 * time.Minute,
	Event:            EventFields{ID: "event_id", Type: "event_type"},
	FormatHeader:     func(t string, sigs []string) string { return "ts=" + t + ";" + join(sigs, "h1=", ";") },
})
