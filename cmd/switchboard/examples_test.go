package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
