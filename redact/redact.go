// Package redact keeps configured credentials out of what switchboard
// writes for people and peers: log lines, HTTP answers, dead letters'
// errors.
//
// switchboard never prints a secret on purpose (config.Secret prints
// <secret>), but others do it for it: a receiver that echoes the request
// puts `Authorization: Bearer ...` into its error answer, an SMTP server
// echoes the AUTH PLAIN line (the password in base64), a URL path carries a
// token. A Redactor is built at load from every configured credential and
// replaces each one, and the forms it travels in, wherever text leaves the
// process:
//
//   - the value itself;
//   - its JSON string escapes (a value with ", \, <, > or & in it);
//   - its URL query and path escapes;
//   - its base64 (standard and URL alphabets), at any offset of the encoded
//     text: base64 of "\x00user\x00password" (AUTH PLAIN) or of
//     "user:password" (HTTP Basic) holds the password's encoding in one of
//     three alignments, and each is replaced.
//
// Values shorter than MinLen are not redacted: replacing every "ab" would
// make logs unreadable while protecting nothing (`check` warns about such
// secrets).
//
// The process-wide Redactor (Set, Current) exists because secrets are
// process-wide too: the log handler is built before the config is read and
// also serves libraries' log lines, and a reload changes the secrets
// under every component at once.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf16"
	"unicode/utf8"
)

// Mask replaces every redacted value; the same text as config.Secret
// prints.
const Mask = "<secret>"

// MinLen is the shortest value that is redacted.
const MinLen = 4

// minBase64 is the shortest base64 fragment that is redacted: a shorter
// one would match ordinary text by chance.
const minBase64 = 6

// Redactor replaces a fixed set of secret values. The zero value and nil
// redact nothing. It is safe for concurrent use.
type Redactor struct {
	values []string // as configured, deduplicated, for With
	r      *strings.Replacer
}

// New builds a Redactor for values; empty and short ones are left out.
func New(values ...string) *Redactor {
	seen := map[string]bool{}
	var keep []string
	for _, v := range values {
		if len(v) >= MinLen && !seen[v] {
			seen[v] = true
			keep = append(keep, v)
		}
	}
	slices.Sort(keep)
	r := &Redactor{values: keep}
	forms := map[string]bool{}
	for _, v := range keep {
		for _, f := range Forms(v) {
			forms[f] = true
		}
	}
	if len(forms) == 0 {
		return r
	}
	// The Replacer tries patterns in argument order at each position:
	// longest first, so that a value is replaced whole rather than a
	// shorter value inside it.
	list := make([]string, 0, len(forms))
	for f := range forms {
		list = append(list, f)
	}
	slices.SortFunc(list, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(list))
	for _, f := range list {
		pairs = append(pairs, f, Mask)
	}
	r.r = strings.NewReplacer(pairs...)
	return r
}

// With returns a Redactor for the values of r and of o together.
func (r *Redactor) With(o *Redactor) *Redactor {
	return New(append(slices.Clone(r.list()), o.list()...)...)
}

func (r *Redactor) list() []string {
	if r == nil {
		return nil
	}
	return r.values
}

// Empty reports whether r redacts nothing.
func (r *Redactor) Empty() bool { return r == nil || r.r == nil }

// String returns s with every secret replaced by Mask.
func (r *Redactor) String(s string) string {
	if r.Empty() || s == "" {
		return s
	}
	return r.r.Replace(s)
}

// Bytes is String for bytes; b is returned as is when nothing changes.
func (r *Redactor) Bytes(b []byte) []byte {
	if r.Empty() || len(b) == 0 {
		return b
	}
	s := string(b)
	out := r.r.Replace(s)
	if out == s {
		return b
	}
	return []byte(out)
}

// Forms lists the texts v may travel as, each of which is redacted: v,
// its JSON, URL and base64 encodings (see the package doc).
func Forms(v string) []string {
	out := []string{v}
	add := func(f string) {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if b, err := json.Marshal(v); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		s := strings.TrimSuffix(sb.String(), "\n")
		add(s[1 : len(s)-1])
	}
	// Escapes other encoders make: \/ (PHP), \uXXXX for all but ASCII
	// (Python's default).
	for _, f := range slices.Clone(out) {
		add(strings.ReplaceAll(f, "/", `\/`))
	}
	add(asciiJSON(v))
	add(url.QueryEscape(v))
	add(url.PathEscape(v))
	for align := range 3 {
		core := base64Core([]byte(v), align)
		if len(core) >= minBase64 {
			add(core)
			add(strings.NewReplacer("+", "-", "/", "_").Replace(core))
		}
	}
	return out
}

// asciiJSON is v's JSON string escape with every non-ASCII character
// written \uXXXX.
func asciiJSON(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r >= utf8.RuneSelf:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, `\u%04x`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// base64Core is the part of the standard base64 encoding of any text
// holding v at an offset ≡ align (mod 3) that depends on v's bytes alone:
// the characters that mix in bytes of the text around v are cut off.
func base64Core(v []byte, align int) string {
	n := len(v)
	buf := make([]byte, align+n)
	copy(buf[align:], v)
	enc := base64.StdEncoding.EncodeToString(buf)
	// Character c of group g (4 characters per 3 bytes) reads bytes:
	// c%4 == 0: 3g; 1: 3g, 3g+1; 2: 3g+1, 3g+2; 3: 3g+2.
	inside := func(c int) bool {
		g, pos := c/4, c%4
		lo, hi := 3*g, 3*g+2
		switch pos {
		case 0:
			hi = 3 * g
		case 1:
			hi = 3*g + 1
		case 2:
			lo = 3*g + 1
		case 3:
			lo = 3*g + 2
		}
		return lo >= align && hi < align+n
	}
	first, last := -1, -1
	for c := range len(enc) {
		if inside(c) {
			if first < 0 {
				first = c
			}
			last = c
		}
	}
	if first < 0 {
		return ""
	}
	return enc[first : last+1]
}

var current atomic.Pointer[Redactor]

// Set makes r the process-wide Redactor.
func Set(r *Redactor) { current.Store(r) }

// Current returns the process-wide Redactor (never nil).
func Current() *Redactor {
	if r := current.Load(); r != nil {
		return r
	}
	return &Redactor{}
}

// String redacts s with the process-wide Redactor.
func String(s string) string { return current.Load().String(s) }
