package sources_test

import (
	"encoding/json"
	"errors"
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
	obj, err := sources.DecodeObject(in)
	if err != nil {
		t.Fatal(err)
	}
	if &obj.Raw[0] != &in[0] || len(obj.Raw) != len(in) {
		t.Errorf("raw is a copy or re-encoding (%s); strict bodies must be kept verbatim", obj.Raw)
	}
	want, _ := router.DecodeObject(in)
	if !reflect.DeepEqual(obj.Payload, want) {
		t.Errorf("payload %#v, want %#v", obj.Payload, want)
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
			`{"call_id":"e5","app_id":2223343,"custom":"{\"crm\":\"true\"}"}`},
		{"bare X placeholder", `{"bridge": 91806828XXXX, "url": "https://x/?a&b"}`,
			map[string]any{"bridge": "91806828XXXX", "url": "https://x/?a&b"}, `{"bridge":"91806828XXXX","url":"https://x/?a&b"}`},
		{"numbers as sent", `{n: 1.50, id: 12345678901234567891, e: 1E+2,}`,
			map[string]any{"n": 1.5, "id": uint64(12345678901234567891), "e": 100.0}, `{"n":1.50,"id":12345678901234567891,"e":1E+2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := sources.DecodeObject([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(obj.Payload, tt.want) {
				t.Errorf("payload %#v, want %#v", obj.Payload, tt.want)
			}
			if string(obj.Raw) != tt.raw {
				t.Errorf("raw %s, want %s", obj.Raw, tt.raw)
			}
			if !json.Valid(obj.Raw) {
				t.Errorf("raw %s is not strict JSON", obj.Raw)
			}
		})
	}
}

func TestDecodeObjectRejects(t *testing.T) {
	tests := []struct {
		name, in, msg string
	}{
		{"not an object", `[1, 2]`, `body is not a JSON object: it is an array`},
		{"relaxed array is still not an object", `[1, 2,]`, `body is not a JSON object: it is an array`},
		{"garbage", "{\n \"from\" 2}", `body is not JSON: line 2, column 9: expected ':' after key "from", found "2"`},
		{"empty", ``, `body is not JSON: line 1, column 1: empty input; expected a value`},
		{"unquoted word", `{status: ANSWER}`, `body is not JSON: line 1, column 10: unquoted word "ANSWER"; quote strings, and write true, false and null in lower case`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sources.DecodeObject([]byte(tt.in))
			re := sourcetest.Rejection(t, err)
			if re.Status != http.StatusBadRequest || re.Reason != "bad_json" || re.Msg != tt.msg {
				t.Errorf("got %d %s %q\nwant 400 bad_json %q", re.Status, re.Reason, re.Msg, tt.msg)
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		raws     []string
	}{
		{"one object", `{"event":"a"}`, []string{`{"event":"a"}`}},
		{"relaxed object", `{event:'a',}`, []string{`{"event":"a"}`}},
		{"batch", ` [ {"event":"a"} , {"event":"b","n":1.50} ] `, []string{`{"event":"a"}`, `{"event":"b","n":1.50}`}},
		{"relaxed batch", `[{event:'a',}]`, []string{`{"event":"a"}`}},
		{"relaxed batch with comments", "[ /* first */ {event: 'a'}, // second\n {\"event\": \"b\"},]", []string{`{"event":"a"}`, `{"event":"b"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := sources.DecodeBatch([]byte(tc.in), 10)
			if err != nil {
				t.Fatal(err)
			}
			var raws []string
			for _, o := range objs {
				raws = append(raws, string(o.Raw))
				if o.Payload["event"] == nil {
					t.Errorf("payload %v", o.Payload)
				}
			}
			if !reflect.DeepEqual(raws, tc.raws) {
				t.Errorf("raws %q, want %q", raws, tc.raws)
			}
		})
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	big := "[" + strings.Repeat(`{"event":"a"},`, 1000) + `{"event":"a"}]`
	for _, tc := range []struct {
		name, in string
		status   int
		reason   string
		msg      string
	}{
		{"past max_batch_events", big, 413, "too_many_events",
			"the batch holds more than 1000 events, the limit set by server.max_batch_events; send smaller batches or raise the setting"},
		{"empty batch", `[]`, 400, "empty", "empty batch: the array holds no events"},
		{"element not an object", `[{"event":"a"}, "b"]`, 400, "bad_json", "batch element 1 is not a JSON object: it is a string"},
		{"a string", `"x"`, 400, "bad_json", "body is not a JSON object or an array of objects: it is a string"},
		{"unclosed", `[{"event":"a"},`, 400, "bad_json", "body is not JSON: line 1, column 16: array not closed: expected a value or ']', found end of input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sources.DecodeBatch([]byte(tc.in), 1000)
			re := sourcetest.Rejection(t, err)
			if re.Status != tc.status || re.Reason != tc.reason || re.Msg != tc.msg {
				t.Errorf("got %d %s %q\nwant %d %s %q", re.Status, re.Reason, re.Msg, tc.status, tc.reason, tc.msg)
			}
		})
	}
}

