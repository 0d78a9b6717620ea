package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// execIn runs the binary in dir with exactly env (plus the race
// detector's setting).
func execIn(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(env, "GORACE=atexit_sleep_ms=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// withoutEnv is the environment less the variables named.
func withoutEnv(names ...string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name) || name == AdminTokenEnv
	})
}

// The commands that act on a daemon run from an operator's shell, which
// lacks what only the daemon's environment has (systemd's
// ${CREDENTIALS_DIRECTORY}, as the README's unit suggests): a problem in a
// setting they do not use does not stop them, and one in a setting they
// use says what to give instead.
func TestClientCommandsNeedOnlyTheSettingsTheyUse(t *testing.T) {
	creds := t.TempDir()
	os.WriteFile(filepath.Join(creds, "admin-token"), []byte("admin-token-0123456789\n"), 0o600)
	os.WriteFile(filepath.Join(creds, "app-token"), []byte("app-token-0123456789\n"), 0o600)
	s := &site{t: t, dir: t.TempDir(), listen: freePort(t), admin: freePort(t)}
	s.cfg, s.data = filepath.Join(s.dir, "switchboard.yaml"), filepath.Join(s.dir, "data")
	cfg := fmt.Sprintf(`server: { listen: %q, shutdown_timeout: 1s }
admin:
  listen: %q
  auth: { bearer_token_file: "${SB_TEST_CREDS}/admin-token" }
queue: { dir: %q }
sources:
  app: { type: generic, auth: { bearer_token_file: "${SB_TEST_CREDS}/app-token" } }
sinks:
  out: { type: log }
rules:
  - { name: all, to: [out] }
`, s.listen, s.admin, s.data)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SB_TEST_CREDS", creds)
	p := s.start()

	shell := withoutEnv("SB_TEST_CREDS")
	tokenFile := filepath.Join(creds, "admin-token")
	for _, args := range [][]string{
		{"dlq", "list", "-c", s.cfg, "--token-file", tokenFile},
		{"history", "no-such-event", "-c", s.cfg, "--token-file", tokenFile},
	} {
		code, out, errb := execIn(t, s.dir, shell, args...)
		if strings.Contains(errb, "SB_TEST_CREDS") || strings.Contains(errb, "needs its token") {
			t.Errorf("%v: exit %d, a problem it does not need stops it:\n%s%s", args, code, out, errb)
		}
	}
	if code, out, errb := execIn(t, s.dir, append(shell, AdminTokenEnv+"=admin-token-0123456789"), "dlq", "list", "-c", s.cfg); code != 0 {
		t.Errorf("dlq list with $%s: exit %d\n%s%s", AdminTokenEnv, code, out, errb)
	}
	// No token but the config's, which this shell cannot read: the problem,
	// and what to give instead.
	code, _, errb := execIn(t, s.dir, shell, "dlq", "list", "-c", s.cfg)
	if code != 1 || !strings.Contains(errb, "admin.auth.bearer_token_file") || !strings.Contains(errb, "--token-file") {
		t.Errorf("dlq list without a token: exit %d\n%s", code, errb)
	}
	if strings.Contains(errb, "sources.app") {
		t.Errorf("dlq list reports a problem of a setting it does not use:\n%s", errb)
	}

	// Stopped: dlq and queue open the queue itself.
	if code := p.term(); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	for _, args := range [][]string{{"dlq", "list", "-c", s.cfg}, {"queue", "check", "-c", s.cfg}} {
		if code, out, errb := execIn(t, s.dir, shell, args...); code != 0 {
			t.Errorf("%v with the daemon stopped: exit %d\n%s%s", args, code, out, errb)
		}
	}
}

// A relative queue.dir is relative to the daemon's working directory: from
// anywhere else, dlq and queue say there is no queue there, rather than
// create an empty one and report it empty.
func TestClientCommandsRefuseAQueueDirThatDoesNotExist(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "switchboard.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`server: { listen: %q }
admin: { listen: %q }
queue: { dir: ./data }
sources: { app: { type: generic } }
sinks: { out: { type: log } }
`, freePort(t), freePort(t))), 0o644)
	for _, args := range [][]string{
		{"dlq", "list", "-c", cfg},
		{"dlq", "purge", "--all", "-c", cfg},
		{"queue", "check", "-c", cfg},
		{"queue", "compact", "-c", cfg},
		{"queue", "check", "--dir", filepath.Join(dir, "nowhere")},
	} {
		code, out, errb := execIn(t, dir, os.Environ(), args...)
		if code != 1 || !strings.Contains(errb, "does not exist") {
			t.Errorf("%v: exit %d, want 1 saying the queue does not exist\n%s%s", args, code, out, errb)
		}
	}
	for _, name := range []string{"data", "nowhere"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s was created", name)
		}
	}
}
