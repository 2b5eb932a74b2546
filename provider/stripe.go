package provider

import "time"

// Stripe signs hex HMAC-SHA256 over t "." body, in
// "Stripe-Signature: t=..,v1=..[,v1=..]"; only v1 counts, v0 never verifies.
// A "whsec_" secret is used as it is.
var Stripe = register(&Scheme{
	Name:             "stripe",
	SignatureHeaders: canonical("Stripe-Signature"),
	Algorithm:        SHA256,
	Encoding:         Hex,
	ParseList:        parseStripe,
	Message:          []Part{tsPart, lit("."), bodyPart},
	Timestamp:        SignatureTimestamp,
	Tolerance:        5 * time.Minute,
	Event:            EventFields{ID: "id", Type: "type"},
	FormatHeader:     func(t string, sigs []string) string { return "t=" + t + "," + join(sigs, "v1=", ",") },
})
