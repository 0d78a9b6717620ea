package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check refuses what run could never use, each problem with its path and
// what to do, and exits 1.
func TestCheckRefusesWhatRunWouldRefuse(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"empty file", "# nothing here yet\n", []string{
			"the file is empty (no settings, or only comments); a config needs sources and sinks, e.g. those of config.example.yaml",
		}},
		{"no sources", "sinks:\n  log: { type: log }\n", []string{
			"sources: none defined; a config needs at least one source to receive events, e.g. sources: {events: {type: generic}}",
		}},
		{"no sinks", "sources:\n  app: { type: generic }\nsinks: {}\n", []string{
			"sinks: none defined; a config needs at least one sink to deliver to, e.g. sinks: {archive: {type: file, path: ./data/events.jsonl}}",
		}},
		{"tab indentation", "sources:\n  app:\n\ttype: generic\nsinks:\n  log: { type: log }\n", []string{
			"not valid YAML: YAML does not allow tabs for indentation; use spaces (line 3)",
		}},
		{"queue.dir below a file", "queue: { dir: " + filepath.Join(blocker, "queue") + " }\nsources:\n  app: { type: generic }\nsinks:\n  log: { type: log }\n", []string{
			"queue.dir: " + filepath.Join(blocker, "queue") + " cannot be created: " + blocker + " is a file, not a directory; make it writable by the user switchboard runs as, or point queue.dir elsewhere",
		}},
		{"file sink below a file", "queue: { dir: " + filepath.Join(dir, "q") + " }\nsources:\n  app: { type: generic }\nsinks:\n  archive: { type: file, path: " + filepath.Join(blocker, "events.jsonl") + " }\n", []string{
			"sinks.archive.path: " + blocker + " is a file, not a directory; make it writable by the user switchboard runs as, or choose another path",
		}},
		{"file sink path is a directory", "queue: { dir: " + filepath.Join(dir, "q") + " }\nsources:\n  app: { type: generic }\nsinks:\n  archive: { type: file, path: " + dir + " }\n", []string{
			"sinks.archive.path: " + dir + " is a directory; path names the file the sink appends to, e.g. " + filepath.Join(dir, "events.jsonl"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.yaml)
			code, out, _ := run(t, "", "check", "-c", p)
			want := strings.Join(tc.want, "\n") + "\n" + p + ": " + map[bool]string{true: "1 problem", false: "problems"}[len(tc.want) == 1] + "\n"
			if code != 1 || out != want {
				t.Errorf("exit %d, output:\n%s\nwant exit 1 and:\n%s", code, out, want)
			}
			// run refuses the same file, with the same words, before
			// opening anything.
			code, _, errb := run(t, "", "run", "-c", p)
			if code != 1 || !strings.Contains(errb, tc.want[0]) {
				t.Errorf("run: exit %d, stderr:\n%s", code, errb)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "q")); !os.IsNotExist(err) {
		t.Errorf("check created the queue directory (%v); it must create nothing", err)
	}
}
