package groqwebhook

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Secret is one shared secret and the name it goes by in logs and the
// {http.groq_webhook.secret} placeholder.
type Secret struct {
	// The secret itself, or a `{env.NAME}` / `{file.PATH}` placeholder.
	Value string `json:"value"`

	// A name for this secret, such as "2026-q4". Default: its 0-based index.
	Label string `json:"label,omitempty"`
}

// resolveSecrets replaces the placeholders in every secret and checks what
// they resolve to. Errors name the secret and the placeholder, never a value.
func resolveSecrets(configured []Secret) ([][]byte, []string, error) {
	if len(configured) == 0 {
		return nil, nil, errors.New("no secret configured: add at least one 'secret'")
	}
	repl := caddy.NewReplacer()
	secrets := make([][]byte, len(configured))
	labels := make([]string, len(configured))
	for i, s := range configured {
		labels[i] = s.Label
		if labels[i] == "" {
			labels[i] = strconv.Itoa(i)
		}
		name := fmt.Sprintf("secret %q", labels[i])
		if s.Value == "" {
			return nil, nil, fmt.Errorf("%s is empty", name)
		}
		value, err := repl.ReplaceOrErr(s.Value, true, true)
		if err != nil || value == "" {
			return nil, nil, fmt.Errorf("%s is empty after placeholder replacement: check %s",
				name, placeholdersIn(s.Value))
		}
		if len(value) < minSecretBytes {
			return nil, nil, fmt.Errorf("%s is %d bytes long; use at least %d random bytes",
				name, len(value), minSecretBytes)
		}
		secrets[i] = []byte(value)
	}
	return secrets, labels, nil
}

// placeholdersIn names the {env.*} and {file.*} placeholders in a configured
// secret, so an error can point at them without repeating any other part of
// the value, which may be a literal secret that happens to contain braces.
func placeholdersIn(value string) string {
	var found []string
	for _, prefix := range []string{"{env.", "{file."} {
		rest := value
		for {
			start := strings.Index(rest, prefix)
			if start < 0 {
				break
			}
			end := strings.IndexByte(rest[start:], '}')
			if end < 0 {
				break
			}
			found = append(found, rest[start:start+end+1])
			rest = rest[start+end+1:]
		}
	}
	if len(found) == 0 {
		return "that it is a literal or a known {env.*} or {file.*} placeholder"
	}
	return strings.Join(found, ", ")
}
