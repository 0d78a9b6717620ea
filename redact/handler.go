package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NewHandler wraps h so that no record it passes on carries a configured
// secret (see Current), in its message or in any attribute value, errors
// included.
//
// With text set (a human-readable handler such as tint or slog's
// TextHandler), it also makes sure that nothing in a record can forge or
// hide log lines: control characters in values become visible symbols
// (ESC becomes ␛, which tint would otherwise pass to a colour terminal),
// line breaks in the message become ␊ (handlers write the message
// unquoted), and invalid UTF-8 bytes are written \xFF (tint cuts a value
// at the first invalid byte). Line breaks and tabs in attribute values are left
// for the handler to quote, so that JSON inside a value stays JSON.
func NewHandler(h slog.Handler, text bool) slog.Handler {
	return &handler{next: h, text: text}
}

type handler struct {
	next slog.Handler
	text bool
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	red := Current()
	if red.Empty() && !h.text {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, h.message(red, r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(red, a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := Current()
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(red, a)
	}
	return &handler{next: h.next.WithAttrs(clean), text: h.text}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), text: h.text}
}

func (h *handler) message(red *Redactor, s string) string {
	s = red.String(s)
	if h.text {
		s = textMessage(s)
	}
	return s
}

func (h *handler) str(red *Redactor, s string) string {
	s = red.String(s)
	if h.text {
		s = textValue(s)
	}
	return s
}

func (h *handler) attr(red *Redactor, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.str(red, v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = h.attr(red, ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: h.anyValue(red, v.Any())}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// anyValue cleans a value that handlers would print with fmt (text) or
// encoding/json (JSON).
func (h *handler) anyValue(red *Redactor, v any) slog.Value {
	switch x := v.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error:
		return slog.StringValue(h.str(red, x.Error()))
	case []string:
		clean := make([]string, len(x))
		for i, s := range x {
			clean[i] = h.str(red, s)
		}
		return slog.AnyValue(clean)
	}
	if h.text {
		return slog.StringValue(h.str(red, fmt.Sprintf("%+v", v)))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return slog.StringValue(red.String(fmt.Sprintf("%+v", v)))
	}
	if clean := red.String(string(b)); clean != string(b) {
		return slog.AnyValue(json.RawMessage(clean))
	}
	return slog.AnyValue(v)
}

// textValue makes an attribute value safe for a text handler, which
// quotes values holding spaces, quotes, line breaks or unprintable
// characters (see NewHandler for what it cannot be trusted with).
func textValue(s string) string {
	if !needsText(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02X`, s[i-1])
		case r == utf8.RuneError:
			b.WriteString(`\uFFFD`) // tint cuts a value at U+FFFD too
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteRune(r)
		case r < 0x20:
			b.WriteRune(0x2400 + r) // control pictures: ␀ … ␟, ␛ for ESC
		case r == 0x7f:
			b.WriteRune('␡')
		default:
			b.WriteRune(r)
		}
	}
	// tint, writing to a colour terminal, turns the text \x1b of a quoted
	// value back into ESC: the quoted form of a value that holds the four
	// characters \x1b contains them too.
	return strings.ReplaceAll(b.String(), `\x1b`, `\x1B`)
}

// textMessage makes a message safe for a text handler, which writes it
// as it is: one line, every character printable.
func textMessage(s string) string {
	s = textValue(s)
	if strings.IndexFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteRune('␊')
		case r == '\r':
			b.WriteRune('␍')
		case r == '\t' || r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, `\u%04X`, r)
		}
	}
	return b.String()
}

// needsText reports whether textValue would change s.
func needsText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return true
		}
	}
	return strings.Contains(s, `\x1b`) || strings.ContainsRune(s, utf8.RuneError)
}
