package sources_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"switchboard/router"
	"switchboard/sources"
	"switchboard/sources/sourcetest"
)

func TestDecodeObjectStrictIsUnchanged(t *testing.T) {
	in := []byte(`{"id":"x","n":1,"url":"https://e.com/?a=1&b=2"}`)
	m, raw, err := sources.DecodeObject(in)
	if err != nil {
		t.Fatal(err)
	}
	if &raw[0] != &in[0] || len(raw) != len(in) {
		t.Errorf("raw is a copy or re-encoding (%s); strict bodies must be kept verbatim", raw)
	}
	want, _ := router.DecodeObject(in)
	if !reflect.DeepEqual(m, want) {
		t.Errorf("payload %#v, want %#v", m, want)
	}
}

func TestDecodeObjectRelaxed(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]any
		raw      string
	}{
		{"trailing comma", `{"id": "a", "units": 2,}`, map[string]any{"id": "a", "units": 2}, `{"id":"a","units":2}`},
		{"JS object literal", "{\ncall_id: 'e5',\napp_id: 2223343,\ncustom: '{\"crm\":\"true\"}'\n}",
			map[string]any{"call_id": "e5", "app_id": 2223343, "custom": `{"crm":"true"}`},
			`{"app_id":2223343,"call_id":"e5","custom":"{\"crm\":\"true\"}"}`},
		{"bare X placeholder", `{"bridge": 91806828XXXX, "url": "https://x/?a&b"}`,
			map[string]any{"bridge": "91806828XXXX", "url": "https://x/?a&b"}, `{"bridge":"91806828XXXX","url":"https://x/?a&b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, raw, err := sources.DecodeObject([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Errorf("payload %#v, want %#v", m, tt.want)
			}
			if string(raw) != tt.raw {
				t.Errorf("raw %s, want %s", raw, tt.raw)
			}
			if !json.Valid(raw) {
				t.Errorf("raw %s is not strict JSON", raw)
			}
		})
	}
}

func TestDecodeObjectRejects(t *testing.T) {
	tests := []struct {
		name, in, msg string
	}{
		{"not an object", `[1, 2]`, `body is not a JSON object: expected a JSON object, got an array`},
		{"relaxed array is still not an object", `[1, 2,]`, `body is not a JSON object: invalid character ']' looking for beginning of value (relaxed parsing read an array, not an object)`},
		{"garbage", "{\n \"from\" 2}", `body is not a JSON object: invalid character '2' after object key (relaxed parsing also failed at line 2, column 9: expected ':' after key "from", found "2")`},
		{"empty", ``, `body is not a JSON object: EOF (relaxed parsing also failed at line 1, column 1: empty input; expected a value)`},
		{"unquoted word", `{status: ANSWER}`, `body is not a JSON object: invalid character 's' looking for beginning of object key string (relaxed parsing also failed at line 1, column 10: unquoted word "ANSWER"; quote strings, and write true, false and null in lower case)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := sources.DecodeObject([]byte(tt.in))
			re := sourcetest.Rejection(t, err)
			if re.Status != http.StatusBadRequest || re.Reason != "bad_json" || re.Msg != tt.msg {
				t.Errorf("got %d %s %q\nwant 400 bad_json %q", re.Status, re.Reason, re.Msg, tt.msg)
			}
		})
	}
}

// Strict bodies must cost what router.DecodeObject costs: compare
// strict-router with strict-sources (same ns/op and allocs/op); relaxed shows
// what a documentation-style body costs instead.
func BenchmarkDecodeObject(b *testing.B) {
	strict := []byte(`{"call_id":"e51d5392-d9cf-123b-fe91-3cecefb9bfb6","leg":"a","type":"event","user":"202_2222223","cmiuuid":"ccd826f9-67a4-4467-acfb-a53093ff5c9d","direction":"outbound","callerid":"442000000000","app_id":2223343,"time":1650635340436,"custom":"{\"crm\":\"true\"}","status":"answered","to":"442000000001"}`)
	loose := sourcetest.ReadFile(b, "relaxed/testdata/telecmi-outgoing-answered-leg-a.txt")
	b.Run("strict-router", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := router.DecodeObject(strict); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict-sources", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := sources.DecodeObject(strict); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("relaxed-sources", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := sources.DecodeObject(loose); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The fast path in numbers: a strict body costs no more allocations than
// encoding/json alone would.
func TestStrictPathAllocs(t *testing.T) {
	body := []byte(`{"a":"b","n":[1,2.5,null,true]}`)
	base := testing.AllocsPerRun(200, func() { router.DecodeObject(body) })
	got := testing.AllocsPerRun(200, func() { sources.DecodeObject(body) })
	if got > base {
		t.Errorf("sources.DecodeObject allocates %v per strict body, router.DecodeObject %v: the strict path must not pay for relaxed parsing", got, base)
	}
}

// Strict JSON nested deeper than the relaxed parser goes is still taken,
// as encoding/json takes it.
func TestDeepStrictBody(t *testing.T) {
	body := []byte(`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`)
	if _, raw, err := sources.DecodeObject(body); err != nil || string(raw) != string(body) {
		t.Errorf("deep strict body: %v", err)
	}
}
