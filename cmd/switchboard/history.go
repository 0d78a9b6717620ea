package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"switchboard/daemon/history"
)

const historyHelp = `Prints what became of one recent event: when it was received, the rules it
matched, the sinks chosen and, for each sink, every delivery attempt with its
time, duration, the receiver's answer and error, up to delivery or the
dead-letter queue. A provider's retries of the event (duplicates) are listed
too.

The running daemon keeps this history in memory for its recent events
(history.max_events, history.max_age); a restart forgets it. It calls the
daemon's admin API (admin.listen in the config), with the token from
--token-file, $SWITCHBOARD_ADMIN_TOKEN or the config's admin.auth.

Exit status 0 when the event is in the history, 1 when it is not.`

func newHistoryCmd() *cobra.Command {
	var asJSON bool
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "history EVENT_ID",
		Short: "What became of one recent event: rules, sinks, every delivery attempt",
		Long:  historyHelp,
		Example: `  switchboard history -c config.example.yaml 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11:failed
  switchboard history -c config.example.yaml --json call-42`,
		Args: cobra.ExactArgs(1),
	}
	path := configFlag(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the records as JSON")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the admin API's bearer token (default $"+AdminTokenEnv+")")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return status(runHistory(*path, tokenFile, args[0], asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	return cmd
}

func runHistory(path, tokenFile, id string, asJSON bool, stdout, stderr io.Writer) int {
	api, code := adminClient(path, tokenFile, stderr)
	if api == nil {
		return code
	}
	var page history.Page
	if err := api.get("/api/history?id="+url.QueryEscape(id), &page); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	if len(page.Items) == 0 {
		fmt.Fprintf(stderr, "no event %q in the daemon's history: it keeps recent events only (history.max_events, history.max_age) and forgets them on restart; check the id, or `switchboard dlq list`\n", id)
		return exitFail
	}
	if asJSON {
		return printJSON(stdout, page.Items)
	}
	for i, v := range page.Items {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printHistory(stdout, v)
	}
	return exitOK
}

func printHistory(w io.Writer, v history.View) {
	status := ""
	if v.Status != "" {
		status = ", " + v.Status
	}
	fmt.Fprintf(w, "event %s (%s, %s%s) received %s: %s\n", v.ID, v.Source, v.EventName, status,
		v.ReceivedAt.Local().Format("2006-01-02 15:04:05.000"), v.Outcome)
	switch v.Outcome {
	case history.Filtered:
		fmt.Fprintln(w, "  dropped by its source's own events/filters before the rules")
		return
	case history.Duplicate:
		fmt.Fprintln(w, "  a provider's retry of an event already accepted: acknowledged, not routed again")
		return
	}
	fmt.Fprintf(w, "  rules matched: %s\n", listOr(v.Rules, "none"))
	fmt.Fprintf(w, "  sinks: %s\n", listOr(v.Sinks, "none (delivered nowhere)"))
	if len(v.HeldBack) > 0 {
		fmt.Fprintf(w, "  held back by: %s\n", strings.Join(v.HeldBack, ", "))
	}
	for _, d := range v.Deliveries {
		state := strings.ReplaceAll(d.State, "_", " ")
		switch {
		case d.State == history.Dead && d.DeliveryID != "":
			state += " (dead letter " + d.DeliveryID + ": switchboard dlq show " + d.DeliveryID + ")"
		case d.State == history.Retrying:
			state += ", next attempt " + d.Next.Local().Format("15:04:05")
		}
		fmt.Fprintf(w, "\n  %s: %s\n", d.Sink, state)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i, a := range d.Attempts {
			n := i + 1
			if i > 0 {
				n += d.Omitted
			}
			answer := "-"
			if a.Status != 0 {
				answer = fmt.Sprint(a.Status)
			}
			fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\t%s\t%s\n", n, a.At.Local().Format("15:04:05.000"),
				(time.Duration(a.TookMS * float64(time.Millisecond))).Round(100*time.Microsecond), answer, a.Outcome, oneLine(a.Error, 200))
		}
		tw.Flush()
		if d.Omitted > 0 {
			fmt.Fprintf(w, "    (%d attempts between the first and the ones listed are not kept)\n", d.Omitted)
		}
	}
}
