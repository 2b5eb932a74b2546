package groqwebhook

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/net/http/httpguts"

	"github.com/groqwebhook/caddy-groq-webhook/provider"
)

// The `caddy groq-webhook` command signs test events and sends them to a
// site running the groq_webhook handler, so an operator can check a setup
// (secret, headers, TLS, de-duplication) without writing a sender.

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:      "groq-webhook",
		Usage:     "sign|send|queue",
		Short:     "Signs and sends test webhooks for the groq_webhook handler",
		Long:      groqWebhookLong,
		CobraFunc: addGroqWebhookCommands,
	})
}

// Defaults of the command's flags.
const (
	defaultSecretEnv = "GROQ_WEBHOOK_SECRET"
	defaultEventType = "resource.created"
	defaultTimeout   = 10 * time.Second

	// maxShownResponse bounds how much of an answer's body send prints.
	maxShownResponse = 64 << 10
)

const groqWebhookLong = `
Signs and sends webhooks the way a Groq sender does, to test a site that
runs the groq_webhook handler.

The shared secret is read from the environment variable named by
--secret-env (default GROQ_WEBHOOK_SECRET) or from the file named by
--secret-file (one trailing newline is dropped, as with {file.*}). It is
never taken from the command line, where other users of the machine could
see it, and never printed.

  caddy groq-webhook sign   prints the headers (or a curl command) for a body
  caddy groq-webhook send   builds an event, signs it and POSTs it
  caddy groq-webhook queue  shows a store-and-forward queue, its dead letters,
                            and replays or drops them, through the admin API

Example:

  $ export GROQ_WEBHOOK_SECRET=change-me-to-32-random-bytes-0001
  $ caddy groq-webhook send --url http://127.0.0.1:8080/ --repeat 2
  HTTP 200 {"received":true}
  HTTP 200 {"received":true,"duplicate":true} (duplicate)
`

const signLong = `
Reads a raw body from --body-file, or from standard input until EOF, signs
it with the shared secret and prints the two headers a sender adds:

  X-Groq-Timestamp: <unix seconds>
  X-Groq-Signature: <hex HMAC-SHA256 of timestamp + "." + body>

The body is signed byte for byte: a trailing newline in the file is part of
it. The timestamp is now unless --timestamp is given; a site accepts it
only within its tolerance (default 5m), so use the output quickly.

With --curl URL, prints instead a curl command that POSTs the body with
both headers, ready to paste into a shell.

Examples:

  $ printf '%s' '{"id":"evt_123","type":"demo"}' > event.json
  $ caddy groq-webhook sign --body-file event.json
  $ caddy groq-webhook sign --body-file event.json --curl http://127.0.0.1:8080/ | sh
  $ printf '%s' '{"id":"evt_1"}' | caddy groq-webhook sign --secret-file /run/secrets/groq
`

const sendLong = `
Builds an event, signs it and POSTs it to --url, then prints one line per
attempt with the answer's status and body, marked (duplicate) when the
site answered with X-Groq-Duplicate: true.

The event is a JSON object:

  {"id":"evt_<16 hex digits>","type":"resource.created","data":{},"created":"<RFC 3339, UTC>"}

--id, --type and --data (any valid JSON) set its fields. With --body-file,
that file's bytes are sent exactly as they are instead.

--repeat N sends the very same bytes with the very same timestamp and
signature N times, as a sender retrying would: with de-duplication on, the
first is forwarded and the others are answered as duplicates.

The command succeeds only if every answer was 2xx. For an https:// site
with "tls internal", trust Caddy's local CA with --ca-cert (its root.crt is
under pki/authorities/local/ in Caddy's data directory); --insecure skips
certificate checks altogether.

Examples:

  $ export GROQ_WEBHOOK_SECRET=change-me-to-32-random-bytes-0001
  $ caddy groq-webhook send --url http://127.0.0.1:8080/ --data '{"n":1}'
  $ caddy groq-webhook send --url https://localhost:8443/ --repeat 3 \
      --ca-cert ~/.local/share/caddy/pki/authorities/local/root.crt
`

