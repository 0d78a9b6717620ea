package http

import (
	"encoding/json"
	"fmt"
	"slices"

	"switchboard/config"
	"switchboard/router"
)

// jsonBody is a `body: json` request body compiled at load: the `json`
// setting's structure, with every string a template rendered per event
// and then encoded by the sink as a JSON string. Event content therefore
// lands only inside strings: a `to` of `", "admin": true, "x": "` is sent
// as that text, not as fields. Other YAML values (numbers, booleans,
// null) are sent as they are.
type jsonBody struct {
	keys     []string    // object: member names, sorted
	items    []*jsonBody // object members (in keys' order) or array items
	isObject bool
	isArray  bool
	tmpl     *router.Template // string
	path     string           // of a string, for errors
	literal  []byte           // any other value, encoded once
}

// compileJSONBody checks and compiles the `json` setting.
func compileJSONBody(sink string, v any, path string, ps *config.Problems) *jsonBody {
	switch x := v.(type) {
	case map[string]any:
		n := &jsonBody{isObject: true}
		for k := range x {
			n.keys = append(n.keys, k)
		}
		slices.Sort(n.keys)
		for _, k := range n.keys {
			n.items = append(n.items, compileJSONBody(sink, x[k], config.Join(path, k), ps))
		}
		return n
	case []any:
		n := &jsonBody{isArray: true}
		for i, e := range x {
			n.items = append(n.items, compileJSONBody(sink, e, fmt.Sprintf("%s[%d]", path, i), ps))
		}
		return n
	case string:
		t, err := router.ParseTemplate(sink+"."+path, x)
		if err != nil {
			ps.Add(path, "does not parse: %v", err)
			return &jsonBody{literal: []byte(`""`)}
		}
		return &jsonBody{tmpl: t, path: path}
	}
	b, err := json.Marshal(v)
	if err != nil {
		ps.Add(path, "cannot be written as JSON: %v", err)
		b = []byte("null")
	}
	return &jsonBody{literal: b}
}

// render appends the body for e to b.
func (n *jsonBody) render(b []byte, e *router.Event) ([]byte, error) {
	switch {
	case n.tmpl != nil:
		out, err := n.tmpl.Execute(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.path, err)
		}
		return router.AppendJSONString(b, string(out)), nil
	case n.isObject:
		b = append(b, '{')
		for i, k := range n.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = router.AppendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = n.items[i].render(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case n.isArray:
		b = append(b, '[')
		for i, item := range n.items {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = item.render(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	return append(b, n.literal...), nil
}
