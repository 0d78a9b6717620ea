package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"switchboard/config"
)

// TestEveryExampleConfigChecks runs `check`, with every source and sink
// type linked in, on each ready config under examples/: a config a user
// copies must be valid, down to the provider statuses its filters name.
func TestEveryExampleConfigChecks(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("../../examples/*/switchboard.yaml")
	files = append(files, more...)
	files = append(files, "../../config.example.yaml")
	unset := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	for _, f := range files {
		if strings.HasSuffix(f, ".tests.yaml") {
			continue
		}
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// Variables without a default are the user's secrets: give
			// them plausible values.
			for _, m := range unset.FindAllStringSubmatch(string(b), -1) {
				v := "example-secret-value-0123456789"
				if strings.Contains(m[1], "URL") {
					v = "https://hooks.example.com/services/T0/B0/X"
				}
				t.Setenv(m[1], v)
			}
			if code, out, _ := run(t, "", "check", "-c", f); code != 0 {
				t.Errorf("check %s: exit %d\n%s", f, code, out)
			}
		})
	}
}

// TestExampleConfigsRunQuietly: an example that runs as it is, with none
// of its variables set, sends nothing anywhere: every sink its rules reach
// is a file or the log, so that trying it on a laptop retries nothing
// against a placeholder URL. Real sinks are switched on by a variable
// (ALERTS_TO=slack). Examples that need a credential to start at all
// (cisco, slack-oncall) do not run without it, which is quiet too.
func TestExampleConfigsRunQuietly(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("../../examples/*/switchboard.yaml")
	files = append(append(files, more...), "../../config.example.yaml", "../../deploy/container/switchboard.yaml")
	selector := regexp.MustCompile(`\$\{([A-Z_]+_TO):-`)
	ran := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".tests.yaml") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range selector.FindAllStringSubmatch(string(b), -1) {
			t.Setenv(m[1], "") // unset: the default applies
		}
		cfg, err := config.Load(f)
		if err != nil {
			if !strings.Contains(err.Error(), "is not set; export it") {
				t.Errorf("%s: %v", f, err)
			}
			continue // needs a credential to start
		}
		ran++
		reached := slices.Clone(cfg.Unmatched)
		for _, r := range cfg.Rules {
			reached = append(reached, r.To...)
		}
		for _, name := range reached {
			if typ := cfg.Sinks[name].Type; typ != "file" && typ != "log" {
				t.Errorf("%s: rules send to sink %s (type %s) with no variable set; route to a file or log sink unless a variable names this one", f, name, typ)
			}
		}
	}
	if ran < 5 {
		t.Errorf("only %d example configs run without variables; the test is not looking where it should", ran)
	}
}
