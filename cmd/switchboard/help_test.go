package main

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpExamplesWork runs every example command line of every command's
// --help from the repository's root, against the repository's files: an
// example a newcomer copies must work. Commands that need a running daemon
// or a queue on disk (run, dlq, queue) are parsed and their arguments
// checked, not run.
func TestHelpExamplesWork(t *testing.T) {
	t.Chdir("../..")
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			n++
			t.Run(line, func(t *testing.T) { tryExample(t, c, line) })
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(testRoot())
	if n < 15 {
		t.Errorf("only %d examples found", n)
	}
}

func tryExample(t *testing.T, c *cobra.Command, line string) {
	words, stdin := shellWords(t, line)
	if len(words) == 0 || words[0] != "switchboard" {
		t.Fatalf("%s --help: example %q does not start with switchboard", c.CommandPath(), line)
	}
	args := words[1:]
	root := testRoot()
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if p := cmd.CommandPath(); p == "switchboard run" || p == "switchboard tap" || p == "switchboard history" ||
		strings.HasPrefix(p, "switchboard dlq") || strings.HasPrefix(p, "switchboard queue") {
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("flags: %v", err)
		}
		if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
			t.Fatalf("arguments: %v", err)
		}
		if err := cmd.ValidateRequiredFlags(); err != nil {
			t.Fatalf("flags: %v", err)
		}
		if p, err := cmd.Flags().GetString("config"); err == nil {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("the example's config: %v", err)
			}
		}
		return
	}
	code, out, errb := run(t, stdin, args...)
	if code != 0 {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
}

// shellWords splits a command line as sh would, for what examples use:
// words, 'single' and "double" quotes, and < FILE for standard input.
func shellWords(t *testing.T, line string) ([]string, string) {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	var stdin string
	for i, w := range words {
		if w == "<" && i+1 < len(words) {
			b, err := os.ReadFile(words[i+1])
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			stdin = string(b)
			words = append(words[:i:i], words[i+2:]...)
			break
		}
		if w == "|" || w == ">" || strings.HasPrefix(w, "$(") {
			t.Fatalf("%q: examples are one command with at most < FILE, so that they can be tried as shown", line)
		}
	}
	return words, stdin
}
