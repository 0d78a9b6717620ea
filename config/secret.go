package config

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
)

// Secret is a string that never prints: tokens, passwords, signing keys.
// Use Reveal where the value is really needed.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Format covers every verb: without it fmt prints the raw value for a
// wrong one ("%!d(config.Secret=hunter2)").
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", redacted)
		return
	}
	io.WriteString(f, redacted)
}

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

var _ slog.LogValuer = Secret("")

// SecretHolder is implemented by settings that hold credentials not typed
// Secret (an Authorization header among plain headers), so that Secrets
// finds them too.
type SecretHolder interface {
	Secrets() []string
}

// Secrets returns every credential in v (settings decoded by Decode): each
// non-empty Secret field, at any depth, and what SecretHolders name. The
// redactor is built from them.
func Secrets(v any) []string {
	var out []string
	collectSecrets(reflect.ValueOf(v), &out)
	return out
}

func collectSecrets(v reflect.Value, out *[]string) {
	if !v.IsValid() {
		return
	}
	if v.CanInterface() {
		if h, ok := v.Interface().(SecretHolder); ok && (v.Kind() != reflect.Pointer || !v.IsNil()) {
			*out = append(*out, h.Secrets()...)
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collectSecrets(v.Elem(), out)
		}
	case reflect.String:
		if v.Type() == secretType && v.Len() > 0 {
			*out = append(*out, v.String())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				collectSecrets(v.Field(i), out)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			collectSecrets(v.Index(i), out)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			collectSecrets(it.Value(), out)
		}
	}
}
