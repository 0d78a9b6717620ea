package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/cobra"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/router"
	"switchboard/sources"
)

const testHelp = `Runs the routing test cases of TESTS_FILE against the config, like unit tests
for the ops team's own repository: each case sends a payload through a source
(nothing is delivered) and states which rules must match and which sinks must
receive it. Exit status 0 when every case passes, 1 otherwise.

TESTS_FILE:

  tests:
    - name: failed outbound call pages on-call
      source: bird                         # a webhook source of the config
      payload_file: payloads/failed.json   # relative to TESTS_FILE; or
      # payload: {event: voice.outbound, payload: {id: c1, status: failed}}
      # body: 'raw request body'           # for form or relaxed bodies
      # query: 'k=v&...'   path: /hooks/bird/x   headers: {K: V}
      expect:
        rules: [failed-calls, archive-all]  # the rules that match, in order
        sinks: [oncall, archive]            # the sinks that receive it, any order
        # filtered: true                    # the source's own filters drop it
        # rejected: 401                     # the source refuses it with this status
`

// testFile is the TESTS_FILE format.
type testFile struct {
	Tests []testCase `koanf:"tests"`
}

type testCase struct {
	Name        string            `koanf:"name"`
	Source      string            `koanf:"source"`
	Payload     map[string]any    `koanf:"payload"`
	PayloadFile string            `koanf:"payload_file"`
	Body        string            `koanf:"body"`
	Query       string            `koanf:"query"`
	Path        string            `koanf:"path"`
	Headers     map[string]string `koanf:"headers"`
	Expect      struct {
		Rules    *[]string `koanf:"rules"`
		Sinks    *[]string `koanf:"sinks"`
		Filtered bool      `koanf:"filtered"`
		Rejected int       `koanf:"rejected"`
	} `koanf:"expect"`
}

func newTestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test TESTS_FILE",
		Short: "Run routing test cases (payload -> expected rules and sinks) against a config",
		Long:  testHelp,
		Example: `  switchboard test -c config.example.yaml examples/config.example.tests.yaml
  switchboard test examples/config.example.tests.yaml --config config.example.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("needs exactly one TESTS_FILE, got %d arguments", len(args))
			}
			return nil
		},
	}
	path := configFlag(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return status(runTests(*path, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	return cmd
}

// runTests runs the cases of testsPath against the config at path.
func runTests(path, testsPath string, stdout, stderr io.Writer) int {
	snap, ok := load(path, stderr)
	if !ok {
		return exitFail
	}
	cases, err := readTests(testsPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s:\n%v\n", testsPath, err)
		return exitFail
	}
	passed, failed := 0, 0
	for i, tc := range cases {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("tests[%d]", i)
		}
		if problems := runCase(snap, tc, filepath.Dir(testsPath)); len(problems) > 0 {
			failed++
			fmt.Fprintf(stdout, "FAIL  %s\n", name)
			for _, p := range problems {
				fmt.Fprintf(stdout, "      %s\n", p)
			}
			continue
		}
		passed++
		fmt.Fprintf(stdout, "ok    %s\n", name)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return exitFail
	}
	return exitOK
}

func readTests(path string) ([]testCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(b), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	var tf testFile
	if ps := config.Decode(k.Raw(), &tf, ""); len(ps) > 0 {
		return nil, ps
	}
	var ps config.Problems
	for i, tc := range tf.Tests {
		at := fmt.Sprintf("tests[%d]", i)
		if tc.Source == "" {
			ps.Add(at+".source", "is required: the source that receives the payload")
		}
		given := 0
		for _, set := range []bool{tc.Payload != nil, tc.PayloadFile != "", tc.Body != ""} {
			if set {
				given++
			}
		}
		if given > 1 {
			ps.Add(at, "give one of payload, payload_file and body")
		}
		if tc.Expect.Rules == nil && tc.Expect.Sinks == nil && !tc.Expect.Filtered && tc.Expect.Rejected == 0 {
			ps.Add(at+".expect", "states nothing; expect rules, sinks, filtered or rejected")
		}
	}
	if len(tf.Tests) == 0 {
		ps.Add("tests", "is empty")
	}
	return tf.Tests, ps.Err()
}

// runCase returns what differs from the expectation.
func runCase(snap *daemon.Snapshot, tc testCase, dir string) []string {
	var body []byte
	switch {
	case tc.Payload != nil:
		body, _ = json.Marshal(tc.Payload)
	case tc.PayloadFile != "":
		p := tc.PayloadFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return []string{err.Error()}
		}
		body = b
	case tc.Body != "":
		body = []byte(tc.Body)
	}
	results, _, err := dryRun(snap, dryRequest{Source: tc.Source, Path: tc.Path, Query: tc.Query, Headers: tc.Headers, Body: body})
	var ue usageError
	if errors.As(err, &ue) {
		return []string{err.Error()}
	}
	var re *sources.RejectError
	rejected := 0
	if err != nil {
		rejected = 400
		if errors.As(err, &re) {
			rejected = re.Status
		}
	}
	if tc.Expect.Rejected != 0 || rejected != 0 {
		if rejected != tc.Expect.Rejected {
			if rejected == 0 {
				return []string{fmt.Sprintf("rejected: want %d, but the source accepted it", tc.Expect.Rejected)}
			}
			return []string{fmt.Sprintf("rejected: want %d, got %s: %v", tc.Expect.Rejected, rejectStatus(err), err)}
		}
		return nil
	}
	if len(results) != 1 {
		return []string{fmt.Sprintf("the payload holds %d events; a test case takes one", len(results))}
	}
	r := results[0]
	var out []string
	if r.Filtered != tc.Expect.Filtered {
		out = append(out, fmt.Sprintf("filtered: want %v, got %v", tc.Expect.Filtered, r.Filtered))
	}
	if want := tc.Expect.Rules; want != nil {
		var got []string
		for _, v := range r.Rules {
			if v.Verdict == router.Match {
				got = append(got, v.Rule)
			}
			if v.Verdict == router.Error {
				out = append(out, fmt.Sprintf("rule %s failed on the event: %s", v.Rule, v.Reason))
			}
		}
		if !slices.Equal(got, *want) {
			out = append(out, fmt.Sprintf("rules: want [%s], got [%s]", strings.Join(*want, ", "), strings.Join(got, ", ")))
		}
	}
	if want := tc.Expect.Sinks; want != nil {
		got := slices.Sorted(slices.Values(r.Sinks))
		w := slices.Sorted(slices.Values(*want))
		if !slices.Equal(got, w) {
			out = append(out, fmt.Sprintf("sinks: want [%s], got [%s]", strings.Join(w, ", "), strings.Join(got, ", ")))
		}
	}
	return out
}
