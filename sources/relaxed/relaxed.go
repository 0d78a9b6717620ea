// Package relaxed parses the not-quite-JSON that provider documentation
// prints, so that a payload copied from a docs page (or sent by a sender
// that builds its JSON by hand) is still accepted.
//
// It owns one thing: Decode (and Parse), a small recursive-descent parser
// for a superset of JSON. On strict JSON it produces exactly what
// router.DecodeJSON does (map[string]any, []any, string, bool, nil, and
// numbers as router.Number reads them: int, uint64, float64 or
// json.Number, whichever keeps their exact value). On top of JSON it
// accepts:
//
//   - trailing commas in objects and arrays: {"a": 1,} [1, 2,]
//   - unquoted keys, as in JavaScript object literals: {call_id: 'x'}
//     (letters, digits, _ $ - . and any non-ASCII character)
//   - single-quoted strings, with the JSON escapes plus \'
//   - bare tokens that start with a digit, + or - and are not JSON numbers,
//     as strings: 91806828XXXX, +4420000000, 0044, 1234-1333-XXXXX
//   - // line and /* block */ comments, a leading byte order mark and
//     no-break spaces (U+00A0) as white space
//
// Unquoted words other than true, false and null are refused: a bare word
// is far more often a mistake than a value. Nesting is limited to MaxDepth,
// as encoding/json limits it.
//
// Decode is the one reader of every request body (sources.DecodeObject and
// sources.DecodeBatch): a single pass on strict JSON, whose bytes are then
// kept as they are; a relaxed input is read a second time to write it as
// strict JSON, each number's text copied verbatim.
package relaxed

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"switchboard/router"
)

// MaxDepth is how deeply objects and arrays may nest: what encoding/json
// takes, so that no strict JSON is refused for its depth.
const MaxDepth = 10000

// SyntaxError says where and why the input is not even relaxed JSON.
type SyntaxError struct {
	Offset int // byte offset of the problem, 0-based
	Line   int // 1-based
	Column int // 1-based, in characters (runes) from the start of the line
	Msg    string

	err error // ErrDepth, for errors.Is
}

func (e *SyntaxError) Unwrap() error { return e.err }

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// ErrDepth is wrapped by the SyntaxError of an input nested deeper than
// MaxDepth.
var ErrDepth = errors.New("nesting too deep")

// ErrTooMany is wrapped by the SyntaxError of a top-level array with more
// elements than Options.MaxElements.
var ErrTooMany = errors.New("too many elements")

// Options tune Decode.
type Options struct {
	// MaxElements bounds the elements of a top-level array (a batch of
	// events): parsing stops at the first one past it, so a huge batch
	// costs no more than the bound. 0 means no bound.
	MaxElements int
}

// Doc is a decoded input.
type Doc struct {
	Value any
	// Strict reports whether the input was strict JSON.
	Strict bool
	// JSON is Value as strict JSON: the input itself when it was strict,
	// else the input rewritten (keys quoted, single quotes and trailing
	// commas gone, bare tokens quoted, comments dropped), numbers and key
	// order as they were.
	JSON []byte
	// Elements are, for a top-level array, where each element lies in
	// JSON.
	Elements []Span
}

// Span is a range of bytes, [Start, End).
type Span struct{ Start, End int }

// Decode reads one relaxed JSON value filling the whole input (white space
// and comments aside). Errors are *SyntaxError.
func Decode(b []byte, o Options) (Doc, error) {
	p := parser{b: b, maxElems: o.MaxElements}
	p.takeScratch()
	v, err := p.run()
	p.giveScratch()
	if err != nil {
		return Doc{}, err
	}
	d := Doc{Value: v, Strict: !p.relaxed, JSON: b, Elements: p.elems}
	if p.relaxed {
		// Rare: write it again as strict JSON, spans now in the output.
		// This pass builds no values (the first one did): a relaxed body
		// of many tiny values would otherwise cost their memory twice.
		w := parser{b: b, maxElems: o.MaxElements, emit: true, out: make([]byte, 0, len(b)+len(b)/8)}
		if _, err := w.run(); err != nil {
			return Doc{}, err // cannot happen: the same input parsed once already
		}
		d.JSON, d.Elements = w.out, w.elems
	}
	return d, nil
}

