package router

import (
	"context"
	"errors"
	"time"
)

// Queue holds deliveries between acceptance and delivery. It is the seam
// between ingestion and sinks: a source answers 2xx only after Enqueue
// returned nil, and per-sink workers pull from Next.
//
// The operations map onto a message broker's (publish, fetch, ack,
// nak-with-delay, terminate), so that a shared broker can implement it as
// well as the embedded store.
type Queue interface {
	// Enqueue stores one delivery per (event, sink) of the batch. When it
	// returns nil the deliveries are stored as durably as the implementation
	// promises. It fails with ErrQueueFull or ErrQueueClosed, never partially.
	Enqueue(ctx context.Context, batch []Routed) error
	// Next blocks until a delivery for sink is due and hands it to the
	// caller, who must end it with exactly one of Done, Retry or Dead.
	Next(ctx context.Context, sink string) (*Delivery, error)
	// Done removes a delivered delivery.
	Done(d *Delivery) error
	// Retry puts d back, due at d.NotBefore, with d.Attempts and
	// d.LastError recorded.
	Retry(d *Delivery) error
	// Dead moves d to the dead-letter queue with its last error.
	Dead(d *Delivery) error
	// Close releases the queue; pending deliveries stay stored where the
	// implementation is durable.
	Close() error
}

// Routed is an accepted event and the sinks its rules chose.
type Routed struct {
	Event *Event
	Sinks []string
}

// Delivery is one (event, sink) pair on its way.
type Delivery struct {
	ID        string
	Sink      string
	Event     *Event
	Attempts  int // attempts made so far
	FirstTry  time.Time
	LastTry   time.Time
	NotBefore time.Time
	LastError string
}

var (
	// ErrQueueFull means the queue's limits are reached; sources answer 503
	// so that the provider retries later.
	ErrQueueFull = errors.New("queue is full")
	// ErrQueueClosed means the queue is shutting down.
	ErrQueueClosed = errors.New("queue is closed")
)
