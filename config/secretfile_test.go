package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// plugin stands for a source or sink type's options.
type plugin struct {
	Password Secret `koanf:"password"`
	Nested   struct {
		Key Secret `koanf:"key"`
	} `koanf:"nested"`
	List []struct {
		Token Secret `koanf:"token"`
	} `koanf:"list"`
	Name string `koanf:"name"`
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretFilesStandInForEverySecretSetting(t *testing.T) {
	raw := map[string]any{
		"password_file": writeFile(t, "pw-from-file\n"),
		"nested":        map[string]any{"key_file": writeFile(t, "key\r\n")},
		"list":          []any{map[string]any{"token_file": writeFile(t, "tok\n\n")}},
		"name":          "n",
	}
	var p plugin
	if ps := Decode(raw, &p, "sinks.x"); len(ps) > 0 {
		t.Fatal(ps)
	}
	if p.Password.Reveal() != "pw-from-file" || p.Nested.Key.Reveal() != "key" || p.List[0].Token.Reveal() != "tok\n" {
		t.Errorf("decoded %q %q %q", p.Password.Reveal(), p.Nested.Key.Reveal(), p.List[0].Token.Reveal())
	}
	// The raw settings hold the value, so that a reload sees a changed file
	// as a changed setting.
	if raw["password"] != "pw-from-file" || raw["password_file"] != nil {
		t.Errorf("raw = %v", raw)
	}
}

func TestSecretFileProblemsNameTheFileNotItsContent(t *testing.T) {
	dir := t.TempDir()
	big := writeFile(t, strings.Repeat("x", maxSecretFile+1))
	tests := []struct {
		name string
		raw  map[string]any
		want string
	}{
		{"missing", map[string]any{"password_file": filepath.Join(dir, "nope")},
			"sinks.x.password_file: cannot read the secret file: stat " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"directory", map[string]any{"password_file": dir},
			"sinks.x.password_file: " + dir + " is a directory; give the path of the file that holds the value"},
		{"empty", map[string]any{"password_file": writeFile(t, "\n")},
			"is empty; write the value into it"},
		{"too big", map[string]any{"password_file": big},
			"sinks.x.password_file: " + big + " is larger than 64KiB; a secret file holds one value"},
		{"not a regular file", map[string]any{"password_file": "/dev/null"},
			"sinks.x.password_file: /dev/null is not a regular file"},
		{"both", map[string]any{"password": "a", "password_file": writeFile(t, "hunter2")},
			"sinks.x.password_file: is set together with password; set one of them"},
		{"not a string", map[string]any{"nested": map[string]any{"key_file": 3}},
			"sinks.x.nested.key_file: must be the path of a file holding the key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p plugin
			ps := Decode(tt.raw, &p, "sinks.x")
			if len(ps) != 1 || !strings.Contains(ps[0].Error(), tt.want) {
				t.Fatalf("problems %q, want one containing %q", ps, tt.want)
			}
			if strings.Contains(ps.Error(), "hunter2") || strings.Contains(ps.Error(), "xxxx") {
				t.Errorf("content in %q", ps)
			}
		})
	}
}

func TestMistypedSecretFileKeyIsSuggested(t *testing.T) {
	var p plugin
	ps := Decode(map[string]any{"pasword_file": "/x"}, &p, "sinks.x")
	if len(ps) != 1 || ps[0].Msg != `unknown setting; did you mean "password_file"?` {
		t.Errorf("got %q", ps)
	}
}