// scratch is a parser's pair of scratch stacks, reused across parses: a
// request's body costs no allocation for them.
type scratch struct {
	vals []any
	keys []string
}

var scratchPool = sync.Pool{New: func() any { return &scratch{vals: make([]any, 0, 64), keys: make([]string, 0, 64)} }}

// maxPooledScratch keeps a huge body's scratch out of the pool, so that
// it does not stay in memory after that body is done.
const maxPooledScratch = 4096

func (p *parser) takeScratch() {
	p.sc = scratchPool.Get().(*scratch)
	p.vals, p.keys = p.sc.vals[:0], p.sc.keys[:0]
}

func (p *parser) giveScratch() {
	if cap(p.vals) > maxPooledScratch || cap(p.keys) > maxPooledScratch {
		return
	}
	// An error leaves values on the stacks: drop the references.
	clear(p.vals[:cap(p.vals)])
	clear(p.keys[:cap(p.keys)])
	p.sc.vals, p.sc.keys = p.vals[:0], p.keys[:0]
	scratchPool.Put(p.sc)
}

// Parse reads one relaxed JSON value filling the whole input (white space
// and comments aside). Errors are *SyntaxError.
func Parse(b []byte) (any, error) {
	v, _, err := ParseStrict(b)
	return v, err
}

// ParseStrict is Parse that also reports whether the input was strict JSON
// (what encoding/json accepts), so that a caller can keep strict bytes as
// they are and re-encode only relaxed ones. It is the fast path for every
// body: a hand-written parser allocates less than encoding/json's
// reflection.
func ParseStrict(b []byte) (v any, strict bool, err error) {
	p := parser{b: b}
	v, err = p.run()
	return v, err == nil && !p.relaxed, err
}

func (p *parser) run() (any, error) {
	if len(p.b) >= 3 && p.b[0] == 0xEF && p.b[1] == 0xBB && p.b[2] == 0xBF {
		p.pos = 3
		p.relaxed = true
	}
	return p.parse()
}

