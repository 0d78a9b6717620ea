package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// testRoot is the command tree as realMain runs it.
func testRoot() *cobra.Command {
	root := newRoot()
	addCompletion(root)
	return root
}

// Every command takes --help (exit 0, usage on stdout) and refuses an
// unknown flag with exit 2.
func TestEveryCommandHasHelpAndExits2OnABadFlag(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || strings.HasPrefix(sub.Name(), "__") {
				continue
			}
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(testRoot(), nil)
	if len(paths) < 12 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		name := "switchboard " + strings.Join(p, " ")
		code, out, errb := run(t, "", append(append([]string{}, p...), "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", name, code, out, errb)
		}
		code, _, errb = run(t, "", append(append([]string{}, p...), "--bogus")...)
		if code != 2 || !strings.Contains(errb, "unknown flag: --bogus") || !strings.Contains(errb, "--help' for usage") {
			t.Errorf("%s --bogus: exit %d, stderr %q; want 2 naming the flag", name, code, errb)
		}
	}
}

// Flags go before or after arguments, in every command.
func TestFlagsBeforeOrAfterArguments(t *testing.T) {
	p := writeConfig(t, routeConfig)
	payload := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(payload, []byte(`{"event":"voice.inbound","payload":{"id":"c2","status":"completed"}}`), 0o644)
	tests := filepath.Join(t.TempDir(), "tests.yaml")
	os.WriteFile(tests, []byte("tests:\n  - { name: x, source: app, payload: {event: voice.inbound, duration: 1, payload: {id: a}}, expect: {rules: [inbound-only]} }\n"), 0o644)
	for _, args := range [][]string{
		{"route", "-c", p, "--source", "app", payload, "--json"},
		{"route", payload, "--source", "app", "-c", p},
		{"route", "--json", payload, "-c", p, "--source=app"},
		{"test", tests, "-c", p},
		{"test", "-c", p, tests},
		{"check", "--config", p},
		{"check", "-c=" + p},
		// The single-dash long flags of earlier versions still work.
		{"route", "-config", p, "-source", "app", "-json", payload},
	} {
		if code, out, errb := run(t, "", args...); code != 0 {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errb)
		}
	}
}

func TestUsageMistakesExit2WithAMessage(t *testing.T) {
	p := writeConfig(t, routeConfig)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "switchboard"`},
		{[]string{"check", "extra"}, `takes no arguments, got "extra"`},
		{[]string{"run", "x.yaml"}, `takes no arguments, got "x.yaml"; give the config with -c FILE`},
		{[]string{"route", "-c", p}, `required flag(s) "source" not set`},
		{[]string{"route", "--source", "app", "a.json", "b.json"}, `takes at most one payload file`},
		{[]string{"route", "--source", "app", "--header", "nocolon", "-c", p}, `--header "nocolon" is not 'Name: value'`},
		{[]string{"test", "-c", p}, "needs exactly one TESTS_FILE"},
		{[]string{"version", "extra"}, "takes no arguments"},
		{[]string{"completion", "tcsh"}, `invalid argument "tcsh"`},
		{[]string{"help", "nosuch"}, `no help for "nosuch": not a command`},
	} {
		code, _, errb := run(t, "", tc.args...)
		if code != 2 || !strings.Contains(errb, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb, tc.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "__start_switchboard",
		"zsh":  "#compdef switchboard",
		"fish": "complete -c switchboard",
	} {
		code, out, errb := run(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q; want a script with %q", shell, code, len(out), errb, want)
		}
	}
	// What the shells ask the binary: commands, then the config flag's files.
	code, out, _ := run(t, "", "__complete", "d")
	if code != 0 || !strings.Contains(out, "dlq") {
		t.Errorf("__complete d: exit %d, %q", code, out)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "switchboard", Version: "v0.0.0-20261126132200-ab8b45c0a1b2+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "ab8b45c0a1b2c3d4e5f60718293a4b5c6d7e8f90"},
			{Key: "vcs.time", Value: "2026-11-26T13:22:00Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	v := parseBuildInfo(bi)
	want := buildVersion{Version: "v0.0.0-20261126132200-ab8b45c0a1b2", Revision: "ab8b45c0a1b2c3d4e5f60718293a4b5c6d7e8f90",
		Time: "2026-11-26T13:22:00Z", Modified: true, Go: "go1.26.8"}
	if v != want {
		t.Fatalf("parsed %+v\nwant   %+v", v, want)
	}
	if s := v.String(); !strings.HasPrefix(s, "v0.0.0-20261126132200-ab8b45c0a1b2 (commit ab8b45c0a1b2, 2026-11-26T13:22:00Z, modified; go1.26.8 ") {
		t.Errorf("String() = %q", s)
	}
	// Built without VCS information (a tarball, -buildvcs=false).
	v = parseBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "switchboard", Version: "(devel)"}})
	if s := v.String(); !strings.HasPrefix(s, "(devel) (commit unknown; go1.26.8 ") {
		t.Errorf("String() without vcs = %q", s)
	}
}

// TestVersionOfTheBuiltBinary: the binary the tests build with a plain
// `go build` in this checkout names this checkout's commit, with no
// -ldflags.
func TestVersionOfTheBuiltBinary(t *testing.T) {
	bin := binary(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not built in a git checkout: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		t.Skip("Go stamps the commit only from a .git directory, and this is a git worktree (.git is a file); a clone is checked")
	}
	head, _ := exec.Command("git", "rev-parse", "HEAD").Output()
	log := exec.Command("git", "log", "-1", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "--format=%cd")
	log.Env = append(os.Environ(), "TZ=UTC")
	when, _ := log.Output()
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "(commit " + string(head[:12]) + ", " + strings.TrimSpace(string(when))
	if !strings.HasPrefix(string(out), "switchboard v0.0.0-") || !strings.Contains(string(out), want) {
		t.Errorf("version = %q; want a pseudo-version and %q", out, want)
	}
}
