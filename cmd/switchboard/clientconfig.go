package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"switchboard/config"
)

// clientConfig is a config as read by the commands that act on a daemon
// rather than run one (dlq, tap, history, queue). An operator runs them
// from a shell that lacks what only the daemon's environment holds: a
// ${VAR} its unit sets (systemd's ${CREDENTIALS_DIRECTORY}), a secret
// file only its user can read. So a problem in a setting the command does
// not use does not stop it; need reports those it does use.
type clientConfig struct {
	path string
	*config.File
	problems config.Problems
}

// loadClientConfig reads path. It fails only when the file cannot be read
// or is not a config at all (not YAML, empty).
func loadClientConfig(path string) (*clientConfig, error) {
	f, ps := config.LoadPartial(path)
	if f == nil {
		return nil, fmt.Errorf("%s: %w", path, ps)
	}
	c := &clientConfig{path: path, File: f, problems: ps}
	if err := c.need(); err != nil {
		return nil, err
	}
	return c, nil
}

// need returns the problems of the settings under the given paths
// ("admin.listen", "queue"), and of the file as a whole, as one error
// naming the file; nil when there are none.
func (c *clientConfig) need(settings ...string) error {
	var found config.Problems
	for _, p := range c.problems {
		if p.Path == "" || under(p.Path, settings) {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", c.path, found)
}

func under(path string, settings []string) bool {
	for _, s := range settings {
		if path == s || strings.HasPrefix(path, s) && (path[len(s)] == '.' || path[len(s)] == '[') {
			return true
		}
	}
	return false
}

// adminTokenFor is the admin API's token, in adminToken's order; the
// config's admin.auth must be readable only when neither --token-file nor
// $SWITCHBOARD_ADMIN_TOKEN gives one.
func (c *clientConfig) adminTokenFor(tokenFile string) (string, error) {
	if tokenFile == "" && os.Getenv(AdminTokenEnv) == "" {
		if err := c.need("admin.auth"); err != nil {
			return "", fmt.Errorf("%w\n(give the admin token with --token-file or $%s instead)", err, AdminTokenEnv)
		}
	}
	return adminToken(tokenFile, c.File)
}

// existingQueueDir refuses a queue directory that does not exist: opening
// one would create an empty queue there and report "no dead letters",
// when the daemon's queue is elsewhere (a relative queue.dir is relative
// to the daemon's working directory, not the shell's).
func existingQueueDir(dir, setting string) error {
	_, err := os.Stat(dir)
	if err == nil {
		return nil
	}
	abs, _ := filepath.Abs(dir)
	if errors.Is(err, fs.ErrNotExist) {
		msg := fmt.Sprintf("%s %s (%s) does not exist, so there is no queue to read", setting, dir, abs)
		if setting == "queue.dir" && !filepath.IsAbs(dir) {
			msg += "; a relative queue.dir is relative to the daemon's working directory: run this from there, or make queue.dir absolute"
		}
		return errors.New(msg)
	}
	return fmt.Errorf("%s %s (%s): %w", setting, dir, abs, err)
}
