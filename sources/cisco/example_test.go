package cisco

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
)

// The example config is valid, and its sample events (grpcurl's form) go
// where its comments say.
func TestExampleConfig(t *testing.T) {
	t.Setenv("CISCO_CLIENT_ID", "example-client")
	t.Setenv("CISCO_CLIENT_SECRET", "example-secret")
	f, err := config.Load("../../examples/cisco/switchboard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	src := snap.Sources["wgtwo"].Stream.(*Source)
	if got := src.oauth.Scopes; !slices.Equal(got, []string{"events.sms_delivery_report.subscribe", "events.voicemail.subscribe"}) {
		t.Errorf("scopes = %v", got)
	}
	for file, want := range map[string][]string{
		"sms-delivery-report-failed.json":    {"failed-sms"},
		"sms-delivery-report-delivered.json": nil,
		"voicemail-new.json":                 {"console"},
		"voice-call-ringing.json":            nil,
		"sms-received.json":                  nil,
	} {
		b, err := os.ReadFile(filepath.Join("../../examples/cisco", file))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := src.ParseJSON(b, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var got []string
		for _, i := range snap.Table.Route(evs[0], nil, nil, nil) {
			got = append(got, snap.Table.SinkName(i))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s (%s %s) goes to %v, want %v", file, evs[0].Event, evs[0].Status, got, want)
		}
	}
}

func TestParseJSONTakesBothForms(t *testing.T) {
	src := build(t, &Options{Target: "localhost:1", Plaintext: true, Start: "new"}, "VOICE_EVENT")
	wrapped := `{"event":{"timestamp":"2026-11-23T07:00:00Z","voiceEvent":{"callId":"c1","type":"CALL_ENDED"}}}`
	bare := `{"timestamp":"2026-11-23T07:00:00Z","voiceEvent":{"callId":"c1","type":"CALL_ENDED"}}`
	a, err := src.ParseJSON([]byte(wrapped), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.ParseJSON([]byte(bare), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a[0].ID != b[0].ID || a[0].Status != "CALL_ENDED" {
		t.Errorf("wrapped %+v, bare %+v", a[0], b[0])
	}
	if _, err := src.ParseJSON([]byte(`{"call":1}`), time.Now()); err == nil {
		t.Error("a non-event was taken")
	}
}
