package provider

// GitHub signs hex HMAC-SHA256 of the body in "X-Hub-Signature-256:
// sha256=<hex>"; the SHA-1 X-Hub-Signature is not read. Nothing signed says
// when, and the delivery id travels unsigned.
var GitHub = register(&Scheme{
	Name:             "github",
	SignatureHeaders: canonical("X-Hub-Signature-256"),
	Algorithm:        SHA256,
	Encoding:         Hex,
	Prefixes:         []string{"sha256="},
	PrefixRequired:   true,
	Message:          []Part{bodyPart},
	DeliveryHeaders:  canonical("X-GitHub-Delivery"),
	TypeHeader:       "X-Github-Event",
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "sha256=", ", ") },
})
