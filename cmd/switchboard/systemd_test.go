package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/config"
)

// unit is a systemd unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case section == "":
			t.Fatalf("%s:%d: a setting before any [section]", path, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: not key=value: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return "<unset>"
	}
	return v[len(v)-1]
}

// TestSystemdUnit checks the unit's hardening and that its commands are
// ones switchboard takes; where systemd-analyze is installed, systemd
// itself verifies the file.
func TestSystemdUnit(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/systemd/*.service")
	if len(files) != 1 {
		t.Fatalf("want one unit under deploy/systemd, found %v", files)
	}
	path := files[0]
	u := parseUnit(t, path)
	for key, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "switchboard", "ConfigurationDirectory": "switchboard",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "Restart": "on-failure",
		"ExecReload": "/bin/kill -HUP $MAINPID", "WorkingDirectory": "/var/lib/switchboard",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "KillSignal": "SIGTERM",
	} {
		if got := u.get("Service", key); got != want {
			t.Errorf("[Service] %s=%s, want %s", key, got, want)
		}
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%s", u.get("Install", "WantedBy"))
	}
	stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
	if err != nil || stop <= config.Defaults().Server.ShutdownTimeout {
		t.Errorf("TimeoutStopSec=%s must be above the default server.shutdown_timeout (%s), or SIGKILL cuts the drain short",
			u.get("Service", "TimeoutStopSec"), config.Defaults().Server.ShutdownTimeout)
	}
	// ExecStart and ExecStartPre are switchboard command lines that parse.
	for _, key := range []string{"ExecStartPre", "ExecStart"} {
		words := strings.Fields(u.get("Service", key))
		if len(words) < 2 || words[0] != "/usr/local/bin/switchboard" {
			t.Fatalf("%s=%v: want /usr/local/bin/switchboard ...", key, words)
		}
		root := testRoot()
		cmd, rest, err := root.Find(words[1:])
		if err == nil {
			err = cmd.ParseFlags(rest)
		}
		if err == nil {
			err = cmd.ValidateArgs(cmd.Flags().Args())
		}
		if err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	verifyUnit(t, path)
}

// verifyUnit runs systemd-analyze verify on a copy of the unit whose
// binary is one that exists here; any word from it is a failure.
func verifyUnit(t *testing.T, path string) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit is parsed, not verified by systemd")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	copyPath := filepath.Join(t.TempDir(), filepath.Base(path))
	os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/switchboard", self)), 0o644)
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
