package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"switchboard/config"
	"switchboard/daemon"
)

func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a config file and print every problem in it",
		Long: `Validates the whole config without starting anything: YAML syntax, unknown
keys, environment variables, every source, sink and rule, the references
between them, and what run would refuse at start (a queue.dir or a file
sink's directory that cannot be written). Prints every problem, one a line,
each with where it is (rules[2] (failed-calls).when: ...).

Exit status 0 when valid, 1 when not.`,
		Example: `  switchboard check -c config.example.yaml
  switchboard check -c examples/bird/switchboard.yaml`,
		Args: noArgs("give the config with -c FILE"),
	}
	path := configFlag(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return status(runCheck(*path, cmd.OutOrStdout()))
	}
	return cmd
}

func runCheck(path string, stdout io.Writer) int {
	snap, ok := load(path, stdout)
	if !ok {
		return exitFail
	}
	if ps := daemon.Preflight(snap); len(ps) > 0 {
		printProblems(stdout, path, ps)
		return exitFail
	}
	printWarnings(stdout, snap.File)
	fmt.Fprintf(stdout, "%s: OK (%d sources, %d sinks, %d rules)\n", path, len(snap.Sources), len(snap.Sinks), len(snap.File.Rules))
	return exitOK
}

// load reads and builds a config, printing every problem, one a line. The
// sources, sinks and rules of a file with problems in its core settings are
// built too, so that one run names everything to fix.
func load(path string, out io.Writer) (*daemon.Snapshot, bool) {
	f, ps := config.LoadPartial(path)
	if f != nil {
		snap, err := daemon.Build(f)
		if err == nil && len(ps) == 0 {
			return snap, true
		}
		var bps config.Problems
		if errors.As(err, &bps) {
			// A setting the file already got wrong (an unset ${VAR}) is
			// not reported a second time by the plug-in reading it.
			seen := map[string]bool{}
			for _, p := range ps {
				seen[p.Path] = true
			}
			for _, p := range bps {
				if !seen[p.Path] {
					ps = append(ps, p)
				}
			}
		} else if err != nil {
			ps.Add("", "%v", err)
		}
	}
	printProblems(out, path, ps)
	return nil, false
}

func printProblems(out io.Writer, path string, ps config.Problems) {
	for _, p := range ps {
		fmt.Fprintln(out, p.Error())
	}
	fmt.Fprintf(out, "%s: %d problem%s\n", path, len(ps), plural(len(ps)))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
