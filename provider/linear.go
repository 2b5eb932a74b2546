package provider

import "time"

// Linear signs hex HMAC-SHA256 of the body, which holds the time in
// milliseconds as webhookTimestamp; its delivery id travels unsigned.
var Linear = register(&Scheme{
	Name:             "linear",
	SignatureHeaders: canonical("Linear-Signature"),
	Algorithm:        SHA256,
	Encoding:         Hex,
	Message:          []Part{bodyPart},
	Timestamp:        BodyMillisTimestamp,
	BodyTimestamp:    "webhookTimestamp",
	Tolerance:        60 * time.Second,
	DeliveryHeaders:  canonical("Linear-Delivery"),
	Event:            EventFields{Type: "type"},
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "", ", ") },
})
