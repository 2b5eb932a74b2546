package groqwebhook

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("groq_webhook", parseCaddyfile)
	// Verification must happen before anything that answers or forwards:
	// request_header, respond, reverse_proxy, php_fastcgi and file_server
	// all come after basic_auth.
	httpcaddyfile.RegisterDirectiveOrder("groq_webhook", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	groq_webhook [<matcher>] [<secret>] {
//	    secret <value> [<label>]
//	    tolerance <duration>
//	    max_body <size>
//	    signature_header <name>
//	    timestamp_header <name>
//	    verified_header <name>
//	}
//
// The secret may be given inline, in the block, or both; `secret` may be
// repeated to accept several during a rotation. Use `{env.NAME}` or
// `{file.PATH}` rather than a literal secret, so it stays out of the config.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		h.Secrets = append(h.Secrets, Secret{Value: d.Val()})
	}
	if d.NextArg() {
		// Not ArgErr: it would echo the token, which may be part of a secret.
		return d.Err("groq_webhook takes at most one inline secret; quote a secret that contains spaces")
	}

	for d.NextBlock(0) {
		switch d.Val() {
		case "secret":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("secret takes a value and an optional label, got %d arguments", len(args))
			}
			s := Secret{Value: args[0]}
			if len(args) == 2 {
				s.Label = args[1]
			}
			h.Secrets = append(h.Secrets, s)

		case "tolerance":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("tolerance %q: %v", d.Val(), err)
			}
			if dur < time.Second {
				return d.Errf("tolerance must be positive, at least 1s, got %q", d.Val())
			}
			h.Tolerance = caddy.Duration(dur)
			if d.NextArg() {
				return d.ArgErr()
			}

		case "max_body":
			if !d.NextArg() {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(d.Val())
			if err != nil {
				return d.Errf("max_body %q: %v", d.Val(), err)
			}
			if size == 0 || size > maxMaxBody {
				return d.Errf("max_body must be between 1B and 1GiB, got %q", d.Val())
			}
			h.MaxBody = int64(size)
			if d.NextArg() {
				return d.ArgErr()
			}

		case "signature_header":
			if !d.AllArgs(&h.SignatureHeader) {
				return d.ArgErr()
			}
		case "timestamp_header":
			if !d.AllArgs(&h.TimestampHeader) {
				return d.ArgErr()
			}
		case "verified_header":
			if !d.AllArgs(&h.VerifiedHeader) {
				return d.ArgErr()
			}

		default:
			return d.Errf("unrecognized groq_webhook subdirective %q", d.Val())
		}
	}
	if len(h.Secrets) == 0 {
		return d.Err("groq_webhook needs a secret: inline or as 'secret <value>' in the block")
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
