package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"switchboard/daemon"
	"switchboard/router"
	"switchboard/sources"
)

// routeResult is what `route --json` prints: the pipeline's dry-run result.
type routeResult = daemon.Trial

// routeOptions are route's flags and argument.
type routeOptions struct {
	config, source, query, remote, path string
	json                                bool
	headers                             []string
	payload                             string // file, - for standard input, "" for none
}

func newRouteCmd() *cobra.Command {
	var o routeOptions
	cmd := &cobra.Command{
		Use:   "route --source NAME [PAYLOAD_FILE | -]",
		Short: "Dry-run one payload through a config: event, rule verdicts, sink bodies",
		Long: `Dry run: parses one payload as the named source would, then prints the
normalized event, each rule's verdict (match, no match, error and why), the
sinks that would receive it and, per sink, the body it would send.
Nothing is delivered.

A file of many events, one JSON object a line (JSON Lines: provider payloads,
or a file sink's archive of normalized events, which are routed as they are),
prints one line per event and how often each rule matched and each
sink was chosen: test a rule change against real traffic before deploying.

The payload is read from PAYLOAD_FILE, or standard input with -. Without a
payload the request is a GET carrying only --query (for GET-style sources).
For a stream source (cisco) the payload is one event as the provider's tools
print it (grpcurl's JSON).

Exit status 0 when the payload parsed, 1 when the source rejects it or the
config is invalid.`,
		Example: `  switchboard route -c config.example.yaml --source bird examples/bird/voice-outbound-failed.json
  switchboard route -c examples/telecmi/switchboard.yaml --source telecmi --query 'type=event&status=answered&cmiuuid=c1&leg=a&appid=1'
  switchboard route -c config.example.yaml --source bird --json - < examples/bird/voice-outbound-busy.json
  switchboard route examples/bird/voice-outbound-failed.json --source bird -c examples/bird/switchboard.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("takes at most one payload file (or - for standard input), got %q", strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.payload = args[0]
			}
			return status(runRoute(o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVarP(&o.config, "config", "c", "./switchboard.yaml", "`FILE` to read the config from")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.Flags().StringVar(&o.source, "source", "", "source `NAME` from the config (required)")
	_ = cmd.MarkFlagRequired("source")
	cmd.Flags().StringVar(&o.query, "query", "", "query string of the request, `'k=v&...'`")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object per event instead of text")
	cmd.Flags().StringVar(&o.remote, "remote-addr", "127.0.0.1:40000", "client `HOST:PORT` the request comes from (for sources with allow_ips)")
	cmd.Flags().StringVar(&o.path, "path", "", "request `PATH`, for sources that take a segment below their path (default: the source's path)")
	cmd.Flags().StringArrayVar(&o.headers, "header", nil, "request header `'K: V'` (repeatable)")
	return cmd
}

func runRoute(o routeOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	hdrs := map[string]string{}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(stderr, "--header %q is not 'Name: value'\n", h)
			return exitUsage
		}
		hdrs[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	snap, ok := load(o.config, stderr)
	if !ok {
		return exitFail
	}
	var body []byte
	var err error
	switch o.payload {
	case "":
	case "-":
		body, err = io.ReadAll(stdin)
	default:
		body, err = os.ReadFile(o.payload)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cannot read the payload: %v\n", err)
		return exitFail
	}
	bodies := [][]byte{body}
	if lines, ok := jsonLines(body); ok {
		bodies = lines
	}
	var all []routeResult
	for i, b := range bodies {
		if ev := normalized(b); ev != nil {
			// A line of a file sink's archive: already normalized, routed as is.
			src := snap.Sources[ev.Source]
			if src == nil {
				src = snap.Sources[o.source]
			}
			if src != nil {
				all = append(all, snap.TryEvent(src, ev))
				continue
			}
		}
		results, reply, err := dryRun(snap, dryRequest{Source: o.source, Path: o.path, Query: o.query, Headers: hdrs, Body: b, RemoteAddr: o.remote})
		var ue usageError
		switch {
		case errors.As(err, &ue):
			fmt.Fprintln(stderr, err)
			return exitFail
		case err != nil && len(bodies) == 1:
			fmt.Fprintf(stderr, "rejected (%s): %v\n", rejectStatus(err), err)
			return exitFail
		case err != nil:
			fmt.Fprintf(stderr, "line %d: rejected (%s): %v\n", i+1, rejectStatus(err), err)
			continue
		case reply != nil:
			fmt.Fprintf(stdout, "verification request: the source answers 200 %s\n", reply)
			continue
		}
		all = append(all, results...)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		if len(bodies) == 1 {
			enc.SetIndent("", "  ")
		}
		for _, r := range all {
			enc.Encode(r)
		}
		return exitOK
	}
	if len(bodies) > 1 {
		printSummary(stdout, all)
		return exitOK
	}
	for i, r := range all {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printRoute(stdout, r)
	}
	return exitOK
}

// dryRequest is one request to run through a source without a server.
type dryRequest = daemon.DryRequest

// usageError is a dry request that names no usable source or path.
type usageError = daemon.UsageError

// dryRun takes a request through the daemon's ingest pipeline (method,
// body size, the source's parsing, event checks, routing), delivering
// nothing. An error is a usageError or the pipeline's rejection, exactly
// as the webhook listener would answer it.
func dryRun(snap *daemon.Snapshot, dr dryRequest) ([]routeResult, []byte, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return snap.Try(dr, log)
}

func rejectStatus(err error) string {
	status := http.StatusBadRequest
	var re *sources.RejectError
	if errors.As(err, &re) {
		status = re.Status
	}
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}

// normalized returns the event when b is a normalized event as the file
// sink writes it, else nil.
func normalized(b []byte) *router.Event { return daemon.Normalized(b) }

// jsonLines splits a body of several JSON values, one a line (yesterday's
// traffic, say), into its lines. A single JSON value, even spread over
// many lines, is not JSON Lines.
func jsonLines(b []byte) ([][]byte, bool) {
	if json.Valid(b) {
		return nil, false
	}
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		out = append(out, line)
	}
	return out, len(out) > 1
}

// printSummary prints one line per event, then how often each rule matched
// and each sink was chosen: the effect of a rule change on a day of traffic.
func printSummary(w io.Writer, results []routeResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT ID\tEVENT\tSTATUS\tMATCHED RULES\tSINKS")
	matches, errs, sinksHit := map[string]int{}, map[string]int{}, map[string]int{}
	var ruleOrder, sinkOrder []string
	filtered := 0
	for _, r := range results {
		var matched []string
		for _, v := range r.Rules {
			if _, ok := matches[v.Rule]; !ok {
				matches[v.Rule] = 0
				ruleOrder = append(ruleOrder, v.Rule)
			}
			switch v.Verdict {
			case router.Match:
				matches[v.Rule]++
				matched = append(matched, v.Rule)
			case router.Error:
				errs[v.Rule]++
				matched = append(matched, v.Rule+"(error)")
			}
		}
		for _, s := range r.Sinks {
			if _, ok := sinksHit[s]; !ok {
				sinkOrder = append(sinkOrder, s)
			}
			sinksHit[s]++
		}
		sinks := strings.Join(r.Sinks, ",")
		if r.Filtered {
			filtered++
			sinks = "(filtered by source)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Event.ID, r.Event.Event, dash(r.Event.Status), dash(strings.Join(matched, ",")), dash(sinks))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d events, %d filtered by their source\n\n", len(results), filtered)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tMATCHED\tERRORS")
	for _, r := range ruleOrder {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", r, matches[r], errs[r])
	}
	fmt.Fprintln(tw, "\nSINK\tEVENTS\t")
	for _, s := range sinkOrder {
		fmt.Fprintf(tw, "%s\t%d\t\n", s, sinksHit[s])
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printRoute(w io.Writer, r routeResult) {
	ev, _ := json.MarshalIndent(r.Event, "", "  ")
	fmt.Fprintf(w, "event:\n%s\n", indent(string(ev), "  "))
	if r.Filtered {
		fmt.Fprintln(w, "\nfiltered: the source's own events/filters drop this event before routing; it would be answered {\"status\":\"filtered\"}")
		return
	}
	fmt.Fprintln(w, "\nrules:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range r.Rules {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Rule, strings.ReplaceAll(v.Verdict, "_", " "), v.Reason)
	}
	tw.Flush()
	if len(r.Rules) == 0 {
		fmt.Fprintln(w, "  (no rules)")
	}
	if len(r.Sinks) == 0 {
		fmt.Fprintln(w, "\nsinks: none (no rule matched and no unmatched sinks)")
		return
	}
	fmt.Fprintf(w, "\nsinks: %s\n", strings.Join(r.Sinks, ", "))
	shown := map[string]string{}
	for _, name := range r.Sinks {
		body := r.Bodies[name]
		if first, ok := shown[string(body)]; ok {
			fmt.Fprintf(w, "\n%s would receive the same body as %s\n", name, first)
			continue
		}
		shown[string(body)] = name
		var s string
		if json.Unmarshal(body, &s) != nil {
			var buf bytes.Buffer
			json.Indent(&buf, body, "", "  ")
			s = buf.String()
		}
		fmt.Fprintf(w, "\n%s would receive:\n%s\n", name, indent(s, "  "))
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
