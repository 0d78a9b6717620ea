package all_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchboard/router"
	"switchboard/sources"
	_ "switchboard/sources/all"
	"switchboard/sources/sourcetest"
)

// Every webhook source reads its body through the one codec: each relaxed
// form is accepted by each source, and by the batch path, and gives the
// event the strict body gives.

// strictBodies are a delivery of each source, as strict JSON.
var strictBodies = map[string]string{
	"bird":       `{"service":"channels","event":"voice.outbound","payload":{"id":"c1","status":"failed","to":"+3161","n":12345678901234567891}}`,
	"mobtexting": `{"event":"whatsapp:message:status","payload":{"id":"m1","status":"read","n":1.50}}`,
	"telecmi":    `{"type":"cdr","cmiuuid":"u1","status":"missed","to":"4420","n":12345678901234567891}`,
	"generic":    `{"event":"order.paid","id":"o1","n":12345678901234567891}`,
}

var keyRE = regexp.MustCompile(`"([a-z_]+)":`)

// relaxedForms rewrite a strict body the ways documentation pages print
// JSON.
var relaxedForms = map[string]func(string) string{
	"trailing commas": func(s string) string { return strings.ReplaceAll(s, "}", ",}") },
	"unquoted keys":   func(s string) string { return keyRE.ReplaceAllString(s, "$1:") },
	"single quotes":   func(s string) string { return strings.ReplaceAll(s, `"`, `'`) },
	"comments":        func(s string) string { return "/* sample */ " + s + " // end\n" },
	"byte order mark": func(s string) string { return "\ufeff" + s },
	"indented":        func(s string) string { return strings.ReplaceAll(s, ",", ",\n\t\u00a0") },
}

func parseWith(t *testing.T, typ, body string) (*sources.Result, error) {
	t.Helper()
	src := sourcetest.Build[sources.HTTPSource](t, typ, "src", nil)
	req := sourcetest.Request(http.MethodPost, "/hooks/src", []byte(body), "Content-Type", "application/json")
	req.ReceivedAt, req.Source, req.MaxBatchEvents = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), "src", 10
	return src.Parse(req)
}

func sameEvent(t *testing.T, got, want *router.Event) {
	t.Helper()
	if got.ID != want.ID || got.Event != want.Event || got.Status != want.Status || !got.Time.Equal(want.Time) {
		t.Errorf("event %s %s %s %v, want %s %s %s %v", got.ID, got.Event, got.Status, got.Time, want.ID, want.Event, want.Status, want.Time)
	}
	if !reflect.DeepEqual(got.Fields(), want.Fields()) {
		t.Errorf("payload %#v, want %#v", got.Fields(), want.Fields())
	}
	var a, b bytes.Buffer
	if json.Compact(&a, got.RawPayload) != nil || json.Compact(&b, want.RawPayload) != nil || a.String() != b.String() {
		t.Errorf("raw payload %s, want %s", got.RawPayload, want.RawPayload)
	}
}

func TestEverySourceReadsEveryRelaxedForm(t *testing.T) {
	for typ, strict := range strictBodies {
		want, err := parseWith(t, typ, strict)
		if err != nil {
			t.Fatalf("%s: strict body refused: %v", typ, err)
		}
		for form, rewrite := range relaxedForms {
			t.Run(typ+"/"+form, func(t *testing.T) {
				body := rewrite(strict)
				res, err := parseWith(t, typ, body)
				if err != nil {
					t.Fatalf("%s refused:\n%s", err, body)
				}
				sameEvent(t, res.Events[0], want.Events[0])
			})
		}
	}
}

func TestBatchPathReadsEveryRelaxedForm(t *testing.T) {
	strict := strictBodies["generic"]
	want, err := parseWith(t, "generic", strict)
	if err != nil {
		t.Fatal(err)
	}
	for form, rewrite := range relaxedForms {
		t.Run(form, func(t *testing.T) {
			body := rewrite("[" + strict + ", " + strict + "]")
			res, err := parseWith(t, "generic", body)
			if err != nil {
				t.Fatalf("%s refused:\n%s", err, body)
			}
			if len(res.Events) != 2 {
				t.Fatalf("%d events", len(res.Events))
			}
			for _, ev := range res.Events {
				sameEvent(t, ev, want.Events[0])
			}
		})
	}
	// The forms of the issue, verbatim.
	for _, body := range []string{`{event:'a',}`, `[{event:'a',}]`} {
		if res, err := parseWith(t, "generic", body); err != nil || res.Events[0].Event != "a" {
			t.Errorf("%s: %v", body, err)
		}
	}
}
