package provider

// Square signs base64 HMAC-SHA256 over the subscription's exact url and
// the body; nothing signed says when.
var Square = register(&Scheme{
	Name:             "square",
	SignatureHeaders: canonical("X-Square-Hmacsha256-Signature"),
	Algorithm:        SHA256,
	Encoding:         Base64,
	Message:          []Part{urlPart, bodyPart},
	NeedsURL:         true,
	Event:            EventFields{ID: "event_id", Type: "type"},
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "", ", ") },
})