// addGroqWebhookCommands adds the sign and send subcommands to the
// groq-webhook command Caddy created.
// Without a subcommand it prints its help; a misspelt one is an error.
func addGroqWebhookCommands(cmd *cobra.Command) {
	cmd.AddCommand(newSignCommand(), newSendCommand(), newQueueCommand())
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return fmt.Errorf("unknown command %q: use sign, send or queue", args[0])
	}
}

// signingOptions are the flags both subcommands have: where the secret is,
// what the headers are called, and the timestamp to sign with.
type signingOptions struct {
	provider        string
	signedURL       string
	contentType     string
	secretEnv       string
	secretFile      string
	secretArg       string
	signatureHeader string
	timestampHeader string
	timestamp       string
}

// addSigningFlags registers the signingOptions flags on cmd.
func addSigningFlags(cmd *cobra.Command, o *signingOptions) {
	fs := cmd.Flags()
	fs.StringVar(&o.secretEnv, "secret-env", defaultSecretEnv, "Environment variable that holds the shared secret")
	fs.StringVar(&o.secretFile, "secret-file", "", "File that holds the shared secret (one trailing newline is dropped)")
	fs.StringVar(&o.secretArg, "secret", "", "Refused: use --secret-env or --secret-file")
	_ = fs.MarkHidden("secret")
	fs.StringVar(&o.signatureHeader, "signature-header", DefaultSignatureHeader, "Name of the signature header")
	fs.StringVar(&o.timestampHeader, "timestamp-header", DefaultTimestampHeader, "Name of the timestamp header")
	fs.StringVar(&o.timestamp, "timestamp", "", "Unix time in seconds to sign with (default: now)")
	fs.StringVar(&o.provider, "provider", DefaultProvider, "Sign as this provider: "+strings.Join(cliProviders(), ", "))
	fs.StringVar(&o.contentType, "content-type", "application/json", "The body's Content-Type (twilio signs form parameters of application/x-www-form-urlencoded)")
}

// cliProviders are the providers the commands sign as: all but hmac, whose
// scheme lives in a Caddyfile.
func cliProviders() []string {
	return slices.DeleteFunc(provider.Names(), func(name string) bool { return name == "hmac" })
}

// signer is what signingOptions resolve to: a secret, checked header names
// and a timestamp, and for providers other than groq their scheme and what
// else they sign.
type signer struct {
	secret          []byte
	signatureHeader string
	timestampHeader string
	timestamp       string

	scheme      *provider.Scheme // nil for groq
	signedURL   string
	contentType string
}

// headers returns the headers a sender adds for body, in the order they
// are printed; id is the event id of providers that sign one.
func (s signer) headers(body []byte, id string) ([][2]string, error) {
	if s.scheme == nil {
		return [][2]string{{s.timestampHeader, s.timestamp}, {s.signatureHeader, Sign(s.secret, s.timestamp, body)}}, nil
	}
	header, err := s.scheme.Sign(s.secret, provider.Message{
		ID: id, Timestamp: s.timestamp, URL: s.urlFor(body), ContentType: s.contentType, Body: body,
	})
	if err != nil {
		return nil, fmt.Errorf("signing as %s: %w", s.scheme.Name, err)
	}
	var lines [][2]string
	for _, name := range slices.Sorted(maps.Keys(header)) {
		lines = append(lines, [2]string{name, header.Get(name)})
	}
	return lines, nil
}

// urlFor returns the url a request with body goes to: the signed url, to
// which Twilio adds bodySHA256 for a body that is not a form.
func (s signer) urlFor(body []byte) string {
	if s.scheme != provider.Twilio || len(body) == 0 {
		return s.signedURL
	}
	if media, _, _ := mime.ParseMediaType(s.contentType); media == "application/x-www-form-urlencoded" {
		return s.signedURL
	}
	sum := sha256.Sum256(body)
	sep := "?"
	if strings.Contains(s.signedURL, "?") {
		sep = "&"
	}
	return s.signedURL + sep + "bodySHA256=" + hex.EncodeToString(sum[:])
}