func TestObjectMember(t *testing.T) {
	for _, tc := range []struct{ raw, key, want string }{
		{`{"event":"a","payload":{"id":"x","n":[1,{"p":"}"}]}}`, "payload", `{"id":"x","n":[1,{"p":"}"}]}`},
		{`{ "payload" : [ 1 , 2 ] , "x" : 1 }`, "payload", `[ 1 , 2 ]`},
		{`{"payload":"a\"b","other":1}`, "payload", `"a\"b"`},
		{`{"payload":1,"payload":{"b":2}}`, "payload", `{"b":2}`},
		{`{"pay\u006coad":true}`, "payload", `true`},
		{`{"a":-1.5e3}`, "a", `-1.5e3`},
		{`{"a":null}`, "payload", ``},
		{`[]`, "payload", ``},
	} {
		if got := string(sources.Object{Raw: []byte(tc.raw)}.Member(tc.key)); got != tc.want {
			t.Errorf("%s member %s = %q, want %q", tc.raw, tc.key, got, tc.want)
		}
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
			if _, err := sources.DecodeObject(strict); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("relaxed-sources", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sources.DecodeObject(loose); err != nil {
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

// Strict JSON is taken as deep as encoding/json takes it.
func TestDeepStrictBody(t *testing.T) {
	body := []byte(`{"a":` + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + `}`)
	if obj, err := sources.DecodeObject(body); err != nil || string(obj.Raw) != string(body) {
		t.Errorf("deep strict body: %v", err)
	}
}

// checkObjects: each object's Raw is strict JSON holding its payload, and
// Member finds each of its members.
func checkObjects(t *testing.T, in []byte, objs []sources.Object) {
	t.Helper()
	for i, o := range objs {
		back, err := router.DecodeObject(o.Raw)
		if err != nil || !reflect.DeepEqual(back, o.Payload) {
			t.Fatalf("%q: object %d raw %q reads back as %#v (%v), not %#v", in, i, o.Raw, back, err, o.Payload)
		}
		for k, v := range o.Payload {
			m, err := router.DecodeJSON(o.Member(k))
			if err != nil || !reflect.DeepEqual(m, v) {
				t.Fatalf("%q: member %q of %q is %q", in, k, o.Raw, o.Member(k))
			}
		}
	}
}

func checkRejection(t *testing.T, in []byte, err error) {
	t.Helper()
	var re *sources.RejectError
	if !errors.As(err, &re) || re.Status < 400 || re.Status > 499 || re.Msg == "" {
		t.Fatalf("%q: error %v is not a 4xx rejection", in, err)
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, `{event:'a',}`, `{"payload":{"id":1},"payload":2}`, `{"a\u0062":[1,{"c":"}"}]}`, `[1]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		obj, err := sources.DecodeObject(b)
		if err != nil {
			checkRejection(t, b, err)
			return
		}
		checkObjects(t, b, []sources.Object{obj})
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{`[{event:'a',}]`, `{event:'a',}`, `[{"a":1},{"b":[2]}]`, `[{},{},{},{},{}]`, `[]`, `[1]`, `[{"a":1},`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		objs, err := sources.DecodeBatch(b, 4)
		if err != nil {
			checkRejection(t, b, err)
			return
		}
		if len(objs) == 0 || len(objs) > 4 {
			t.Fatalf("%q: %d objects with a bound of 4", b, len(objs))
		}
		checkObjects(t, b, objs)
	})
}
