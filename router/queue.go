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
	// Remember is how long the queue remembers the event's (source, id),
	// so that a provider's retry, or a captured request replayed while its
	// signature is still valid, is not routed again; 0 means the queue's
	// own dedup window. Events routed nowhere are remembered too.
	Remember time.Duration
	// Duplicate is set by Enqueue when the queue already accepted an event
	// with the same source and id within its horizon: a provider's retry.
	// Nothing is queued for it.
	Duplicate bool
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
	// Status is the receiver's answer to the last attempt (an HTTP
	// status) where the sink reports one (StatusSink), else 0. It is
	// not stored: it is for whoever observes the attempt.
	Status int
}

// DeadLetter is a delivery that failed for good, kept with everything
// needed to understand and replay it.
type DeadLetter struct {
	ID        string    `json:"id"`
	Sink      string    `json:"sink"`
	EventID   string    `json:"event_id"`
	Source    string    `json:"source"`
	EventName string    `json:"event_name"`
	Attempts  int       `json:"attempts"`
	FirstTry  time.Time `json:"first_attempt,omitzero"`
	LastTry   time.Time `json:"last_attempt,omitzero"`
	DeadAt    time.Time `json:"dead_at"`
	LastError string    `json:"last_error"`
	Event     *Event    `json:"event,omitempty"`
	// Raw is the stored record, when it cannot be read as an event: kept
	// so that nothing accepted is lost, and replayable by a build that
	// reads it. LastError then says why it could not be read.
	Raw []byte `json:"raw,omitempty"`
}

// DeadQuery selects a page of dead letters, newest first.
type DeadQuery struct {
	Sink   string // only this sink's; "" for every sink
	Text   string // only those whose last error contains it, ignoring case
	Limit  int    // at most this many; 0 means DefaultDeadPage
	Cursor string // the previous page's NextCursor; "" starts at the newest
}

// DeadPage is one page of dead letters, without their events.
type DeadPage struct {
	Items []DeadLetter
	// NextCursor continues after the last item; "" when there is no more.
	NextCursor string
}

// DefaultDeadPage is a page's size when the query gives none.
const DefaultDeadPage = 100

// DeadLetters is implemented by queues that keep dead letters.
type DeadLetters interface {
	// ListDead returns a page of dead letters, newest first, without
	// events. An unknown or stale cursor is an error wrapping
	// ErrBadCursor.
	ListDead(q DeadQuery) (DeadPage, error)
	// GetDead returns one dead letter with its event.
	GetDead(id string) (*DeadLetter, error)
	// Replay puts dead letters back in their sinks' queues with a fresh
	// attempt count; nil ids means all. It returns how many it replayed.
	Replay(ids []string) (int, error)
	// Purge deletes dead letters; nil ids means all.
	Purge(ids []string) (int, error)
}

// ErrNotFound is returned for an unknown dead letter id.
var ErrNotFound = errors.New("no such dead letter")

// ErrBadCursor is returned for a dead-letter cursor the queue did not make.
var ErrBadCursor = errors.New("not a dead-letter cursor of this queue")

var (
	// ErrQueueFull means the queue's limits are reached; sources answer 503
	// so that the provider retries later.
	ErrQueueFull = errors.New("queue is full")
	// ErrQueueClosed means the queue is shutting down.
	ErrQueueClosed = errors.New("queue is closed")
)
