package groqwebhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// `caddy groq-webhook queue` is the operator's side of the admin API in
// queue_admin.go: it finds the admin endpoint the way `caddy reload` and
// `caddy stop` do (--address, else the admin address of --config, else
// localhost:2019), so it works wherever those commands work, including a
// unix socket.

const queueLong = `
Inspects and repairs the store-and-forward queues of a running Caddy
through its admin API (the admin.api.groq_webhook module).

  caddy groq-webhook queue stats    every running queue's counts
  caddy groq-webhook queue dead     the dead letters of --name, oldest first
  caddy groq-webhook queue replay   delivers dead letters again (--id or --all)
  caddy groq-webhook queue drop     removes one dead letter (--id)

The admin endpoint is --address if given, else the admin address of the
--config file (adapted with --adapter), else localhost:2019, as for
'caddy reload'. Only metadata is shown: the admin API never returns an
event's body or headers.

Examples:

  $ caddy groq-webhook queue stats
  $ caddy groq-webhook queue dead --name billing --limit 20
  $ caddy groq-webhook queue replay --name billing --id 01J... --id 01J...
  $ caddy groq-webhook queue replay --name billing --all
  $ caddy groq-webhook queue drop --name billing --id 01J...
`

// maxAdminAnswer bounds what the command reads of an admin answer: a full
// dead-letter listing is a few megabytes at most.
const maxAdminAnswer = 64 << 20

// queueOptions are the flags every queue subcommand has.
type queueOptions struct {
	name          string
	address       string
	configFile    string
	configAdapter string
}

// newQueueCommand returns the `queue` subcommand and its own subcommands.
func newQueueCommand() *cobra.Command {
	o := new(queueOptions)
	cmd := &cobra.Command{
		Use:          "queue stats|dead|replay|drop [--name <queue>] [--address <admin>]",
		Short:        "Shows queue counts and lists, replays or drops dead letters",
		Long:         queueLong,
		Args:         cobra.ArbitraryArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q: use stats, dead, replay or drop", args[0])
		},
	}
	fs := cmd.PersistentFlags()
	fs.StringVar(&o.name, "name", DefaultQueueName, "Name of the queue")
	fs.StringVar(&o.address, "address", "", "Address of Caddy's admin API (default: from --config, else localhost:2019)")
	fs.StringVarP(&o.configFile, "config", "c", "", "Config file to read the admin address from, if --address is not used")
	fs.StringVarP(&o.configAdapter, "adapter", "a", "", "Name of the config adapter of --config")
	cmd.AddCommand(newQueueStatsCommand(o), newQueueDeadCommand(o), newQueueReplayCommand(o), newQueueDropCommand(o))
	return cmd
}

// newQueueStatsCommand returns `queue stats`.
func newQueueStatsCommand(o *queueOptions) *cobra.Command {
	return &cobra.Command{
		Use:          "stats [--name <queue>]",
		Short:        "Prints every running queue's counts (only --name's, if given)",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var queues []queueSummary
			if err := o.call(http.MethodGet, "/groq_webhook/queues", nil, &queues); err != nil {
				return err
			}
			if cmd.Flag("name").Changed {
				var only []queueSummary
				for _, q := range queues {
					if q.Name == o.name {
						only = append(only, q)
					}
				}
				if len(only) == 0 {
					return fmt.Errorf("no queue %q is running", o.name)
				}
				queues = only
			}
			out := cmd.OutOrStdout()
			if len(queues) == 0 {
				_, err := fmt.Fprintln(out, "no queue is running")
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tQUEUED\tIN FLIGHT\tDEAD\tOLDEST")
			for _, q := range queues {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n",
					cell(q.Name), q.Queued, q.InFlight, q.Dead, formatWaited(q.OldestQueuedSeconds))
			}
			return tw.Flush()
		},
	}
}

// formatWaited shows oldest_queued_seconds as a duration, "-" when
// nothing waits.
func formatWaited(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	return time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
}

