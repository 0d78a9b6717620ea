package router_test

import (
	"testing"

	"switchboard/config"
	"switchboard/router"
)

func TestRulesMayNameAnEventByItsAlias(t *testing.T) {
	router.DeclareEvent("test:canonical", "GOOD", "BAD")
	router.DeclareAlias("TEST_ALIAS", "test:canonical")
	tab, ps := router.Compile([]config.Rule{{Name: "r", Events: []string{"TEST_ALIAS"},
		Filters: []config.Filter{{Key: "status", Value: "BAD"}}, To: []string{"s"}}}, nil, []string{"s"}, nil)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if got := tab.Route(&router.Event{ID: "1", Event: "test:canonical", Status: "BAD"}, nil, nil, nil); len(got) != 1 {
		t.Errorf("an event under its canonical name did not match a rule naming its alias")
	}
	_, ps = router.Compile([]config.Rule{{Name: "r", Events: []string{"TEST_ALIAS"},
		Filters: []config.Filter{{Key: "status", Value: "UGLY"}}, To: []string{"s"}}}, nil, []string{"s"}, nil)
	if len(ps) != 1 {
		t.Errorf("a status the aliased event cannot have was not caught: %v", ps)
	}
}
