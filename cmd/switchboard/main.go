// Command switchboard receives provider events (webhooks and event
// streams), routes them by YAML rules and delivers them to sinks.
//
// Run `switchboard --help` for the commands.
//
// Each command lives in its own file: a constructor newXxxCmd that declares
// its flags and arguments (github.com/spf13/cobra), and a plain function
// holding its logic, which takes the parsed options and the standard
// streams and returns an exit status. A new command is one such file plus
// one line in commands below.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	_ "switchboard/sinks/all"
	_ "switchboard/sources/all"
)

// exit codes
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// commands are the subcommands of switchboard, in the order help lists them.
func commands() []*cobra.Command {
	return []*cobra.Command{
		newRunCmd(),
		newCheckCmd(),
		newRouteCmd(),
		newTestCmd(),
		newDLQCmd(),
		newQueueCmd(),
		newTapCmd(),
		newHistoryCmd(),
		newVersionCmd(),
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// realMain runs one command line and returns its exit status: 0 done, 1 the
// command failed (it said why), 2 the command line is wrong.
func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	if len(args) == 0 {
		// Without a command: the usage, on stderr, and a usage error.
		fmt.Fprint(stderr, root.UsageString())
		return exitUsage
	}
	root.SetArgs(goStyleFlags(root, append([]string{}, args...)))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	addCompletion(root)
	cmd, err := root.ExecuteC()
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	}
	// Everything else cobra or a command reports is a mistake in the
	// command line: flags, arguments, an unknown command.
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
	return exitUsage
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "switchboard",
		Short: "Route telecom and messaging provider events to where they are needed",
		Long: `switchboard routes telecom and messaging provider events to where they are needed.

It receives webhooks (Bird, MOBtexting, TeleCMI, any JSON) and event streams
(Cisco Mobility Services), normalizes each event, matches it against the rules
of a YAML file and delivers it, at least once, to sinks: HTTP, Slack, email,
files, the log.

Flags go before or after arguments. -c FILE (--config) defaults to
./switchboard.yaml. Exit status: 0 done, 1 failed, 2 wrong command line.`,
		Example: `  switchboard check -c config.example.yaml
  switchboard route -c config.example.yaml --source bird examples/bird/voice-outbound-failed.json
  switchboard test -c config.example.yaml examples/config.example.tests.yaml
  switchboard run -c config.example.yaml
  switchboard completion bash`,
		Version:       versionString(readBuildInfo()),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(commands()...)
	// cobra's own help command answers an unknown topic with exit 0.
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, err := c.Root().Find(args)
			if err != nil || cmd == nil {
				return fmt.Errorf("no help for %q: not a command", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	})
	return root
}

// addCompletion adds cobra's `completion bash|zsh|fish|powershell`. Its
// scripts go to the writer set with SetOut before the call.
func addCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = "  switchboard completion bash\n  switchboard completion zsh\n  switchboard completion fish"
		// Without a known shell: a usage error, not help and exit 0.
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("name a shell: bash, zsh, fish or powershell")
			}
			return fmt.Errorf("invalid argument %q: use bash, zsh, fish or powershell", args[0])
		}
	}
}

// exitCode ends a command with a status once the command has said why.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// status turns a command's exit status into what cobra's RunE returns.
func status(code int) error {
	if code == exitOK {
		return nil
	}
	return exitCode(code)
}

// configFlag declares -c/--config on a command (persistent for a command
// with subcommands, so that it goes before or after the subcommand).
func configFlag(cmd *cobra.Command, persistent bool) *string {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	p := fs.StringP("config", "c", "./switchboard.yaml", "`FILE` to read the config from")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return p
}

// noArgs is cobra.NoArgs with a message that says what to do instead.
func noArgs(hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("takes no arguments, got %q; %s", strings.Join(args, " "), hint)
		}
		return nil
	}
}

// goStyleFlags accepts the single-dash long flags of Go's flag package
// (-config, -source, -json), which earlier versions of switchboard took:
// each becomes its double-dash form when the command has that flag.
func goStyleFlags(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return args
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && (cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil) {
			args[i] = "-" + a
		}
	}
	return args
}
