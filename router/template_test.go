package router_test

import (
	"testing"
	"time"

	"switchboard/router"
)

func render(t *testing.T, text string, e *router.Event) (string, error) {
	t.Helper()
	tpl, err := router.ParseTemplate("t", text)
	if err != nil {
		t.Fatalf("ParseTemplate(%q): %v", text, err)
	}
	b, err := tpl.Execute(e)
	return string(b), err
}

func templateEvent(t *testing.T) *router.Event {
	return &router.Event{
		ID: "ev-1", Source: "bird", Event: "voice.outbound", Status: "completed",
		Time: t0, ReceivedAt: t1,
		Payload: decodePayload(t, `{
			"to": "+31612345678",
			"status": "payload-status",
			"id": "payload-id",
			"name": "Zoë Ångström",
			"units": 2,
			"zero": 0,
			"price": 0.25,
			"ok": true,
			"empty": "",
			"null": null,
			"started": "2026-11-23T08:30:00+01:00",
			"epoch_ms": 1763881200123,
			"epoch_s": 1763881200,
			"epoch_ms_text": "1763881200123",
			"epoch_s_text": "1763881200",
			"deliv_time": "2026-11-23 06:59:58",
			"recipient": {"from": "+3161"},
			"tags": ["a", "b"]
		}`),
		Headers: map[string]string{"x-a": "1"},
	}
}

