// Command switchboard receives provider events (webhooks and event
// streams), routes them by YAML rules and delivers them to sinks.
//
// Run `switchboard --help` for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"switchboard/config"
	"switchboard/daemon"
	_ "switchboard/sinks/all"
	_ "switchboard/sources/all"
)

// Set at build time: -ldflags "-X main.version=v1.2.3 -X main.commit=abc".
var (
	version = "dev"
	commit  = ""
)

const usage = `switchboard routes telecom and messaging provider events to where they are needed.

It receives webhooks (Bird, MOBtexting, TeleCMI, any JSON) and event streams,
normalizes each event, matches it against the rules of a YAML file and
delivers it, at least once, to sinks: HTTP, Slack, email, files.

Usage:
  switchboard <command> [flags]

Commands:
  run       run the daemon
  check     validate a config file and print every problem in it
  route     dry-run one payload through a config: event, rule verdicts, sink bodies
  test      run routing test cases (payload -> expected rules and sinks) against a config
  dlq       list, show, replay and purge dead letters
  queue     check, salvage or compact a stopped daemon's queue
  version   print the version

Run 'switchboard <command> --help' for a command's flags.

Examples:
  switchboard run -c config.example.yaml
  switchboard check -c switchboard.yaml
  switchboard route -c switchboard.yaml --source bird examples/bird/voice-failed.json
`

// exit codes
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "route":
		return cmdRoute(rest, stdin, stdout, stderr)
	case "dlq":
		return cmdDLQ(rest, stdout, stderr)
	case "test":
		return cmdTest(rest, stdout, stderr)
	case "queue":
		return cmdQueue(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "switchboard %s (commit %s, %s, %s/%s)\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// newFlags makes a command's flag set with a usage text that teaches.
func newFlags(name, synopsis, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: switchboard %s %s\n\n%s\nFlags:\n", name, synopsis, help)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and maps errors to exit codes: --help is 0, a bad flag 2.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

func configFlag(fs *flag.FlagSet) *string {
	p := fs.String("c", "./switchboard.yaml", "config file `path`")
	fs.StringVar(p, "config", "./switchboard.yaml", "config file `path` (same as -c)")
	return p
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
	for _, p := range ps {
		fmt.Fprintln(out, p.Error())
	}
	fmt.Fprintf(out, "%s: %d problem%s\n", path, len(ps), plural(len(ps)))
	return nil, false
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "[-c FILE]", `Validates the whole config without starting anything: YAML syntax, unknown
keys, environment variables, every source, sink and rule, and the references
between them. Prints every problem, one a line, each with where it is
(rules[2] (failed-calls).when: ...). Exit status 0 when valid, 1 when not.
`, stderr)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "check takes no arguments, got %q\n", strings.Join(fs.Args(), " "))
		return exitUsage
	}
	snap, ok := load(*path, stdout)
	if !ok {
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: OK (%d sources, %d sinks, %d rules)\n", *path, len(snap.Sources), len(snap.Sinks), len(snap.File.Rules))
	return exitOK
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
