//go:build !unix

package logqueue

import "os"

// lockFile does nothing where flock is missing: one daemon per queue.dir is
// then the operator's to ensure.
func lockFile(f *os.File) error { return nil }