func TestSecretsFindsEveryCredential(t *testing.T) {
	p := &plugin{Password: "a", Name: "not a secret"}
	p.Nested.Key = "b"
	p.List = append(p.List, struct {
		Token Secret `koanf:"token"`
	}{"c"})
	got := Secrets(p)
	slices.Sort(got)
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("got %q", got)
	}
	f, err := parse([]byte(withRequired("admin: {auth: {bearer_token: t0ken-t0ken-t0ken}}")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := Secrets(f); !reflect.DeepEqual(got, []string{"t0ken-t0ken-t0ken"}) {
		t.Errorf("file secrets %q", got)
	}
}

type holder struct{ headers map[string]string }

func (h holder) Secrets() []string { return []string{h.headers["Authorization"]} }

func TestSecretsAsksSecretHolders(t *testing.T) {
	got := Secrets(&struct{ H holder }{holder{map[string]string{"Authorization": "Bearer x"}}})
	if !slices.Contains(got, "Bearer x") {
		t.Errorf("got %q", got)
	}
}

func TestAdminTokenFromFile(t *testing.T) {
	doc := "admin:\n  listen: \":9090\"\n  auth:\n    bearer_token_file: " + writeFile(t, "from-a-mounted-secret-0123\n") + "\n"
	f, err := parse([]byte(withRequired(doc)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if f.Admin.Auth.BearerToken.Reveal() != "from-a-mounted-secret-0123" {
		t.Errorf("token %q", f.Admin.Auth.BearerToken.Reveal())
	}
	if ws := f.Warnings(); len(ws) != 0 {
		t.Errorf("warnings %q", ws)
	}
}

func TestAdminWarnings(t *testing.T) {
	tests := []struct {
		doc  string
		want []string
	}{
		{"admin: {listen: \"127.0.0.1:9090\"}", nil},
		{"admin: {listen: \"localhost:9090\"}", nil},
		{"admin: {listen: \"[::1]:9090\"}", nil},
		{"admin: {listen: \":9090\"}", []string{`admin.listen: ":9090" is reachable from other hosts and admin.auth sets no bearer_token`}},
		{"admin: {listen: \"10.0.0.5:9090\"}", []string{`admin.listen: "10.0.0.5:9090" is reachable`}},
		{"admin: {listen: \"0.0.0.0:9090\", auth: {bearer_token: short}}", []string{
			"admin.auth.bearer_token: is 5 characters long; use at least 16"}},
		{"admin: {auth: {protect_metrics: true}}", []string{"admin.auth.protect_metrics: has no effect without admin.auth.bearer_token"}},
	}
	for _, tt := range tests {
		f, err := parse([]byte(withRequired(tt.doc)), env(nil))
		if err != nil {
			t.Fatal(err)
		}
		ws := f.Warnings()
		if len(ws) != len(tt.want) {
			t.Errorf("%s: warnings %q, want %q", tt.doc, ws, tt.want)
			continue
		}
		for i, w := range ws {
			if !strings.HasPrefix(w.Error(), tt.want[i]) {
				t.Errorf("%s: warning %q, want %q...", tt.doc, w, tt.want[i])
			}
		}
	}
}

func TestEnvValuesAreNamedNotPrinted(t *testing.T) {
	uses := []envUse{
		{"sinks.a.url", "HOST", "info"},
		{"sources.b.token_url", "CISCO_SECRET", "sup3r-s3cret-value"},
		{"rules[1].when", "RULE_SECRET", "1234567890abcdef=="},
		{"rules[2].throttle.key", "KEY", "hunter2 secret-value"},
	}
	ps := Problems{
		{Path: "log.level", Msg: `"verbose" is not a level; use debug, info, warn or error`},
		{Path: "sinks.a.url", Msg: `"info" is not a URL; I read info`},
		{Path: "sources.b.token_url", Msg: `'sup3r-s3cret-value' is not a URL`},
		{Path: "rules[0]", Msg: `unknown sink sup3r-s3cret-value`},
		// expr quotes the token it stopped at: a piece of the value.
		{Path: "rules[1] (calls).when", Msg: `bad number syntax: "1234567890a" (column 11)`},
		{Path: "rules[2] (calls).throttle.key", Msg: `unexpected token Identifier("secret") (column 9)`},
		{Path: "rules[3] (other).when", Msg: `unexpected token Identifier("secret") (column 9)`},
	}
	got := nameEnv(ps, uses)
	want := []string{
		`log.level: "verbose" is not a level; use debug, info, warn or error`,
		`sinks.a.url: the value of ${HOST} is not a URL; I read ${HOST}`,
		`sources.b.token_url: the value of ${CISCO_SECRET} is not a URL`,
		`rules[0]: unknown sink ${CISCO_SECRET}`,
		`rules[1] (calls).when: bad number syntax: part of ${RULE_SECRET} (column 11)`,
		`rules[2] (calls).throttle.key: unexpected token Identifier(part of ${KEY}) (column 9)`,
		`rules[3] (other).when: unexpected token Identifier("secret") (column 9)`,
	}
	for i := range want {
		if got[i].Error() != want[i] {
			t.Errorf("got  %s\nwant %s", got[i].Error(), want[i])
		}
	}
	if ps[1].Msg != `"info" is not a URL; I read info` {
		t.Error("nameEnv changed its argument")
	}
}
