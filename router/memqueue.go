package router

import (
	"container/heap"
	"context"
	"strconv"
	"sync"
	"time"
)

// MemQueue is a Queue in memory: fast and simple, and lost on exit. It
// serves tests and dry runs; the daemon's default is the durable queue.
type MemQueue struct {
	mu     sync.Mutex
	sinks  map[string]*memSink
	dead   []*Delivery
	nextID uint64
	closed bool
	done   chan struct{}
}

type memSink struct {
	ready    []*Delivery
	delayed  delayHeap
	inFlight int
	wake     chan struct{}
}

// NewMemQueue returns an empty in-memory queue.
func NewMemQueue() *MemQueue {
	return &MemQueue{sinks: map[string]*memSink{}, done: make(chan struct{})}
}

func (q *MemQueue) sink(name string) *memSink {
	s := q.sinks[name]
	if s == nil {
		s = &memSink{wake: make(chan struct{}, 1)}
		q.sinks[name] = s
	}
	return s
}

func (s *memSink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Enqueue implements Queue.
func (q *MemQueue) Enqueue(_ context.Context, batch []Routed) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrQueueClosed
	}
	for _, r := range batch {
		for _, name := range r.Sinks {
			q.nextID++
			s := q.sink(name)
			s.ready = append(s.ready, &Delivery{ID: strconv.FormatUint(q.nextID, 10), Sink: name, Event: r.Event})
			s.signal()
		}
	}
	return nil
}

// Next implements Queue.
func (q *MemQueue) Next(ctx context.Context, sink string) (*Delivery, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, ErrQueueClosed
		}
		s := q.sink(sink)
		now := time.Now()
		for len(s.delayed) > 0 && !s.delayed[0].NotBefore.After(now) {
			s.ready = append(s.ready, heap.Pop(&s.delayed).(*Delivery))
		}
		if len(s.ready) > 0 {
			d := s.ready[0]
			s.ready[0] = nil
			s.ready = s.ready[1:]
			s.inFlight++
			if len(s.ready) > 0 {
				s.signal() // another worker may take the next one
			}
			q.mu.Unlock()
			return d, nil
		}
		var timer *time.Timer
		var due <-chan time.Time
		if len(s.delayed) > 0 {
			timer = time.NewTimer(time.Until(s.delayed[0].NotBefore))
			due = timer.C
		}
		wake := s.wake
		q.mu.Unlock()
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-q.done:
			err = ErrQueueClosed
		case <-wake:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return nil, err
		}
	}
}

func (q *MemQueue) finish(d *Delivery) *memSink {
	s := q.sink(d.Sink)
	s.inFlight--
	return s
}

// Done implements Queue.
func (q *MemQueue) Done(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finish(d)
	return nil
}

// Retry implements Queue.
func (q *MemQueue) Retry(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.finish(d)
	heap.Push(&s.delayed, d)
	s.signal()
	return nil
}

// Dead implements Queue.
func (q *MemQueue) Dead(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finish(d)
	q.dead = append(q.dead, d)
	return nil
}

// DeadLetters returns a copy of the dead-letter list.
func (q *MemQueue) DeadLetters() []*Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*Delivery(nil), q.dead...)
}

// Depth returns, per sink, the deliveries waiting or in flight.
func (q *MemQueue) Depth() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]int, len(q.sinks))
	for name, s := range q.sinks {
		out[name] = len(s.ready) + len(s.delayed) + s.inFlight
	}
	return out
}

// Idle reports whether no delivery is due or in flight (delayed retries may
// remain).
func (q *MemQueue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.sinks {
		if len(s.ready) > 0 || s.inFlight > 0 {
			return false
		}
	}
	return true
}

// Close implements Queue.
func (q *MemQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
	return nil
}

type delayHeap []*Delivery

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].NotBefore.Before(h[j].NotBefore) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*Delivery)) }
func (h *delayHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return d
}

var _ Queue = (*MemQueue)(nil)
