package config

import (
	"fmt"
	"io"
	"log/slog"
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