// resolveProvider checks --provider and the flags that depend on it.
func (o *signingOptions) resolveProvider(cmd *cobra.Command, s *signer) error {
	if o.provider == DefaultProvider {
		return nil
	}
	scheme, ok := provider.Lookup(o.provider)
	if !ok {
		return fmt.Errorf("unknown --provider %q: known providers are %s", o.provider, strings.Join(cliProviders(), ", "))
	}
	if cmd.Flags().Changed("signature-header") || cmd.Flags().Changed("timestamp-header") {
		return fmt.Errorf("--signature-header and --timestamp-header apply only to --provider groq")
	}
	if scheme.NeedsURL {
		if o.signedURL == "" {
			return fmt.Errorf("--provider %s signs the url it is sent to: give it with --url", o.provider)
		}
		if err := checkURL(o.signedURL); err != nil {
			return fmt.Errorf("--url: %w", err)
		}
	}
	s.scheme, s.signedURL, s.contentType = scheme, o.signedURL, o.contentType
	if scheme.Algorithm == provider.Ed25519 {
		seed, err := hex.DecodeString(strings.TrimSpace(string(s.secret)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return fmt.Errorf("--provider %s signs with an Ed25519 key: the secret must be its %d-byte seed in hex", o.provider, ed25519.SeedSize)
		}
		s.secret = seed
	}
	return nil
}

// resolve checks the options and reads the secret. Its errors never hold
// the secret.
func (o *signingOptions) resolve(cmd *cobra.Command) (signer, error) {
	if cmd.Flags().Changed("secret") {
		return signer{}, errors.New("--secret is refused: command-line arguments are visible to other users " +
			"of this machine (ps, /proc) and end up in shell history; put the secret in an environment " +
			"variable (--secret-env NAME, default " + defaultSecretEnv + ") or a file (--secret-file PATH)")
	}
	if o.secretFile != "" && cmd.Flags().Changed("secret-env") {
		return signer{}, errors.New("use either --secret-env or --secret-file, not both")
	}
	for flag, name := range map[string]string{"--signature-header": o.signatureHeader, "--timestamp-header": o.timestampHeader} {
		if !httpguts.ValidHeaderFieldName(name) {
			return signer{}, fmt.Errorf("%s %q is not a valid header name", flag, name)
		}
	}
	if strings.EqualFold(o.signatureHeader, o.timestampHeader) {
		return signer{}, fmt.Errorf("--signature-header and --timestamp-header are both %q", o.signatureHeader)
	}
	timestamp, err := timestampOrNow(o.timestamp, time.Now())
	if err != nil {
		return signer{}, err
	}
	secret, err := readSecret(o.secretEnv, o.secretFile)
	if err != nil {
		return signer{}, err
	}
	if len(secret) < minSecretBytes && o.provider != "discord" {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: the secret is %d bytes long; groq_webhook requires at least %d\n",
			len(secret), minSecretBytes)
	}
	s := signer{
		secret:          secret,
		signatureHeader: o.signatureHeader,
		timestampHeader: o.timestampHeader,
		timestamp:       timestamp,
		contentType:     o.contentType,
	}
	if err := o.resolveProvider(cmd, &s); err != nil {
		return signer{}, err
	}
	return s, nil
}

// readSecret reads the shared secret from file, if it is set, or else from
// the environment variable env. As with Caddy's {file.*} placeholder, one
// trailing "\n" or "\r\n" is dropped from a file. Errors name the variable
// or the file, never the value.
func readSecret(env, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the secret file: %w", err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(b) == 0 {
			return nil, fmt.Errorf("the secret file %s is empty", file)
		}
		return b, nil
	}
	if env == "" {
		return nil, errors.New("--secret-env is empty: name the environment variable that holds the secret")
	}
	value, ok := os.LookupEnv(env)
	if !ok {
		return nil, fmt.Errorf("environment variable %s is not set: export the shared secret in it, "+
			"or use --secret-env NAME or --secret-file PATH", env)
	}
	if value == "" {
		return nil, fmt.Errorf("environment variable %s is empty", env)
	}
	return []byte(value), nil
}