func (p *parser) parse() (any, error) {
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.pos == len(p.b) {
		return nil, p.errorf(p.pos, "empty input; expected a value")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.pos < len(p.b) {
		return nil, p.errorf(p.pos, "unexpected %s after the value; send one value only", p.found(p.pos))
	}
	return v, nil
}

type parser struct {
	b   []byte
	pos int
	// relaxed is set as soon as anything beyond strict JSON is read.
	relaxed bool
	// maxElems bounds the elements of a top-level array; 0: no bound.
	maxElems int
	// elems are the spans of a top-level array's elements, in b, or in
	// out when emitting.
	elems []Span
	// emit writes the input as strict JSON to out while parsing.
	emit bool
	out  []byte
	// vals and keys are scratch stacks of the values and keys of the
	// arrays and objects being read; sc is where they came from.
	vals []any
	keys []string
	sc   *scratch
}

func (p *parser) errorf(at int, format string, args ...any) *SyntaxError {
	line, col := 1, 1
	start := 0
	for i := 0; i < at && i < len(p.b); i++ {
		if p.b[i] == '\n' {
			line++
			start = i + 1
		}
	}
	if at > len(p.b) {
		at = len(p.b)
	}
	col += utf8.RuneCount(p.b[start:at])
	return &SyntaxError{Offset: at, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) depthError() error {
	e := p.errorf(p.pos, "nesting deeper than %d levels", MaxDepth)
	e.err = ErrDepth
	return e
}

// found describes what is at i, for "expected X, found Y" messages.
func (p *parser) found(i int) string {
	if i >= len(p.b) {
		return "end of input"
	}
	c := p.b[i]
	if isWordByte(c) && c < utf8.RuneSelf {
		j := i
		for j < len(p.b) && isWordByte(p.b[j]) && j-i < 40 {
			j++
		}
		return strconv.Quote(string(p.b[i:j]))
	}
	r, _ := utf8.DecodeRune(p.b[i:])
	return strconv.QuoteRune(r)
}

// space skips white space and comments.
func (p *parser) space() error {
	for p.pos < len(p.b) {
		switch c := p.b[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == 0xC2 && p.pos+1 < len(p.b) && p.b[p.pos+1] == 0xA0: // U+00A0 from scraped pages
			p.pos += 2
			p.relaxed = true
		case c == '/' && p.pos+1 < len(p.b) && p.b[p.pos+1] == '/':
			p.relaxed = true
			for p.pos < len(p.b) && p.b[p.pos] != '\n' {
				p.pos++
			}
		case c == '/' && p.pos+1 < len(p.b) && p.b[p.pos+1] == '*':
			p.relaxed = true
			end := bytes.Index(p.b[p.pos+2:], []byte("*/"))
			if end < 0 {
				return p.errorf(p.pos, "comment not closed: expected */")
			}
			p.pos += 2 + end + 2
		default:
			return nil
		}
	}
	return nil
}

func (p *parser) value(depth int) (any, error) {
	if p.pos >= len(p.b) {
		return nil, p.errorf(p.pos, "expected a value, found end of input")
	}
	switch c := p.b[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"' || c == '\'':
		return p.str()
	case c == '-' || c == '+' || (c >= '0' && c <= '9'):
		return p.bare()
	case isWordByte(c):
		start := p.pos
		w := p.word()
		switch w {
		case "true":
			p.write(w)
			return true, nil
		case "false":
			p.write(w)
			return false, nil
		case "null":
			p.write(w)
			return nil, nil
		}
		return nil, p.errorf(start, "unquoted word %q; quote strings, and write true, false and null in lower case", w)
	}
	return nil, p.errorf(p.pos, "expected a value, found %s", p.found(p.pos))
}

func (p *parser) object(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, p.depthError()
	}
	p.pos++ // {
	p.writeByte('{')
	// Members gather on the parser's scratch stacks and go into a map
	// of the right size at '}': no rehashing garbage.
	vmark, kmark := len(p.vals), len(p.keys)
	first := true
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.b) {
			return nil, p.errorf(p.pos, "object not closed: expected a key or '}', found end of input")
		}
		if p.b[p.pos] == '}' {
			if !first {
				p.relaxed = true // a trailing comma
			}
			p.pos++
			p.writeByte('}')
			return p.makeObject(vmark, kmark), nil
		}
		if !first {
			p.writeByte(',')
		}
		first = false
		var key string
		switch c := p.b[p.pos]; {
		case c == '"' || c == '\'':
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			key = s.(string)
		case isWordByte(c):
			p.relaxed = true
			key = p.word()
			p.writeString(key)
		default:
			return nil, p.errorf(p.pos, "expected a key or '}', found %s", p.found(p.pos))
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.b) || p.b[p.pos] != ':' {
			return nil, p.errorf(p.pos, "expected ':' after key %q, found %s", key, p.found(p.pos))
		}
		p.pos++
		p.writeByte(':')
		if err := p.space(); err != nil {
			return nil, err
		}
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		if !p.emit {
			p.keys = append(p.keys, key)
		}
		p.push(v)
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.b) {
			return nil, p.errorf(p.pos, "object not closed: expected ',' or '}' after the value of key %q, found end of input", key)
		}
		switch p.b[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.writeByte('}')
			return p.makeObject(vmark, kmark), nil
		default:
			return nil, p.errorf(p.pos, "expected ',' or '}' after the value of key %q, found %s", key, p.found(p.pos))
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, p.depthError()
	}
	p.pos++ // [
	p.writeByte('[')
	// Elements gather on the parser's scratch stack and are copied to a
	// slice of the right size at ']': no append-doubling garbage.
	mark := len(p.vals)
	first := true
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.b) {
			return nil, p.errorf(p.pos, "array not closed: expected a value or ']', found end of input")
		}
		if p.b[p.pos] == ']' {
			if !first {
				p.relaxed = true // a trailing comma
			}
			p.pos++
			p.writeByte(']')
			return p.makeArray(mark), nil
		}
		if !first {
			p.writeByte(',')
		}
		first = false
		top := depth == 1
		if top && p.maxElems > 0 && len(p.vals)-mark == p.maxElems {
			e := p.errorf(p.pos, "more than %d elements", p.maxElems)
			e.err = ErrTooMany
			return nil, e
		}
		start := p.mark()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		if top {
			p.elems = append(p.elems, Span{start, p.mark()})
		}
		p.push(v)
		n := len(p.vals) - mark
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.b) {
			return nil, p.errorf(p.pos, "array not closed: expected ',' or ']' after element %d, found end of input", n-1)
		}
		switch p.b[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.writeByte(']')
			return p.makeArray(mark), nil
		default:
			return nil, p.errorf(p.pos, "expected ',' or ']' after element %d, found %s", n-1, p.found(p.pos))
		}
	}
}

