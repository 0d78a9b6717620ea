package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWritableDir(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "events.jsonl")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"existing directory", root, ""},
		{"missing directories under a writable one", filepath.Join(root, "a", "b"), ""},
		{"a file", file, file + " is a file, not a directory"},
		{"below a file", filepath.Join(file, "queue"), filepath.Join(file, "queue") + " cannot be created: " + file + " is a file, not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WritableDir(tc.dir)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Nothing is left behind: no directory created, no probe file.
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("%s holds %d entries after the checks, want only events.jsonl", root, len(entries))
	}
}

func TestWritableDirRefusesAReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes in any directory; permissions cannot be tested as root")
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := WritableDir(ro); err == nil || err.Error() != "cannot write in "+ro+": permission denied" {
		t.Errorf("error %v", err)
	}
	want := filepath.Join(ro, "q") + " cannot be created: cannot write in " + ro + ": permission denied"
	if err := WritableDir(filepath.Join(ro, "q")); err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// What the kernel refuses even to root: /proc/sys takes no new files.
func TestWritableDirAsksTheKernel(t *testing.T) {
	if _, err := os.Stat("/proc/sys"); err != nil {
		t.Skip("no /proc/sys here")
	}
	want := "/proc/sys/switchboard cannot be created: cannot write in /proc/sys: permission denied"
	if err := WritableDir("/proc/sys/switchboard"); err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