func TestTemplateHelpers(t *testing.T) {
	e := templateEvent(t)
	e.Payload["epoch_float"] = float64(1763881200) // as a decoder without int normalization gives it
	for _, tc := range []struct {
		name, text, want string
	}{
		// json
		{"json of a string", `{{ json .to }}`, `"+31612345678"`},
		{"json of an object", `{{ json .recipient }}`, `{"from":"+3161"}`},
		{"json of a list", `{{ json .tags }}`, `["a","b"]`},
		{"json of a number", `{{ json .units }}`, `2`},
		{"json of null", `{{ json .null }}`, `null`},
		{"json of a missing field", `{{ json .nope }}`, `null`},
		{"json of a time", `{{ json .time }}`, `"2026-11-23T07:00:00.123Z"`},
		{"json escapes", `{{ json .name }}`, `"Zoë Ångström"`},
		// default
		{"default of a value", `{{ default "n/a" .to }}`, `+31612345678`},
		{"default of an empty string", `{{ default "n/a" .empty }}`, `n/a`},
		{"default of null", `{{ default "n/a" .null }}`, `n/a`},
		{"default of a missing field", `{{ default "n/a" .nope }}`, `n/a`},
		{"default of a missing nested field", `{{ default "n/a" .recipient.to }}`, `n/a`},
		{"default keeps zero numbers", `{{ default 9 .zero }}`, `0`},
		{"default keeps false", `{{ default true .ok }}`, `true`},
		{"default in a pipeline", `{{ .nope | default "x" }}`, `x`},
		// upper, lower
		{"upper", `{{ upper .status }}`, `COMPLETED`},
		{"upper non-ASCII", `{{ upper .name }}`, `ZOË ÅNGSTRÖM`},
		{"lower", `{{ lower "VOICE" }}`, `voice`},
		{"upper of a number", `{{ upper .units }}`, `2`},
		{"lower of a bool", `{{ lower .ok }}`, `true`},
		{"upper of missing", `{{ upper .nope }}`, ``},
		// trunc
		{"trunc shorter than n", `{{ trunc 20 .to }}`, `+31612345678`},
		{"trunc exactly n", `{{ trunc 12 .to }}`, `+31612345678`},
		{"trunc cuts and marks", `{{ trunc 5 .to }}`, `+316…`},
		{"trunc counts runes", `{{ trunc 4 .name }}`, `Zoë…`},
		{"trunc 1", `{{ trunc 1 .name }}`, `…`},
		{"trunc 0", `{{ trunc 0 .name }}`, ``},
		{"trunc negative keeps all", `{{ trunc -1 .name }}`, `Zoë Ångström`},
		{"trunc a number", `{{ trunc 3 .epoch_s }}`, `17…`},
		{"trunc in a pipeline", `{{ .name | trunc 3 }}`, `Zo…`},
		// time
		{"time of .time", `{{ time "RFC3339" .time }}`, `2026-11-23T07:00:00Z`},
		{"time with a Go layout", `{{ time "2006-01-02 15:04:05.000" .received_at }}`, `2026-11-23 07:00:00.125`},
		{"time DateTime", `{{ time "DateTime" .time }}`, `2026-11-23 07:00:00`},
		{"time Kitchen", `{{ time "Kitchen" .time }}`, `7:00AM`},
		{"time RFC1123", `{{ time "RFC1123" .time }}`, `Mon, 23 Nov 2026 07:00:00 UTC`},
		{"time of an RFC 3339 string, in UTC", `{{ time "RFC3339" .started }}`, `2026-11-23T07:30:00Z`},
		{"time of epoch milliseconds", `{{ time "2006-01-02T15:04:05.000Z07:00" .epoch_ms }}`, `2025-11-23T07:00:00.123Z`},
		{"time of epoch seconds", `{{ time "RFC3339" .epoch_s }}`, `2025-11-23T07:00:00Z`},
		{"time in a pipeline", `{{ .time | time "15:04" }}`, `07:00`},
		{"time Unix is epoch seconds", `{{ time "Unix" .time }}`, `1795417200`},
		{"time Unix of an RFC 3339 string", `{{ time "Unix" .started }}`, `1795419000`},
		{"time of a MOBtexting date-time, read as UTC", `{{ time "RFC3339" .deliv_time }}`, `2026-11-23T06:59:58Z`},
		{"time of epoch milliseconds as digits (form bodies)", `{{ time "RFC3339" .epoch_ms_text }}`, `2025-11-23T07:00:00Z`},
		{"time of epoch seconds as digits", `{{ time "DateTime" .epoch_s_text }}`, `2025-11-23 07:00:00`},
		{"time of a whole float", `{{ time "RFC3339" .epoch_float }}`, `2025-11-23T07:00:00Z`},
		{"time trims spaces", `{{ time "Kitchen" " 2026-11-23 19:05:00 " }}`, `7:05PM`},
		// the data
		{"payload fields at top level", `{{ .to }} {{ .units }} {{ .recipient.from }}`, `+31612345678 2 +3161`},
		{"status is the normalized one", `{{ .status }}`, `completed`},
		{"the payload's status via .payload", `{{ .payload.status }}`, `payload-status`},
		{"id is the normalized one", `{{ .id }} {{ .payload.id }}`, `ev-1 payload-id`},
		{"normalized fields", `{{ .source }} {{ .event }}`, `bird voice.outbound`},
		{"headers", `{{ index .headers "x-a" }}`, `1`},
		{"a missing field", `[{{ .nope }}]`, `[]`},
		{"range over a list", `{{ range .tags }}{{ . }};{{ end }}`, `a;b;`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := render(t, tc.text, e)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

func TestTemplateHelperErrors(t *testing.T) {
	e := templateEvent(t)
	e.Payload["bad_time"] = "yesterday"
	e.Payload["float"] = 1.5
	e.Payload["inf"] = func() {}
	for _, tc := range []struct{ text, want string }{
		{`{{ time "RFC3339" .bad_time }}`, `template: t:1:3: executing "t" at <time "RFC3339" .bad_time>: error calling time: time: "yesterday" is not an RFC 3339 time`},
		{`{{ time "RFC3339" .float }}`, `template: t:1:3: executing "t" at <time "RFC3339" .float>: error calling time: time: cannot format float64`},
		{`{{ time "RFC3339" .nope }}`, `template: t:1:3: executing "t" at <time "RFC3339" .nope>: error calling time: time: cannot format <nil>`},
		{`{{ time "RFC3339" .ok }}`, `template: t:1:3: executing "t" at <time "RFC3339" .ok>: error calling time: time: cannot format bool`},
		{`{{ time "RFC3339" .to }}`, `template: t:1:3: executing "t" at <time "RFC3339" .to>: error calling time: time: "+31612345678" is not an RFC 3339 time`},
		{`{{ time "RFC3339" "12345678901234567" }}`, `template: t:1:3: executing "t" at <time "RFC3339" "12345678901234567">: error calling time: time: "12345678901234567" is not an RFC 3339 time`},
		{`{{ time "RFC3339" "" }}`, `template: t:1:3: executing "t" at <time "RFC3339" "">: error calling time: time: "" is not an RFC 3339 time`},
		{`{{ json .inf }}`, `template: t:1:3: executing "t" at <json .inf>: error calling json: json: unsupported type: func()`},
		{`{{ trunc "x" .to }}`, `template: t:1:9: executing "t" at <"x">: expected integer; found "x"`},
	} {
		t.Run(tc.text, func(t *testing.T) {
			got, err := render(t, tc.text, e)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %q, %v\nwant error %s", got, err, tc.want)
			}
		})
	}
}

func TestTemplateParseErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`{{ .status `, `template: t:1: unclosed action`},
		{`{{ nope .status }}`, `template: t:1: function "nope" not defined`},
		{`{{ if .status }}`, `template: t:1: unexpected EOF`},
	} {
		if _, err := router.ParseTemplate("t", tc.text); err == nil || err.Error() != tc.want {
			t.Errorf("ParseTemplate(%q) error = %v, want %q", tc.text, err, tc.want)
		}
	}
}

func TestTemplateData(t *testing.T) {
	e := &router.Event{ID: "x", Source: "s", Event: "e", ReceivedAt: t1}
	d := router.TemplateData(e)
	for _, k := range []string{"id", "source", "event", "status", "time", "received_at", "payload", "headers"} {
		if _, ok := d[k]; !ok {
			t.Errorf("TemplateData has no %q", k)
		}
	}
	if d["time"] != t1 {
		t.Errorf(".time of an event without a time = %v, want received_at %v", d["time"], t1)
	}
	got, err := render(t, `{{ .status }}|{{ .payload }}|{{ time "RFC3339" .time }}`, e)
	if err != nil {
		t.Fatal(err)
	}
	if want := `|map[]|2026-11-23T07:00:00Z`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Execute may run concurrently for many events.
	tpl, _ := router.ParseTemplate("t", `{{ .id }}`)
	done := make(chan string)
	for i := range 4 {
		go func() {
			b, _ := tpl.Execute(&router.Event{ID: string(rune('a' + i)), Time: time.Now()})
			done <- string(b)
		}()
	}
	seen := map[string]bool{}
	for range 4 {
		seen[<-done] = true
	}
	if len(seen) != 4 {
		t.Errorf("concurrent executions mixed up: %v", seen)
	}
}
