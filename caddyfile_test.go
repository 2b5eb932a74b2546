package groqwebhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// cfSettings is the part of a Handler that configuration sets, so that tests
// compare configured values and nothing provisioned.
type cfSettings struct {
	Secrets         []Secret
	Tolerance       caddy.Duration
	MaxBody         int64
	SignatureHeader string
	TimestampHeader string
	VerifiedHeader  string
}

func cfSettingsOf(h *Handler) cfSettings {
	return cfSettings{
		Secrets:         h.Secrets,
		Tolerance:       h.Tolerance,
		MaxBody:         h.MaxBody,
		SignatureHeader: h.SignatureHeader,
		TimestampHeader: h.TimestampHeader,
		VerifiedHeader:  h.VerifiedHeader,
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    cfSettings
		wantErr []string // substrings that must all be in the error
		notErr  []string // substrings that must not be in it, such as parts of a secret
	}{
		{
			name:  "inline secret",
			input: `groq_webhook {env.GROQ_SECRET}`,
			want:  cfSettings{Secrets: []Secret{{Value: "{env.GROQ_SECRET}"}}},
		},
		{
			name:  "inline secret with empty block",
			input: "groq_webhook {file./run/secrets/groq} {\n}",
			want:  cfSettings{Secrets: []Secret{{Value: "{file./run/secrets/groq}"}}},
		},
		{
			name: "block secret with label",
			input: `groq_webhook {
				secret {env.GROQ_SECRET} 2026-q4
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.GROQ_SECRET}", Label: "2026-q4"}}},
		},
		{
			name: "block secret without label",
			input: `groq_webhook {
				secret {env.GROQ_SECRET}
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.GROQ_SECRET}"}}},
		},
		{
			name: "inline and two block secrets keep rotation order",
			input: `groq_webhook {env.FIRST} {
				secret {env.SECOND} new
				secret {file./run/old} old
			}`,
			want: cfSettings{Secrets: []Secret{
				{Value: "{env.FIRST}"},
				{Value: "{env.SECOND}", Label: "new"},
				{Value: "{file./run/old}", Label: "old"},
			}},
		},
		{
			name:  "quoted secret with spaces",
			input: `groq_webhook "a secret with spaces 0123"`,
			want:  cfSettings{Secrets: []Secret{{Value: "a secret with spaces 0123"}}},
		},
		{
			name: "tolerance 30s",
			input: `groq_webhook {env.S} {
				tolerance 30s
			}`,
			want: cfSettings{
				Secrets:   []Secret{{Value: "{env.S}"}},
				Tolerance: caddy.Duration(30 * time.Second),
			},
		},
		{
			name: "tolerance in days",
			input: `groq_webhook {env.S} {
				tolerance 1d
			}`,
			want: cfSettings{
				Secrets:   []Secret{{Value: "{env.S}"}},
				Tolerance: caddy.Duration(24 * time.Hour),
			},
		},
		{
			name: "max_body 64KiB",
			input: `groq_webhook {env.S} {
				max_body 64KiB
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.S}"}}, MaxBody: 64 << 10},
		},
		{
			name: "max_body 2MB is decimal",
			input: `groq_webhook {env.S} {
				max_body 2MB
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.S}"}}, MaxBody: 2_000_000},
		},
		{
			name: "max_body plain bytes",
			input: `groq_webhook {env.S} {
				max_body 1
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.S}"}}, MaxBody: 1},
		},
		{
			name: "max_body 1GiB is the upper bound",
			input: `groq_webhook {env.S} {
				max_body 1GiB
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.S}"}}, MaxBody: 1 << 30},
		},
		{
			name: "signature_header",
			input: `groq_webhook {env.S} {
				signature_header X-Sig
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.S}"}}, SignatureHeader: "X-Sig"},
		},
		{
			name: "timestamp_header",
			input: `groq_webhook {env.S} {
				timestamp_header X-Ts
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.S}"}}, TimestampHeader: "X-Ts"},
		},
		{
			name: "verified_header",
			input: `groq_webhook {env.S} {
				verified_header X-Ok
			}`,
			want: cfSettings{Secrets: []Secret{{Value: "{env.S}"}}, VerifiedHeader: "X-Ok"},
		},
		{
			name: "everything",
			input: `groq_webhook {
				secret {env.NEW} new
				secret {env.OLD} old
				tolerance 2m
				max_body 512KiB
				signature_header x-sig
				timestamp_header x-ts
				verified_header x-ok
			}`,
			want: cfSettings{
				Secrets:         []Secret{{Value: "{env.NEW}", Label: "new"}, {Value: "{env.OLD}", Label: "old"}},
				Tolerance:       caddy.Duration(2 * time.Minute),
				MaxBody:         512 << 10,
				SignatureHeader: "x-sig", // canonicalized only by Provision
				TimestampHeader: "x-ts",
				VerifiedHeader:  "x-ok",
			},
		},

		// Errors.
		{
			name:    "no secret at all",
			input:   `groq_webhook`,
			wantErr: []string{"needs a secret", "Testfile:1"},
		},
		{
			name: "block without any secret",
			input: `groq_webhook {
				tolerance 30s
			}`,
			wantErr: []string{"needs a secret"},
		},
		{
			name:    "two inline args",
			input:   `groq_webhook {env.A} {env.B}`,
			wantErr: []string{"at most one inline secret", "Testfile:1"},
		},
		{
			name:    "unquoted secret with a space is not echoed",
			input:   `groq_webhook my-secret second-half-of-secret`,
			wantErr: []string{"quote a secret that contains spaces"},
			notErr:  []string{"second-half-of-secret", "my-secret"},
		},
		{
			name: "secret with no args",
			input: `groq_webhook {
				secret
			}`,
			wantErr: []string{"secret takes a value", "got 0 arguments", "Testfile:2"},
		},
		{
			name: "secret with 3 args",
			input: `groq_webhook {
				secret {env.S} label extra
			}`,
			wantErr: []string{"secret takes a value", "got 3 arguments", "Testfile:2"},
		},
		{
			name: "tolerance missing",
			input: `groq_webhook {env.S} {
				tolerance
			}`,
			wantErr: []string{"wrong argument count", "tolerance", "Testfile:2"},
		},
		{
			name: "tolerance invalid",
			input: `groq_webhook {env.S} {
				tolerance soon
			}`,
			wantErr: []string{`tolerance "soon"`, "Testfile:2"},
		},
		{
			name: "tolerance zero",
			input: `groq_webhook {env.S} {
				tolerance 0
			}`,
			wantErr: []string{"tolerance must be positive", "Testfile:2"},
		},
		{
			name: "tolerance zero with unit",
			input: `groq_webhook {env.S} {
				tolerance 0s
			}`,
			wantErr: []string{"tolerance must be positive"},
		},
		{
			name: "tolerance negative",
			input: `groq_webhook {env.S} {
				tolerance -5s
			}`,
			wantErr: []string{"tolerance must be positive", `"-5s"`, "Testfile:2"},
		},
		{
			name: "tolerance extra arg",
			input: `groq_webhook {env.S} {
				tolerance 5s 10s
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "max_body missing",
			input: `groq_webhook {env.S} {
				max_body
			}`,
			wantErr: []string{"wrong argument count", "max_body", "Testfile:2"},
		},
		{
			name: "max_body invalid",
			input: `groq_webhook {env.S} {
				max_body lots
			}`,
			wantErr: []string{`max_body "lots"`, "Testfile:2"},
		},
		{
			name: "max_body invalid unit",
			input: `groq_webhook {env.S} {
				max_body 5parsecs
			}`,
			wantErr: []string{`max_body "5parsecs"`},
		},
		{
			name: "max_body negative",
			input: `groq_webhook {env.S} {
				max_body -1
			}`,
			wantErr: []string{`max_body "-1"`},
		},
		{
			name: "max_body zero",
			input: `groq_webhook {env.S} {
				max_body 0
			}`,
			wantErr: []string{"max_body must be between", `"0"`, "Testfile:2"},
		},
		{
			name: "max_body rounds down to zero",
			input: `groq_webhook {env.S} {
				max_body 0.5
			}`,
			wantErr: []string{"max_body must be between"},
		},
		{
			name: "max_body above 1GiB",
			input: `groq_webhook {env.S} {
				max_body 2GiB
			}`,
			wantErr: []string{"max_body must be between", "1GiB"},
		},
		{
			name: "max_body extra arg",
			input: `groq_webhook {env.S} {
				max_body 1MB 2MB
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "signature_header no arg",
			input: `groq_webhook {env.S} {
				signature_header
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "signature_header extra arg",
			input: `groq_webhook {env.S} {
				signature_header X-A X-B
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "timestamp_header no arg",
			input: `groq_webhook {env.S} {
				timestamp_header
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "timestamp_header extra arg",
			input: `groq_webhook {env.S} {
				timestamp_header X-A X-B
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "verified_header no arg",
			input: `groq_webhook {env.S} {
				verified_header
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "verified_header extra arg",
			input: `groq_webhook {env.S} {
				verified_header X-A X-B
			}`,
			wantErr: []string{"wrong argument count", "Testfile:2"},
		},
		{
			name: "unknown subdirective",
			input: `groq_webhook {env.S} {
				tolerance 30s
				tolerence 30s
			}`,
			wantErr: []string{"unrecognized groq_webhook subdirective", `"tolerence"`, "Testfile:3"},
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
			if got := cfSettingsOf(h); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// cfProvision provisions and validates h as Caddy would: Provision, then
// Validate only if Provision succeeded.
func cfProvision(t *testing.T, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		return err
	}
	return h.Validate()
}

func TestProvision(t *testing.T) {
	const (
		secretA = "env-secret-AAAAAAAAAAAAAAAAAAAAA" // 32 bytes
		secretB = "env-secret-BBBBBBBBBBBBBBBBBBBBB" // 32 bytes
		secretF = "file-secret-FFFFFFFFFFFFFFFFFFFF" // 32 bytes
		short   = "short-secret"                     // 12 bytes
		literal = "literal-secret-0123456789abcdef"
	)
	if len(secretA) != 32 || len(secretB) != 32 || len(secretF) != 32 {
		t.Fatal("test secrets must be 32 bytes")
	}
	// Every value a secret takes in these tests: no error may contain one.
	allSecrets := []string{secretA, secretB, secretF, short, literal, "{def}"}

	secretFile := filepath.Join(t.TempDir(), "groq-secret")
	if err := os.WriteFile(secretFile, []byte(secretF+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	crlfFile := filepath.Join(t.TempDir(), "groq-secret-crlf")
	if err := os.WriteFile(crlfFile, []byte(secretF+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortFile := filepath.Join(t.TempDir(), "groq-secret-short")
	if err := os.WriteFile(shortFile, []byte(short+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GROQ_TEST_SECRET_A", secretA)
	t.Setenv("GROQ_TEST_SECRET_B", secretB)
	t.Setenv("GROQ_TEST_SECRET_SHORT", short)
	t.Setenv("GROQ_TEST_SECRET_EMPTY", "")
	os.Unsetenv("UNSET_VAR_XYZ")

	tests := []struct {
		name        string
		handler     Handler
		want        cfSettings // after Provision; Secrets are compared to the configured ones
		wantSecrets []string   // resolved values
		wantLabels  []string
		wantErr     []string
	}{
		{
			name:    "defaults applied",
			handler: Handler{Secrets: []Secret{{Value: literal}}},
			want: cfSettings{
				Tolerance:       caddy.Duration(5 * time.Minute),
				MaxBody:         1 << 20,
				SignatureHeader: "X-Groq-Signature",
				TimestampHeader: "X-Groq-Timestamp",
				VerifiedHeader:  "X-Groq-Verified",
			},
			wantSecrets: []string{literal},
			wantLabels:  []string{"0"},
		},
		{
			name: "configured values kept and headers canonicalized",
			handler: Handler{
				Secrets:         []Secret{{Value: literal, Label: "lit"}},
				Tolerance:       caddy.Duration(30 * time.Second),
				MaxBody:         64 << 10,
				SignatureHeader: "x-sig",
				TimestampHeader: "x-ts",
				VerifiedHeader:  "x-ok",
			},
			want: cfSettings{
				Tolerance:       caddy.Duration(30 * time.Second),
				MaxBody:         64 << 10,
				SignatureHeader: "X-Sig",
				TimestampHeader: "X-Ts",
				VerifiedHeader:  "X-Ok",
			},
			wantSecrets: []string{literal},
			wantLabels:  []string{"lit"},
		},
		{
			name: "env secrets resolved, labels default to index",
			handler: Handler{Secrets: []Secret{
				{Value: "{env.GROQ_TEST_SECRET_A}"},
				{Value: "{env.GROQ_TEST_SECRET_B}"},
			}},
			wantSecrets: []string{secretA, secretB},
			wantLabels:  []string{"0", "1"},
		},
		{
			name: "mixed labels",
			handler: Handler{Secrets: []Secret{
				{Value: "{env.GROQ_TEST_SECRET_A}", Label: "new"},
				{Value: "{env.GROQ_TEST_SECRET_B}"},
			}},
			wantSecrets: []string{secretA, secretB},
			wantLabels:  []string{"new", "1"},
		},
		{
			name:        "file secret resolved without trailing newline",
			handler:     Handler{Secrets: []Secret{{Value: "{file." + secretFile + "}"}}},
			wantSecrets: []string{secretF},
			wantLabels:  []string{"0"},
		},
		{
			name:        "file secret resolved without trailing CRLF",
			handler:     Handler{Secrets: []Secret{{Value: "{file." + crlfFile + "}"}}},
			wantSecrets: []string{secretF},
			wantLabels:  []string{"0"},
		},
		{
			name: "env and file secrets in rotation order",
			handler: Handler{Secrets: []Secret{
				{Value: "{file." + secretFile + "}", Label: "new"},
				{Value: "{env.GROQ_TEST_SECRET_A}", Label: "old"},
			}},
			wantSecrets: []string{secretF, secretA},
			wantLabels:  []string{"new", "old"},
		},

		// Errors.
		{
			name:    "no secrets",
			handler: Handler{},
			wantErr: []string{"no secret configured"},
		},
		{
			name:    "empty secret value",
			handler: Handler{Secrets: []Secret{{Value: "", Label: "blank"}}},
			wantErr: []string{`secret "blank" is empty`},
		},
		{
			name:    "unset env var",
			handler: Handler{Secrets: []Secret{{Value: "{env.UNSET_VAR_XYZ}"}}},
			wantErr: []string{`secret "0"`, "empty after placeholder replacement", "{env.UNSET_VAR_XYZ}"},
		},
		{
			name:    "empty env var",
			handler: Handler{Secrets: []Secret{{Value: "{env.GROQ_TEST_SECRET_EMPTY}", Label: "cur"}}},
			wantErr: []string{`secret "cur"`, "{env.GROQ_TEST_SECRET_EMPTY}"},
		},
		{
			name: "second secret unset names it",
			handler: Handler{Secrets: []Secret{
				{Value: "{env.GROQ_TEST_SECRET_A}"},
				{Value: "{env.UNSET_VAR_XYZ}", Label: "old"},
			}},
			wantErr: []string{`secret "old"`, "{env.UNSET_VAR_XYZ}"},
		},
		{
			name: "placeholder with literal prefix names only the placeholder",
			handler: Handler{Secrets: []Secret{
				{Value: literal + "{env.UNSET_VAR_XYZ}"},
			}},
			wantErr: []string{`secret "0"`, "{env.UNSET_VAR_XYZ}"},
		},
		{
			name:    "missing file",
			handler: Handler{Secrets: []Secret{{Value: "{file." + filepath.Join(t.TempDir(), "nope") + "}"}}},
			wantErr: []string{`secret "0"`, "empty after placeholder replacement", "{file."},
		},
		{
			name:    "short literal secret",
			handler: Handler{Secrets: []Secret{{Value: short}}},
			wantErr: []string{`secret "0"`, "12 bytes long", "at least 16"},
		},
		{
			name:    "short env secret",
			handler: Handler{Secrets: []Secret{{Value: "{env.GROQ_TEST_SECRET_SHORT}", Label: "tiny"}}},
			wantErr: []string{`secret "tiny"`, "12 bytes long", "at least 16"},
		},
		{
			name:    "short file secret",
			handler: Handler{Secrets: []Secret{{Value: "{file." + shortFile + "}"}}},
			wantErr: []string{`secret "0"`, "12 bytes long", "at least 16"},
		},
		{
			name:    "15 bytes is too short",
			handler: Handler{Secrets: []Secret{{Value: literal[:15]}}},
			wantErr: []string{"15 bytes long", "at least 16"},
		},
		{
			name:    "negative tolerance from JSON",
			handler: Handler{Secrets: []Secret{{Value: literal}}, Tolerance: caddy.Duration(-5 * time.Second)},
			wantErr: []string{"tolerance must be at least 1s", "-5s"},
		},
		{
			name:    "sub-second tolerance from JSON",
			handler: Handler{Secrets: []Secret{{Value: literal}}, Tolerance: caddy.Duration(500 * time.Millisecond)},
			wantErr: []string{"tolerance must be at least 1s", "500ms"},
		},
		{
			name:    "negative max_body from JSON",
			handler: Handler{Secrets: []Secret{{Value: literal}}, MaxBody: -1},
			wantErr: []string{"max_body must be between", "-1"},
		},
		{
			name:    "max_body near the int64 limit from JSON",
			handler: Handler{Secrets: []Secret{{Value: literal}}, MaxBody: 1<<63 - 1},
			wantErr: []string{"max_body must be between"},
		},
		{
			name:    "verified_header that is the signature header",
			handler: Handler{Secrets: []Secret{{Value: literal}}, VerifiedHeader: "x-groq-signature"},
			wantErr: []string{"signature_header", "clashes"},
		},
		{
			name:    "timestamp_header that is an event header",
			handler: Handler{Secrets: []Secret{{Value: literal}}, TimestampHeader: "X-Groq-Event-Id"},
			wantErr: []string{"timestamp_header", "clashes"},
		},
		{
			name:    "signature and timestamp in one header",
			handler: Handler{Secrets: []Secret{{Value: literal}}, SignatureHeader: "X-Sig", TimestampHeader: "x-sig"},
			wantErr: []string{"both"},
		},
		{
			name:    "header name that is not a token",
			handler: Handler{Secrets: []Secret{{Value: literal}}, SignatureHeader: "X Sig"},
			wantErr: []string{"signature_header", "not a valid header name"},
		},
		{
			name:    "literal secret with braces is not echoed",
			handler: Handler{Secrets: []Secret{{Value: "abc{def}0123456789xyz"}}},
			wantErr: []string{"empty after placeholder replacement"},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			configured := append([]Secret(nil), h.Secrets...)
			err := cfProvision(t, &h)

			if err != nil {
				for _, s := range append(allSecrets, literal[:15]) {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q reveals the secret value %q", err, s)
					}
				}
			}
			if checkError(t, err, tc.wantErr, nil) {
				return
			}

			// The configured values are kept as written, placeholders and all.
			if !reflect.DeepEqual(h.Secrets, configured) {
				t.Errorf("Secrets changed by Provision: got %+v, want %+v", h.Secrets, configured)
			}
			if !reflect.DeepEqual(tc.want, cfSettings{}) {
				got := cfSettingsOf(&h)
				got.Secrets = nil
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got  %+v\nwant %+v", got, tc.want)
				}
			}
			var labels []string
			for _, secret := range h.secrets {
				labels = append(labels, secret.label)
			}
			if !reflect.DeepEqual(labels, tc.wantLabels) {
				t.Errorf("labels = %q, want %q", labels, tc.wantLabels)
			}
			engine := h.prov.engine
			if engine == nil {
				t.Fatal("verifier not set")
			}
			if engine.Secret(len(tc.wantSecrets)) != nil {
				t.Fatalf("verifier has more than %d secrets", len(tc.wantSecrets))
			}
			for i, want := range tc.wantSecrets {
				if !bytes.Equal(engine.Secret(i), []byte(want)) {
					t.Errorf("resolved secret %d differs from the expected value", i)
				}
				// And the verifier accepts a request signed with it.
				now := time.Unix(1_700_000_000, 0)
				ts := "1700000000"
				body := []byte(`{"id":"evt_1"}`)
				header := http.Header{h.TimestampHeader: {ts}, h.SignatureHeader: {Sign([]byte(want), ts, body)}}
				result, err := engine.Verify(provider.Request{Header: header}, body, now)
				if err != nil || result.Secret != i {
					t.Errorf("verify with secret %d: index %d, err %v", i, result.Secret, err)
				}
			}
			if h.logger == nil || h.now == nil {
				t.Error("logger or clock not set by Provision")
			}
		})
	}
}

// cfFindHandlers returns every object in the adapted JSON whose "handler" is
// name, in document order.
func cfFindHandlers(v any, name string) []map[string]any {
	var found []map[string]any
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == name {
			found = append(found, v)
		}
		// Go randomizes map order; Caddy's JSON keeps handlers in arrays,
		// so document order is preserved where it matters.
		for _, child := range v {
			found = append(found, cfFindHandlers(child, name)...)
		}
	case []any:
		for _, child := range v {
			found = append(found, cfFindHandlers(child, name)...)
		}
	}
	return found
}

func TestAdaptJSON(t *testing.T) {

	tests := []struct {
		name      string
		caddyfile string
		// handlers that must come after groq_webhook in the JSON
		after []string
		// handlers that must come before groq_webhook in the JSON
		before []string
		// substrings the JSON must contain
		contains []string
		want     cfSettings
	}{
		{
			name: "inline secret, directive written last",
			caddyfile: `:8080 {
	respond "ok"
	reverse_proxy 127.0.0.1:9
	file_server
	request_header X-From caddy
	groq_webhook {env.S}
}
`,
			after:    []string{"headers", "static_response", "reverse_proxy", "file_server"},
			contains: []string{`"secrets":[{"value":"{env.S}"}]`},
			want:     cfSettings{Secrets: []Secret{{Value: "{env.S}"}}},
		},
		{
			name: "directive written between others",
			caddyfile: `:8080 {
	reverse_proxy 127.0.0.1:9
	groq_webhook {env.S}
	respond "ok"
}
`,
			after:    []string{"reverse_proxy", "static_response"},
			contains: []string{`"secrets":[{"value":"{env.S}"}]`},
			want:     cfSettings{Secrets: []Secret{{Value: "{env.S}"}}},
		},
		{
			name: "after basic_auth, before the rest; block form with matcher",
			caddyfile: `example.com {
	file_server
	reverse_proxy /hook 127.0.0.1:9
	groq_webhook /hook {
		secret {env.S} new
		secret {file./run/secrets/old} old
		tolerance 30s
		max_body 64KiB
		signature_header X-Sig
		timestamp_header X-Ts
		verified_header X-Ok
	}
	basic_auth /admin/* {
		admin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
}
`,
			after:  []string{"reverse_proxy", "file_server"},
			before: []string{"authentication"},
			contains: []string{
				`"secrets":[{"label":"new","value":"{env.S}"},{"label":"old","value":"{file./run/secrets/old}"}]`,
				`"path":["/hook"]`,
			},
			want: cfSettings{
				Secrets: []Secret{
					{Value: "{env.S}", Label: "new"},
					{Value: "{file./run/secrets/old}", Label: "old"},
				},
				Tolerance:       caddy.Duration(30 * time.Second),
				MaxBody:         64 << 10,
				SignatureHeader: "X-Sig",
				TimestampHeader: "X-Ts",
				VerifiedHeader:  "X-Ok",
			},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js := adaptContaining(t, tc.caddyfile, tc.contains)

			marker := `"handler":"groq_webhook"`
			pos := strings.Index(js, marker)
			if pos < 0 {
				t.Fatalf("no groq_webhook handler in:\n%s", js)
			}
			if strings.Count(js, marker) != 1 {
				t.Errorf("want exactly one groq_webhook handler:\n%s", js)
			}
			for _, other := range tc.after {
				i := strings.Index(js, `"handler":"`+other+`"`)
				if i < 0 {
					t.Errorf("no %s handler in:\n%s", other, js)
				} else if i < pos {
					t.Errorf("%s handler comes before groq_webhook:\n%s", other, js)
				}
			}
			for _, other := range tc.before {
				i := strings.Index(js, `"handler":"`+other+`"`)
				if i < 0 {
					t.Errorf("no %s handler in:\n%s", other, js)
				} else if i > pos {
					t.Errorf("%s handler comes after groq_webhook:\n%s", other, js)
				}
			}

			// The handler's JSON loads back into a Handler with the same values.
			var cfg any
			if err := json.Unmarshal([]byte(js), &cfg); err != nil {
				t.Fatalf("adapted JSON does not parse: %v", err)
			}
			objs := cfFindHandlers(cfg, "groq_webhook")
			if len(objs) != 1 {
				t.Fatalf("found %d groq_webhook handler objects", len(objs))
			}
			raw, err := json.Marshal(objs[0])
			if err != nil {
				t.Fatal(err)
			}
			var h Handler
			if err := json.Unmarshal(raw, &h); err != nil {
				t.Fatalf("unmarshal %s: %v", raw, err)
			}
			if got := cfSettingsOf(&h); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			// Strictly, as Caddy loads modules: the module name key removed,
			// no other unknown field may be present.
			delete(objs[0], "handler")
			raw, err = json.Marshal(objs[0])
			if err != nil {
				t.Fatal(err)
			}
			var strict Handler
			if err := caddy.StrictUnmarshalJSON(raw, &strict); err != nil {
				t.Fatalf("strict unmarshal %s: %v", raw, err)
			}
			if !reflect.DeepEqual(cfSettingsOf(&strict), tc.want) {
				t.Errorf("strict: got %+v, want %+v", cfSettingsOf(&strict), tc.want)
			}

			// And what came back from JSON provisions, resolving {env.S} now.
			if strings.Contains(tc.caddyfile, "{file.") {
				return
			}
			const runtimeSecret = "runtime-secret-0123456789abcdef!"
			t.Setenv("S", runtimeSecret)
			if err := cfProvision(t, &h); err != nil {
				t.Fatalf("provision: %v", err)
			}
			if string(h.prov.engine.Secret(0)) != runtimeSecret || h.prov.engine.Secret(1) != nil {
				t.Error("secret not resolved from the environment at provision time")
			}
		})
	}
}

// checkError compares err with a test case's expectations: when wantErr is
// set, err must hold each of its substrings and none of notErr; otherwise
// err must be nil. It reports whether an error was expected, so the caller
// stops there.
func checkError(t *testing.T, err error, wantErr, notErr []string) bool {
	t.Helper()
	if len(wantErr) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return false
	}
	if err == nil {
		t.Fatalf("expected an error containing %q, got none", wantErr)
	}
	for _, want := range wantErr {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	for _, leak := range notErr {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains %q", err, leak)
		}
	}
	return true
}

// adaptContaining adapts a Caddyfile and checks that the JSON holds each of
// contains. The placeholders {env.S} and {env.REDIS_PW} are set meanwhile, to
// prove that they are not expanded at adapt time.
func adaptContaining(t *testing.T, caddyfile string, contains []string) string {
	t.Helper()
	t.Setenv("S", "adapt-time-value-must-not-appear")
	t.Setenv("REDIS_PW", "adapt-time-password-must-not-appear")
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	for _, w := range warnings {
		t.Logf("warning: %s", w.String())
	}
	js := string(out)
	if strings.Contains(js, "must-not-appear") {
		t.Errorf("placeholder expanded at adapt time: %s", js)
	}
	for _, want := range contains {
		if !strings.Contains(js, want) {
			t.Errorf("JSON does not contain %s:\n%s", want, js)
		}
	}
	return js
}
