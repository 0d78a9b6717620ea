package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"switchboard/daemon"
	"switchboard/router"
	"switchboard/sinks"
	"switchboard/sources"
)

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// routeResult is what `route --json` prints.
type routeResult struct {
	Event  *router.Event              `json:"event"`
	Rules  []router.Verdict           `json:"rules"`
	Sinks  []string                   `json:"sinks"`
	Bodies map[string]json.RawMessage `json:"bodies"`
	// Filtered is set when the source's own events/filters drop the event.
	Filtered bool `json:"filtered,omitempty"`
}

func cmdRoute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("route", "-c FILE --source NAME [--query 'k=v&...'] [--header 'K: V']... [--json] [PAYLOAD_FILE | -]", `Dry run: parses one payload as the named source would, then prints the
normalized event, each rule's verdict (match, no match, error and why), the
sinks that would receive it and, per sink, the body it would send.
Nothing is delivered.

The payload is read from PAYLOAD_FILE, or standard input with -. Without a
payload the request is a GET carrying only --query (for GET-style sources).

Examples:
  switchboard route -c switchboard.yaml --source bird examples/bird/voice-failed.json
  switchboard route -c switchboard.yaml --source telecmi --query 'type=event&status=answered'
  cat event.json | switchboard route -c switchboard.yaml --source app --json -
`, stderr)
	path := configFlag(fs)
	source := fs.String("source", "", "source `name` from the config (required)")
	query := fs.String("query", "", "query string of the request, `k=v&...`")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	reqPath := fs.String("path", "", "request `path`, for sources that take a segment below their path (default: the source's path)")
	var headers headerFlags
	fs.Var(&headers, "header", "request header `'K: V'` (repeatable)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *source == "" || fs.NArg() > 1 {
		fmt.Fprintln(stderr, "route needs --source NAME and at most one payload file (or - for standard input)")
		fs.Usage()
		return exitUsage
	}
	snap, ok := load(*path, stderr)
	if !ok {
		return exitFail
	}
	src := snap.Sources[*source]
	if src == nil || src.HTTP == nil {
		fmt.Fprintf(stderr, "%s: no webhook source named %q; sources: %s\n", *path, *source, strings.Join(webhookNames(snap), ", "))
		return exitFail
	}
	var body []byte
	var err error
	method := http.MethodPost
	switch {
	case fs.NArg() == 0:
		method = http.MethodGet
	case fs.Arg(0) == "-":
		body, err = io.ReadAll(stdin)
	default:
		body, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(stderr, "cannot read the payload: %v\n", err)
		return exitFail
	}
	target, subpath := src.Path, ""
	if *reqPath != "" {
		var found *daemon.Source
		if found, subpath = snap.Lookup(*reqPath); found != src {
			fmt.Fprintf(stderr, "--path %s is not served by source %s (its path is %s)\n", *reqPath, src.Name, src.Path)
			return exitUsage
		}
		target = *reqPath
	}
	if *query != "" {
		target += "?" + strings.TrimPrefix(*query, "?")
	}
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(stderr, "--header %q is not 'Name: value'\n", h)
			return exitUsage
		}
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := src.HTTP.Parse(&sources.Request{HTTP: req, Body: body, ReceivedAt: time.Now().UTC(), Source: src.Name, Subpath: subpath})
	if err != nil {
		status := http.StatusBadRequest
		var re *sources.RejectError
		if errors.As(err, &re) {
			status = re.Status
		}
		fmt.Fprintf(stderr, "rejected (%d %s): %v\n", status, http.StatusText(status), err)
		return exitFail
	}
	if res.Reply != nil {
		fmt.Fprintf(stdout, "verification request: the source answers 200 %s\n", res.Reply)
		return exitOK
	}
	results := make([]routeResult, 0, len(res.Events))
	for _, ev := range res.Events {
		ev.Headers = map[string]string{}
		for k, v := range req.Header {
			ev.Headers[strings.ToLower(k)] = v[0]
		}
		results = append(results, routeOne(snap, src, ev))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		for _, r := range results {
			enc.Encode(r)
		}
		return exitOK
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printRoute(stdout, r)
	}
	return exitOK
}

func routeOne(snap *daemon.Snapshot, src *daemon.Source, ev *router.Event) routeResult {
	r := routeResult{Event: ev, Rules: []router.Verdict{}, Sinks: []string{}, Bodies: map[string]json.RawMessage{}}
	if !src.Passes(ev) {
		r.Filtered = true
		return r
	}
	idx := snap.Table.Route(ev, nil, nil, &r.Rules)
	for _, i := range idx {
		name := snap.Table.SinkName(i)
		r.Sinks = append(r.Sinks, name)
		r.Bodies[name] = preview(snap.Sinks[name], ev)
	}
	return r
}

// preview is the body a sink would send, as JSON when it is JSON, else as a
// JSON string.
func preview(s *daemon.Sink, ev *router.Event) json.RawMessage {
	var b []byte
	var err error
	if s == nil {
		b, err = nil, errors.New("sink not built")
	} else if p, ok := s.Sink.(sinks.Previewer); ok {
		b, err = p.Preview(ev)
	} else {
		b, err = ev.MarshalJSON()
	}
	if err != nil {
		b = []byte("error: " + err.Error())
	}
	if json.Valid(b) {
		return bytes.TrimSpace(b)
	}
	q, _ := json.Marshal(string(b))
	return q
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

func webhookNames(snap *daemon.Snapshot) []string {
	var out []string
	for name, s := range snap.Sources {
		if s.HTTP != nil {
			out = append(out, name)
		}
	}
	return out
}