// newQueueDeadCommand returns `queue dead`.
func newQueueDeadCommand(o *queueOptions) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:          "dead [--name <queue>] [--limit <n>]",
		Short:        "Lists a queue's dead letters, oldest first",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.checkName(); err != nil {
				return err
			}
			var letters []deadLetter
			uri := o.queuePath() + "/dead?limit=" + strconv.Itoa(limit)
			if err := o.call(http.MethodGet, uri, nil, &letters); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(letters) == 0 {
				_, err := fmt.Fprintf(out, "queue %s has no dead letters\n", cell(o.name))
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tATTEMPTS\tSTATUS\tRECEIVED\tDEAD AT\tLAST ERROR")
			for _, l := range letters {
				status := "-"
				if l.LastStatus != 0 {
					status = strconv.Itoa(l.LastStatus)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
					cell(l.ID), cell(l.Type), l.Attempts, status, cell(l.ReceivedAt), cell(l.DeadAt), cell(l.LastError))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", defaultDeadLimit, fmt.Sprintf("List at most this many (1 to %d)", maxDeadLimit))
	return cmd
}

// newQueueReplayCommand returns `queue replay`.
func newQueueReplayCommand(o *queueOptions) *cobra.Command {
	var req replayRequest
	cmd := &cobra.Command{
		Use:          "replay [--name <queue>] (--id <id> [--id <id>...] | --all)",
		Short:        "Makes dead letters due again, with their attempts reset",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.checkName(); err != nil {
				return err
			}
			var answer struct {
				Replayed int `json:"replayed"`
			}
			if err := o.call(http.MethodPost, o.queuePath()+"/replay", req, &answer); err != nil {
				return err
			}
			if !req.All && answer.Replayed < len(req.IDs) {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %d of the %d ids are not dead letters of queue %s and were skipped\n",
					len(req.IDs)-answer.Replayed, len(req.IDs), cell(o.name))
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "replayed %d\n", answer.Replayed)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&req.IDs, "id", nil, "Id of a dead letter to replay (repeatable)")
	cmd.Flags().BoolVar(&req.All, "all", false, "Replay every dead letter of the queue")
	cmd.MarkFlagsOneRequired("id", "all")
	cmd.MarkFlagsMutuallyExclusive("id", "all")
	return cmd
}

// newQueueDropCommand returns `queue drop`.
func newQueueDropCommand(o *queueOptions) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:          "drop [--name <queue>] --id <id>",
		Short:        "Removes a dead letter for good",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.checkName(); err != nil {
				return err
			}
			if id == "" {
				return errors.New("--id is empty")
			}
			if err := o.call(http.MethodDelete, o.queuePath()+"/dead/"+url.PathEscape(id), nil, nil); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "dropped %s\n", cell(id))
			return err
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "Id of the dead letter to drop (required)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func (o *queueOptions) checkName() error {
	if o.name == "" {
		return errors.New("--name is empty")
	}
	return nil
}

// queuePath is the admin path of the queue --name; the name is escaped as
// one path segment, as the admin module parses it.
func (o *queueOptions) queuePath() string {
	return "/groq_webhook/queues/" + url.PathEscape(o.name)
}

// call sends one request to the admin API and decodes a 2xx answer into
// out (unless out is nil). Any other answer is an error carrying the
// server's message.
func (o *queueOptions) call(method, uri string, body, out any) error {
	addr, err := caddycmd.DetermineAdminAPIAddress(o.address, nil, o.configFile, o.configAdapter)
	if err != nil {
		return fmt.Errorf("finding the admin API address: %w", err)
	}
	var reader io.Reader // a nil interface, not a nil *bytes.Reader, when there is no body
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, reader)
	if err != nil {
		return describeAdminError(addr, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("admin API at %s: HTTP %d: %s", addr, resp.StatusCode, serverMessage(answer))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("admin API at %s: unexpected answer (is the groq_webhook module in this Caddy?): %w", addr, err)
	}
	return nil
}

// adminStatusError matches the error AdminAPIRequest returns for an
// answer of 400 or more, which carries the status and the body.
var adminStatusError = regexp.MustCompile(`(?s)HTTP (\d{3}): (.*)$`)

// describeAdminError rewrites AdminAPIRequest's errors for an operator:
// the server's own message for an error answer, and a hint when nothing
// answers at addr.
func describeAdminError(addr string, err error) error {
	if m := adminStatusError.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("admin API at %s: HTTP %s: %s", addr, m[1], serverMessage([]byte(m[2])))
	}
	if strings.Contains(err.Error(), "performing request") {
		return fmt.Errorf("reaching Caddy's admin API at %s (is Caddy running, and is that its admin address? see --address and --config): %w", addr, err)
	}
	return fmt.Errorf("admin API at %s: %w", addr, err)
}

// serverMessage returns the "error" of a JSON error answer, or the answer
// itself, trimmed and printable, when it is not one.
func serverMessage(answer []byte) string {
	var apiErr struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(answer, &apiErr) == nil && apiErr.Error != "" {
		return printable(apiErr.Error)
	}
	text := strings.TrimSpace(string(answer))
	if len(text) > 500 {
		text = text[:500] + "..."
	}
	return printable(text)
}

// printable quotes s if it holds control characters, which a terminal
// could take for commands.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// cell makes s safe to print in a table: "-" when empty, quoted when it
// holds spaces or control characters. Ids, event types and errors come
// from senders and upstreams, and a terminal must not execute what they
// hold.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
