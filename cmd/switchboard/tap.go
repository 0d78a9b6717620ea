package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"github.com/spf13/cobra"

	"switchboard/daemon"
)

const tapHelp = `Streams, live, what the running daemon makes of every request: accepted
(with the rules it matched and the sinks chosen), filtered by its source, a
duplicate of an event already accepted, or rejected with the reason. It is
the console's live tap in the terminal, coloured like the daemon's log (plain
when the output is not a terminal).

--source keeps one source's events; --when keeps the events for which an
expression holds, written as a rule's when (same names: status, event,
payload fields...). --json prints one JSON object a line, for jq.

The tap never slows the daemon: when this terminal falls behind, events are
skipped and a line says how many. Stop with Ctrl-C.

It calls the daemon's admin API (admin.listen in the config), with the token
from --token-file, $SWITCHBOARD_ADMIN_TOKEN or the config's admin.auth.`

func newTapCmd() *cobra.Command {
	var o tapOptions
	cmd := &cobra.Command{
		Use:   "tap",
		Short: "Stream accepted, filtered and rejected events live from the running daemon",
		Long:  tapHelp,
		Example: `  switchboard tap -c config.example.yaml
  switchboard tap -c config.example.yaml --source bird --when 'status == "failed"'
  switchboard tap -c config.example.yaml --json`,
		Args: noArgs("filter with --source and --when"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return status(runTap(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	o.config = configFlag(cmd, false)
	cmd.Flags().StringVar(&o.source, "source", "", "only events of source `NAME`")
	cmd.Flags().StringVar(&o.when, "when", "", "only events for which `EXPR` holds (a rule's when)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object per event")
	cmd.Flags().StringVar(&o.tokenFile, "token-file", "", "file holding the admin API's bearer token (default $"+AdminTokenEnv+")")
	return cmd
}

type tapOptions struct {
	config                  *string
	source, when, tokenFile string
	json                    bool
}

func runTap(ctx context.Context, o tapOptions, stdout, stderr io.Writer) int {
	api, code := adminClient(*o.config, o.tokenFile, stderr)
	if api == nil {
		return code
	}
	q := url.Values{}
	if o.source != "" {
		q.Set("source", o.source)
	}
	if o.when != "" {
		q.Set("when", o.when)
	}
	resp, err := api.stream(ctx, "/api/tap?"+q.Encode())
	if err != nil {
		fmt.Fprintln(stderr, err)
		var bad badRequest
		if errors.As(err, &bad) {
			return exitUsage // --source or --when the daemon cannot use
		}
		return exitFail
	}
	defer resp.Body.Close()
	out := newTapPrinter(stdout, o.json)
	if !o.json {
		fmt.Fprintf(stderr, "tapping %s; Ctrl-C to stop\n", api.base)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		switch event {
		case "tap":
			out.item(data)
		case "dropped":
			var d struct{ Dropped int }
			json.Unmarshal([]byte(data), &d)
			out.dropped(d.Dropped)
		}
	}
	if ctx.Err() != nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "the daemon ended the tap (stopped or restarted)")
	return exitFail
}

// tapPrinter writes tap items as the daemon's log lines look: tint's
// colours on a terminal, plain text elsewhere, or JSON lines.
type tapPrinter struct {
	w    io.Writer
	json bool
	h    slog.Handler
}

func newTapPrinter(w io.Writer, asJSON bool) *tapPrinter {
	return &tapPrinter{w: w, json: asJSON,
		h: tint.NewHandler(w, &tint.Options{Level: slog.LevelDebug, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w)})}
}

func (p *tapPrinter) item(data string) {
	if p.json {
		fmt.Fprintln(p.w, data)
		return
	}
	var it daemon.TapItem
	if json.Unmarshal([]byte(data), &it) != nil {
		return
	}
	// The daemon's own levels: a rejection is logged at warn, filtered
	// and duplicate events at debug and info.
	level := slog.LevelInfo
	switch it.Outcome {
	case "rejected":
		level = slog.LevelWarn
	case "filtered":
		level = slog.LevelDebug
	}
	r := slog.NewRecord(it.At.Local(), level, it.Outcome, 0)
	r.AddAttrs(slog.String("source", it.Source))
	if it.Outcome == "rejected" {
		r.AddAttrs(slog.Int("status", it.Code), slog.String("reason", it.Reason), slog.String("err", it.Error))
	} else {
		r.AddAttrs(slog.String("event", it.Event))
		if it.Status != "" {
			r.AddAttrs(slog.String("status", it.Status))
		}
		r.AddAttrs(slog.String("event_id", it.ID))
	}
	if it.Outcome == "accepted" {
		r.AddAttrs(slog.String("rules", listOr(it.Rules, "-")), slog.String("sinks", listOr(it.Sinks, "none")))
		if len(it.HeldBack) > 0 {
			r.AddAttrs(slog.String("held_back", strings.Join(it.HeldBack, ",")))
		}
	}
	p.h.Handle(context.Background(), r)
}

func (p *tapPrinter) dropped(n int) {
	if p.json {
		fmt.Fprintf(p.w, "{\"dropped\":%d}\n", n)
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelWarn, "events not shown: this terminal fell behind; the daemon did not", 0)
	r.AddAttrs(slog.Int("dropped", n))
	p.h.Handle(context.Background(), r)
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ",")
}

// adminAPI calls the running daemon's admin API.
type adminAPI struct {
	base  string
	token string
}

// adminClient reads the config for the admin address and token; nil and
// an exit code when it cannot.
func adminClient(path, tokenFile string, stderr io.Writer) (*adminAPI, int) {
	c, err := loadClientConfig(path)
	if err == nil {
		err = c.need("admin.listen")
	}
	var token string
	if err == nil {
		token, err = c.adminTokenFor(tokenFile)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, exitFail
	}
	return &adminAPI{base: "http://" + adminHost(c.Admin.Listen), token: token}, exitOK
}

// adminHost is where the CLI calls an admin listener: a wildcard one
// (":9090") on 127.0.0.1.
func adminHost(listen string) string {
	if h, p, err := net.SplitHostPort(listen); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		return net.JoinHostPort("127.0.0.1", p)
	}
	return listen
}

// badRequest is the daemon's 400: an argument it cannot use.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func (a *adminAPI) request(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the daemon's admin API at %s does not answer (is switchboard running with this config?): %w", a.base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("the admin API needs its token: set %s or pass --token-file", AdminTokenEnv)
	case http.StatusBadRequest:
		return nil, badRequest{e.Error}
	}
	return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, e.Error)
}

// stream opens a long-lived answer (no timeout but ctx's).
func (a *adminAPI) stream(ctx context.Context, path string) (*http.Response, error) {
	return a.request(ctx, path)
}

// get decodes a JSON answer, within 30 seconds.
func (a *adminAPI) get(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := a.request(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}
