package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Decode copies a raw YAML value into target (a pointer to a struct whose
// fields carry `koanf` tags), strictly: a key the struct does not know is a
// problem naming the closest known key, because a typo must never silently
// disable a setting. Durations, sizes and secrets are converted; a Secret
// field X may instead be given as X_file, a file holding the value (raw is
// changed in place to hold the value). Fields not in raw keep the values
// target already holds, so callers set defaults first.
func Decode(raw any, target any, path string) Problems {
	var ps Problems
	resolveSecretFiles(raw, reflect.TypeOf(target), path, &ps)
	// Unknown keys do not stop decoding: the known ones are still checked,
	// so one run of `check` names every problem.
	checkKeys(raw, reflect.TypeOf(target), path, &ps)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "koanf",
		Result:           target,
		WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook, sizeHook,
		),
	})
	if err != nil {
		panic(err) // only a programming error: target is not a pointer
	}
	if err := dec.Decode(raw); err != nil {
		ps.addDecodeErrors(path, err)
	}
	return ps
}

func (ps *Problems) addDecodeErrors(path string, err error) {
	// mapstructure wraps its joined errors in one fmt.Errorf; look through
	// that wrapper, or only the first problem would be reported.
	var multi interface{ Unwrap() []error }
	if _, one := err.(*mapstructure.DecodeError); !one && errors.As(err, &multi) {
		for _, e := range multi.Unwrap() {
			ps.addDecodeErrors(path, e)
		}
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		msg := de.Unwrap().Error()
		// mapstructure says "cannot parse value as 'int': strconv.ParseInt: ...";
		// keep the part an operator can act on.
		if i := strings.Index(msg, ": strconv."); i > 0 {
			msg = msg[:i]
		}
		ps.Add(Join(path, mapstructurePath(de.Name())), "%s", msg)
		return
	}
	ps.Add(path, "%v", err)
}

// mapstructurePath turns "sinks[crm].url" into "sinks.crm.url"; list
// indexes stay as [i].
func mapstructurePath(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '[' {
			j := strings.IndexByte(name[i:], ']')
			if j > 0 {
				key := name[i+1 : i+j]
				if isIndex(key) {
					b.WriteString(name[i : i+j+1])
				} else {
					if b.Len() > 0 {
						b.WriteByte('.')
					}
					b.WriteString(key)
				}
				i += j
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isIndex(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
	stringType   = reflect.TypeOf("")
)

func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration; write it like 500ms, 30s, 5m or 1h", v)
		}
		return d, nil
	case int:
		if v == 0 {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("%d has no unit; write it like 30s or 5m", v)
	}
	return data, nil
}

func sizeHook(from, to reflect.Type, data any) (any, error) {
	if to != sizeType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return ParseSize(v)
	case int:
		return Size(v), nil
	case float64:
		// Through ParseSize for its range checks: 1e300 is not a size.
		return ParseSize(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return data, nil
}

// checkKeys walks raw beside the Go type it will be decoded into and reports
// keys that type does not have. A struct field tagged ",remain" takes the
// unknown keys of its struct (a plugin checks those against its own options).
func checkKeys(raw any, t reflect.Type, path string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return // a type mismatch; mapstructure reports it
		}
		fields, remain := structKeys(t)
		var unknown []string
		for k, v := range m {
			f, ok := fields[k]
			if !ok {
				if !remain {
					unknown = append(unknown, k)
				}
				continue
			}
			checkKeys(v, f, Join(path, k), ps)
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			ps.Add(Join(path, k), "unknown setting%s", suggest(k, fields))
		}
	case reflect.Map:
		if m, ok := raw.(map[string]any); ok {
			for k, v := range m {
				checkKeys(v, t.Elem(), Join(path, k), ps)
			}
		}
	case reflect.Slice:
		if l, ok := raw.([]any); ok {
			for i, v := range l {
				checkKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), ps)
			}
		}
	}
}

func structKeys(t reflect.Type) (map[string]reflect.Type, bool) {
	fields := map[string]reflect.Type{}
	remain := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "remain") {
			remain = true
			continue
		}
		if strings.Contains(opts, "squash") {
			inner, r := structKeys(f.Type)
			for k, v := range inner {
				fields[k] = v
			}
			remain = remain || r
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		if f.Type == secretType {
			fields[name+FileSuffix] = stringType
		}
	}
	return fields, remain
}

// suggest names the known key closest to k, if one is close enough to be a
// typo, else lists the known keys.
func suggest(k string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(k), n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	if len(names) == 0 {
		return "; this section takes no settings"
	}
	return "; known settings: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
