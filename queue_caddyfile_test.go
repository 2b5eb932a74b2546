package groqwebhook

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestAdaptQueue: the queue and deliver blocks as `caddy adapt` shows them.
func TestAdaptQueue(t *testing.T) {
	adaptContaining(t, `
:8080 {
	groq_webhook {
		secret {env.S}
		queue file {
			name orders
			path /var/lib/caddy/orders
			retry 1s 10s
			attempt_timeout 5s
			concurrency 4
			max_events 500
			keep_dead 24h
		}
		deliver {
			@deleted vars {http.groq_webhook.event_type} resource.deleted
			reverse_proxy @deleted 127.0.0.1:9002
			reverse_proxy 127.0.0.1:9001
		}
	}
}
`, []string{
		`"queue":{"attempt_timeout":5000000000,"backend":"file","concurrency":4,"keep_dead":86400000000000,"max_events":500,"name":"orders","path":"/var/lib/caddy/orders","retry":[1000000000,10000000000]}`,
		`"deliver":{"handler":"subroute","routes":[`,
		`"{http.groq_webhook.event_type}":["resource.deleted"]`,
		`"dial":"127.0.0.1:9002"`,
		`"dial":"127.0.0.1:9001"`,
	})
	// The defaults: `queue` alone is the file store.
	adaptContaining(t, `
:8080 {
	groq_webhook {env.S} {
		queue
		deliver {
			reverse_proxy 127.0.0.1:9001
		}
	}
}
`, []string{`"queue":{"backend":"file"}`})
}

func TestUnmarshalQueueErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr []string
	}{
		{"queue without deliver", "queue", []string{"queue needs a deliver block"}},
		{"deliver without queue", "deliver {\n reverse_proxy 127.0.0.1:1\n}", []string{"deliver needs queue"}},
		{"unknown store", "queue sqlite\n deliver {\n}", []string{`queue takes file (the default) or redis, got "sqlite"`}},
		{"queue twice", "queue\n queue\n deliver {\n}", []string{"queue is set twice"}},
		{"deliver twice", "queue\n deliver {\n}\n deliver {\n}", []string{"deliver is set twice"}},
		{"retry without waits", "queue {\n retry\n}\n deliver {\n}", []string{"retry takes one or more durations"}},
		{"retry not a duration", "queue {\n retry 5s soon\n}\n deliver {\n}", []string{`retry "soon"`}},
		{"retry zero", "queue {\n retry 0s\n}\n deliver {\n}", []string{"retry waits must be positive", `"0s"`}},
		{"retry negative", "queue {\n retry -5s\n}\n deliver {\n}", []string{"retry waits must be positive", `"-5s"`}},
		{"concurrency zero", "queue {\n concurrency 0\n}\n deliver {\n}", []string{"concurrency must be an integer of at least 1", `"0"`}},
		{"max_events negative", "queue {\n max_events -1\n}\n deliver {\n}", []string{"max_events must be an integer of at least 1"}},
		{"attempt_timeout zero", "queue {\n attempt_timeout 0s\n}\n deliver {\n}", []string{"attempt_timeout must be positive"}},
		{"keep_dead not a duration", "queue {\n keep_dead forever\n}\n deliver {\n}", []string{`keep_dead "forever"`}},
		{"unknown option", "queue {\n retries 5s\n}\n deliver {\n}", []string{`unrecognized option "retries" for queue file`}},
		{"deliver with arguments", "queue\n deliver 127.0.0.1:1 {\n}", []string{"deliver takes no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "groq_webhook " + testSecret + " {\n" + tt.input + "\n}"
			err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
			checkError(t, err, tt.wantErr, []string{testSecret})
		})
	}
}

// TestProvisionQueueErrors: what provisioning refuses, from JSON, with
// the setting named.
func TestProvisionQueueErrors(t *testing.T) {
	deliver := json.RawMessage(`{"handler":"subroute","routes":[{"handle":[{"handler":"static_response","status_code":204}]}]}`)
	queue := func(options string) json.RawMessage {
		return json.RawMessage(`{"backend":"file","path":` + strconvQuote(filepath.Join(t.TempDir(), "q")) + options + `}`)
	}
	tests := []struct {
		name    string
		handler Handler
		wantErr []string
	}{
		{"queue without deliver", Handler{QueueRaw: queue("")}, []string{"queue is set without deliver"}},
		{"deliver without queue", Handler{DeliverRaw: deliver}, []string{"deliver is set without queue"}},
		{"shadow mode", Handler{QueueRaw: queue(""), DeliverRaw: deliver, Mode: ModeShadow}, []string{"mode shadow cannot be combined with queue"}},
		{"negative retry", Handler{QueueRaw: queue(`,"retry":[-1]`), DeliverRaw: deliver}, []string{`queue "default": retry wait 1 must be positive`}},
		{"negative concurrency", Handler{QueueRaw: queue(`,"concurrency":-2`), DeliverRaw: deliver}, []string{"concurrency must be positive, got -2"}},
		{"negative max_events", Handler{QueueRaw: queue(`,"max_events":-2`), DeliverRaw: deliver}, []string{"max_events must be positive, got -2"}},
		{"unknown store", Handler{QueueRaw: json.RawMessage(`{"backend":"tape"}`), DeliverRaw: deliver}, []string{"loading queue store", "tape"}},
		{"a name that climbs out", Handler{QueueRaw: json.RawMessage(`{"backend":"file","name":"../x"}`), DeliverRaw: deliver},
			[]string{`queue name "../x" must not contain /`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			h.Secrets = []Secret{{Value: testSecret}}
			checkError(t, cfProvision(t, &h), tt.wantErr, []string{testSecret})
			_ = h.Cleanup()
		})
	}

	t.Run("the same queue name twice in one config", func(t *testing.T) {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		path := filepath.Join(t.TempDir(), "q")
		first := &Handler{Secrets: []Secret{{Value: testSecret, Label: "first"}}, QueueRaw: queue(`,"name":"shared","path":` + strconvQuote(path)), DeliverRaw: deliver}
		second := &Handler{Secrets: []Secret{{Value: testSecret, Label: "second"}}, QueueRaw: queue(`,"name":"shared","path":` + strconvQuote(path)), DeliverRaw: deliver}
		if err := first.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		defer first.Cleanup()
		err := second.Provision(ctx)
		checkError(t, err, []string{`queue "shared" is used by two groq_webhook handlers of this config`, "secrets first", "secrets second"}, nil)
	})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
