package slack_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/router"
	"switchboard/sinks"
	_ "switchboard/sinks/file"
	"switchboard/sinks/slack"
	_ "switchboard/sources/generic"
)

// The example config passes `switchboard check` (config.Load and
// daemon.Build are what check runs) and its sinks render the messages its
// comments promise.
func TestExampleConfig(t *testing.T) {
	t.Setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/XXXX")
	f, err := config.Load("../../examples/slack-oncall.yaml")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	at := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	preview := func(sink string, payload map[string]any, event, status string) string {
		t.Helper()
		b, err := snap.Sinks[sink].Sink.(sinks.Previewer).Preview(&router.Event{
			ID: "x-1", Source: "events", Event: event, Status: status, Time: at, ReceivedAt: at, Payload: payload})
		if err != nil {
			t.Fatalf("%s: %v", sink, err)
		}
		return string(b)
	}
	call := preview("oncall", map[string]any{"from": "+31612345678", "to": "+31687654321", "reason": "call-rejected"}, "voice.outbound", "failed")
	if want := `{"text":":rotating_light: *voice.outbound* failed (call-rejected) via events\nfrom +31612345678 to +31687654321\n<!date^1795417200^{date_short_pretty} {time_secs}|2026-11-23 07:00:00 UTC> · id x-1","username":"switchboard","icon_emoji":":telephone_receiver:"}`; call != want {
		t.Errorf("oncall\n got %s\nwant %s", call, want)
	}
	sms := preview("oncall-messages", map[string]any{"mobile": 918921269123, "cid": "12344441234"}, "sms:message:status", "UNDELIV")
	var m struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(sms), &m); err != nil || len(m.Blocks) != 3 || m.Text != ":envelope: sms:message:status UNDELIV to 918921269123" {
		t.Errorf("oncall-messages = %s (%v)", sms, err)
	}
	if !strings.Contains(sms, `"text":"*To*\n918921269123"`) {
		t.Errorf("oncall-messages blocks lack the mobile: %s", sms)
	}
}

// The README shows the default text as it is.
func TestReadmeShowsTheDefaultText(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "### Default text\n\n```\n")
	shown, _, _ := strings.Cut(rest, "\n```")
	if shown != slack.DefaultText {
		t.Errorf("README's default text\n%s\ndiffers from DefaultText\n%s", shown, slack.DefaultText)
	}
}
