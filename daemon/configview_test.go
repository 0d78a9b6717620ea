package daemon

import (
	"strings"
	"testing"
)

// sides rebuilds the two texts a diff compares.
func sides(d []diffLine) (string, string) {
	var a, b []string
	for _, l := range d {
		if l.Op != "+" {
			a = append(a, l.Text)
		}
		if l.Op != "-" {
			b = append(b, l.Text)
		}
	}
	return strings.Join(a, "\n"), strings.Join(b, "\n")
}

func TestLineDiff(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"x\ny\nz", "x\ny\nz", "  x|  y|  z"},
		{"x\ny\nz", "x\nY\nz", "  x|- y|+ Y|  z"},
		{"x\nz", "x\ny\nz", "  x|+ y|  z"},
		{"a\nb", "", "- a|- b|+ "},
	} {
		var got []string
		for _, l := range lineDiff(tc.a, tc.b) {
			got = append(got, l.Op+" "+l.Text)
		}
		if g := strings.Join(got, "|"); g != tc.want {
			t.Errorf("lineDiff(%q, %q) = %q, want %q", tc.a, tc.b, g, tc.want)
		}
	}
}

func TestLineDiffOfHugeTextsIsBounded(t *testing.T) {
	a := strings.Repeat("line\n", 5000)
	b := strings.Repeat("other\n", 5000)
	d := lineDiff(a, b)
	if len(d) != 10000 {
		t.Errorf("%d lines, want every line of both, removed then added", len(d))
	}
}

func FuzzLineDiff(f *testing.F) {
	f.Add("server:\n  listen: :8080\n", "server:\n  listen: :9090\n")
	f.Add("", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		ga, gb := sides(lineDiff(a, b))
		if ga != strings.TrimSuffix(a, "\n") || gb != strings.TrimSuffix(b, "\n") {
			t.Errorf("the diff of %q and %q rebuilds %q and %q", a, b, ga, gb)
		}
	})
}
