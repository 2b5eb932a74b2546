package groqwebhook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
)

// dcfDedupe is the part of a Dedupe that configuration sets, with the store
// as JSON ("" when StoreRaw is nil), so that tests compare configured values
// and nothing provisioned.
type dcfDedupe struct {
	Disabled     bool
	TTL          caddy.Duration
	Lease        caddy.Duration
	KeyPrefix    string
	OnStoreError string
	Store        string
}

// dcfSettings is the mode and de-duplication a Caddyfile configures.
// Dedupe is nil when no dedupe subdirective was given.
type dcfSettings struct {
	Mode   string
	Dedupe *dcfDedupe
}

func (s dcfSettings) String() string {
	if s.Dedupe == nil {
		return fmt.Sprintf("{Mode:%q Dedupe:nil}", s.Mode)
	}
	return fmt.Sprintf("{Mode:%q Dedupe:%+v}", s.Mode, *s.Dedupe)
}

func dcfSettingsOf(h *Handler) dcfSettings {
	s := dcfSettings{Mode: h.Mode}
	if h.Dedupe != nil {
		s.Dedupe = &dcfDedupe{
			Disabled:     h.Dedupe.Disabled,
			TTL:          h.Dedupe.TTL,
			Lease:        h.Dedupe.Lease,
			KeyPrefix:    h.Dedupe.KeyPrefix,
			OnStoreError: h.Dedupe.OnStoreError,
			Store:        string(h.Dedupe.StoreRaw),
		}
	}
	return s
}

// dcfSameJSON reports whether a and b are the same JSON value, whatever the
// order of keys; two empty strings are the same (no JSON at all).
func dcfSameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	if a == "" || b == "" {
		return a == b
	}
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// dcfSameSettings compares settings, the store by JSON value.
func dcfSameSettings(t *testing.T, got, want dcfSettings) bool {
	t.Helper()
	if got.Mode != want.Mode || (got.Dedupe == nil) != (want.Dedupe == nil) {
		return false
	}
	if got.Dedupe == nil {
		return true
	}
	g, w := *got.Dedupe, *want.Dedupe
	if !dcfSameJSON(t, g.Store, w.Store) {
		return false
	}
	g.Store, w.Store = "", ""
	return g == w
}

