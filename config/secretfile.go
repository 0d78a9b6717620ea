package config

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
)

// FileSuffix turns a credential setting X into X_file, the path of a file
// holding its value: a mounted Kubernetes or Docker secret.
const FileSuffix = "_file"

// maxSecretFile bounds what is read of a secret file: a secret is one
// value, and a path mistyped to a log file must not be read whole.
const maxSecretFile = 64 << 10

var secretType = reflect.TypeOf(Secret(""))

// resolveSecretFiles replaces, in raw (in place), every X_file key of a
// Secret field X of t's structs with X holding the file's content, less
// one final line break. Problems name the file, never its content.
func resolveSecretFiles(raw any, t reflect.Type, path string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return
		}
		fields, _ := structKeys(t)
		for name, ft := range fields {
			if ft == secretType {
				resolveSecretFile(m, name, path, ps)
				continue
			}
			if v, ok := m[name]; ok {
				resolveSecretFiles(v, ft, Join(path, name), ps)
			}
		}
	case reflect.Map:
		if m, ok := raw.(map[string]any); ok {
			for k, v := range m {
				resolveSecretFiles(v, t.Elem(), Join(path, k), ps)
			}
		}
	case reflect.Slice:
		if l, ok := raw.([]any); ok {
			for i, v := range l {
				resolveSecretFiles(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), ps)
			}
		}
	}
}

func resolveSecretFile(m map[string]any, name, path string, ps *Problems) {
	key := name + FileSuffix
	v, ok := m[key]
	if !ok {
		return
	}
	at := Join(path, key)
	delete(m, key)
	if _, both := m[name]; both {
		ps.Add(at, "is set together with %s; set one of them: %s holds the value, %s the path of a file holding it", name, name, key)
		return
	}
	file, ok := v.(string)
	if !ok || strings.TrimSpace(file) == "" {
		ps.Add(at, "must be the path of a file holding the %s, e.g. /run/secrets/%s", name, name)
		return
	}
	value, err := readSecretFile(file)
	if err != nil {
		ps.Add(at, "%v", err)
		return
	}
	m[name] = value
}

// readSecretFile reads a secret file: its content less one final line
// break (what `echo` and editors add). Errors name the file.
func readSecretFile(file string) (string, error) {
	// Stat before opening: opening a FIFO would wait for a writer.
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file: %v", err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("%s is a directory; give the path of the file that holds the value", file)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file; give the path of the file that holds the value", file)
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file %s: %v", file, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than 64KiB; a secret file holds one value", file)
	}
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty; write the value into it", file)
	}
	return s, nil
}
