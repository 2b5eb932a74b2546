package groqwebhook

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestExampleCaddyfile adapts and validates the example shipped with the
// project, as `caddy adapt` and `caddy validate` do.
func TestExampleCaddyfile(t *testing.T) {
	t.Setenv("GROQ_WEBHOOK_SECRET", "example-secret-0123456789abcdef")
	text, err := os.ReadFile("example.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(text, map[string]any{"filename": "example.Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapt warnings: %v", warnings)
	}
	adapted := string(cfgJSON)
	for _, want := range []string{`"handler":"groq_webhook"`, `"value":"{env.GROQ_WEBHOOK_SECRET}"`} {
		if !strings.Contains(adapted, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, adapted)
		}
	}
	if strings.Index(adapted, `"handler":"groq_webhook"`) > strings.Index(adapted, `"handler":"reverse_proxy"`) {
		t.Error("groq_webhook does not run before reverse_proxy")
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validate: %v", err)
	}
}
