package relaxed

import (
	"encoding/json"
	"strings"
	"testing"
)

var strictCases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `{a:1}`, `{'a':1}`, `"x"`, `"\u00e9\n\"\\\/"`, `"\u00g0"`,
	"\"\x01\"", "\"\xff\xfe\"", `01`, `-0`, `-`, `1.`, `1.5e`, `1.5e+3`, `1E-2`, `.5`, `+1`, `tru`, `true `, `nul`,
	`{"a":[1,{"b":null}],"c":"d"} x`, `{"a" 1}`, `{"a":}`, `[,1]`, `[1 2]`, "\ufeff{}", `{"a":1}{"b":2}`,
	`{"event":"whatsapp:message:status","payload":{"id":"a418d672","status":"failed","n":12345678901234567891}}`,
}

func TestStrictAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range strictCases {
		if got, want := Strict([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Strict(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
	for _, depth := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		b := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		if got, want := Strict(b), json.Valid(b); got != want {
			t.Errorf("%d nested arrays: Strict %v, encoding/json %v", depth, got, want)
		}
	}
}

// FuzzStrict: Strict says exactly what encoding/json's Valid says.
func FuzzStrict(f *testing.F) {
	for _, c := range strictCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Strict(b), json.Valid(b); got != want {
			t.Fatalf("Strict(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkStrict(b *testing.B) {
	body := []byte(`{"event":"whatsapp:message:status","payload":{"id":"a418d672","channel":"x1","from":"919019120123","to":"919019912345","status":"failed","delivered_at":"2021-06-18T14:48:06.886358Z","error":{"code":null,"message":null},"bench_id":"b1","bench_ts":1763600000123456789}}`)
	b.Run("relaxed.Strict", func(b *testing.B) {
		for b.Loop() {
			Strict(body)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		for b.Loop() {
			json.Valid(body)
		}
	})
}
