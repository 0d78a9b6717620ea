package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/router/logqueue"
)

const queueHelp = `Checks, salvages and compacts the embedded queue of a stopped daemon
(queue.dir in the config, or --dir). Each refuses to run while a daemon
holds the directory.

  queue check               verify every file; print what the queue holds.
                            Exit 1 when a file is damaged, with what to do.
  queue salvage --to DIR    copy every record that can be read into a new
                            queue in DIR (new or empty), and report what
                            could not be read; then point queue.dir at DIR.
  queue compact             rewrite what is live into fresh files and give
                            the rest of the space back.
`

// newQueueCmd is queue and its subcommands, for a stopped daemon's
// embedded queue.
func newQueueCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Check, salvage or compact a stopped daemon's queue",
		Long:  queueHelp,
		Example: `  switchboard queue check -c config.example.yaml
  switchboard queue salvage -c config.example.yaml --to data-salvaged`,
		Args: cobra.ArbitraryArgs,
		// Without a known subcommand: a usage error, not help and exit 0.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
				return exitCode(exitUsage)
			}
			return fmt.Errorf("unknown subcommand %q; use check, salvage or compact", args[0])
		},
	}
	path := configFlag(cmd, true)
	dir := cmd.PersistentFlags().String("dir", "", "the queue directory (default: queue.dir of the config)")
	sub := func(use, short, example string, run func(logqueue.Options, io.Writer, io.Writer) int) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Example: example,
			Args: noArgs("the queue is the config's queue.dir, or --dir"),
			RunE: func(cmd *cobra.Command, args []string) error {
				opts, err := queueOptions(*path, *dir)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					return status(exitFail)
				}
				return status(run(opts, cmd.OutOrStdout(), cmd.ErrOrStderr()))
			},
		}
	}
	var to string
	salvage := sub("salvage --to DIR", "Copy every readable record into a new queue in DIR",
		"  switchboard queue salvage -c config.example.yaml --to data-salvaged",
		func(o logqueue.Options, stdout, stderr io.Writer) int { return queueSalvage(o, to, stdout, stderr) })
	salvage.Flags().StringVar(&to, "to", "", "the new queue's directory (new or empty)")
	salvage.MarkFlagRequired("to")
	salvage.PreRunE = func(*cobra.Command, []string) error {
		if to == "" {
			return fmt.Errorf("--to needs a directory: where the salvaged queue goes")
		}
		return nil
	}
	cmd.AddCommand(
		sub("check", "Verify every file of the queue; print what it holds", "  switchboard queue check -c config.example.yaml", queueCheck),
		salvage,
		sub("compact", "Rewrite what is live into fresh files and give the rest of the space back",
			"  switchboard queue compact -c config.example.yaml", queueCompact),
	)
	return cmd
}

// queueOptions reads the queue's settings from the config; --dir alone
// needs no config (a config too broken to load may be why one is here).
func queueOptions(path, dir string) (logqueue.Options, error) {
	f := config.Defaults()
	setting := "--dir"
	if dir == "" {
		c, err := loadClientConfig(path)
		if err == nil {
			err = c.need("queue")
		}
		if err != nil {
			return logqueue.Options{}, fmt.Errorf("%v\n(give the queue directory with --dir)", err)
		}
		f, setting = *c.File, "queue.dir"
	} else {
		f.Queue.Dir = dir
	}
	if err := existingQueueDir(f.Queue.Dir, setting); err != nil {
		return logqueue.Options{}, err
	}
	opts := daemon.QueueOptions(&f, slog.New(slog.DiscardHandler))
	opts.Metrics = nil
	return opts, nil
}

func queueCheck(opts logqueue.Options, stdout, stderr io.Writer) int {
	r, err := logqueue.Check(opts)
	var damage *logqueue.DamageError
	if errors.As(err, &damage) {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "queue %s: OK\n", opts.Dir)
	printReport(stdout, r)
	if r.TornBytes > 0 {
		fmt.Fprintf(stdout, "  the last %d bytes are a crash's unsynced write; the next start cuts them off (nothing there was answered as stored)\n", r.TornBytes)
	}
	return exitOK
}

func queueSalvage(opts logqueue.Options, to string, stdout, stderr io.Writer) int {
	r, err := logqueue.Salvage(opts, to)
	if r != nil && len(r.Damaged) > 0 {
		fmt.Fprintf(stdout, "could not read %d place%s (%d bytes); what was written there is lost, or delivered again:\n",
			len(r.Damaged), plural(len(r.Damaged)), r.DamagedBytes)
		for _, d := range r.Damaged {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "salvaged %s into %s; point queue.dir at it\n", opts.Dir, to)
	printReport(stdout, r)
	return exitOK
}

func queueCompact(opts logqueue.Options, stdout, stderr io.Writer) int {
	q, err := logqueue.Open(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	before, after, err := q.Compact()
	if cerr := q.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "queue %s: %d bytes before, %d after\n", opts.Dir, before, after)
	return exitOK
}

func printReport(w io.Writer, r *logqueue.Report) {
	fmt.Fprintf(w, "  %d segment%s, %d dedup file%s, %d bytes\n", r.Segments, plural(r.Segments), r.DedupFiles, plural(r.DedupFiles), r.Bytes)
	fmt.Fprintf(w, "  %d event%s stored; pending: %s; dead letters: %s; %d ids remembered\n",
		r.Events, plural(r.Events), perSink(r.Pending), perSink(r.Dead), r.Remembered)
}

func perSink(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}
