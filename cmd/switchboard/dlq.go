package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/router"
)

const dlqHelp = `Inspects and re-queues dead letters: deliveries that failed for good (a
permanent error, or retries exhausted), kept with their event, sink, attempts
and last error.

While the daemon runs, dlq talks to its admin API (admin.listen in the
config), with the admin token from --token-file, $SWITCHBOARD_ADMIN_TOKEN or
the config's admin.auth. When the daemon is stopped, dlq opens the queue
itself: queue.dir, or with queue.driver nats the NATS streams every replica
shares.`

// newDLQCmd is dlq and its subcommands; -c goes before or after the
// subcommand.
func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay and purge dead letters",
		Long:  dlqHelp,
		Example: `  switchboard dlq list -c config.example.yaml
  switchboard dlq show 42 -c config.example.yaml
  switchboard dlq replay --all -c config.example.yaml`,
		Args: cobra.ArbitraryArgs,
		// Without a known subcommand: a usage error, not help and exit 0.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
				return exitCode(exitUsage)
			}
			return fmt.Errorf("unknown subcommand %q; use list, show, replay or purge", args[0])
		},
	}
	path := configFlag(cmd, true)
	tokenFile := cmd.PersistentFlags().String("token-file", "", "file holding the admin API's bearer token (default $"+AdminTokenEnv+")")
	sink := cmd.PersistentFlags().String("sink", "", "list, replay --all, purge --all: only the dead letters of this sink")
	text := cmd.PersistentFlags().String("q", "", "list, replay --all, purge --all: only dead letters whose last error contains this text")
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "One line per dead letter: id, sink, event id, attempts, time of death, last error",
		Example: `  switchboard dlq list -c config.example.yaml --json`,
		Args:    noArgs("list shows every dead letter"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return status(runDLQ(*path, dlqAction{verb: "list", json: asJSON, tokenFile: *tokenFile, sink: *sink, text: *text}, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show := &cobra.Command{
		Use:     "show ID",
		Short:   "One dead letter with its event, as JSON",
		Example: `  switchboard dlq show 42 -c config.example.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return status(runDLQ(*path, dlqAction{verb: "show", ids: args, tokenFile: *tokenFile}, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.AddCommand(list, show, dlqBulkCmd("replay", "Put dead letters back in their sinks' queues, attempts reset", path, tokenFile, sink, text),
		dlqBulkCmd("purge", "Delete dead letters", path, tokenFile, sink, text))
	return cmd
}

// dlqBulkCmd is replay or purge: of the ids given, or of --all.
func dlqBulkCmd(verb, short string, path, tokenFile, sink, text *string) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   verb + " (ID... | --all)",
		Short: short,
		Example: fmt.Sprintf(`  switchboard dlq %s 42 43 -c config.example.yaml
  switchboard dlq %s --all -c config.example.yaml`, verb, verb),
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == !all {
				return fmt.Errorf("give dead-letter ids or --all (not both)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return status(runDLQ(*path, dlqAction{verb: verb, ids: args, all: all, tokenFile: *tokenFile, sink: *sink, text: *text}, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, verb+" every dead letter")
	return cmd
}

// dlqAction is one dlq subcommand with its arguments.
type dlqAction struct {
	verb string // list, show, replay, purge
	ids  []string
	all  bool
	json bool
	// tokenFile holds the admin API's token (--token-file).
	tokenFile string
	// sink and text narrow list, replay --all and purge --all to one
	// sink's dead letters and to those whose last error contains text.
	sink, text string
}

func runDLQ(path string, a dlqAction, stdout, stderr io.Writer) int {
	cfg, err := loadClientConfig(path)
	var c *dlqBackend
	closeFn := func() {}
	if err == nil {
		c, closeFn, err = dlqClient(cfg)
	}
	if err == nil && c.base != "" {
		c.token, err = cfg.adminTokenFor(a.tokenFile)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	defer closeFn()
	req := daemon.DLQRequest{IDs: a.ids, All: a.all, Sink: a.sink, Q: a.text}
	switch a.verb {
	case "list":
		list, err := c.list(router.DeadQuery{Sink: a.sink, Text: a.text})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		if a.json {
			return printJSON(stdout, list)
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSINK\tEVENT ID\tATTEMPTS\tDIED\tLAST ERROR")
		for _, dl := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", dl.ID, dl.Sink, dl.EventID, dl.Attempts,
				dl.DeadAt.Local().Format(time.DateTime), oneLine(dl.LastError, 120))
		}
		tw.Flush()
	case "show":
		dl, err := c.show(a.ids[0])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		return printJSON(stdout, dl)
	case "replay", "purge":
		res, err := c.act(a.verb, req)
		for _, s := range res.Skipped {
			fmt.Fprintf(stderr, "not replayed %s: sink %q %s\n", s.ID, s.Sink, s.Reason)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		if a.verb == "replay" {
			fmt.Fprintf(stdout, "replayed %d dead letter%s\n", res.Replayed, plural(res.Replayed))
		} else {
			fmt.Fprintf(stdout, "purged %d dead letter%s\n", res.Purged, plural(res.Purged))
		}
	}
	return exitOK
}

// dlqBackend is the running daemon's admin API or, when it is not running,
// the queue directory itself.
type dlqBackend struct {
	base  string // admin API, when the daemon runs
	token string // its bearer token, if it has one
	store router.DeadLetters
	known func(string) bool
}

func dlqClient(c *clientConfig) (*dlqBackend, func(), error) {
	if err := c.need("admin.listen"); err != nil {
		return nil, nil, err
	}
	host := adminHost(c.Admin.Listen)
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		return &dlqBackend{base: "http://" + host}, func() {}, nil
	}
	// The daemon is stopped: the queue itself.
	if err := c.need("queue"); err != nil {
		return nil, nil, err
	}
	f := c.File
	if f.Queue.Driver != config.DriverNATS {
		if err := existingQueueDir(f.Queue.Dir, "queue.dir"); err != nil {
			return nil, nil, fmt.Errorf("the daemon's admin API at %s does not answer, and %w", host, err)
		}
	}
	q, err := daemon.OpenQueue(f, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("the daemon's admin API at %s does not answer, and %s cannot be opened directly: %w", host, queueWhere(f.Queue), err)
	}
	known := func(sink string) bool { _, ok := f.Sinks[sink]; return ok }
	return &dlqBackend{store: q, known: known}, func() { q.Close() }, nil
}

// list returns every dead letter matching query, oldest first, paging
// through the API (or the queue) newest first.
func (c *dlqBackend) list(query router.DeadQuery) ([]router.DeadLetter, error) {
	var out []router.DeadLetter
	var err error
	if c.store != nil {
		err = daemon.EachDead(c.store, query, func(dl router.DeadLetter) { out = append(out, dl) })
	} else {
		for cursor := ""; ; {
			v := url.Values{"limit": {strconv.Itoa(daemon.MaxDLQPage)}, "cursor": {cursor}, "sink": {query.Sink}, "q": {query.Text}}
			var page daemon.DLQPage
			if err = c.call(http.MethodGet, "/api/dlq?"+v.Encode(), nil, &page); err != nil {
				break
			}
			out = append(out, page.Items...)
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
	}
	slices.Reverse(out)
	return out, err
}

func (c *dlqBackend) show(id string) (*router.DeadLetter, error) {
	if c.store != nil {
		dl, err := c.store.GetDead(id)
		if errors.Is(err, router.ErrNotFound) {
			return nil, fmt.Errorf("no dead letter %s", id)
		}
		return dl, err
	}
	var out router.DeadLetter
	return &out, c.call(http.MethodGet, "/api/dlq/"+id, nil, &out)
}

func (c *dlqBackend) act(verb string, req daemon.DLQRequest) (daemon.DLQResult, error) {
	if c.store != nil {
		if verb == "replay" {
			return daemon.Replay(c.store, req, c.known)
		}
		n, err := daemon.Purge(c.store, req)
		return daemon.DLQResult{Purged: n}, err
	}
	var out daemon.DLQResult
	return out, c.call(http.MethodPost, "/api/dlq/"+verb, req, &out)
}

func (c *dlqBackend) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%s %s: the admin API needs its token: set %s or pass --token-file", method, path, AdminTokenEnv)
		}
		return fmt.Errorf("%s %s: %s", method, path, e.Error)
	}
	return json.Unmarshal(b, out)
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFail
	}
	return exitOK
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}
