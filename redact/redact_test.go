package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

const secret = "hunter2-Sup3r/s3cret+token"

func TestRedactsEveryFormASecretTravelsIn(t *testing.T) {
	r := New(secret)
	plain := "\x00smtp-user\x00" + secret
	tests := []struct {
		name, text string
	}{
		{"the value", "401: Authorization: Bearer " + secret + " refused"},
		{"JSON escaped", `{"echo":"` + strings.ReplaceAll(secret, "/", `\/`) + `"}`},
		{"URL query escaped", "GET /x?token=" + url.QueryEscape(secret)},
		{"URL path escaped", "GET /hooks/" + url.PathEscape(secret)},
		{"SMTP AUTH PLAIN", "535 5.7.8 AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte(plain)) + " rejected"},
		{"HTTP Basic", "echo: Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+secret))},
		{"HTTP Basic, longer user", "echo: Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+secret))},
		{"base64 URL alphabet", base64.RawURLEncoding.EncodeToString([]byte("ab" + secret + "cd"))},
		{"XOAUTH2", base64.StdEncoding.EncodeToString([]byte("user=a@b\x01auth=Bearer " + secret + "\x01\x01"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.String(tt.text)
			if !strings.Contains(got, Mask) {
				t.Fatalf("nothing redacted in %q", got)
			}
			if leaks(got, secret) {
				t.Errorf("secret recoverable from %q", got)
			}
		})
	}
}

// leaks reports whether text holds secret as is or in base64 at any
// offset.
func leaks(text, secret string) bool {
	if strings.Contains(text, secret) {
		return true
	}
	for align := range 3 {
		core := base64Core([]byte(secret), align)
		if len(core) >= minBase64 && (strings.Contains(text, core) ||
			strings.Contains(text, strings.NewReplacer("+", "-", "/", "_").Replace(core))) {
			return true
		}
	}
	return false
}

func TestShortAndEmptyValuesAreNotRedacted(t *testing.T) {
	r := New("", "abc")
	if !r.Empty() {
		t.Fatal("a redactor of short values redacts")
	}
	if got := r.String("abc abc"); got != "abc abc" {
		t.Errorf("got %q", got)
	}
}

func TestLongestValueWins(t *testing.T) {
	r := New("token", "token-extended")
	if got := r.String("x token-extended y token z"); got != "x "+Mask+" y "+Mask+" z" {
		t.Errorf("got %q", got)
	}
}

func TestNilAndZeroRedactNothing(t *testing.T) {
	var r *Redactor
	if r.String("a") != "a" || string(r.Bytes([]byte("b"))) != "b" {
		t.Error("nil redactor changed text")
	}
	if (&Redactor{}).String("abcd") != "abcd" {
		t.Error("zero redactor changed text")
	}
}

func TestWithKeepsBoth(t *testing.T) {
	r := New("old-secret-1").With(New("new-secret-2"))
	if got := r.String("old-secret-1 new-secret-2"); got != Mask+" "+Mask {
		t.Errorf("got %q", got)
	}
}

func TestBytesReturnsTheSameSliceWhenNothingChanges(t *testing.T) {
	r := New(secret)
	b := []byte("nothing to hide")
	if got := r.Bytes(b); &got[0] != &b[0] {
		t.Error("a copy was made")
	}
}

func TestProcessWideRedactor(t *testing.T) {
	t.Cleanup(func() { Set(nil) })
	if String(secret) != secret {
		t.Fatal("redacted before Set")
	}
	Set(New(secret))
	if String(secret) != Mask {
		t.Error("not redacted after Set")
	}
	Set(nil)
	if Current() == nil || String(secret) != secret {
		t.Error("Set(nil) must redact nothing")
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("hunter2!", "Authorization: Bearer ", " x", 0)
	f.Add("p@ss/word+", "\x00user\x00", "", 1)
	f.Add("ééé€€", "a", "b", 2)
	f.Fuzz(func(t *testing.T, value, before, after string, mode int) {
		if len(value) < MinLen || strings.Contains(Mask, value) {
			return
		}
		r := New(value)
		text := before + value + after
		if mode%2 == 1 {
			text = base64.StdEncoding.EncodeToString([]byte(text))
		}
		got := r.String(text)
		// Another occurrence, or a form of it, may be matched first and
		// take part of this one: what is left is never the whole value.
		if strings.Contains(strings.ReplaceAll(got, Mask, "\x00"), value) && !strings.Contains(value, "\x00") {
			t.Errorf("value %q survives in %q", value, got)
		}
	})
}
