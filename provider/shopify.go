package provider

// Shopify signs base64 HMAC-SHA256 of the body; nothing signed says when,
// and the event id travels unsigned.
var Shopify = register(&Scheme{
	Name:             "shopify",
	SignatureHeaders: canonical("X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256"),
	Algorithm:        SHA256,
	Encoding:         Base64,
	Message:          []Part{bodyPart},
	DeliveryHeaders:  canonical("X-Shopify-Event-Id", "Shopify-Event-Id", "X-Shopify-Webhook-Id"),
	TypeHeader:       "X-Shopify-Topic",
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "", ", ") },
})
