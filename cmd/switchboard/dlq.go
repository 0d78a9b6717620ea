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

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/router"
)

const dlqHelp = `Inspects and re-queues dead letters: deliveries that failed for good (a
permanent error, or retries exhausted), kept with their event, sink, attempts
and last error.

  dlq list              one line per dead letter, oldest first: id, sink, event id,
                        attempts, last error (--sink S and --q TEXT narrow it)
  dlq show ID           one dead letter with its event, as JSON
  dlq replay ID...      put dead letters back in their sinks' queues, attempts reset
  dlq replay --all      all of them
  dlq purge ID...       delete dead letters; purge --all deletes all

While the daemon runs, dlq talks to its admin API (admin.listen in the
config). When the daemon is stopped, dlq opens the queue in queue.dir itself.
`

func cmdDLQ(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dlq", "list | show ID | replay (ID... | --all) | purge (ID... | --all) [-c FILE]", dlqHelp, stderr)
	path := configFlag(fs)
	all := fs.Bool("all", false, "replay or purge every dead letter")
	asJSON := fs.Bool("json", false, "list: print JSON")
	sink := fs.String("sink", "", "list, replay --all, purge --all: only the dead letters of this `sink`")
	text := fs.String("q", "", "list, replay --all, purge --all: only dead letters whose last error contains this `text`")
	// Flags may stand anywhere: dlq -c x.yaml list, dlq replay 42 -c x.yaml.
	var positional []string
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	var sub string
	var ids []string
	if len(positional) > 0 {
		sub, ids = positional[0], positional[1:]
	}
	switch {
	case sub == "":
		fs.Usage()
		return exitUsage
	case sub == "list" && len(ids) > 0, sub == "show" && len(ids) != 1:
		fmt.Fprintf(stderr, "dlq %s: wrong number of arguments\n", sub)
		return exitUsage
	case (sub == "replay" || sub == "purge") && (len(ids) == 0) == !*all:
		fmt.Fprintf(stderr, "dlq %s: give dead-letter ids or --all (not both)\n", sub)
		return exitUsage
	case sub != "list" && sub != "show" && sub != "replay" && sub != "purge":
		fmt.Fprintf(stderr, "dlq: unknown subcommand %q\n", sub)
		fs.Usage()
		return exitUsage
	}
	f, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return exitFail
	}
	c, closeFn, err := dlqClient(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	defer closeFn()
	req := daemon.DLQRequest{IDs: ids, All: *all, Sink: *sink, Q: *text}
	switch sub {
	case "list":
		list, err := c.list(router.DeadQuery{Sink: *sink, Text: *text})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		if *asJSON {
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
		dl, err := c.show(ids[0])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		return printJSON(stdout, dl)
	case "replay", "purge":
		res, err := c.act(sub, req)
		for _, s := range res.Skipped {
			fmt.Fprintf(stderr, "not replayed %s: sink %q %s\n", s.ID, s.Sink, s.Reason)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		if sub == "replay" {
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
	store router.DeadLetters
	known func(string) bool
}

func dlqClient(f *config.File) (*dlqBackend, func(), error) {
	host := f.Admin.Listen
	if h, p, err := net.SplitHostPort(host); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		host = net.JoinHostPort("127.0.0.1", p)
	}
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		return &dlqBackend{base: "http://" + host}, func() {}, nil
	}
	q, err := daemon.OpenQueue(f, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("the daemon's admin API at %s does not answer, and the queue cannot be opened directly: %w", host, err)
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
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
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
