package config

import (
	"strings"
	"testing"
)

func TestRenderShowsDefaultsAndHidesSecrets(t *testing.T) {
	f, err := parseFile(t, "good-full.yaml", map[string]string{
		"BIRD_SIGNING_KEY":  "k3y-very-secret",
		"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Admin.Auth.BearerToken = "admin-token-value"
	b, err := Render(f)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{
		"max_body_bytes: 4KiB",            // a size as written
		"read_timeout: 3s",                // a duration as written
		"dead_letter_max_age: 720h0m0s",   // a default the file does not give
		"bearer_token: <secret>",          // a Secret setting
		"max_events: 500",                 // the history section
		"signing_key: k3y-very-secret",    // a type's own setting: for the redactor
		"path: /in/bird",                  // common and type settings side by side
		`when: event startsWith "voice."`, // rules in order
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "admin-token-value") {
		t.Errorf("rendered config shows the admin token:\n%s", out)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("the rendered config does not parse: %v\n%s", err, out)
	}
	if again.Queue != f.Queue || again.Server != f.Server || len(again.Rules) != 1 {
		t.Errorf("the rendered config reads back differently")
	}
}
