package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withAdmin rewrites the site's admin settings.
func (s *site) withAdmin(admin string) {
	s.t.Helper()
	b, err := os.ReadFile(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "admin:") {
			lines[i] = "admin: " + admin
		}
	}
	if err := os.WriteFile(s.cfg, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// execEnv is exec with extra environment variables.
func (s *site) execEnv(env []string, args ...string) (int, string, string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(s.t), args...)
	cmd.Env = append(childEnv(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		s.t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// The CLI reaches a token-protected daemon on a wildcard listener through
// 127.0.0.1, with the token from --token-file, $SWITCHBOARD_ADMIN_TOKEN or
// the config's own token file.
func TestCLICallsTheAdminAPIWithItsToken(t *testing.T) {
	const token = "cli-admin-token-0123456789"
	s := newSite(t, "", genericSource+"sinks:\n  archive: { type: file, path: "+filepath.Join(t.TempDir(), "a.jsonl")+" }\nrules:\n  - { name: all, to: [archive] }\n")
	_, port, _ := net.SplitHostPort(s.admin)
	tokenFile := filepath.Join(s.dir, "admin-token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	wrongFile := filepath.Join(s.dir, "wrong-token")
	os.WriteFile(wrongFile, []byte("wrong\n"), 0o600)

	s.withAdmin(`{ listen: ":` + port + `" }`)
	if code, out, _ := s.cli("check"); code != 0 || !strings.Contains(out, `warning: admin.listen: ":`+port+`" is reachable from other hosts and admin.auth sets no bearer_token`) {
		t.Errorf("check of an open wildcard listener: exit %d\n%s", code, out)
	}
	p := s.start()
	waitFor(t, 5*time.Second, "the start log's warning", func() bool {
		return strings.Contains(p.logs.String(), `is reachable from other hosts and admin.auth sets no bearer_token`)
	})
	p.term()
	s.withAdmin(`{ listen: ":` + port + `", auth: { bearer_token_file: ` + tokenFile + ` } }`)
	if code, out, _ := s.cli("check"); code != 0 || strings.Contains(out, "warning") {
		t.Errorf("check with a token: exit %d\n%s", code, out)
	}
	p = s.start()
	if strings.Contains(p.logs.String(), "reachable from other hosts") {
		t.Errorf("warned with a token set:\n%s", p.logs.String())
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/api/dlq")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/dlq without the token: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"token from the config's token file", nil, nil, 0, "no dead letters"},
		{"token from the environment", []string{"SWITCHBOARD_ADMIN_TOKEN=" + token}, nil, 0, "no dead letters"},
		{"--token-file", nil, []string{"--token-file", tokenFile}, 0, "no dead letters"},
		{"wrong token from the environment", []string{"SWITCHBOARD_ADMIN_TOKEN=wrong"}, nil, 1, "needs its token: set SWITCHBOARD_ADMIN_TOKEN or pass --token-file"},
		{"--token-file wins over the environment", []string{"SWITCHBOARD_ADMIN_TOKEN=wrong"}, []string{"--token-file", tokenFile}, 0, "no dead letters"},
		{"wrong --token-file", nil, []string{"--token-file", wrongFile}, 1, "needs its token"},
		{"missing --token-file", nil, []string{"--token-file", filepath.Join(s.dir, "nope")}, 1, "--token-file: open"},
	} {
		args := append([]string{"dlq", "list", "-c", s.cfg}, tc.args...)
		code, out, errb := s.execEnv(tc.env, args...)
		if code != tc.code || !strings.Contains(out+errb, tc.want) {
			t.Errorf("%s: exit %d, %q %q; want %d and %q", tc.name, code, out, errb, tc.code, tc.want)
		}
	}
	// Replay and purge are POSTs with a JSON body: the CLI sends them so.
	code, out, errb := s.execEnv(nil, "dlq", "purge", "--all", "-c", s.cfg)
	if code != 0 || strings.TrimSpace(out) != "purged 0 dead letters" {
		t.Errorf("dlq purge --all: exit %d %q %q", code, out, errb)
	}
	if code := p.term(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// A ${SECRET} pasted into a setting that is not a secret is named, never
// printed, by check.
func TestCheckNamesTheVariableOfAMisplacedSecret(t *testing.T) {
	const hook = "https://hooks.slack.com/services/T0/B0/checkS3cret"
	s := newSite(t, "", genericSource+`sinks:
  chat: { type: slack, webhook_url: "${SLACK_WEBHOOK_URL}", timeout: "${SLACK_WEBHOOK_URL}" }
  crm: { type: http, url: "https://crm.example/", timeout: "${CRM_TOKEN}" }
rules:
  - { name: all, to: [chat, crm] }
`)
	code, out, errb := s.execEnv([]string{"SLACK_WEBHOOK_URL=" + hook, "CRM_TOKEN=crm-t0ken-9"}, "check", "-c", s.cfg)
	if code != 1 || !strings.Contains(out, "sinks.chat.timeout: the value of ${SLACK_WEBHOOK_URL} is not a duration") ||
		!strings.Contains(out, "sinks.crm.timeout: the value of ${CRM_TOKEN} is not a duration") {
		t.Errorf("check: exit %d\n%s%s", code, out, errb)
	}
	if strings.Contains(out+errb, "checkS3cret") || strings.Contains(out+errb, "crm-t0ken-9") {
		t.Errorf("a value printed:\n%s%s", out, errb)
	}
}
