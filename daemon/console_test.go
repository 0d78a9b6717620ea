package daemon

import (
	"io/fs"
	"regexp"
	"testing"
)

// TestConsoleFitsItsBudget keeps the console's files, all of which a page
// load fetches, under 150 KB, and free of any address elsewhere.
func TestConsoleFitsItsBudget(t *testing.T) {
	total := 0
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	fs.WalkDir(consoleFS, "console", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := consoleFS.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		for _, m := range external.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" { // the SVG namespace, a name, not a request
				t.Errorf("%s refers to another site: %s", path, m)
			}
		}
		return nil
	})
	if total > 150<<10 {
		t.Errorf("the console's files are %d bytes; the budget is 150 KB", total)
	}
	t.Logf("console: %d bytes", total)
}
