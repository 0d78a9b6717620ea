package router_test

import (
	"strings"
	"testing"
	"time"

	"switchboard/router"
)

// globReference is the textbook dynamic-programming wildcard matcher:
// obviously right, quadratic, for checking the linear one.
func globReference(pattern, name string) bool {
	// m[j]: pattern[:i] matches name[:j].
	m := make([]bool, len(name)+1)
	m[0] = true
	for i := 0; i < len(pattern); i++ {
		next := make([]bool, len(name)+1)
		if pattern[i] == '*' {
			seen := false
			for j := 0; j <= len(name); j++ {
				seen = seen || m[j]
				next[j] = seen
			}
		} else {
			for j := 1; j <= len(name); j++ {
				next[j] = m[j-1] && name[j-1] == pattern[i]
			}
		}
		m = next
	}
	return m[len(name)]
}

func TestPatternTreatsOnlyStarAsSpecial(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"voice.?nbound", "voice.inbound", false},
		{"voice.?nbound", "voice.?nbound", true},
		{"[ab]", "a", false},
		{"[ab]", "[ab]", true},
		{`a\*`, `a\xyz`, true},
		{"{a,b}", "{a,b}", true},
		{"**", "", true},
		{"a**b", "ab", true},
		{"a*a", "a", false},
		{"*ab*ab*", "abab", true},
		{"*ab*ab*", "aba", false},
	} {
		if got := router.CompilePattern(tc.pattern).Match(tc.name); got != tc.want {
			t.Errorf("%q matching %q = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
		if ref := globReference(tc.pattern, tc.name); ref != tc.want {
			t.Errorf("reference disagrees on %q %q", tc.pattern, tc.name)
		}
	}
}

// The pattern that took 1.4 s with the recursive matcher: now linear.
func TestPatternIsLinear(t *testing.T) {
	name := strings.Repeat(".", 20000)
	p := router.CompilePattern("*.*.*.*.*.*.failed")
	start := time.Now()
	for range 100 {
		if p.Match(name) {
			t.Fatal("matched a name without failed")
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("100 matches against a 20,000-character name took %v", took)
	}
}

func TestPatternsMatchAny(t *testing.T) {
	ps := router.CompilePatterns([]string{"sms:*", "voice.inbound"})
	for name, want := range map[string]bool{"sms:x": true, "voice.inbound": true, "voice.outbound": false} {
		if ps.Match(name) != want {
			t.Errorf("%q: want %v", name, want)
		}
	}
	if router.Patterns(nil).Match("x") {
		t.Error("an empty list matches nothing")
	}
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{{"*.*.*.failed", "a.b.c.failed"}, {"a*b*c", "aXbYbZc"}, {"*ab*ab*", "abab"}, {"", ""}, {"**", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 256 {
			return
		}
		if got, want := router.CompilePattern(pattern).Match(name), globReference(pattern, name); got != want {
			t.Fatalf("%q matching %q = %v, reference says %v", pattern, name, got, want)
		}
	})
}

func BenchmarkPattern(b *testing.B) {
	long := strings.Repeat("a.", 1000)
	for _, bc := range []struct{ name, pattern, event string }{
		{"exact", "voice.inbound", "voice.inbound"},
		{"prefix", "whatsapp:*", "whatsapp:message:status"},
		{"middle", "*:message:*", "whatsapp:message:status"},
		{"adversarial-2000", "*.*.*.failed", long},
		{"adversarial-256", "*.*.*.failed", long[:256]},
	} {
		p := router.CompilePattern(bc.pattern)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match(bc.event)
			}
		})
	}
}
