package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Render writes f back as YAML with every default filled in, in the
// file's own key names: the settings in force, as the console shows them.
// Secret settings print <secret>; values of a source's or sink's own
// settings print as given, so the caller passes the result through the
// redactor built from the snapshot's secrets (type-specific credentials
// are only known once each type has decoded its options).
func Render(f *File) ([]byte, error) {
	n, err := renderValue(reflect.ValueOf(*f))
	if err != nil {
		return nil, err
	}
	if f.Queue.Driver != DriverNATS {
		dropKey(n, "queue", "nats") // settings of a driver not in use
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	return []byte(b.String()), enc.Close()
}

func renderValue(v reflect.Value) (*yaml.Node, error) {
	switch {
	case v.Type() == secretType:
		if v.Len() == 0 {
			return scalar("", "!!str"), nil
		}
		return scalar(redacted, "!!str"), nil
	case v.Type() == durationType:
		return scalar(time.Duration(v.Int()).String(), "!!str"), nil
	case v.Type() == sizeType:
		return scalar(Size(v.Int()).String(), "!!str"), nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return scalar("null", "!!null"), nil
		}
		return renderValue(v.Elem())
	case reflect.Struct:
		return renderStruct(v)
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			val, err := renderValue(v.MapIndex(k))
			if err != nil {
				return nil, err
			}
			m.Content = append(m.Content, scalar(fmt.Sprint(k), "!!str"), val)
		}
		return m, nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}, nil
		}
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			val, err := renderValue(v.Index(i))
			if err != nil {
				return nil, err
			}
			s.Content = append(s.Content, val)
		}
		return s, nil
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return &n, nil
}

// renderStruct writes a settings struct by its koanf keys; a ",remain"
// map (a type's own settings) is merged into it, in key order after the
// common settings.
func renderStruct(v reflect.Value) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		if tag == ",remain" {
			rest, err := renderValue(v.Field(i))
			if err != nil {
				return nil, err
			}
			if rest.Kind == yaml.MappingNode {
				m.Content = append(m.Content, rest.Content...)
			}
			continue
		}
		if unset(v.Field(i)) {
			continue
		}
		val, err := renderValue(v.Field(i))
		if err != nil {
			return nil, err
		}
		m.Content = append(m.Content, scalar(tag, "!!str"), val)
	}
	return m, nil
}

func scalar(s, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: tag}
}

// unset reports a setting left out of the file that has no default to
// show: a nil list, map or optional section.
func unset(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// dropKey removes path from a mapping node.
func dropKey(n *yaml.Node, path ...string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
		dropKey(n.Content[i+1], path[1:]...)
		return
	}
}
