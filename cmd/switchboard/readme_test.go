package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// snippet is one ```yaml block of a Markdown file.
type snippet struct {
	line int // of the opening fence
	text string
}

func yamlSnippets(t *testing.T, path string) []snippet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	var cur *snippet
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```yaml":
			cur = &snippet{line: i + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	return out
}

// TestReadmeSnippetsPassCheck runs `check` on every YAML block of the
// README: what a newcomer copies must work. A partial snippet (some rules,
// one section) is completed into a config: the sources and sinks it names
// are defined (generic sources, log sinks) and the queue goes to a
// temporary directory.
func TestReadmeSnippetsPassCheck(t *testing.T) {
	snippets := yamlSnippets(t, "../../README.md")
	if len(snippets) < 3 {
		t.Fatalf("found %d yaml blocks in README.md; the extraction is broken", len(snippets))
	}
	setExampleSecrets(t, strings.Join(func() []string {
		var all []string
		for _, s := range snippets {
			all = append(all, s.text)
		}
		return all
	}(), "\n"))
	for _, s := range snippets {
		t.Run(fmt.Sprintf("README.md:%d", s.line), func(t *testing.T) {
			doc := completeConfig(t, s.text)
			p := writeConfig(t, doc)
			if code, out, _ := run(t, "", "check", "-c", p); code != 0 {
				t.Errorf("the block at README.md:%d fails check:\n%s\ncompleted config:\n%s", s.line, out, doc)
			}
		})
	}
}

// completeConfig turns a snippet into a whole config.
func completeConfig(t *testing.T, text string) string {
	t.Helper()
	if strings.HasPrefix(text, "  - ") || strings.HasPrefix(text, "- ") {
		text = "rules:\n" + text // a few rules, shown as they sit under rules:
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, text)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	sources, _ := doc["sources"].(map[string]any)
	sinks, _ := doc["sinks"].(map[string]any)
	if sources == nil {
		sources = map[string]any{}
	}
	if sinks == nil {
		sinks = map[string]any{}
	}
	rules, _ := doc["rules"].([]any)
	var sinkNames, sourceNames []string
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		sinkNames = append(sinkNames, strs(rule["to"])...)
		sourceNames = append(sourceNames, strs(rule["sources"])...)
	}
	sinkNames = append(sinkNames, strs(doc["unmatched"])...)
	for _, n := range sinkNames {
		if sinks[n] == nil {
			sinks[n] = map[string]any{"type": "log"}
		}
	}
	for _, n := range sourceNames {
		if sources[n] == nil {
			sources[n] = map[string]any{"type": "generic"}
		}
	}
	if len(sources) == 0 {
		sources["readme"] = map[string]any{"type": "generic"}
	}
	if len(sinks) == 0 {
		sinks["readme"] = map[string]any{"type": "log"}
	}
	doc["sources"], doc["sinks"] = sources, sinks
	queue, _ := doc["queue"].(map[string]any)
	if queue == nil {
		queue = map[string]any{}
	}
	queue["dir"] = t.TempDir()
	doc["queue"] = queue
	provideFiles(t, doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// provideFiles stands in for the files a snippet mounts (a Secret's
// bearer_token_file, a NATS credentials_file): each *_file setting naming a
// file this machine lacks gets a temporary file with an example value.
func provideFiles(t *testing.T, v any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for k, x := range m {
		if p, ok := x.(string); ok && strings.HasSuffix(k, "_file") && strings.HasPrefix(p, "/") {
			if _, err := os.Stat(p); err != nil {
				f := filepath.Join(t.TempDir(), filepath.Base(p))
				if err := os.WriteFile(f, []byte("example-value-0123456789abcdef\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				m[k] = f
			}
			continue
		}
		provideFiles(t, x)
	}
}

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var unsetVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// setExampleSecrets gives the variables that text names without a default
// (the user's secrets) plausible values.
func setExampleSecrets(t *testing.T, text string) {
	for _, m := range unsetVar.FindAllStringSubmatch(text, -1) {
		v := "example-secret-value-0123456789"
		if strings.Contains(m[1], "URL") {
			v = "https://hooks.example.com/services/T0/B0/X"
		}
		t.Setenv(m[1], v)
	}
}

// The README's rule example used to fail check: duration is a builtin.
func TestCompleteConfigCatchesTheOldReadmeRule(t *testing.T) {
	doc := completeConfig(t, "rules:\n  - name: failed-calls\n    when: 'status in [\"failed\"] && duration < 5'\n    to: [oncall]\n")
	code, out, _ := run(t, "", "check", "-c", writeConfig(t, doc))
	if code != 1 || !strings.Contains(out, `"duration" is expr's duration() function here, not a payload field; reach the field as payload.duration`) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
