package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WritableDir reports whether switchboard could create files in dir,
// creating dir first if it is missing, as `run` will. It leaves nothing
// behind: a missing dir is not created (its nearest existing parent is
// tried instead) and the probe file is removed. The error is a sentence
// that names the directory and what is wrong with it.
func WritableDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	probe := filepath.Clean(dir)
	for {
		fi, err := os.Stat(probe)
		switch {
		case err == nil && !fi.IsDir():
			if probe == filepath.Clean(dir) {
				return fmt.Errorf("%s is a file, not a directory", probe)
			}
			return fmt.Errorf("%s cannot be created: %s is a file, not a directory", dir, probe)
		case err == nil:
			return probeWrite(probe, dir)
		case !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("%s cannot be used: %v", dir, unwrapPath(err))
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return fmt.Errorf("%s cannot be created: no parent directory exists", dir)
		}
		probe = parent
	}
}

// probeWrite creates and removes a file in existing, the directory dir is
// (or would be created) in.
func probeWrite(existing, dir string) error {
	f, err := os.CreateTemp(existing, ".switchboard-check-*")
	if err != nil {
		if existing == filepath.Clean(dir) {
			return fmt.Errorf("cannot write in %s: %v", dir, unwrapPath(err))
		}
		return fmt.Errorf("%s cannot be created: cannot write in %s: %v", dir, existing, unwrapPath(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// unwrapPath drops the operation and path of a *PathError, which the
// message around it already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
