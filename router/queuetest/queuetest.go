// Package queuetest holds the events and helpers the tests of every
// router.Queue implementation share, so that the embedded and the NATS
// drivers are tried on the same events.
package queuetest

import (
	"context"
	"testing"
	"time"

	"switchboard/router"
)

// Epoch is the time of every Event, with nanoseconds that a store
// rounding them would lose.
var Epoch = time.Date(2026, 11, 23, 7, 0, 0, 123456789, time.UTC)

// Event builds an event as a source would: RawPayload is the payload as
// sent (with a number past float64's exact range), Body the whole request
// body.
func Event(source, id string) *router.Event {
	raw := []byte(`{"id":"` + id + `","status":"failed","n":12345678901234567890,"to":"+31612345678"}`)
	p, err := router.DecodeObject(raw)
	if err != nil {
		panic(err)
	}
	return &router.Event{ID: id, Source: source, Event: "voice.outbound", Status: "failed",
		Time: Epoch, ReceivedAt: Epoch.Add(2 * time.Millisecond), Payload: p, RawPayload: raw,
		Headers: map[string]string{"content-type": "application/json", "x-trace": id}, Body: raw}
}

// Routed makes a batch of events, each routed to sinks.
func Routed(sinks []string, events ...*router.Event) []router.Routed {
	out := make([]router.Routed, len(events))
	for i, e := range events {
		out[i] = router.Routed{Event: e, Sinks: sinks}
	}
	return out
}

// Enqueue stores the events, each routed to sinks, failing the test if q
// refuses them, and returns the batch.
func Enqueue(t testing.TB, q router.Queue, sinks []string, events ...*router.Event) []router.Routed {
	t.Helper()
	b := Routed(sinks, events...)
	if err := q.Enqueue(context.Background(), b); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return b
}

// Next takes the next due delivery of sink, failing the test if none comes
// within the bound.
func Next(t testing.TB, q router.Queue, sink string, within time.Duration) *router.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	d, err := q.Next(ctx, sink)
	if err != nil {
		t.Fatalf("Next(%s): %v", sink, err)
	}
	return d
}
