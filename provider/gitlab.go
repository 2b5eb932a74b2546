package provider

// GitLab sends the secret token itself in X-Gitlab-Token; it signs
// nothing, so an event is keyed by its body. (GitLab's signed webhooks are
// Standard Webhooks: use the standard provider for them.)
var GitLab = register(&Scheme{
	Name:             "gitlab",
	SignatureHeaders: canonical("X-Gitlab-Token"),
	Algorithm:        Token,
	ParseList:        parseToken,
	KeyFromBody:      true,
	DeliveryHeaders:  canonical("Idempotency-Key", "X-Gitlab-Event-Uuid"),
	TypeHeader:       "X-Gitlab-Event",
	FormatHeader:     func(_ string, sigs []string) string { return join(sigs, "", "") },
})

// parseToken takes the whole header as the one candidate.
func parseToken(value string, c *Check) error { return c.add(value) }
