package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader. Whatever the file holds,
// the loader must not panic, and must answer with either a File or a list of
// problems that each say something.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, doc := range []string{
		"",
		"server: { listen: \":8080\", max_body_bytes: 1MiB, read_timeout: 10s, shutdown_timeout: 15s }\n" +
			"admin:  { listen: \"127.0.0.1:9090\" }\nlog: { level: info, format: text }\nqueue: { dir: ./data }\n" +
			"sources:\n  bird:\n    type: bird\n    signing_key: ${BIRD_SIGNING_KEY}\n    events: [voice.inbound, voice.outbound]\n" +
			"    filters: [ {key: status, value: failed}, {key: status, value: busy} ]\n" +
			"sinks:\n  oncall: { type: slack, webhook_url: \"${SLACK_WEBHOOK_URL}\", text: \"{{ .event }} {{ .status }}\" }\n" +
			"  archive: { type: file, path: ./data/events.jsonl }\n" +
			"rules:\n  - name: failed-calls\n    when: 'event startsWith \"voice.\"'\n    to: [oncall, archive]\n" +
			"unmatched: [archive]\n",
		"sources: [a, b]\n",
		"sinks: {a: {retry: 5}}\n",
		"rules: {name: x}\n",
		"server: {max_body_bytes: [1]}\n",
		"server: {read_timeout: {a: 1}}\n",
		"a: &x [*x]\n",
		"server: !!binary aGVsbG8=\n",
		"? [a, b]\n: c\n",
		"sources: {\"\": {type: x}}\n",
		"sources: {a.b: {type: x, path: /}}\n",
		"sinks: {x: {type: http, url: '$${A}${B:-c}${'}}\n",
		"- just\n- a list\n",
		"42\n",
		"server:\n  listen: ${HOST}:${PORT:-80}\n",
	} {
		f.Add([]byte(doc))
	}
	lookup := env(map[string]string{"HOST": "localhost", "BIRD_SIGNING_KEY": "k", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := parse(b, lookup)
		if err == nil {
			if file == nil {
				t.Fatal("no File and no error")
			}
			return
		}
		if file != nil {
			t.Fatalf("a File along with error %v", err)
		}
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("error is %T, not Problems: %v", err, err)
		}
		if len(ps) == 0 {
			t.Fatal("an error with no problems")
		}
		for _, p := range ps {
			if p.Msg == "" {
				t.Fatalf("problem at %q has no message", p.Path)
			}
		}
	})
}