func TestUnmarshalDedupeAndMode(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    dcfSettings
		wantErr []string // substrings that must all be in the error
		notErr  []string // substrings that must not be in it, such as a password
	}{
		{
			name:  "no dedupe",
			input: `groq_webhook {env.S}`,
			want:  dcfSettings{},
		},
		{
			name: "no dedupe in a block",
			input: `groq_webhook {env.S} {
				tolerance 30s
			}`,
			want: dcfSettings{},
		},
		{
			name: "dedupe off",
			input: `groq_webhook {env.S} {
				dedupe off
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{Disabled: true}},
		},
		{
			name: "dedupe memory without a block",
			input: `groq_webhook {env.S} {
				dedupe memory
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{Store: `{"backend":"memory"}`}},
		},
		{
			name: "dedupe memory with an empty block",
			input: `groq_webhook {env.S} {
				dedupe memory {
				}
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{Store: `{"backend":"memory"}`}},
		},
		{
			name: "dedupe memory followed by other subdirectives",
			input: `groq_webhook {env.S} {
				dedupe memory
				mode shadow
				tolerance 1m
			}`,
			want: dcfSettings{Mode: "shadow", Dedupe: &dcfDedupe{Store: `{"backend":"memory"}`}},
		},
		{
			name: "dedupe memory with every option",
			input: `groq_webhook {env.S} {
				dedupe memory {
					ttl 72h
					lease 45s
					max_entries 500
					key_prefix hooks:
					on_store_error forward
				}
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{
				TTL:          caddy.Duration(72 * time.Hour),
				Lease:        caddy.Duration(45 * time.Second),
				KeyPrefix:    "hooks:",
				OnStoreError: "forward",
				Store:        `{"backend":"memory","max_entries":500}`,
			}},
		},
		{
			name: "ttl in days, on_store_error reject",
			input: `groq_webhook {env.S} {
				dedupe memory {
					ttl 7d
					on_store_error reject
				}
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{
				TTL:          caddy.Duration(7 * 24 * time.Hour),
				OnStoreError: "reject",
				Store:        `{"backend":"memory"}`,
			}},
		},
		{
			name: "dedupe redis with every option",
			input: `groq_webhook {env.S} {
				mode enforce
				dedupe redis {
					address 127.0.0.1:6379
					address 127.0.0.1:6380
					username u
					password {env.REDIS_PASSWORD}
					db 2
					tls
					master_name m
					timeout 2s
					pool_size 8
					ttl 24h
					lease 10s
					key_prefix app:
					on_store_error forward
				}
			}`,
			want: dcfSettings{Mode: "enforce", Dedupe: &dcfDedupe{
				TTL:          caddy.Duration(24 * time.Hour),
				Lease:        caddy.Duration(10 * time.Second),
				KeyPrefix:    "app:",
				OnStoreError: "forward",
				Store: `{"backend":"redis","addresses":["127.0.0.1:6379","127.0.0.1:6380"],` +
					`"username":"u","password":"{env.REDIS_PASSWORD}","db":2,"tls":true,` +
					`"master_name":"m","timeout":2000000000,"pool_size":8}`,
			}},
		},
		{
			name: "dedupe redis with one address",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address redis.internal:6379
				}
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{
				Store: `{"backend":"redis","addresses":["redis.internal:6379"]}`,
			}},
		},
		{
			name: "address with several args and repeated, in order",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 10.0.0.1:7000 10.0.0.2:7000
					address 10.0.0.3:7000
				}
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{
				Store: `{"backend":"redis","addresses":["10.0.0.1:7000","10.0.0.2:7000","10.0.0.3:7000"]}`,
			}},
		},
		{
			name: "db 0 is fine",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					db 0
				}
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{
				Store: `{"backend":"redis","addresses":["127.0.0.1:6379"]}`,
			}},
		},
		{
			name: "quoted password with spaces",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					password "correct horse battery"
				}
			}`,
			want: dcfSettings{Dedupe: &dcfDedupe{
				Store: `{"backend":"redis","addresses":["127.0.0.1:6379"],"password":"correct horse battery"}`,
			}},
		},
		{
			name: "mode shadow",
			input: `groq_webhook {env.S} {
				mode shadow
			}`,
			want: dcfSettings{Mode: "shadow"},
		},
		{
			name: "mode enforce",
			input: `groq_webhook {env.S} {
				mode enforce
			}`,
			want: dcfSettings{Mode: "enforce"},
		},

		// Errors.
		{
			name: "dedupe with no arg",
			input: `groq_webhook {env.S} {
				dedupe
			}`,
			wantErr: []string{"dedupe takes one of memory, redis or off", "Testfile:2"},
		},
		{
			name: "dedupe with no arg but a block",
			input: `groq_webhook {env.S} {
				dedupe {
					ttl 1h
				}
			}`,
			wantErr: []string{"dedupe takes one of memory, redis or off", "Testfile:2"},
		},
		{
			name: "dedupe unknown backend",
			input: `groq_webhook {env.S} {
				dedupe etcd
			}`,
			wantErr: []string{"dedupe takes one of memory, redis or off", `got "etcd"`, "Testfile:2"},
		},
		{
			name: "dedupe with two args",
			input: `groq_webhook {env.S} {
				dedupe memory redis
			}`,
			wantErr: []string{"dedupe takes one of memory, redis or off", "Testfile:2"},
		},
		{
			name: "dedupe twice",
			input: `groq_webhook {env.S} {
				dedupe memory
				dedupe off
			}`,
			wantErr: []string{"dedupe is set twice", "Testfile:3"},
		},
		{
			name: "dedupe redis without an address",
			input: `groq_webhook {env.S} {
				dedupe redis
			}`,
			wantErr: []string{"dedupe redis needs an address", "Testfile:2"},
		},
		{
			name: "dedupe redis block without an address",
			input: `groq_webhook {env.S} {
				dedupe redis {
					db 1
				}
			}`,
			wantErr: []string{"dedupe redis needs an address", "Testfile:4"},
		},
		{
			name: "address with no arg",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address
				}
			}`,
			wantErr: []string{"wrong argument count", "address", "Testfile:3"},
		},
		{
			name: "max_entries under redis",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					max_entries 10
				}
			}`,
			wantErr: []string{`unrecognized option "max_entries" for dedupe redis`, "Testfile:4"},
		},
		{
			name: "address under memory",
			input: `groq_webhook {env.S} {
				dedupe memory {
					address 127.0.0.1:6379
				}
			}`,
			wantErr: []string{`unrecognized option "address" for dedupe memory`, "Testfile:3"},
		},
		{
			name: "max_entries under off",
			input: `groq_webhook {env.S} {
				dedupe off {
					max_entries 10
				}
			}`,
			wantErr: []string{`dedupe off takes no options, got "max_entries"`, "Testfile:3"},
		},
		{
			name: "dedupe off with a common option",
			input: `groq_webhook {env.S} {
				dedupe off {
					ttl 1h
				}
			}`,
			wantErr: []string{`dedupe off takes no options, got "ttl"`, "Testfile:3"},
		},
		{
			name: "unknown option under memory",
			input: `groq_webhook {env.S} {
				dedupe memory {
					ttl 1h
					tll 1h
				}
			}`,
			wantErr: []string{`unrecognized option "tll" for dedupe memory`, "Testfile:4"},
		},
		{
			name: "unknown option under redis",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					sentinel m
				}
			}`,
			wantErr: []string{`unrecognized option "sentinel" for dedupe redis`, "Testfile:4"},
		},
		{
			name: "ttl 0",
			input: `groq_webhook {env.S} {
				dedupe memory {
					ttl 0
				}
			}`,
			wantErr: []string{"ttl must be positive", `"0"`, "Testfile:3"},
		},
		{
			name: "ttl -1s",
			input: `groq_webhook {env.S} {
				dedupe memory {
					ttl -1s
				}
			}`,
			wantErr: []string{"ttl must be positive", `"-1s"`, "Testfile:3"},
		},
		{
			name: "ttl junk",
			input: `groq_webhook {env.S} {
				dedupe memory {
					ttl junk
				}
			}`,
			wantErr: []string{`ttl "junk"`, "Testfile:3"},
		},
		{
			name: "ttl two args",
			input: `groq_webhook {env.S} {
				dedupe memory {
					ttl 1h 2h
				}
			}`,
			wantErr: []string{"wrong argument count", "Testfile:3"},
		},
		{
			name: "lease missing arg",
			input: `groq_webhook {env.S} {
				dedupe memory {
					lease
				}
			}`,
			wantErr: []string{"wrong argument count", "lease", "Testfile:3"},
		},
		{
			name: "lease 0s",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					lease 0s
				}
			}`,
			wantErr: []string{"lease must be positive", "Testfile:4"},
		},
		{
			name: "timeout junk",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					timeout soon
				}
			}`,
			wantErr: []string{`timeout "soon"`, "Testfile:4"},
		},
		{
			name: "timeout negative",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					timeout -1s
				}
			}`,
			wantErr: []string{"timeout must be positive", "Testfile:4"},
		},
		{
			name: "max_entries 0",
			input: `groq_webhook {env.S} {
				dedupe memory {
					max_entries 0
				}
			}`,
			wantErr: []string{"max_entries must be an integer of at least 1", `"0"`, "Testfile:3"},
		},
		{
			name: "max_entries abc",
			input: `groq_webhook {env.S} {
				dedupe memory {
					max_entries abc
				}
			}`,
			wantErr: []string{"max_entries must be an integer of at least 1", `"abc"`, "Testfile:3"},
		},
		{
			name: "max_entries missing arg",
			input: `groq_webhook {env.S} {
				dedupe memory {
					max_entries
				}
			}`,
			wantErr: []string{"wrong argument count", "Testfile:3"},
		},
		{
			name: "db -1",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					db -1
				}
			}`,
			wantErr: []string{"db must be an integer of at least 0", `"-1"`, "Testfile:4"},
		},
		{
			name: "db x",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					db x
				}
			}`,
			wantErr: []string{"db must be an integer of at least 0", `"x"`, "Testfile:4"},
		},
		{
			name: "pool_size 0",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					pool_size 0
				}
			}`,
			wantErr: []string{"pool_size must be an integer of at least 1", `"0"`, "Testfile:4"},
		},
		{
			name: "tls with an argument",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					tls yes
				}
			}`,
			wantErr: []string{"wrong argument count", "Testfile:4"},
		},
		{
			name: "username with two args",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					username a b
				}
			}`,
			wantErr: []string{"wrong argument count", "Testfile:4"},
		},
		{
			name: "on_store_error maybe",
			input: `groq_webhook {env.S} {
				dedupe memory {
					on_store_error maybe
				}
			}`,
			wantErr: []string{"on_store_error must be reject or forward", `"maybe"`, "Testfile:3"},
		},
		{
			name: "on_store_error missing arg",
			input: `groq_webhook {env.S} {
				dedupe memory {
					on_store_error
				}
			}`,
			wantErr: []string{"wrong argument count", "Testfile:3"},
		},
		{
			name: "key_prefix two args",
			input: `groq_webhook {env.S} {
				dedupe memory {
					key_prefix a b
				}
			}`,
			wantErr: []string{"wrong argument count", "Testfile:3"},
		},
		{
			name: "mode junk",
			input: `groq_webhook {env.S} {
				mode junk
			}`,
			wantErr: []string{"mode must be enforce or shadow", `"junk"`, "Testfile:2"},
		},
		{
			name: "mode with no arg",
			input: `groq_webhook {env.S} {
				mode
			}`,
			wantErr: []string{"wrong argument count", "mode", "Testfile:2"},
		},
		{
			name: "mode with two args",
			input: `groq_webhook {env.S} {
				mode enforce shadow
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "unquoted password with a space is not echoed",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					password hunter2-first second-half-of-it
				}
			}`,
			wantErr: []string{"password takes one argument", "quote a password that contains spaces", "Testfile:4"},
			notErr:  []string{"hunter2", "second-half"},
		},
		{
			name: "unquoted password with several spaces is not echoed",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					password pw-one pw-two pw-three
				}
			}`,
			wantErr: []string{"password takes one argument"},
			notErr:  []string{"pw-one", "pw-two", "pw-three"},
		},
		{
			name: "password with no arg",
			input: `groq_webhook {env.S} {
				dedupe redis {
					address 127.0.0.1:6379
					password
				}
			}`,
			wantErr: []string{"wrong argument count", "Testfile:4"},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser(tc.input)
			h := new(Handler)
			err := h.UnmarshalCaddyfile(d)
			if checkError(t, err, tc.wantErr, tc.notErr) {
				return
			}
			if got := dcfSettingsOf(h); !dcfSameSettings(t, got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// dcfProvisionIn provisions and validates h in ctx as Caddy would, and turns
// a panic into an error so one bad case does not take down the test binary.
func dcfProvisionIn(ctx caddy.Context, h *Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("provision panicked: %v", r)
		}
	}()
	if err := h.Provision(ctx); err != nil {
		return err
	}
	return h.Validate()
}

