package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WritableDir reports whether switchboard could create files in dir,
// creating dir first if it is missing, as `run` will. It changes nothing:
// a missing dir is judged by its nearest existing parent, and permissions
// are asked of the kernel (access(2), which also knows a read-only file
// system) rather than tried with a file that a queue directory's reader
// could mistake for its own. The error is a sentence that names the
// directory and what is wrong with it.
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
			return canWrite(probe, dir)
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

// canWrite asks whether files can be created in existing, the directory
// dir is (or would be created) in.
func canWrite(existing, dir string) error {
	const wx = 0x2 | 0x1 // W_OK | X_OK
	if err := syscall.Access(existing, wx); err != nil {
		if existing == filepath.Clean(dir) {
			return fmt.Errorf("cannot write in %s: %v", dir, err)
		}
		return fmt.Errorf("%s cannot be created: cannot write in %s: %v", dir, existing, err)
	}
	return nil
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
