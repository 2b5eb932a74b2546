// Command caddy is Caddy with its standard modules and the groq_webhook
// handler, so that one `go run ./cmd/caddy` gives a working server.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/groqwebhook/caddy-groq-webhook"
)

func main() {
	caddycmd.Main()
}