// timestampOrNow returns flag, checked as the handler checks a timestamp
// header, or now in unix seconds when flag is empty.
func timestampOrNow(flag string, now time.Time) (string, error) {
	if flag == "" {
		return strconv.FormatInt(now.Unix(), 10), nil
	}
	if _, err := ParseTimestamp(flag); err != nil {
		return "", fmt.Errorf("--timestamp %q: must be 1 to 12 digits (unix seconds), nothing else", flag)
	}
	return flag, nil
}

// newSignCommand returns the `sign` subcommand.
func newSignCommand() *cobra.Command {
	var o struct {
		signingOptions
		id string
	}
	var bodyFile, curlURL string
	cmd := &cobra.Command{
		Use:          "sign [--body-file <path>] [--timestamp <unix>] [--curl <url>]",
		Short:        "Prints the signature headers for a body",
		Long:         signLong,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.signedURL == "" {
				o.signedURL = curlURL
			}
			if o.id == "" {
				o.id = "msg_" + newEventID()[len("evt_"):]
			}
			s, err := o.resolve(cmd)
			if err != nil {
				return err
			}
			body, err := readBody(cmd, bodyFile)
			if err != nil {
				return err
			}
			if s.scheme == provider.GitLab {
				return errors.New("--provider gitlab sends the secret itself in X-Gitlab-Token, and secrets are never printed: use send")
			}
			if target := s.urlFor(body); target != s.signedURL {
				fmt.Fprintf(cmd.ErrOrStderr(), "POST to %s (twilio signs a JSON body through bodySHA256 in the url)\n", target)
			}
			headers, err := s.headers(body, o.id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if curlURL == "" {
				for _, h := range headers {
					if _, err := fmt.Fprintf(out, "%s: %s\n", h[0], h[1]); err != nil {
						return err
					}
				}
				return nil
			}
			if s.scheme == provider.Twilio {
				curlURL = s.urlFor(body)
			}
			line, err := curlCommand(curlURL, s, headers, bodyFile, body)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, line)
			return err
		},
	}
	addSigningFlags(cmd, &o.signingOptions)
	cmd.Flags().StringVar(&o.signedURL, "url", "", "The url the sender signs (providers square and twilio); default: the --curl url")
	cmd.Flags().StringVar(&o.id, "id", "", `The message id that providers standard and svix sign (default: "msg_" and 16 random hex digits)`)
	cmd.Flags().StringVar(&bodyFile, "body-file", "", "File holding the raw body (default: read standard input)")
	cmd.Flags().StringVar(&curlURL, "curl", "", "Print a curl command that POSTs the signed body to this URL")
	return cmd
}

// readBody returns the bytes of file, or of standard input when file is
// empty.
func readBody(cmd *cobra.Command, file string) ([]byte, error) {
	if file != "" {
		body, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the body: %w", err)
		}
		return body, nil
	}
	body, err := io.ReadAll(cmd.InOrStdin())
	if err != nil {
		return nil, fmt.Errorf("reading the body from standard input: %w", err)
	}
	return body, nil
}

