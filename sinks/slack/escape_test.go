package slack

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// hijack is the payload: posted raw it pings the whole channel,
// mentions a user and shows a disguised link.
const hijack = `<!channel> & <@U123> <https://evil.example|click>`

const hijackEscaped = `&lt;!channel&gt; &amp; &lt;@U123&gt; &lt;https://evil.example|click&gt;`

// markup is what Slack would act on in posted text.
var markup = []string{"<!channel>", "<@U123>", "<https://evil.example", `\u003c`}

func hijackEvent(t *testing.T) string {
	b, _ := json.Marshal(map[string]any{"from": hijack, "to": "+31687654321", "reason": hijack,
		"nested": map[string]any{"note": hijack}, "id": "hj-1"})
	return string(b)
}

// Every event-derived value is escaped for Slack, in the default text
// and in templates, through a real webhook.
func TestEventContentCannotHijackTheMessage(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		// want are fragments of the posted JSON (as Slack decodes it).
		wantText   []string
		wantBlocks []string
	}{
		{"default text", nil, []string{"from " + hijackEscaped, "(" + hijackEscaped + ")"}, nil},
		{"text template", map[string]any{"text": "call from {{ .from }} <https://crm.example|open> {{ .nested.note }}"},
			[]string{"call from " + hijackEscaped + " <https://crm.example|open> " + hijackEscaped}, nil},
		{"json helper in text", map[string]any{"text": "{{ json .nested }}"}, []string{`{"note":"` + hijackEscaped + `"}`}, nil},
		{"printf", map[string]any{"text": `{{ printf "%s!" .from }}`}, []string{hijackEscaped + "!"}, nil},
		{"a helper's output", map[string]any{"text": `{{ upper .from }} {{ default "x" .from }} {{ trunc 200 .from }}`},
			[]string{"&lt;!CHANNEL&gt; &amp; &lt;@U123&gt;"}, nil},
		{"blocks with json", map[string]any{"text": "t", "blocks": `[{"type":"section","text":{"type":"mrkdwn","text":{{ json .from }}}}]`},
			nil, []string{hijackEscaped}},
		{"blocks with printf | json", map[string]any{"text": "t", "blocks": `[{"type":"section","text":{"type":"mrkdwn","text":{{ printf "*From* %s" .from | json }}}}]`},
			nil, []string{"*From* " + hijackEscaped}},
		{"blocks quoting a value themselves", map[string]any{"text": "t", "blocks": `[{"type":"section","text":{"type":"mrkdwn","text":"{{ .from }}"}}]`},
			nil, []string{hijackEscaped}},
		{"blocks with a quote-breaking value", map[string]any{"text": "t", "blocks": `[{"type":"section","text":{"type":"mrkdwn","text":"{{ .inject }}"}}]`},
			nil, []string{`x\", \"type\": \"image`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, got := slackServer(t, nil)
			settings := map[string]any{"webhook_url": url}
			for k, v := range tt.settings {
				settings[k] = v
			}
			s := build(t, settings)
			payload := strings.TrimSuffix(hijackEvent(t), "}") + `,"inject":"x\", \"type\": \"image"}`
			if err := s.Send(context.Background(), event(t, "app", "call", "failed", payload)); err != nil {
				t.Fatal(err)
			}
			r := <-got
			var msg struct {
				Text   string          `json:"text"`
				Blocks json.RawMessage `json:"blocks"`
			}
			if err := json.Unmarshal([]byte(r.body), &msg); err != nil {
				t.Fatalf("posted %s: %v", r.body, err)
			}
			var blocks []map[string]any
			if msg.Blocks != nil {
				if err := json.Unmarshal(msg.Blocks, &blocks); err != nil || len(blocks) != 1 {
					t.Fatalf("blocks %s: %v", msg.Blocks, err)
				}
				if _, ok := blocks[0]["type"].(string); !ok || len(blocks[0]) != 2 {
					t.Errorf("a value added to the block: %v", blocks[0])
				}
			}
			decodedBlocks := string(msg.Blocks)
			if msg.Blocks != nil {
				b, _ := json.Marshal(blocks)
				decodedBlocks = string(b)
			}
			for _, m := range markup {
				if strings.Contains(msg.Text, m) || strings.Contains(blockText(blocks), m) {
					t.Errorf("%q posted: text %q blocks %s", m, msg.Text, decodedBlocks)
				}
			}
			for _, w := range tt.wantText {
				if !strings.Contains(msg.Text, w) {
					t.Errorf("text %q lacks %q", msg.Text, w)
				}
			}
			for _, w := range tt.wantBlocks {
				if !strings.Contains(blockText(blocks), w) && !strings.Contains(string(msg.Blocks), w) {
					t.Errorf("blocks %s lack %q", msg.Blocks, w)
				}
			}
		})
	}
}

// blockText is every string in the blocks, as Slack reads them.
func blockText(blocks []map[string]any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			b.WriteString(x + "\n")
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, bl := range blocks {
		walk(bl)
	}
	return b.String()
}

// Markup the template author means is kept: the template's own text,
// `trusted` values and `link`s.
func TestTrustedValuesAndLinks(t *testing.T) {
	url, got := slackServer(t, nil)
	s := build(t, map[string]any{"webhook_url": url,
		"text": `{{ trusted .mention }} {{ link "https://crm.example/calls?id=1&x=2" "open in CRM" }} {{ link (printf "https://crm.example/c/%s" .id) .from }} {{ link "javascript:alert(1)" "no" }}`})
	payload := `{"id":"a|b>c","from":"` + strings.ReplaceAll(hijack, `"`, `\"`) + `","mention":"<!here>"}`
	if err := s.Send(context.Background(), event(t, "app", "call", "failed", payload)); err != nil {
		t.Fatal(err)
	}
	var msg struct{ Text string }
	json.Unmarshal([]byte((<-got).body), &msg)
	want := `<!here> <https://crm.example/calls?id=1&amp;x=2|open in CRM> <https://crm.example/c/a%7Cb%3Ec|` + hijackEscaped + `> no`
	if msg.Text != want {
		t.Errorf("text\n got %q\nwant %q", msg.Text, want)
	}
}
