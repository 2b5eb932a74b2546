package groqwebhook

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
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
//	    max_buffered <size>
//	    signature_header <name>
//	    timestamp_header <name>
//	    verified_header <name>
//	    mode enforce|shadow
//	    dedupe memory|redis|off {
//	        ttl <duration>
//	        lease <duration>
//	        key_prefix <prefix>
//	        on_store_error reject|forward
//	        max_entries <n>                # memory
//	        address <host:port>...         # redis: repeatable; several mean Cluster
//	        master_name <name>             # redis: use Sentinel at the addresses
//	        username <user>                # redis
//	        password <password>            # redis
//	        db <n>                         # redis
//	        tls                            # redis
//	        timeout <duration>             # redis
//	        pool_size <n>                  # redis
//	    }
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

		case "max_buffered":
			if !d.NextArg() {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(d.Val())
			if err != nil {
				return d.Errf("max_buffered %q: %v", d.Val(), err)
			}
			if size == 0 || size > maxMaxBuffered {
				return d.Errf("max_buffered must be between 1B and 1PiB, got %q", d.Val())
			}
			h.MaxBuffered = int64(size)
			if d.NextArg() {
				return d.ArgErr()
			}

		case "mode":
			if !d.AllArgs(&h.Mode) {
				return d.ArgErr()
			}
			if h.Mode != ModeEnforce && h.Mode != ModeShadow {
				return d.Errf("mode must be enforce or shadow, got %q", h.Mode)
			}

		case "dedupe":
			if h.Dedupe != nil {
				return d.Err("dedupe is set twice")
			}
			dedupe, err := parseDedupe(d)
			if err != nil {
				return err
			}
			h.Dedupe = dedupe

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

// parseDedupe reads a dedupe subdirective and its block. Options of one
// store given for another are errors, so a typo cannot silently do nothing.
func parseDedupe(d *caddyfile.Dispenser) (*Dedupe, error) {
	var backend string
	if !d.AllArgs(&backend) {
		return nil, d.Err("dedupe takes one of memory, redis or off")
	}
	dedupe := new(Dedupe)
	var memory *MemoryStore
	var redisStore *RedisStore
	switch backend {
	case "off":
		dedupe.Disabled = true
	case "memory":
		memory = new(MemoryStore)
	case "redis":
		redisStore = new(RedisStore)
	default:
		return nil, d.Errf("dedupe takes one of memory, redis or off, got %q", backend)
	}

	for nesting := d.Nesting(); d.NextBlock(nesting); {
		option := d.Val()
		var err error
		switch {
		case dedupe.Disabled:
			err = d.Errf("dedupe off takes no options, got %q", option)
		case option == "ttl":
			err = parseDuration(d, &dedupe.TTL)
		case option == "lease":
			err = parseDuration(d, &dedupe.Lease)
		case option == "key_prefix":
			err = oneArg(d, &dedupe.KeyPrefix)
		case option == "on_store_error":
			err = oneArg(d, &dedupe.OnStoreError)
			if err == nil && dedupe.OnStoreError != "reject" && dedupe.OnStoreError != "forward" {
				err = d.Errf("on_store_error must be reject or forward, got %q", dedupe.OnStoreError)
			}
		case option == "max_entries" && memory != nil:
			err = parseInt(d, &memory.MaxEntries, 1)
		case redisStore != nil:
			err = parseRedisOption(d, redisStore)
		default:
			err = d.Errf("unrecognized option %q for dedupe %s", option, backend)
		}
		if err != nil {
			return nil, err
		}
	}

	switch {
	case memory != nil:
		dedupe.StoreRaw = caddyconfig.JSONModuleObject(memory, "backend", "memory", nil)
	case redisStore != nil:
		if len(redisStore.Addresses) == 0 {
			return nil, d.Err("dedupe redis needs an address")
		}
		dedupe.StoreRaw = caddyconfig.JSONModuleObject(redisStore, "backend", "redis", nil)
	}
	return dedupe, nil
}

func parseRedisOption(d *caddyfile.Dispenser, s *RedisStore) error {
	switch d.Val() {
	case "address":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		s.Addresses = append(s.Addresses, args...)
		return nil
	case "master_name":
		return oneArg(d, &s.MasterName)
	case "username":
		return oneArg(d, &s.Username)
	case "password":
		if !d.NextArg() {
			return d.ArgErr()
		}
		s.Password = d.Val()
		if d.NextArg() {
			return d.Err("password takes one argument; quote a password that contains spaces")
		}
		return nil
	case "db":
		return parseInt(d, &s.DB, 0)
	case "tls":
		if d.NextArg() {
			return d.ArgErr()
		}
		s.TLS = true
		return nil
	case "timeout":
		return parseDuration(d, &s.Timeout)
	case "pool_size":
		return parseInt(d, &s.PoolSize, 1)
	}
	return d.Errf("unrecognized option %q for dedupe redis", d.Val())
}

// oneArg reads exactly one argument into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

// parseDuration reads exactly one positive duration into dst.
func parseDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var arg string
	if err := oneArg(d, &arg); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(arg)
	if err != nil {
		return d.Errf("%s %q: %v", name, arg, err)
	}
	if dur <= 0 {
		return d.Errf("%s must be positive, got %q", name, arg)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// parseInt reads exactly one integer of at least least into dst.
func parseInt(d *caddyfile.Dispenser, dst *int, least int) error {
	name := d.Val()
	var arg string
	if err := oneArg(d, &arg); err != nil {
		return err
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n < least {
		return d.Errf("%s must be an integer of at least %d, got %q", name, least, arg)
	}
	*dst = n
	return nil
}
