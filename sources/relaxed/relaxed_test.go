package relaxed

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"switchboard/router"
)

func TestParseRelaxedForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"trailing comma in object", `{"a": 1, "b": "x",}`, map[string]any{"a": 1, "b": "x"}},
		{"trailing comma in array", `[1, 2,]`, []any{1, 2}},
		{"trailing comma nested", `{"a": [{"b": 1,},],}`, map[string]any{"a": []any{map[string]any{"b": 1}}}},
		{"unquoted keys", `{call_id: "x", app_id: 2223343}`, map[string]any{"call_id": "x", "app_id": 2223343}},
		{"unquoted key with dollar, dash and dot", `{$a: 1, b-c: 2, d.e: 3}`, map[string]any{"$a": 1, "b-c": 2, "d.e": 3}},
		{"single-quoted strings", `{'leg': 'a', b: 'it\'s "fine"'}`, map[string]any{"leg": "a", "b": `it's "fine"`}},
		{"JSON inside a single-quoted string", `{custom: '{"crm":"true"}'}`, map[string]any{"custom": `{"crm":"true"}`}},
		{"double quote escaped in single-quoted", `{a: '\"'}`, map[string]any{"a": `"`}},
		{"single quote escaped in double-quoted", `{"a": "\'"}`, map[string]any{"a": "'"}},
		{"bare digits with X placeholder", `{"bridge": 91806828XXXX}`, map[string]any{"bridge": "91806828XXXX"}},
		{"bare digits with lower-case x", `{"mobile": 918921269xxx}`, map[string]any{"mobile": "918921269xxx"}},
		{"bare E.164 number", `{to: +442000000001}`, map[string]any{"to": "+442000000001"}},
		{"bare leading zero stays text", `{to: 0044123}`, map[string]any{"to": "0044123"}},
		{"bare dashed id", `{mid: 1234-1333-XXXXX}`, map[string]any{"mid": "1234-1333-XXXXX"}},
		{"bare number is a number", `{time: 1650635340436, f: 1.5, e: 1e3, n: -7}`, map[string]any{"time": 1650635340436, "f": 1.5, "e": 1000.0, "n": -7}},
		{"null true false", `{a: null, b: true, c: false,}`, map[string]any{"a": nil, "b": true, "c": false}},
		{"comments", "{\n// a comment\n\"a\": 1, /* another */ b: 2}", map[string]any{"a": 1, "b": 2}},
		{"byte order mark and no-break spaces", "\ufeff{\u00a0a:\u00a01}", map[string]any{"a": 1}},
		{"empty object with trailing space", "{ }\n", map[string]any{}},
		{"top-level scalar", `'x'`, "x"},
		{"unicode escapes", `{a: '\u00e9\ud83d\ude00'}`, map[string]any{"a": "é😀"}},
		{"lone surrogate becomes U+FFFD", `{a: '\ud83d'}`, map[string]any{"a": "\ufffd"}},
		{"invalid UTF-8 becomes U+FFFD", "{a: '\xff'}", map[string]any{"a": "\ufffd"}},
		{"huge integer keeps its digits", `{a: 123456789012345678901234567890}`, map[string]any{"a": json.Number("123456789012345678901234567890")}},
		{"duplicate key: last wins", `{a: 1, a: 2}`, map[string]any{"a": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "line 1, column 1: empty input; expected a value"},
		{"only space", " \n ", "line 2, column 2: empty input; expected a value"},
		{"missing colon", "{\n  \"to\": 1,\n  \"from\" 2}", `line 3, column 10: expected ':' after key "from", found "2"`},
		{"missing comma", `{a: 1 b: 2}`, `line 1, column 7: expected ',' or '}' after the value of key "a", found "b"`},
		{"missing comma in array", `[1 2]`, `line 1, column 4: expected ',' or ']' after element 0, found "2"`},
		{"unclosed object", `{a: 1`, `line 1, column 6: object not closed: expected ',' or '}' after the value of key "a", found end of input`},
		{"unclosed object after comma", `{a: 1,`, `line 1, column 7: object not closed: expected a key or '}', found end of input`},
		{"unclosed array", `[1,`, `line 1, column 4: array not closed: expected a value or ']', found end of input`},
		{"unclosed array after value", `[1`, `line 1, column 3: array not closed: expected ',' or ']' after element 0, found end of input`},
		{"missing value", `{a: }`, `line 1, column 5: expected a value, found '}'`},
		{"missing value at end", `{a:`, `line 1, column 4: expected a value, found end of input`},
		{"double comma", `{a: 1,,}`, `line 1, column 7: expected a key or '}', found ','`},
		{"array hole", `[1,,2]`, `line 1, column 4: expected a value, found ','`},
		{"bad key", `{[: 1}`, `line 1, column 2: expected a key or '}', found '['`},
		{"unquoted word", `{status: ANSWER}`, `line 1, column 10: unquoted word "ANSWER"; quote strings, and write true, false and null in lower case`},
		{"capitalised literal", `{a: True}`, `line 1, column 5: unquoted word "True"; quote strings, and write true, false and null in lower case`},
		{"sign without digits", `{a: -x}`, `line 1, column 5: unquoted word "-x"; quote strings`},
		{"unclosed string", `{a: 'abc}`, `line 1, column 5: string not closed: expected ' before the end of input`},
		{"string over a line end", "{a: \"abc\n\"}", `line 1, column 5: string not closed: expected " before the end of the line`},
		{"control character", "{a: \"a\x01\"}", `line 1, column 7: control character U+0001 in a string; escape it`},
		{"bad escape", `{a: "\q"}`, `line 1, column 6: invalid escape \q in a string; write \\ for a backslash`},
		{"bad unicode escape", `{a: "\u12"}`, `line 1, column 6: invalid \u escape: expected four hex digits`},
		{"escape at end", `{a: "\`, `line 1, column 6: string not closed: escape at the end of input`},
		{"trailing data", `{a: 1} {b: 2}`, `line 1, column 8: unexpected '{' after the value; send one value only`},
		{"unclosed comment", `{a: 1 /* x`, `line 1, column 7: comment not closed: expected */`},
		{"column counts characters", "{\"é\": 1 x}", `line 1, column 9: expected ',' or '}' after the value of key "é", found "x"`},
		{"too deep", strings.Repeat("[", MaxDepth+1), `line 1, column 10001: nesting deeper than 10000 levels`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error %q", tt.in, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error is %T, want *SyntaxError", err)
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	ok := strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	_, err := Parse([]byte(deep))
	if !errors.Is(err, ErrDepth) {
		t.Fatalf("depth %d: got %v, want ErrDepth", MaxDepth+1, err)
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 5*MaxDepth {
		t.Fatalf("depth error %v: want a *SyntaxError at offset %d", err, 5*MaxDepth)
	}
}

// Strict JSON must come out exactly as the strict decoder makes it.
func TestStrictJSONMatchesRouter(t *testing.T) {
	inputs := []string{
		`{}`, `[]`, `null`, `true`, `0`, `-0`, `-0.0`, `1.0`, `1E+2`, `9223372036854775807`,
		`9223372036854775808`, `-9223372036854775808`, `1e400`, `"a\u0000b\"\\\/\b\f\n\r\t"`,
		`{"a":[1,2,{"b":null}],"c":"\ud83d\ude00","d":"\udc00x","e":"\ud83dx"}`,
		`{"a":1,"a":2}`, " \t\r\n{\"k\" : [ ] } \n",
		"{\"x\":\"\xff\xfe\"}", `{"big":12345678901234567890,"f":0.1,"neg":-12}`,
	}
	for _, in := range inputs {
		want, err := router.DecodeJSON([]byte(in))
		if err != nil {
			t.Fatalf("router.DecodeJSON(%q): %v", in, err)
		}
		got, err := Parse([]byte(in))
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q)\n got %#v\nwant %#v", in, got, want)
		}
	}
}

// The samples that motivated this package, checked field by field.
func TestDocQuirks(t *testing.T) {
	voice := mustParse(t, "testdata/mobtexting-voice-message-out.txt")
	for k, want := range map[string]any{"bridge": "91806828XXXX", "from": "91891952XXXX", "to": "91886713XXXX", "flow_id": 123} {
		if voice[k] != want {
			t.Errorf("voice %s = %#v, want %#v", k, voice[k], want)
		}
	}
	dlr := mustParse(t, "testdata/mobtexting-sms-message-status.txt")
	if dlr["custom"] != "9882XXXX" || dlr["units"] != 2 {
		t.Errorf("sms dlr = %#v", dlr)
	}
	leg := mustParse(t, "testdata/telecmi-outgoing-answered-leg-a.txt")
	if leg["app_id"] != 2223343 || leg["time"] != 1650635340436 || leg["custom"] != `{"crm":"true"}` || leg["leg"] != "a" {
		t.Errorf("telecmi leg a = %#v", leg)
	}
}

func mustParse(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v.(map[string]any)
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	for _, s := range []string{`{}`, `{"a":[1,{"b":'c'},],}`, `{a:1e5,b:-0,c:"\ud83d\ude00"}`, `[[[[`, `{a: 12XX}`, "/*", `"\u`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		got, strict, err := ParseStrict(b)
		valid := json.Valid(b)
		if strict && !valid {
			t.Fatalf("%q reported strict, but encoding/json refuses it", b)
		}
		if valid && err == nil && !strict {
			t.Fatalf("%q is strict JSON, reported relaxed", b)
		}
		var obj map[string]any
		if json.Unmarshal(b, &obj) != nil {
			return // not a strict JSON object: only the checks above apply
		}
		want, werr := router.DecodeJSON(b)
		if werr != nil {
			t.Fatalf("encoding/json accepts %q but router.DecodeJSON says %v", b, werr)
		}
		if errors.Is(err, ErrDepth) {
			return // deeper than MaxDepth: refused on purpose
		}
		if err != nil {
			t.Fatalf("strict JSON object %q refused: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("strict JSON object %q\n got %#v\nwant %#v", b, got, want)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	in, err := os.ReadFile("testdata/telecmi-outgoing-answered-leg-a.txt")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeWritesStrictJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,"b":[1,2]}`, `{"a":1,"b":[1,2]}`},
		{`{b: 1.50, a: 12345678901234567891,}`, `{"b":1.50,"a":12345678901234567891}`},
		{`{n: -0.0e+10, big: 1e400, x: 0044}`, `{"n":-0.0e+10,"big":1e400,"x":"0044"}`},
		{"{'q': 'it\\'s \"x\" <&> \\u00e9\\n', /* c */ k: null // end\n}", `{"q":"it's \"x\" <&> é\n","k":null}`},
		{"\xEF\xBB\xBF{\"a\":\u00a0true}", `{"a":true}`},
		{`[{event:'a',}, {event: "b"},]`, `[{"event":"a"},{"event":"b"}]`},
		{"{ctl: '\\u0001'}", `{"ctl":"\u0001"}`},
	} {
		d, err := Decode([]byte(tc.in), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if string(d.JSON) != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, d.JSON, tc.want)
		}
		if d.Strict != (tc.in == tc.want) {
			t.Errorf("%s: strict %v", tc.in, d.Strict)
		}
	}
}

// A relaxed body is read twice (values, then its strict JSON); the second
// pass must build no values, or a body of many tiny values costs their
// memory twice (issue 10.3's bound on memory per request).
func TestDecodeRelaxedBuildsValuesOnce(t *testing.T) {
	strict := []byte(`{"event":"a","z":[` + strings.Repeat(`{},"s",1,`, 500) + `{}]}`)
	relaxedBody := []byte(`{event:'a',z:[` + strings.Repeat(`{},'s',1,`, 500) + `{},],}`)
	allocs := func(b []byte) float64 {
		return testing.AllocsPerRun(20, func() {
			if _, err := Decode(b, Options{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	s, r := allocs(strict), allocs(relaxedBody)
	if r > s+600 { // the second pass may allocate its strings (500), no maps
		t.Errorf("relaxed body: %.0f allocations, strict: %.0f; the strict rewrite rebuilds the values", r, s)
	}
}

func TestDecodeElements(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{` [ {"a":1} , {"b":[2]} ] `, []string{`{"a":1}`, `{"b":[2]}`}},
		{`[{a:1,}, 'x', 3,]`, []string{`{"a":1}`, `"x"`, `3`}},
		{`[]`, nil},
		{`{"a":[1,2]}`, nil},
	} {
		d, err := Decode([]byte(tc.in), Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, sp := range d.Elements {
			got = append(got, string(d.JSON[sp.Start:sp.End]))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: elements %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecodeStopsPastMaxElements(t *testing.T) {
	if _, err := Decode([]byte(`[1,2,3]`), Options{MaxElements: 3}); err != nil {
		t.Fatalf("3 elements with a bound of 3: %v", err)
	}
	// The element past the bound is never read: garbage there is not
	// even looked at.
	_, err := Decode([]byte(`[1,2,3,@@@`), Options{MaxElements: 3})
	if !errors.Is(err, ErrTooMany) || err.Error() != "line 1, column 8: more than 3 elements" {
		t.Fatalf("got %v", err)
	}
	if _, err := Decode([]byte(`[[1,2,3,4]]`), Options{MaxElements: 3}); err != nil {
		t.Errorf("nested arrays are not bounded: %v", err)
	}
}

// FuzzDecode: whatever Decode accepts, its JSON is strict JSON holding the
// same value (numbers by their text), strict inputs are kept as they are,
// and each element span holds its element.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `[{event:'a',}]`, `{a:1.50,b:[1,2,],}`, `[1, "x", {y: 2e400}]`, "{a: 'x' /* c */}", `[[[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		d, err := Decode(b, Options{MaxElements: 50})
		if err != nil {
			return
		}
		if !json.Valid(d.JSON) {
			t.Fatalf("%q written as %q, which is not JSON", b, d.JSON)
		}
		if d.Strict && string(d.JSON) != string(b) {
			t.Fatalf("strict %q rewritten as %q", b, d.JSON)
		}
		again, err := router.DecodeJSON(d.JSON)
		if err != nil || !reflect.DeepEqual(again, d.Value) {
			t.Fatalf("%q written as %q, which reads back as %#v (%v), not %#v", b, d.JSON, again, err, d.Value)
		}
		arr, _ := d.Value.([]any)
		if len(d.Elements) != len(arr) {
			t.Fatalf("%d spans for %d elements", len(d.Elements), len(arr))
		}
		for i, sp := range d.Elements {
			el, err := router.DecodeJSON(d.JSON[sp.Start:sp.End])
			if err != nil || !reflect.DeepEqual(el, arr[i]) {
				t.Fatalf("element %d span %q reads as %#v (%v), want %#v", i, d.JSON[sp.Start:sp.End], el, err, arr[i])
			}
		}
	})
}