// curlCommand returns a shell command that POSTs body to target with the
// signature headers: with --data-binary @file when the body came from a
// file, else with the body inline (--data-raw, which gives '@' no special
// meaning).
func curlCommand(target string, s signer, headers [][2]string, bodyFile string, body []byte) (string, error) {
	if err := checkURL(target); err != nil {
		return "", fmt.Errorf("--curl: %w", err)
	}
	data := "--data-raw " + shellQuote(string(body))
	if bodyFile != "" {
		data = "--data-binary " + shellQuote("@"+bodyFile)
	} else if bytes.IndexByte(body, 0) >= 0 {
		return "", errors.New("the body holds a NUL byte, which cannot be put on a command line: use --body-file")
	}
	lines := []string{
		"curl -sS -i -X POST " + shellQuote(target),
		"-H " + shellQuote("Content-Type: "+s.contentType),
	}
	for _, h := range headers {
		lines = append(lines, "-H "+shellQuote(h[0]+": "+h[1]))
	}
	lines = append(lines, data)
	return strings.Join(lines, " \\\n  "), nil
}

// shellQuote quotes s for a POSIX shell. Inside single quotes every byte is
// literal except the single quote itself, which closes the quotes, is
// escaped with a backslash and opens them again:
//
//	it's  becomes  'it'\''s'
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// checkURL accepts absolute http and https URLs.
func checkURL(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", target)
	}
	return nil
}

// sendOptions are the flags of the send subcommand.
type sendOptions struct {
	signingOptions
	url       string
	eventType string
	data      string
	bodyFile  string
	id        string
	repeat    int
	caCert    string
	insecure  bool
	timeout   time.Duration
}

// newSendCommand returns the `send` subcommand.
func newSendCommand() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:          "send --url <url> [--type <type>] [--data <json> | --body-file <path>] [--repeat <n>]",
		Short:        "Builds, signs and POSTs an event",
		Long:         sendLong,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSend(cmd, &o)
		},
	}
	addSigningFlags(cmd, &o.signingOptions)
	fs := cmd.Flags()
	fs.StringVar(&o.url, "url", "", "Where to POST the event (required); also the url square and twilio sign")
	fs.StringVar(&o.signedURL, "signed-url", "", "The url square and twilio sign, when the sender's differs from --url (behind a proxy)")
	fs.StringVar(&o.eventType, "type", defaultEventType, "The event's type")
	fs.StringVar(&o.data, "data", "{}", "The event's data, as JSON")
	fs.StringVar(&o.bodyFile, "body-file", "", "Send this file's bytes as they are instead of an event")
	fs.StringVar(&o.id, "id", "", `The event's id (default: "evt_" and 16 random hex digits)`)
	fs.IntVar(&o.repeat, "repeat", 1, "Send the same signed bytes this many times")
	fs.StringVar(&o.caCert, "ca-cert", "", "PEM file of a CA to trust, such as Caddy's local root.crt")
	fs.BoolVar(&o.insecure, "insecure", false, "Do not verify the server's TLS certificate")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "Time limit of each attempt")
	_ = cmd.MarkFlagRequired("url")
	cmd.MarkFlagsMutuallyExclusive("body-file", "data")
	cmd.MarkFlagsMutuallyExclusive("body-file", "id")
	cmd.MarkFlagsMutuallyExclusive("body-file", "type")
	return cmd
}

// runSend checks everything it can before it sends anything, then sends
// the same signed request --repeat times.
func runSend(cmd *cobra.Command, o *sendOptions) error {
	if err := checkURL(o.url); err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if o.repeat < 1 {
		return fmt.Errorf("--repeat must be at least 1, got %d", o.repeat)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	}
	if o.signedURL == "" {
		o.signedURL = o.url
	}
	if o.id == "" && o.bodyFile == "" {
		o.id = newEventID()
	}
	s, err := o.resolve(cmd)
	if err != nil {
		return err
	}
	body, err := sendBody(o)
	if err != nil {
		return err
	}
	messageID := o.id
	if messageID == "" {
		messageID = "msg_" + newEventID()[len("evt_"):]
	}
	headers, err := s.headers(body, messageID)
	if err != nil {
		return err
	}
	client, err := newClient(o.caCert, o.insecure, o.timeout)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	if o.insecure {
		fmt.Fprintln(stderr, "warning: --insecure: the server's certificate is not verified")
	}
	postURL := o.url
	if s.scheme == provider.Twilio && o.signedURL == o.url {
		postURL = s.urlFor(body)
	}
	fmt.Fprintf(stderr, "POST %s: %d bytes, timestamp %s\n", postURL, len(body), s.timestamp)

	failed := 0
	for attempt := 1; attempt <= o.repeat; attempt++ {
		line, ok, err := post(client, postURL, s, headers, body)
		if err != nil {
			return fmt.Errorf("attempt %d of %d: %w%s", attempt, o.repeat, err, certificateHint(err))
		}
		fmt.Fprintln(cmd.OutOrStdout(), line)
		if !ok {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d answers were not 2xx", failed, o.repeat)
	}
	return nil
}

// certificateHint suggests --ca-cert when the server's certificate is from
// an unknown CA, as it is for a site with "tls internal".
func certificateHint(err error) string {
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return " (for a site with \"tls internal\", trust Caddy's root.crt with --ca-cert)"
	}
	return ""
}