// push puts v on the scratch stack, doubling it when full: append's
// gentler growth past 256 elements leaves four times the final size
// behind as garbage for one large array.
func (p *parser) push(v any) {
	if p.emit {
		return // the values were built by the first pass
	}
	if len(p.vals) == cap(p.vals) {
		grown := make([]any, len(p.vals), max(64, 2*cap(p.vals)))
		copy(grown, p.vals)
		p.vals = grown
	}
	p.vals = append(p.vals, v)
}

// emptyArray is every [] read: a slice of no elements cannot be changed
// through, and boxing one slice header per [] would cost 24 bytes for 2.
var emptyArray any = []any{}

// makeArray takes the values above mark off the scratch stack.
func (p *parser) makeArray(mark int) any {
	if p.emit {
		return nil
	}
	if len(p.vals) == mark {
		return emptyArray
	}
	a := make([]any, len(p.vals)-mark)
	copy(a, p.vals[mark:])
	clear(p.vals[mark:])
	p.vals = p.vals[:mark]
	return a
}

// makeObject takes the members above the marks off the scratch stacks; a
// repeated key keeps its last value, as in encoding/json.
func (p *parser) makeObject(vmark, kmark int) map[string]any {
	if p.emit {
		return nil
	}
	m := make(map[string]any, len(p.keys)-kmark)
	for i, k := range p.keys[kmark:] {
		m[k] = p.vals[vmark+i]
	}
	clear(p.vals[vmark:])
	clear(p.keys[kmark:])
	p.vals, p.keys = p.vals[:vmark], p.keys[:kmark]
	return m
}

// mark is where the next value starts: in the input, or in the output
// when emitting.
func (p *parser) mark() int {
	if p.emit {
		return len(p.out)
	}
	return p.pos
}

func (p *parser) writeByte(c byte) {
	if p.emit {
		p.out = append(p.out, c)
	}
}

func (p *parser) write(s string) {
	if p.emit {
		p.out = append(p.out, s...)
	}
}

// writeString writes s as a JSON string. Only what JSON requires is
// escaped: URLs and markup stay readable in sinks.
func (p *parser) writeString(s string) {
	if !p.emit {
		return
	}
	const hex = "0123456789abcdef"
	p.out = append(p.out, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		p.out = append(p.out, s[start:i]...)
		switch c {
		case '"', '\\':
			p.out = append(p.out, '\\', c)
		case '\n':
			p.out = append(p.out, '\\', 'n')
		case '\r':
			p.out = append(p.out, '\\', 'r')
		case '\t':
			p.out = append(p.out, '\\', 't')
		default:
			p.out = append(p.out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	p.out = append(p.out, s[start:]...)
	p.out = append(p.out, '"')
}

// isWordByte reports whether c may appear in an unquoted key or bare token.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '$' || c == '-' || c == '.' || c == '+' || c >= utf8.RuneSelf
}

func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.b) && isWordByte(p.b[p.pos]) {
		if p.b[p.pos] == 0xC2 && p.pos+1 < len(p.b) && p.b[p.pos+1] == 0xA0 {
			break // a no-break space ends the word
		}
		p.pos++
	}
	return validUTF8(p.b[start:p.pos])
}

