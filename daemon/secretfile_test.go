package daemon_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/daemon/daemontest"
)

// Every credential setting X of every source and sink also takes X_file,
// a mounted secret: its content, less one final line break, is the value.
func TestEveryCredentialHasAFileForm(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{
		"admin":       "admin-token-from-file-0123",
		"bearer":      "generic-bearer-from-file",
		"basic":       "generic-password-from-file",
		"bird":        "bird-signing-key-from-file",
		"mob":         "mob-secret-from-file",
		"mobverify":   "mob-verify-from-file",
		"tcmi":        "tcmi-token-from-file-0123456789",
		"cisco":       "cisco-client-secret-from-file",
		"slack":       "https://hooks.slack.com/services/T0/B0/fromFile",
		"smtp":        "smtp-password-from-file",
		"httpsigning": "http-signing-secret-from-file",
	}
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(secrets[name]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0", auth: { bearer_token_file: ` + file("admin") + ` } }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  bearer: { type: generic, auth: { bearer_token_file: ` + file("bearer") + ` } }
  basic:  { type: generic, auth: { username: u, password_file: ` + file("basic") + ` } }
  bird:   { type: bird, signing_key_file: ` + file("bird") + ` }
  mob:    { type: mobtexting, secret_file: ` + file("mob") + `, verify_token_file: ` + file("mobverify") + ` }
  tcmi:   { type: telecmi, token_file: ` + file("tcmi") + ` }
  wgtwo:
    type: cisco
    target: "127.0.0.1:1"
    plaintext: true
    events: [VOICE_EVENT]
    oauth: { client_id: c, client_secret_file: ` + file("cisco") + `, token_url: "http://127.0.0.1:1/token" }
sinks:
  chat: { type: slack, webhook_url_file: ` + file("slack") + ` }
  mail: { type: email, smtp: { host: mx.example, username: u, password_file: ` + file("smtp") + ` }, from: a@example.com, to: [b@example.com] }
  crm:  { type: http, url: "http://127.0.0.1:1/", signing_secret_file: ` + file("httpsigning") + ` }
rules:
  - { name: all, to: [crm] }
`
	f, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if !slices.Contains(snap.Secrets, v) {
			t.Errorf("%s: %q is not among the secrets read", name, v)
		}
	}
	// The values are the ones in force.
	d := daemontest.Start(t, cfgWithoutCisco(cfg))
	base := "http://" + d.WebhookAddr()
	if code, ans := daemontest.Post(t, base+"/hooks/bearer", `{"event":"e"}`, "Authorization", "Bearer "+secrets["bearer"]); code != 200 {
		t.Errorf("bearer from file: %d %v", code, ans)
	}
	if code, ans := daemontest.Post(t, base+"/hooks/tcmi/"+secrets["tcmi"], `{"type":"cdr"}`); code != 200 {
		t.Errorf("telecmi token from file: %d %v", code, ans)
	}
	if st, _ := daemontest.Admin(t, d, "GET", "/api/dlq", secrets["admin"], ""); st != 200 {
		t.Errorf("admin token from file: %d", st)
	}
}

// cfgWithoutCisco drops the stream source, which would dial.
func cfgWithoutCisco(cfg string) string {
	a := strings.Index(cfg, "  wgtwo:\n")
	b := strings.Index(cfg, "sinks:\n")
	return cfg[:a] + cfg[b:]
}

func TestSecretFileProblemsInPlugins(t *testing.T) {
	dir := t.TempDir()
	f, err := config.Parse([]byte(`
sources:
  tcmi: { type: telecmi, token: abc, token_file: /run/secrets/x }
sinks:
  chat: { type: slack, webhook_url_file: ` + filepath.Join(dir, "missing") + ` }
rules:
  - { name: all, to: [chat] }
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = daemon.Build(f)
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err %v", err)
	}
	want := []string{
		"sinks.chat.webhook_url_file: cannot read the secret file: stat " + filepath.Join(dir, "missing") + ": no such file or directory",
		"sources.tcmi.token_file: is set together with token; set one of them: token holds the value, token_file the path of a file holding it",
	}
	got := strings.Split(ps.Error(), "\n")
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing problem %q in\n%s", w, ps.Error())
		}
	}
}

// A rotated secret file applies at the next reload, though the config file
// itself did not change; without a rotation the same file is still
// "unchanged", and a secret file gone missing refuses the reload.
func TestReloadRereadsSecretFiles(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "switchboard.yaml")
	os.WriteFile(cfgPath, []byte(`
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: `+filepath.Join(dir, "q")+` }
sources:
  app: { type: generic, auth: { bearer_token_file: `+tok+` } }
sinks:
  archive: { type: file, path: `+filepath.Join(dir, "events.jsonl")+` }
rules:
  - { name: all, to: [archive] }
`), 0o600)
	d := daemontest.StartFile(t, cfgPath)
	url := "http://" + d.WebhookAddr() + "/hooks/app"
	post := func(token string) int {
		code, _ := daemontest.Post(t, url, `{"event":"e"}`, "Authorization", "Bearer "+token)
		return code
	}
	if ch, err := d.Reload("test"); err != nil || !ch.Unchanged {
		t.Fatalf("reload of the running file and secrets: %+v, %v; want unchanged", ch, err)
	}
	os.WriteFile(tok, []byte("second-token\n"), 0o600)
	ch, err := d.Reload("test")
	if err != nil || ch.Unchanged || !slices.Equal(ch.SourcesChanged, []string{"app"}) {
		t.Fatalf("reload after rotating the secret: %+v, %v; want source app changed", ch, err)
	}
	if post("second-token") != 200 || post("first-token") != 401 {
		t.Errorf("after the rotation: new token %d, old token %d; want 200 and 401", post("second-token"), post("first-token"))
	}
	os.Remove(tok)
	if _, err := d.Reload("test"); err == nil || !strings.Contains(err.Error(), "bearer_token_file") {
		t.Errorf("reload with the secret file gone: %v; want it refused, naming the setting", err)
	}
	if post("second-token") != 200 {
		t.Error("a refused reload changed the running token")
	}
}