func TestProvisionDedupe(t *testing.T) {
	const (
		secret     = "literal-secret-0123456789abcdef"
		redisPass  = "redis-pass-from-env-0123456789"
		redisLocal = `"addresses":["127.0.0.1:6379"]`
	)
	t.Setenv("GROQ_DCF_REDIS_PASSWORD", redisPass)
	t.Setenv("NOPE", "")
	os.Unsetenv("NOPE") // t.Setenv restores it afterwards

	withDedupe := func(d *Dedupe) Handler {
		return Handler{Secrets: []Secret{{Value: secret}}, Dedupe: d}
	}
	redisStoreRaw := func(fields string) json.RawMessage {
		return json.RawMessage(`{"backend":"redis",` + fields + `}`)
	}
	memoryStoreOf := func(t *testing.T, h *Handler) *MemoryStore {
		t.Helper()
		s, ok := h.Dedupe.store.(*MemoryStore)
		if !ok {
			t.Fatalf("store is %T, want *MemoryStore", h.Dedupe.store)
		}
		return s
	}
	redisStoreOf := func(t *testing.T, h *Handler) *RedisStore {
		t.Helper()
		s, ok := h.Dedupe.store.(*RedisStore)
		if !ok {
			t.Fatalf("store is %T, want *RedisStore", h.Dedupe.store)
		}
		if s.client == nil {
			t.Fatal("redis client not built")
		}
		return s
	}
	wantDefaults := func(t *testing.T, d *Dedupe) {
		t.Helper()
		if d.TTL != caddy.Duration(168*time.Hour) || d.Lease != caddy.Duration(30*time.Second) ||
			d.KeyPrefix != "groq_webhook:" || d.OnStoreError != "reject" {
			t.Errorf("defaults: ttl %s, lease %s, key_prefix %q, on_store_error %q; want 168h, 30s, %q, reject",
				time.Duration(d.TTL), time.Duration(d.Lease), d.KeyPrefix, d.OnStoreError, "groq_webhook:")
		}
	}

	tests := []struct {
		name    string
		handler Handler
		check   func(t *testing.T, h *Handler)
		wantErr []string
		notErr  []string
	}{
		{
			name:    "default is the memory store with defaults",
			handler: Handler{Secrets: []Secret{{Value: secret}}},
			check: func(t *testing.T, h *Handler) {
				if h.Dedupe == nil {
					t.Fatal("Dedupe not set by Provision")
				}
				if h.Mode != ModeEnforce {
					t.Errorf("mode %q, want enforce", h.Mode)
				}
				wantDefaults(t, h.Dedupe)
				if h.Dedupe.Disabled {
					t.Error("dedupe disabled by default")
				}
				if s := memoryStoreOf(t, h); s.MaxEntries != 100_000 || s.table == nil {
					t.Errorf("memory store: max_entries %d, table %v; want 100000 and a table", s.MaxEntries, s.table)
				}
			},
		},
		{
			name:    "empty Dedupe is the same as none",
			handler: withDedupe(&Dedupe{}),
			check: func(t *testing.T, h *Handler) {
				wantDefaults(t, h.Dedupe)
				memoryStoreOf(t, h)
			},
		},
		{
			name: "memory store with configured values kept",
			handler: withDedupe(&Dedupe{
				StoreRaw:     json.RawMessage(`{"backend":"memory","max_entries":500}`),
				TTL:          caddy.Duration(time.Hour),
				Lease:        caddy.Duration(5 * time.Second),
				KeyPrefix:    "app:",
				OnStoreError: "forward",
			}),
			check: func(t *testing.T, h *Handler) {
				d := h.Dedupe
				if d.TTL != caddy.Duration(time.Hour) || d.Lease != caddy.Duration(5*time.Second) ||
					d.KeyPrefix != "app:" || d.OnStoreError != "forward" {
					t.Errorf("configured values changed: %+v", *d)
				}
				if s := memoryStoreOf(t, h); s.MaxEntries != 500 {
					t.Errorf("max_entries %d, want 500", s.MaxEntries)
				}
			},
		},
		{
			name:    "disabled has no store",
			handler: withDedupe(&Dedupe{Disabled: true}),
			check: func(t *testing.T, h *Handler) {
				if h.Dedupe.store != nil {
					t.Errorf("store %T set although dedupe is disabled", h.Dedupe.store)
				}
			},
		},
		{
			name:    "disabled ignores a store",
			handler: withDedupe(&Dedupe{Disabled: true, StoreRaw: redisStoreRaw(redisLocal)}),
			check: func(t *testing.T, h *Handler) {
				if h.Dedupe.store != nil {
					t.Errorf("store %T set although dedupe is disabled", h.Dedupe.store)
				}
			},
		},
		{
			name: "shadow mode holds nothing back, so it loads no store",
			handler: Handler{
				Secrets: []Secret{{Value: secret}},
				Mode:    ModeShadow,
			},
			check: func(t *testing.T, h *Handler) {
				if h.Mode != ModeShadow {
					t.Errorf("mode %q, want shadow", h.Mode)
				}
				if h.Dedupe.store != nil {
					t.Errorf("store %T loaded in shadow mode", h.Dedupe.store)
				}
			},
		},
		{
			name: "redis with an env password resolves without connecting",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(
				redisLocal + `,"password":"{env.GROQ_DCF_REDIS_PASSWORD}"`)}),
			check: func(t *testing.T, h *Handler) {
				s := redisStoreOf(t, h)
				if s.Password != "{env.GROQ_DCF_REDIS_PASSWORD}" {
					t.Errorf("configured password changed to %q", s.Password)
				}
				if s.Timeout != caddy.Duration(time.Second) || s.PoolSize != 64 {
					t.Errorf("defaults: timeout %s, pool_size %d; want 1s, 64", time.Duration(s.Timeout), s.PoolSize)
				}
				c, ok := s.client.(*redis.Client)
				if !ok {
					t.Fatalf("client is %T, want *redis.Client for one address", s.client)
				}
				if c.Options().Password != redisPass {
					t.Error("password placeholder not resolved into the client")
				}
				wantDefaults(t, h.Dedupe)
			},
		},
		{
			name: "redis with every option",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(
				`"addresses":["127.0.0.1:6379"],"username":"u","password":"literal-pw","db":3,` +
					`"tls":true,"timeout":2000000000,"pool_size":8`)}),
			check: func(t *testing.T, h *Handler) {
				s := redisStoreOf(t, h)
				c, ok := s.client.(*redis.Client)
				if !ok {
					t.Fatalf("client is %T, want *redis.Client", s.client)
				}
				o := c.Options()
				if o.Username != "u" || o.Password != "literal-pw" || o.DB != 3 || o.TLSConfig == nil ||
					o.PoolSize != 8 || o.ReadTimeout != 2*time.Second || o.DialTimeout != 2*time.Second {
					t.Errorf("client options: user %q db %d tls %v pool %d read %s dial %s",
						o.Username, o.DB, o.TLSConfig != nil, o.PoolSize, o.ReadTimeout, o.DialTimeout)
				}
			},
		},
		{
			name: "redis with several addresses is a cluster",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(
				`"addresses":["127.0.0.1:7000","127.0.0.1:7001"]`)}),
			check: func(t *testing.T, h *Handler) {
				if s := redisStoreOf(t, h); fmt.Sprintf("%T", s.client) != "*redis.ClusterClient" {
					t.Errorf("client is %T, want *redis.ClusterClient", s.client)
				}
			},
		},
		{
			name: "redis with master_name uses sentinel",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(
				`"addresses":["127.0.0.1:26379","127.0.0.1:26380"],"master_name":"m"`)}),
			check: func(t *testing.T, h *Handler) {
				if s := redisStoreOf(t, h); fmt.Sprintf("%T", s.client) != "*redis.Client" {
					t.Errorf("client is %T, want a failover *redis.Client", s.client)
				}
			},
		},

		// Errors.
		{
			name: "unset env password names the placeholder",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(
				redisLocal + `,"password":"{env.NOPE}"`)}),
			wantErr: []string{"loading dedupe store", "password", "{env.NOPE}"},
		},
		{
			name: "literal password with braces is not echoed",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(
				redisLocal + `,"password":"pa{ss}word-literal"`)}),
			wantErr: []string{"password"},
			notErr:  []string{"pa{ss", "word-literal", "{ss}"},
		},
		{
			name:    "on_store_error drop fails Validate",
			handler: withDedupe(&Dedupe{OnStoreError: "drop"}),
			wantErr: []string{"on_store_error must be reject or forward", `"drop"`},
		},
		{
			name:    "mode loud fails Validate",
			handler: Handler{Secrets: []Secret{{Value: secret}}, Mode: "loud"},
			wantErr: []string{"mode must be enforce or shadow", `"loud"`},
		},
		{
			name:    "negative max_entries",
			handler: withDedupe(&Dedupe{StoreRaw: json.RawMessage(`{"backend":"memory","max_entries":-1}`)}),
			wantErr: []string{"loading dedupe store", "max_entries must be positive", "-1"},
		},
		{
			name:    "redis without addresses",
			handler: withDedupe(&Dedupe{StoreRaw: json.RawMessage(`{"backend":"redis"}`)}),
			wantErr: []string{"loading dedupe store", "needs at least one address"},
		},
		{
			name:    "redis with an empty address list",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(`"addresses":[]`)}),
			wantErr: []string{"needs at least one address"},
		},
		{
			name:    "unknown backend",
			handler: withDedupe(&Dedupe{StoreRaw: json.RawMessage(`{"backend":"etcd"}`)}),
			wantErr: []string{"loading dedupe store", "etcd"},
		},
		{
			name:    "store without a backend",
			handler: withDedupe(&Dedupe{StoreRaw: json.RawMessage(`{"max_entries":5}`)}),
			wantErr: []string{"loading dedupe store", "backend"},
		},
		{
			name:    "misspelled store field is rejected",
			handler: withDedupe(&Dedupe{StoreRaw: json.RawMessage(`{"backend":"memory","max_entrys":5}`)}),
			wantErr: []string{"loading dedupe store", "max_entrys"},
		},
		{
			name:    "negative ttl from JSON",
			handler: withDedupe(&Dedupe{TTL: caddy.Duration(-time.Second)}),
			wantErr: []string{"ttl and lease must be at least 1ms"},
		},
		{
			name:    "sub-millisecond lease from JSON",
			handler: withDedupe(&Dedupe{Lease: caddy.Duration(time.Microsecond)}),
			wantErr: []string{"ttl and lease must be at least 1ms"},
		},

		// The Caddyfile rejects these, but JSON is not checked: a negative
		// pool_size panics in go-redis (make(chan, -1)) while provisioning,
		// a negative timeout makes every store call fail at once (so every
		// verified webhook gets 503), and a negative db fails only when
		// connecting. Provision should reject them like max_entries.
		{
			name:    "negative pool_size from JSON is rejected, not a panic",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(redisLocal + `,"pool_size":-1`)}),
			wantErr: []string{"pool_size"},
			notErr:  []string{"panicked"},
		},
		{
			name:    "negative timeout from JSON is rejected",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(redisLocal + `,"timeout":-1000000000`)}),
			wantErr: []string{"timeout"},
		},
		{
			name:    "negative db from JSON is rejected",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(redisLocal + `,"db":-1`)}),
			wantErr: []string{"db"},
		},
		{
			name:    "db with several addresses (Cluster)",
			handler: withDedupe(&Dedupe{StoreRaw: redisStoreRaw(`"addresses":["127.0.0.1:1","127.0.0.1:2"],"db":2`)}),
			wantErr: []string{"db 2", "Cluster"},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel() // runs the stores' Cleanup

			h := tc.handler
			err := dcfProvisionIn(ctx, &h)
			if err != nil {
				if strings.Contains(err.Error(), redisPass) {
					t.Errorf("error %q reveals the redis password", err)
				}
			}
			if checkError(t, err, tc.wantErr, tc.notErr) {
				return
			}
			if tc.check != nil {
				tc.check(t, &h)
			}
		})
	}
}