// validUTF8 replaces each byte of b that is not UTF-8 by U+FFFD, as
// encoding/json does in strings.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		out = utf8.AppendRune(out, r)
		b = b[size:]
	}
	return string(out)
}

// bare reads a token that starts like a number: a JSON number is a number
// (normalized by router.NormalizeNumbers, as strict bodies are, and
// written out as sent), anything else a string.
func (p *parser) bare() (any, error) {
	start := p.pos
	w := p.word()
	if !isJSONNumber(w) {
		p.relaxed = true
		if !strings.ContainsAny(w, "0123456789") {
			return nil, p.errorf(start, "unquoted word %q; quote strings", w)
		}
		p.writeString(w)
		return w, nil
	}
	p.write(w) // the number's text, verbatim
	if p.emit {
		return nil, nil
	}
	return router.Number(w), nil
}

// isJSONNumber checks the JSON number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// str reads a double- or single-quoted string, decoding escapes and
// replacing invalid UTF-8 and lone surrogates by U+FFFD, as encoding/json
// does.
func (p *parser) str() (any, error) {
	quote := p.b[p.pos]
	if quote == '\'' {
		p.relaxed = true
	}
	start := p.pos
	p.pos++
	// Fast path: no escapes, plain ASCII or valid UTF-8.
	i := p.pos
	for i < len(p.b) {
		c := p.b[i]
		if c == quote || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	if i < len(p.b) && p.b[i] == quote {
		s := string(p.b[p.pos:i])
		p.pos = i + 1
		p.writeString(s)
		return s, nil
	}
	var out []byte
	out = append(out, p.b[p.pos:i]...)
	p.pos = i
	for {
		if p.pos >= len(p.b) {
			return nil, p.errorf(start, "string not closed: expected %c before the end of input", quote)
		}
		c := p.b[p.pos]
		switch {
		case c == quote:
			p.pos++
			p.writeString(string(out))
			return string(out), nil
		case c == '\n' || c == '\r':
			return nil, p.errorf(start, "string not closed: expected %c before the end of the line", quote)
		case c < 0x20:
			return nil, p.errorf(p.pos, "control character %U in a string; escape it", rune(c))
		case c == '\\':
			var err error
			if out, err = p.escape(out); err != nil {
				return nil, err
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.b[p.pos:])
			out = utf8.AppendRune(out, r) // RuneError for invalid bytes
			p.pos += size
		}
	}
}

func (p *parser) escape(out []byte) ([]byte, error) {
	at := p.pos
	if p.pos+1 >= len(p.b) {
		return nil, p.errorf(at, "string not closed: escape at the end of input")
	}
	c := p.b[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case '\'':
		p.relaxed = true
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		r, ok := hex4(p.b[p.pos:])
		if !ok {
			return nil, p.errorf(at, `invalid \u escape: expected four hex digits`)
		}
		p.pos += 4
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if p.pos+1 < len(p.b) && p.b[p.pos] == '\\' && p.b[p.pos+1] == 'u' {
				r2, _ = hex4(p.b[p.pos+2:])
			}
			if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
				p.pos += 6
				return utf8.AppendRune(out, dec), nil
			}
			r = unicode.ReplacementChar
		}
		return utf8.AppendRune(out, r), nil
	}
	return nil, p.errorf(at, "invalid escape \\%c in a string; write \\\\ for a backslash", rune(c))
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return -1, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}