// sendBody returns the bytes to send: the --body-file as it is, or an
// event built from the flags.
func sendBody(o *sendOptions) ([]byte, error) {
	if o.bodyFile != "" {
		body, err := os.ReadFile(o.bodyFile)
		if err != nil {
			return nil, fmt.Errorf("reading the body: %w", err)
		}
		return body, nil
	}
	id := o.id
	if id == "" {
		id = newEventID()
	}
	return buildEvent(id, o.eventType, o.data, time.Now())
}

// testEvent is the JSON object send builds, in the order of its fields.
type testEvent struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
	Created string          `json:"created"`
}

// buildEvent returns the event JSON for these fields; data must be valid
// JSON.
func buildEvent(id, eventType, data string, created time.Time) ([]byte, error) {
	if !json.Valid([]byte(data)) {
		return nil, fmt.Errorf("--data is not valid JSON: %q", data)
	}
	return json.Marshal(testEvent{
		ID:      id,
		Type:    eventType,
		Data:    json.RawMessage(data),
		Created: created.UTC().Format(time.RFC3339),
	})
}

// newEventID returns "evt_" and 16 random hex digits.
func newEventID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails; see crypto/rand.Read
	return "evt_" + hex.EncodeToString(b)
}

// newClient returns an HTTP client that trusts the system's CAs plus the
// one in caCert, if set, or no certificate at all when insecure. It does not
// follow redirects: a webhook sender does not either, and the 3xx is shown.
func newClient(caCert string, insecure bool, timeout time.Duration) (*http.Client, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: insecure}
	if caCert != "" {
		roots, err := loadCertPool(caCert)
		if err != nil {
			return nil, err
		}
		tlsConfig.RootCAs = roots
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// loadCertPool returns the system's CAs plus those in the PEM file.
func loadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading --ca-cert: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert %s holds no PEM certificate", file)
	}
	return roots, nil
}

// post sends one signed request and describes the answer in one line,
// such as `HTTP 200 {"received":true}`. ok is true for a 2xx answer.
func post(client *http.Client, target string, s signer, headers [][2]string, body []byte) (line string, ok bool, err error) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", s.contentType)
	req.Header.Set("User-Agent", "caddy-groq-webhook")
	for _, h := range headers {
		req.Header.Set(h[0], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxShownResponse))
	if err != nil {
		return "", false, fmt.Errorf("reading the answer: %w", err)
	}
	return describeAnswer(resp, answer), resp.StatusCode >= 200 && resp.StatusCode < 300, nil
}

// describeAnswer returns "HTTP <status> <body>", with the redirect target
// of a 3xx and a mark on duplicates.
func describeAnswer(resp *http.Response, body []byte) string {
	line := "HTTP " + strconv.Itoa(resp.StatusCode)
	if text := strings.TrimSpace(string(body)); text != "" {
		line += " " + text
	}
	if location := resp.Header.Get("Location"); location != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		line += " (redirect to " + location + ")"
	}
	if resp.Header.Get(DuplicateHeader) == "true" {
		line += " (duplicate)"
	}
	return line
}
