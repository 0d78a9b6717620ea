package router_test

import (
	"fmt"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
)

// channelRules is the load harness's many-rules scenario: rule i is
// `status == "failed" && payload.payload.channel == "x<i>"`, to one sink.
func channelRules(n int) []config.Rule {
	rules := make([]config.Rule, n)
	for i := range rules {
		rules[i] = config.Rule{
			Name: fmt.Sprintf("r%d", i),
			When: fmt.Sprintf(`status == "failed" && payload.payload.channel == "x%d"`, i),
			To:   []string{testSinks[i%len(testSinks)]},
		}
	}
	return rules
}

// channelEvents are generic-source events spread over n channels, as the
// harness sends them: the body is the payload, the provider's fields sit
// under payload.payload. Every event is failed, so each matches one rule.
func channelEvents(n int) []*router.Event {
	evs := make([]*router.Event, 256)
	for i := range evs {
		ch := (i * 7919) % n
		p := fmt.Sprintf(`{"event":"whatsapp:message:status","payload":{"id":"a418d672","channel":"x%d","from":"919019120123",`+
			`"to":"919019912345","status":"failed","bench_id":"b%d","bench_ts":1763600000123456789}}`, ch, i)
		m, err := router.DecodeObject([]byte(p))
		if err != nil {
			panic(err)
		}
		evs[i] = &router.Event{ID: fmt.Sprint("b", i), Source: "events", Event: "whatsapp:message:status", Status: "failed",
			Time: time.Unix(1763600000, 0), ReceivedAt: time.Unix(1763600000, 0), Payload: m}
	}
	return evs
}

// BenchmarkRouteRules routes events against 1 to 10,000 rules of the
// harness's shape, every event matching exactly one. With the index,
// time and allocations per event stay flat in the number of rules.
func BenchmarkRouteRules(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		tb := compile(b, channelRules(n), "archive")
		evs := channelEvents(n)
		dst := make([]int, 0, len(testSinks))
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = tb.Route(evs[i%len(evs)], dst[:0], nil, nil)
				if len(dst) != 1 {
					b.Fatalf("routed to %v, want one sink", dst)
				}
				i++
			}
		})
	}
}
