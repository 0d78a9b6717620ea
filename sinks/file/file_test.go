package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/router"
	"switchboard/sinks/sinktest"
)

// build decodes raw the way the host does and builds the sink.
func build(t *testing.T, raw map[string]any) *Sink {
	t.Helper()
	return sinktest.MustBuild[*Sink](t, "file", "archive", raw)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline", path)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestLinesAreTheNormalizedEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s := build(t, map[string]any{"path": path})
	events := []*router.Event{sinktest.Event("e1"), sinktest.Event("e2"), sinktest.Event("e3")}
	events[1].Status = "" // no status: the field is left out, the line stays valid
	events[2].RawPayload = nil
	for _, e := range events {
		if err := s.Send(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, path)
	if len(lines) != len(events) {
		t.Fatalf("%d lines, want %d", len(lines), len(events))
	}
	for i, line := range lines {
		want, _ := events[i].MarshalJSON()
		if line != string(want) {
			t.Errorf("line %d\n got %s\nwant %s", i, line, want)
		}
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not JSON: %s", i, line)
		}
	}
}

func TestAppendsToAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte("{\"earlier\":true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := build(t, map[string]any{"path": path})
	if err := s.Send(context.Background(), sinktest.Event("e1")); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, path); len(lines) != 2 || lines[0] != `{"earlier":true}` {
		t.Errorf("lines = %q, want the earlier line kept and one appended", lines)
	}
}

func TestConcurrentSendsWriteWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s := build(t, map[string]any{"path": path})
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// One event per delivery: an event's cached encoding is not
				// safe to build from several goroutines (see the report).
				if err := s.Send(context.Background(), sinktest.Event(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	lines := readLines(t, path)
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		var e router.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("broken line %q: %v", line, err)
		}
		seen[e.ID] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct events, want %d", len(seen), writers*each)
	}
}

func TestCreatesParentDirectoriesOnFirstSend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "events.jsonl")
	s := build(t, map[string]any{"path": path})
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Build created %s (err %v); it must create nothing", filepath.Dir(path), err)
	}
	if err := s.Send(context.Background(), sinktest.Event("e1")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("mode %v, want at most 0644", fi.Mode().Perm())
	}
}

func TestWriteErrorsAreTransient(t *testing.T) {
	dir := t.TempDir() // the path is a directory: every open fails
	s := build(t, map[string]any{"path": dir})
	err := s.Send(context.Background(), sinktest.Event("e1"))
	if err == nil || router.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func TestSendAfterCloseFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s := build(t, map[string]any{"path": path})
	if err := s.Send(context.Background(), sinktest.Event("e1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), sinktest.Event("e2")); err == nil || router.IsPermanent(err) {
		t.Errorf("Send after Close = %v, want a transient error", err)
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		suffix   string
	}{
		{"max_size rotates into timestamped backups", map[string]any{"max_size": "1KiB"}, ".jsonl"},
		{"compress gzips the backups", map[string]any{"max_size": "1KiB", "compress": true}, ".jsonl.gz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "events.jsonl")
			tt.settings["path"] = path
			s := build(t, tt.settings)
			if s.maxSize != 1024 {
				t.Fatalf("max_size decoded as %d, want 1024", s.maxSize)
			}
			const n = 40
			for i := range n {
				if err := s.Send(context.Background(), sinktest.Event(fmt.Sprintf("e%02d", i))); err != nil {
					t.Fatal(err)
				}
			}
			// Compression runs in lumberjack's background goroutine.
			var backups []string
			deadline := time.Now().Add(5 * time.Second)
			for {
				backups, _ = filepath.Glob(filepath.Join(dir, "events-*"+tt.suffix))
				all, _ := filepath.Glob(filepath.Join(dir, "events-*"))
				if len(backups) == len(all) && len(backups) >= 4 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if len(backups) < 4 {
				t.Fatalf("backups %q, want at least 4 for %d events of ~190 bytes at 1KiB", backups, n)
			}
			if tt.suffix != ".jsonl" {
				return
			}
			// No line is lost or split across files, and no file passes max_size.
			sort.Strings(backups)
			var ids []string
			for _, f := range append(backups, path) {
				fi, _ := os.Stat(f)
				if fi.Size() > 1024 {
					t.Errorf("%s is %d bytes, over max_size", f, fi.Size())
				}
				for _, line := range readLines(t, f) {
					var e router.Event
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						t.Fatalf("%s: broken line %q", f, line)
					}
					ids = append(ids, e.ID)
				}
			}
			if len(ids) != n || ids[0] != "e00" || ids[n-1] != fmt.Sprintf("e%02d", n-1) {
				t.Errorf("events across files = %v, want e00..e%02d in order", ids, n-1)
			}
			if !sort.StringsAreSorted(ids) {
				t.Errorf("events out of order across backups: %v", ids)
			}
		})
	}
}

func TestNoRotationWithoutMaxSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	s := build(t, map[string]any{"path": path})
	for i := range 40 {
		if err := s.Send(context.Background(), sinktest.Event(fmt.Sprintf("e%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only events.jsonl", len(entries))
	}
}

func TestBuildProblems(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"path is required", map[string]any{},
			"path: is required: the file to append events to, e.g. ./data/events.jsonl"},
		{"path names a file", map[string]any{"path": "./data/"},
			`path: "./data/" names a directory; give the file's name, e.g. ./data/events.jsonl`},
		{"max_backups is not negative", map[string]any{"path": "e.jsonl", "max_size": "1MiB", "max_backups": -1},
			"max_backups: must not be negative; 0 keeps every rotated file"},
		{"max_age is whole days", map[string]any{"path": "e.jsonl", "max_size": "1MiB", "max_age": "36h"},
			"max_age: 36h0m0s is not a whole number of days; write it like 24h or 168h (7 days)"},
		{"rotation settings need max_size", map[string]any{"path": "e.jsonl", "max_backups": 3, "max_age": "168h", "compress": true},
			"max_backups: applies only to rotated files; set max_size (e.g. 100MiB) to rotate\n" +
				"max_age: applies only to rotated files; set max_size (e.g. 100MiB) to rotate\n" +
				"compress: applies only to rotated files; set max_size (e.g. 100MiB) to rotate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sinktest.WantProblems(t, "file", "archive", tt.settings, tt.want)
		})
	}
}

func TestBuildAcceptsAFullRotationConfig(t *testing.T) {
	s := build(t, map[string]any{"path": "./data/events.jsonl", "max_size": "100MiB", "max_backups": 7, "max_age": "168h", "compress": true})
	if s.rot == nil || s.rot.MaxAge != 7 || s.rot.MaxBackups != 7 || !s.rot.Compress || s.maxSize != 100<<20 {
		t.Errorf("rotation = %+v, max size %d", s.rot, s.maxSize)
	}
	if strings.Contains(s.path, "./") {
		t.Errorf("path %q not cleaned", s.path)
	}
}
