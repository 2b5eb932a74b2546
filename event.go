package groqwebhook

import "github.com/groqwebhook/caddy-groq-webhook/provider"

// event holds the fields of a webhook event that the handler uses.
type event struct {
	ID   string
	Type string
}

// parseEvent reads the top-level "id" and "type" string members of a JSON
// object body, as the groq provider defines them. The scan (in the provider
// package, which every provider's event fields go through) does not decode,
// stops as soon as it has seen both, and matches keys exactly, as backends
// match them (encoding/json alone would also take "ID"). A member that is
// not a string, or a body that is not a JSON object, yields an empty field,
// and the event is still forwarded. Both strings share one allocation.
func parseEvent(body []byte) event {
	id, typ := provider.ParseEvent(body, provider.Groq.Event)
	return event{ID: id, Type: typ}
}
