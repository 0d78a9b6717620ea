package mobtexting

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/sources"
	"switchboard/sources/sourcetest"
)

// maxFuzzBody bounds fuzz inputs like server.max_body_bytes bounds bodies.
const maxFuzzBody = 64 << 10

func seeds(f *testing.F, pattern string) []string {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	var out []string
	for _, p := range files {
		out = append(out, string(sourcetest.ReadFile(f, p)))
	}
	return out
}

// check asserts what Parse promises for any input: a rejection with a
// status and reason, a reply, or one well-formed event.
func check(t *testing.T, res *sources.Result, err error) {
	if err != nil {
		if re := sourcetest.Rejection(t, err); re.Reason == "" || re.Msg == "" || (re.Status != 400 && re.Status != 401) {
			t.Fatalf("error is not a 400/401 rejection: %#v", err)
		}
		return
	}
	if res.Reply != nil {
		if !json.Valid(res.Reply) || len(res.Events) != 0 {
			t.Fatalf("bad reply %q with %d events", res.Reply, len(res.Events))
		}
		return
	}
	if len(res.Events) != 1 {
		t.Fatalf("got %d events, want 1", len(res.Events))
	}
	ev := res.Events[0]
	if ev.ID == "" || ev.Event == "" || ev.Payload == nil || ev.Time.IsZero() {
		t.Fatalf("incomplete event: %+v", ev)
	}
	b, err := ev.MarshalJSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("normalized event is not JSON: %v: %s", err, b)
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range seeds(f, "*.json") {
		f.Add(s, "")
		f.Add(s, "sms:unsubscription")
	}
	f.Add(`{"challenge":"c"}`, "")
	f.Add(`{"event":"x","payload":{"id":1e400}}`, "")
	f.Add(`{"receiver":1,"type":2,"value":3}`, "")
	src := newSource(f, Options{})
	f.Fuzz(func(t *testing.T, body, sub string) {
		if len(body) > maxFuzzBody {
			t.Skip()
		}
		hr := httptest.NewRequest(http.MethodPost, "/hooks/mob", strings.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		if sub != "" {
			hr.URL.Path += "/" + sub
		}
		res, err := src.Parse(&sources.Request{HTTP: hr, Body: []byte(body), ReceivedAt: received, Source: "mob", Subpath: sub})
		check(t, res, err)
	})
}

func FuzzParseForm(f *testing.F) {
	for _, s := range seeds(f, "*.txt") {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Add("challenge=x&validation_key=y", false)
	f.Add("--b\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n1\r\n--b--\r\n", true)
	src := newSource(f, Options{VerifyToken: "vt"})
	f.Fuzz(func(t *testing.T, body string, multipart bool) {
		if len(body) > maxFuzzBody {
			t.Skip()
		}
		hr := httptest.NewRequest(http.MethodPost, "/hooks/mob", strings.NewReader(body))
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if multipart {
			hr.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		}
		res, err := src.Parse(&sources.Request{HTTP: hr, Body: []byte(body), ReceivedAt: received, Source: "mob"})
		check(t, res, err)
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range seeds(f, "*.txt") {
		f.Add(strings.TrimSpace(s))
	}
	f.Add("challenge=x&token=vt")
	f.Add("token=vt")
	f.Add("a=%zz")
	src := newSource(f, Options{VerifyToken: "vt"})
	f.Fuzz(func(t *testing.T, query string) {
		if len(query) > maxFuzzBody {
			t.Skip()
		}
		hr := httptest.NewRequest(http.MethodGet, "/hooks/mob", nil)
		hr.URL.RawQuery = query
		res, err := src.Parse(&sources.Request{HTTP: hr, ReceivedAt: received, Source: "mob"})
		check(t, res, err)
	})
}
