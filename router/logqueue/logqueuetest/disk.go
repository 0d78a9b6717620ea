// Package logqueuetest gives tests of the durable queue, and of what runs
// on it, a disk that fills up on demand: the real file system, whose
// writes fail with ENOSPC while it is "full", as a full disk's do.
package logqueuetest

import (
	"os"
	"sync"
	"syscall"

	"switchboard/router/logqueue"
)

// Disk is the real file system with a switch that makes it full.
type Disk struct {
	logqueue.FS

	mu       sync.Mutex
	full     bool
	syncFull bool
	failed   int
}

// NewDisk returns a disk over the operating system's file system.
func NewDisk() *Disk { return &Disk{FS: logqueue.OS} }

// SetFull makes every write fail with ENOSPC (after writing half of what
// it was given, as a write that runs out of space part way does), or
// works again.
func (d *Disk) SetFull(full bool) {
	d.mu.Lock()
	d.full = full
	d.mu.Unlock()
}

// SetSyncFails makes fsync fail with ENOSPC (as with delayed allocation)
// while writes succeed.
func (d *Disk) SetSyncFails(fail bool) {
	d.mu.Lock()
	d.syncFull = fail
	d.mu.Unlock()
}

// Failed returns how many operations failed so far.
func (d *Disk) Failed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

func (d *Disk) fail(sync bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full || sync && d.syncFull {
		d.failed++
		return true
	}
	return false
}

// OpenFile implements logqueue.FS.
func (d *Disk) OpenFile(name string, flag int, perm os.FileMode) (logqueue.File, error) {
	if flag&os.O_CREATE != 0 && d.fail(false) {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	f, err := d.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return file{f, d, name}, nil
}

type file struct {
	logqueue.File
	d    *Disk
	name string
}

func (f file) WriteAt(b []byte, off int64) (int, error) {
	if f.d.fail(false) {
		n, _ := f.File.WriteAt(b[:len(b)/2], off)
		return n, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(b, off)
}

func (f file) Sync() error {
	if f.d.fail(true) {
		return &os.PathError{Op: "fsync", Path: f.name, Err: syscall.ENOSPC}
	}
	return f.File.Sync()
}