func TestAdaptDedupe(t *testing.T) {
	const runtimeSecret = "runtime-secret-0123456789abcdef!"

	tests := []struct {
		name      string
		caddyfile string
		contains  []string // substrings the JSON must contain
		check     func(t *testing.T, h *Handler)
	}{
		{
			name: "redis",
			caddyfile: `:8080 {
	groq_webhook {env.S} {
		dedupe redis {
			address 127.0.0.1:6379
		}
	}
	reverse_proxy 127.0.0.1:9
}
`,
			contains: []string{`"dedupe":{"store":{"addresses":["127.0.0.1:6379"],"backend":"redis"}}`},
			check: func(t *testing.T, h *Handler) {
				s, ok := h.Dedupe.store.(*RedisStore)
				if !ok {
					t.Fatalf("store is %T, want *RedisStore", h.Dedupe.store)
				}
				if !reflect.DeepEqual(s.Addresses, []string{"127.0.0.1:6379"}) || s.client == nil {
					t.Errorf("redis store: addresses %q, client %v", s.Addresses, s.client)
				}
			},
		},
		{
			name: "redis with options, shadow mode",
			caddyfile: `:8080 {
	groq_webhook {env.S} {
		mode shadow
		dedupe redis {
			address 127.0.0.1:7000 127.0.0.1:7001
			password {env.REDIS_PW}
			pool_size 4
			ttl 1h
			on_store_error forward
		}
	}
	reverse_proxy 127.0.0.1:9
}
`,
			contains: []string{
				`"mode":"shadow"`,
				`"store":{"addresses":["127.0.0.1:7000","127.0.0.1:7001"],"backend":"redis","password":"{env.REDIS_PW}","pool_size":4}`,
				`"on_store_error":"forward"`,
				`"ttl":3600000000000`,
			},
			check: func(t *testing.T, h *Handler) {
				if h.Dedupe.store != nil {
					t.Fatalf("store %T loaded in shadow mode", h.Dedupe.store)
				}
				if h.Dedupe.TTL != caddy.Duration(time.Hour) || h.Mode != ModeShadow {
					t.Errorf("ttl %s, mode %q", time.Duration(h.Dedupe.TTL), h.Mode)
				}
			},
		},
		{
			name: "memory",
			caddyfile: `:8080 {
	groq_webhook {env.S} {
		dedupe memory {
			max_entries 10
		}
	}
	reverse_proxy 127.0.0.1:9
}
`,
			contains: []string{`"dedupe":{"store":{"backend":"memory","max_entries":10}}`},
			check: func(t *testing.T, h *Handler) {
				s, ok := h.Dedupe.store.(*MemoryStore)
				if !ok || s.MaxEntries != 10 {
					t.Fatalf("store is %#v, want *MemoryStore with max_entries 10", h.Dedupe.store)
				}
			},
		},
		{
			name: "off",
			caddyfile: `:8080 {
	groq_webhook {env.S} {
		dedupe off
	}
	reverse_proxy 127.0.0.1:9
}
`,
			contains: []string{`"dedupe":{"disabled":true}`},
			check: func(t *testing.T, h *Handler) {
				if h.Dedupe.store != nil {
					t.Errorf("store %T set although dedupe is off", h.Dedupe.store)
				}
			},
		},
		{
			name: "none",
			caddyfile: `:8080 {
	groq_webhook {env.S}
	reverse_proxy 127.0.0.1:9
}
`,
			check: func(t *testing.T, h *Handler) {
				if _, ok := h.Dedupe.store.(*MemoryStore); !ok {
					t.Errorf("store is %T, want the default *MemoryStore", h.Dedupe.store)
				}
			},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js := adaptContaining(t, tc.caddyfile, tc.contains)
			if tc.name == "none" && strings.Contains(js, `"dedupe"`) {
				t.Errorf("JSON has a dedupe object although none was configured:\n%s", js)
			}

			var cfg any
			if err := json.Unmarshal([]byte(js), &cfg); err != nil {
				t.Fatalf("adapted JSON does not parse: %v", err)
			}
			objs := cfFindHandlers(cfg, "groq_webhook")
			if len(objs) != 1 {
				t.Fatalf("found %d groq_webhook handler objects in:\n%s", len(objs), js)
			}
			raw, err := json.Marshal(objs[0])
			if err != nil {
				t.Fatal(err)
			}

			t.Setenv("S", runtimeSecret)
			t.Setenv("REDIS_PW", "runtime-redis-password")

			// The handler object unmarshals into a Handler that provisions,
			// loading its store as a guest module by its inline key.
			var h Handler
			if err := json.Unmarshal(raw, &h); err != nil {
				t.Fatalf("unmarshal %s: %v", raw, err)
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			if err := dcfProvisionIn(ctx, &h); err != nil {
				t.Fatalf("provision %s: %v", raw, err)
			}
			if h.Dedupe == nil {
				t.Fatal("Dedupe not set by Provision")
			}
			tc.check(t, &h)

			// And as Caddy loads it: by module ID, strictly (without the
			// "handler" key), then Provision and Validate.
			delete(objs[0], "handler")
			raw, err = json.Marshal(objs[0])
			if err != nil {
				t.Fatal(err)
			}
			mod, err := ctx.LoadModuleByID("http.handlers.groq_webhook", raw)
			if err != nil {
				t.Fatalf("load module %s: %v", raw, err)
			}
			loaded, ok := mod.(*Handler)
			if !ok {
				t.Fatalf("module is %T, want *Handler", mod)
			}
			tc.check(t, loaded)
			cancel() // cleans up both handlers' stores now
		})
	}
}
