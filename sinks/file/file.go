// Package file owns the "file" sink: it appends each event to a file as one
// line of normalized event JSON (JSON Lines), and, when max_size is set,
// rotates that file by size, keeping, compressing and expiring the backups
// with lumberjack.
//
// Every line is written through one O_APPEND handle under a mutex, so
// concurrent deliveries never interleave. The file is opened on the first
// event, not at build time, so that `check` creates nothing.
package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sinks"
)

// Options are the settings of a file sink.
type Options struct {
	Path string `koanf:"path"`
	// MaxSize is the size past which the file is rotated; 0 never rotates.
	MaxSize config.Size `koanf:"max_size"`
	// MaxBackups is how many rotated files to keep; 0 keeps them all.
	MaxBackups int `koanf:"max_backups"`
	// MaxAge removes rotated files older than this; 0 keeps them.
	MaxAge   time.Duration `koanf:"max_age"`
	Compress bool          `koanf:"compress"`
}

func init() {
	sinks.Register("file", func() sinks.Builder { return &Options{} })
}

// DefaultConcurrency is one: writes are serialized anyway, and one writer
// keeps the lines in delivery order.
func (o *Options) DefaultConcurrency() int { return 1 }

const day = 24 * time.Hour

// Build checks the settings; it creates neither the file nor its directory.
func (o *Options) Build(sinks.Info) (router.Sink, error) {
	var ps config.Problems
	switch {
	case o.Path == "":
		ps.Add("path", "is required: the file to append events to, e.g. ./data/events.jsonl")
	case strings.HasSuffix(o.Path, "/") || strings.HasSuffix(o.Path, string(filepath.Separator)):
		ps.Add("path", "%q names a directory; give the file's name, e.g. %sevents.jsonl", o.Path, o.Path)
	}
	if o.MaxSize < 0 {
		ps.Add("max_size", "must not be negative; 0 never rotates, or a size like 100MiB")
	}
	if o.MaxBackups < 0 {
		ps.Add("max_backups", "must not be negative; 0 keeps every rotated file")
	}
	switch {
	case o.MaxAge < 0:
		ps.Add("max_age", "must not be negative; 0 keeps rotated files however old")
	case o.MaxAge%day != 0:
		// lumberjack expires backups by whole days.
		ps.Add("max_age", "%s is not a whole number of days; write it like 24h or 168h (7 days)", o.MaxAge)
	}
	if o.MaxSize == 0 {
		// Without rotation there are no backups to keep, expire or
		// compress: a setting that would do nothing is a mistake.
		for _, s := range []struct {
			key string
			set bool
		}{{"max_backups", o.MaxBackups != 0}, {"max_age", o.MaxAge != 0}, {"compress", o.Compress}} {
			if s.set {
				ps.Add(s.key, "applies only to rotated files; set max_size (e.g. 100MiB) to rotate")
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}

	s := &Sink{path: filepath.Clean(o.Path), maxSize: int64(o.MaxSize)}
	if o.MaxSize > 0 {
		s.rot = &lumberjack.Logger{
			Filename:   s.path,
			MaxBackups: o.MaxBackups,
			MaxAge:     int(o.MaxAge / day),
			Compress:   o.Compress,
		}
	}
	return s, nil
}

// Sink appends events to one file. It is safe for concurrent use.
type Sink struct {
	path    string
	maxSize int64
	// rot, when rotation is on, renames the full file to a timestamped
	// backup and prunes old ones. Lines are never written through it: its
	// files lack O_APPEND, which undoing a partial write relies on.
	rot *lumberjack.Logger

	mu         sync.Mutex
	f          *os.File // nil until the first Send and after a write error
	size       int64    // of f
	fence      bool     // the file ends in a partial line that could not be removed
	lastRotate time.Time
	closed     bool
}

// Send appends e as one line. A failed write (a full disk) is transient,
// and the partial line it may leave is removed, so the retry writes the
// whole line again.
func (s *Sink) Send(_ context.Context, e *router.Event) error {
	line, err := s.Preview(e)
	if err != nil {
		return router.Permanent(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("file sink for %s is closed (removed from the config or the daemon is stopping)", s.path)
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	if s.rot != nil && s.size > 0 && s.size+int64(len(line)) > s.maxSize {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	if s.fence {
		line = append([]byte{'\n'}, line...)
	}
	n, err := s.f.Write(line)
	s.size += int64(n)
	if err != nil {
		s.abandon(n)
		return err
	}
	s.fence = false
	return nil
}

// Preview returns the line Send would write for e.
func (s *Sink) Preview(e *router.Event) ([]byte, error) {
	b, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	// A copy: b may be the event's cached encoding, shared with other sinks.
	line := make([]byte, len(b)+1)
	copy(line, b)
	line[len(b)] = '\n'
	return line, nil
}

// Preflight checks that the file's directory exists or can be created,
// and can be written, without creating either.
func (s *Sink) Preflight() error {
	if err := config.WritableDir(filepath.Dir(s.path)); err != nil {
		return config.Problems{{Path: "path", Msg: err.Error() + "; make it writable by the user switchboard runs as, or choose another path"}}
	}
	// A directory at the path itself would fail every delivery, each
	// retried for hours before it is dead-lettered.
	if fi, err := os.Stat(s.path); err == nil && fi.IsDir() {
		return config.Problems{{Path: "path", Msg: fmt.Sprintf("%s is a directory; path names the file the sink appends to, e.g. %s",
			s.path, filepath.Join(s.path, "events.jsonl"))}}
	}
	return nil
}

// Close closes the file. Sends after Close fail.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var err error
	if s.f != nil {
		err = s.f.Close()
		s.f = nil
	}
	return err
}

func (s *Sink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, fi.Size()
	return nil
}

// abandon undoes a failed write of n bytes and drops the handle, so that
// the next Send reopens the file (it may have been replaced meanwhile).
func (s *Sink) abandon(n int) {
	if n > 0 {
		if err := s.f.Truncate(s.size - int64(n)); err == nil {
			s.size -= int64(n)
		} else {
			// Start the next line on a line of its own: one broken line
			// beats two.
			s.fence = true
		}
	}
	s.f.Close()
	s.f = nil
}

// rotate moves the full file aside. lumberjack names backups by the
// millisecond, so rotations are kept at least 1 ms apart or a backup would
// overwrite the previous one (only reachable with a tiny max_size).
func (s *Sink) rotate() error {
	if wait := time.Until(s.lastRotate.Add(time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	cerr := s.f.Close()
	s.f = nil
	err := s.rot.Rotate()
	// lumberjack opened the new file; we write through our own handle.
	_ = s.rot.Close()
	s.lastRotate = time.Now()
	if err != nil {
		return fmt.Errorf("rotate %s: %w", s.path, errors.Join(err, cerr))
	}
	return s.open()
}

var (
	_ sinks.Builder            = (*Options)(nil)
	_ sinks.DefaultConcurrency = (*Options)(nil)
	_ router.Sink              = (*Sink)(nil)
	_ sinks.Closer             = (*Sink)(nil)
	_ sinks.Previewer          = (*Sink)(nil)
	_ sinks.Preflighter        = (*Sink)(nil)
)
