package groqwebhook

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
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
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if handler.deliverSegment != nil {
		// The deliver block holds directives, which only the HTTP
		// Caddyfile adapter's helper can parse.
		routes, err := httpcaddyfile.ParseSegmentAsSubroute(h.WithDispenser(handler.deliverSegment))
		if err != nil {
			return nil, err
		}
		handler.DeliverRaw = caddyconfig.JSONModuleObject(routes, "handler", "subroute", nil)
		handler.deliverSegment = nil
	}
	return handler, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	groq_webhook [<matcher>] [<secret>] {
//	    provider <name>                    # groq (default), standard, svix, stripe, github, slack, shopify,
//	                                       # paddle, linear, zoom, discord, square, twilio, gitlab
//	    provider hmac {                    # a scheme described here
//	        signature_header <name>
//	        signature_prefix <prefix>
//	        encoding hex|base64
//	        algorithm sha256|sha512|sha1
//	        timestamp_header <name>
//	        id_header <name>
//	        tolerance <duration>
//	        signed <template>              # {id} {timestamp} {body} and literals, e.g. "{timestamp}.{body}"
//	    }
//	    secret <value> [<label>]
//	    public_key <hex>                   # discord, instead of secret
//	    url <url>                          # square, twilio: the exact url the sender calls
//	    sign_upstream <secret>             # sign forwarded requests as Standard Webhooks
//	    tolerance <duration>
//	    max_body <size>
//	    max_buffered <size>
//	    signature_header <name>            # groq
//	    timestamp_header <name>            # groq
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
//	    queue [file|redis] {               # store-and-forward; needs deliver
//	        name <name>
//	        retry <duration>...
//	        attempt_timeout <duration>
//	        concurrency <n>
//	        max_events <n>
//	        keep_dead <duration>
//	        path <dir>                     # file
//	        address <host:port>...         # redis: and every connection option of dedupe redis
//	        key_prefix <prefix>            # redis
//	        takeover_after <duration>      # redis
//	        wait_replicas <n>              # redis
//	    }
//	    deliver {                          # handler directives run for each attempt
//	        reverse_proxy <upstreams...>
//	    }
//	}
//
// The secret may be given inline, in the block, or both; `secret` may be
// repeated to accept several during a rotation. Provider discord takes
// `public_key` instead. Use `{env.NAME}` or
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
			if err := parseTolerance(d, &h.Tolerance); err != nil {
				return err
			}

		case "provider":
			if h.Provider != "" {
				return d.Err("provider is set twice")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.Provider = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if h.Provider == "hmac" {
				if err := parseHMAC(d, h); err != nil {
					return err
				}
			} else if d.NextBlock(d.Nesting()) {
				return d.Errf("provider %s takes no block: only provider hmac is described in one", h.Provider)
			}

		case "public_key":
			if !d.AllArgs(&h.PublicKey) {
				return d.ArgErr()
			}
		case "url":
			if !d.AllArgs(&h.URL) {
				return d.ArgErr()
			}
		case "sign_upstream":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.SignUpstream = d.Val()
			if d.NextArg() {
				return d.Err("sign_upstream takes one secret; quote a secret that contains spaces")
			}

		case "max_body":
			if err := parseSize(d, &h.MaxBody, maxMaxBody, "1GiB"); err != nil {
				return err
			}

		case "max_buffered":
			if err := parseSize(d, &h.MaxBuffered, maxMaxBuffered, "1PiB"); err != nil {
				return err
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

		case "queue":
			if h.QueueRaw != nil {
				return d.Err("queue is set twice")
			}
			raw, err := parseQueue(d)
			if err != nil {
				return err
			}
			h.QueueRaw = raw

		case "deliver":
			if h.deliverSegment != nil {
				return d.Err("deliver is set twice")
			}
			if d.NextArg() {
				return d.Err("deliver takes no arguments, only a block of handler directives")
			}
			h.deliverSegment = d.NewFromNextSegment()

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
	if len(h.Secrets) == 0 && h.PublicKey == "" {
		return d.Err("groq_webhook needs a secret: inline or as 'secret <value>' in the block (provider discord: public_key)")
	}
	if (h.QueueRaw == nil) != (h.deliverSegment == nil) {
		if h.QueueRaw == nil {
			return d.Err("deliver needs queue: deliver routes run only for queued events")
		}
		return d.Err("queue needs a deliver block with the handlers that deliver each event, such as reverse_proxy")
	}
	return nil
}

// parseTolerance reads a tolerance subdirective's duration.
func parseTolerance(d *caddyfile.Dispenser, tolerance *caddy.Duration) error {
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
	*tolerance = caddy.Duration(dur)
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parseHMAC reads the block of provider hmac.
func parseHMAC(d *caddyfile.Dispenser, h *Handler) error {
	c := new(provider.HMACConfig)
	fields := map[string]*string{
		"signature_header": &c.SignatureHeader,
		"signature_prefix": &c.SignaturePrefix,
		"encoding":         &c.Encoding,
		"algorithm":        &c.Algorithm,
		"timestamp_header": &c.TimestampHeader,
		"id_header":        &c.IDHeader,
		"signed":           &c.Signed,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name == "tolerance" {
			if err := parseTolerance(d, &h.Tolerance); err != nil {
				return err
			}
			continue
		}
		field, ok := fields[name]
		if !ok {
			return d.Errf("unrecognized provider hmac subdirective %q", name)
		}
		if *field != "" {
			return d.Errf("provider hmac: %s is set twice", name)
		}
		if !d.AllArgs(field) {
			return d.ArgErr()
		}
	}
	if c.SignatureHeader == "" {
		return d.Err("provider hmac needs a block with at least signature_header")
	}
	h.HMAC = c
	return nil
}

// parseQueue reads a queue subdirective and its block. Options of one
// store given for another are errors.
func parseQueue(d *caddyfile.Dispenser) (json.RawMessage, error) {
	backend := "file"
	if d.NextArg() {
		backend = d.Val()
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	var file *FileQueue
	var redisQueue *RedisQueue
	var q *QueueOptions
	switch backend {
	case "file":
		file = new(FileQueue)
		q = &file.QueueOptions
	case "redis":
		redisQueue = new(RedisQueue)
		q = &redisQueue.QueueOptions
	default:
		return nil, d.Errf("queue takes file (the default) or redis, got %q", backend)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch option := d.Val(); {
		case option == "name":
			err = oneArg(d, &q.Name)
		case option == "retry":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Err("retry takes one or more durations: the waits before attempts 2, 3, ...")
			}
			q.Retry = nil
			for _, arg := range args {
				dur, perr := caddy.ParseDuration(arg)
				if perr != nil {
					return nil, d.Errf("retry %q: %v", arg, perr)
				}
				if dur <= 0 {
					return nil, d.Errf("retry waits must be positive, got %q", arg)
				}
				q.Retry = append(q.Retry, caddy.Duration(dur))
			}
		case option == "attempt_timeout":
			err = parseDuration(d, &q.AttemptTimeout)
		case option == "concurrency":
			err = parseInt(d, &q.Concurrency, 1)
		case option == "max_events":
			err = parseInt(d, &q.MaxEvents, 1)
		case option == "keep_dead":
			err = parseDuration(d, &q.KeepDead)
		case option == "path" && file != nil:
			err = oneArg(d, &file.Path)
		case option == "key_prefix" && redisQueue != nil:
			err = oneArg(d, &redisQueue.KeyPrefix)
		case option == "takeover_after" && redisQueue != nil:
			err = parseDuration(d, &redisQueue.TakeoverAfter)
		case option == "wait_replicas" && redisQueue != nil:
			err = parseInt(d, &redisQueue.WaitReplicas, 0)
		case redisQueue != nil:
			err = parseRedisOption(d, &redisQueue.RedisConnection, "queue redis")
		default:
			err = d.Errf("unrecognized option %q for queue %s", option, backend)
		}
		if err != nil {
			return nil, err
		}
	}
	if redisQueue != nil {
		if len(redisQueue.Addresses) == 0 {
			return nil, d.Err("queue redis needs an address")
		}
		return caddyconfig.JSONModuleObject(redisQueue, "backend", backend, nil), nil
	}
	return caddyconfig.JSONModuleObject(file, "backend", backend, nil), nil
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
			err = parseRedisOption(d, &redisStore.RedisConnection, "dedupe redis")
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

// parseRedisOption reads one connection option of a Redis store; what
// names the store in errors.
func parseRedisOption(d *caddyfile.Dispenser, s *RedisConnection, what string) error {
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
	return d.Errf("unrecognized option %q for %s", d.Val(), what)
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

// parseSize reads exactly one size of 1 byte to most (written shown in
// errors) into dst.
func parseSize(d *caddyfile.Dispenser, dst *int64, most uint64, shown string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	size, err := humanize.ParseBytes(d.Val())
	if err != nil {
		return d.Errf("%s %q: %v", name, d.Val(), err)
	}
	if size == 0 || size > most {
		return d.Errf("%s must be between 1B and %s, got %q", name, shown, d.Val())
	}
	*dst = int64(size)
	if d.NextArg() {
		return d.ArgErr()
	}
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
