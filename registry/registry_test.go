package registry

import (
	"slices"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := New[func() int]("thing")
	r.Add("b", func() int { return 2 })
	r.Add("a", func() int { return 1 })
	if f, ok := r.Lookup("a"); !ok || f() != 1 {
		t.Errorf("Lookup(a) found %v", ok)
	}
	if _, ok := r.Lookup("c"); ok {
		t.Error("Lookup(c) found something")
	}
	if got := r.Types(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Types = %v", got)
	}
	for _, name := range []string{"a", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%q) did not panic", name)
				}
			}()
			r.Add(name, nil)
		}()
	}
}
