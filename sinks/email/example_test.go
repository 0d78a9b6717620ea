package email_test

import (
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/router"
	"switchboard/sinks"
	_ "switchboard/sinks/email"
	_ "switchboard/sinks/file"
	_ "switchboard/sources/generic"
)

// The example config passes `switchboard check` as it is and with a real
// server's settings, and its sinks render the messages its comments promise.
func TestExampleConfig(t *testing.T) {
	for _, env := range []map[string]string{
		{}, // a local mail catcher
		{"SMTP_HOST": "smtp.example.com", "SMTP_PORT": "587", "SMTP_TLS": "starttls",
			"SMTP_USERNAME": "switchboard@example.com", "SMTP_PASSWORD": "pw", "EMAIL_TO": "a@example.com, b@example.com"},
	} {
		for k, v := range env {
			t.Setenv(k, v)
		}
		f, err := config.Load("../../examples/email-digest.yaml")
		if err != nil {
			t.Fatalf("load with %v: %v", env, err)
		}
		snap, err := daemon.Build(f)
		if err != nil {
			t.Fatalf("check with %v: %v", env, err)
		}
		at := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
		preview := func(sink string, payload map[string]any, event, status string) string {
			t.Helper()
			b, err := snap.Sinks[sink].Sink.(sinks.Previewer).Preview(&router.Event{
				ID: "x-1", Source: "events", Event: event, Status: status, Time: at, ReceivedAt: at, Payload: payload})
			if err != nil {
				t.Fatalf("%s: %v", sink, err)
			}
			return strings.ReplaceAll(string(b), "\r\n", "\n")
		}
		optout := preview("optouts", map[string]any{"receiver": "917002088123", "type": "sender", "value": "Demo12"},
			"sms:unsubscription", "Unsubscriber created successfully")
		for _, want := range []string{
			"Subject: [opt-out] 917002088123 left Demo12 (sms:unsubscription)\n",
			"Content-Type: multipart/alternative;",
			"<p><b>917002088123</b> unsubscribed from",
		} {
			if !strings.Contains(optout, want) {
				t.Errorf("optouts message lacks %q:\n%s", want, optout)
			}
		}
		call := preview("noc", map[string]any{"from": "+31612345678", "to": "+31687654321", "reason": "call-rejected"},
			"voice.outbound", "failed")
		for _, want := range []string{
			"Cc: <oncall@example.com>\n",
			"status:  failed (call-rejected)\n",
		} {
			if !strings.Contains(call, want) {
				t.Errorf("noc message lacks %q:\n%s", want, call)
			}
		}
	}
}
