package router

import (
	"bytes"
	"encoding/json"
	"errors"
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
		switch b[i] {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// skipString returns the end of the string whose opening quote is at i,
// finding quotes with bytes.IndexByte: strings are most of a payload.
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		i += j
		// Escaped when an odd number of backslashes precede it.
		k := i - 1
		for k >= 0 && b[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 {
			return i + 1
		}
		i++
	}
}

// RawLookup is LookupPath on the strict JSON of an object: the value at a
// dotted path, decoded as DecodeJSON decodes it, ok false when a member is
// missing or the path goes through a value that is not an object.
func RawLookup(raw []byte, path string) (any, bool) {
	for path != "" { // as LookupPath walks it: a trailing dot names nothing more
		key, rest, _ := strings.Cut(path, ".")
		if raw = RawMember(raw, key); raw == nil {
			return nil, false
		}
		path = rest
	}
	v, err := DecodeValue(raw)
	return v, err == nil
}

// DecodeValue is DecodeJSON for one value of strict JSON, without a
// decoder for the scalars a lookup nearly always finds.
func DecodeValue(raw []byte) (any, error) {
	switch raw = bytes.TrimSpace(raw); firstByte(raw) {
	case '"':
		return DecodeString(raw)
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

// DecodeString decodes the strict JSON of a string without boxing it in
// an interface, as DecodeValue does; anything else is an error. Nearly
// every string is read as its bytes, with no decoder.
func DecodeString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errNotString
	}
	if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

var errNotString = errors.New("not a JSON string")

// PathSegments splits a dotted path into the members LookupPath and
// RawLookup follow, for RawPaths.
func PathSegments(path string) []string {
	var out []string
	for path != "" {
		key, rest, _ := strings.Cut(path, ".")
		out = append(out, key)
		path = rest
	}
	return out
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
		s, err := DecodeString(raw)
		if err != nil {
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

// RawPaths finds several paths of an object of strict JSON in one pass
// over its bytes: out[i] is set to the JSON of the value at paths[i] (a
// path's members, from the root), or nil when it has none, exactly as
// RawLookup would find it: a repeated key is its last value, and a path
// through a value that is not an object finds nothing. A source reads the
// few fields it needs of every body this way.
func RawPaths(raw []byte, paths [][]string, out [][]byte) {
	active := make([]int, 0, 8)
	for i := range paths {
		out[i] = nil
		if len(paths[i]) > 0 {
			active = append(active, i)
		}
	}
	rawPaths(raw, paths, 0, active, out)
}

func rawPaths(raw []byte, paths [][]string, depth int, active []int, out [][]byte) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return
	}
	i++
	var sub []int
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return
		}
		k := i
		i = skipString(raw, i)
		name := raw[k:i]
		i = skipSpace(raw, i) + 1 // ':'
		v := skipSpace(raw, i)
		i = skipValue(raw, v)
		sub = sub[:0]
		for _, p := range active {
			if !keyIs(name, paths[p][depth]) {
				continue
			}
			if depth == len(paths[p])-1 {
				out[p] = raw[v:i:i]
			} else {
				out[p] = nil // a later member of this name replaces what an earlier one held
				sub = append(sub, p)
			}
		}
		if len(sub) > 0 {
			rawPaths(raw[v:i:i], paths, depth+1, sub, out)
		}
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i++
		}
	}
}
