package router

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Reading members of strict JSON without decoding it: an event's payload
// is kept as the bytes received and decoded only when something needs more
// than a few of its fields (Event.Fields).

// RawMember returns the strict JSON of member key of the object raw (strict
// JSON), nil when raw is not an object or has no such member; a repeated
// key is its last value, as in a decoded map.
func RawMember(raw []byte, key string) []byte {
	var found []byte
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return found // '}' or, never for Raw, malformed
		}
		k := i
		i = skipValue(raw, i)
		name := raw[k:i]
		i = skipSpace(raw, i) + 1 // ':'
		v := skipSpace(raw, i)
		i = skipValue(raw, v)
		if keyIs(name, key) {
			found = raw[v:i:i]
		}
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i++
		}
	}
}

// keyIs compares a quoted JSON key with key.
func keyIs(quoted []byte, key string) bool {
	if len(quoted) == len(key)+2 && string(quoted[1:len(quoted)-1]) == key {
		return true
	}
	if bytes.IndexByte(quoted, '\\') >= 0 || !utf8.Valid(quoted) {
		// Escaped, or with bytes a decoded map holds as U+FFFD: rare
		// enough to decode.
		var d string
		return json.Unmarshal(quoted, &d) == nil && d == key
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the strict JSON value starting at i.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			i++
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
		if depth == 0 && i > 0 && (b[i-1] == '"' || b[i-1] == '}' || b[i-1] == ']') {
			return i
		}
	}
	return i
}

// RawLookup is LookupPath on the strict JSON of an object: the value at a
// dotted path, decoded as DecodeJSON decodes it, ok false when a member is
// missing or the path goes through a value that is not an object.
func RawLookup(raw []byte, path string) (any, bool) {
	for {
		key, rest, more := strings.Cut(path, ".")
		if raw = RawMember(raw, key); raw == nil {
			return nil, false
		}
		if !more {
			v, err := decodeValue(raw)
			return v, err == nil
		}
		path = rest
	}
}

// decodeValue is DecodeJSON for one value of strict JSON, without a
// decoder for the scalars a lookup nearly always finds.
func decodeValue(raw []byte) (any, error) {
	switch raw = bytes.TrimSpace(raw); firstByte(raw) {
	case '"':
		if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
			return string(s), nil
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	case '{', '[':
		return DecodeJSON(raw)
	}
	return Number(string(raw)), nil
}

// rawKeyVal is lookupKey's walk (the expression environment's view of a
// payload path: member access nil-safe) on the payload's bytes.
func rawKeyVal(raw []byte, path []string) keyVal {
	for _, seg := range path {
		switch firstByte(raw) {
		case '{':
			if raw = RawMember(raw, seg); raw == nil {
				return keyVal{state: valNone}
			}
		case 'n':
			return keyVal{state: valNone}
		default:
			return keyVal{state: valBroken}
		}
	}
	switch firstByte(raw) {
	case '"':
		if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
			return keyVal{state: valStr, s: string(s)}
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return keyVal{state: valOther}
		}
		return keyVal{state: valStr, s: s}
	case 'n':
		return keyVal{state: valNone}
	}
	return keyVal{state: valOther}
}

func firstByte(raw []byte) byte {
	if i := skipSpace(raw, 0); i < len(raw) {
		return raw[i]
	}
	return 0
}
