// Package history is the daemon's memory of recent events, for "where did
// my event go?": each event as accepted (or filtered, or recognised as a
// provider's retry), the rules it matched, the sinks chosen, and per sink
// every delivery attempt up to delivery or death.
//
// It is bounded twice: a ring of history.max_events entries, the oldest
// overwritten by the newest, and history.max_age, past which Sweep drops
// entries. Nothing is written to disk: a restart forgets.
//
// Cost on the accept path: one Entry allocated by the caller, one atomic
// add and swap into the ring, and a short critical section in one of 64
// shards of the index that delivery attempts use to find their entry. The
// entry keeps references to the accepted event's strings and payload
// bytes, which the event already shares with the delivery workers and so
// never change; nothing is copied but an oversized payload's head.
package history

import (
	"cmp"
	"encoding/json"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/router"
)

// MaxPayload is the most of an event's payload kept; past it the entry
// keeps the first MaxPayload bytes as text and says the payload was cut.
const MaxPayload = 4 << 10

// maxAttempts is the most attempts kept per sink of an event: the first,
// and the latest maxAttempts-1.
const maxAttempts = 32

// Outcomes of an event, as the webhook answers them.
const (
	Accepted  = "accepted"
	Filtered  = "filtered"
	Duplicate = "duplicate"
)

// States of a delivery to one sink.
const (
	Pending   = "pending"   // queued, not attempted yet
	InFlight  = "in_flight" // an attempt is under way
	Retrying  = "retrying"  // failed, another attempt is due at Next
	Delivered = "delivered"
	Dead      = "dead" // in the dead-letter queue
)

// Entry is one event and what became of it. The fields set by the
// accepting side do not change once the entry is added; deliveries are
// guarded by mu.
type Entry struct {
	ID         string
	Source     string
	Event      string
	Status     string
	Time       time.Time
	ReceivedAt time.Time
	Outcome    string
	// Rules matched, in order; Sinks chosen; HeldBack names the storm
	// controls ("rule x", "sink y") that held the event back from some.
	Rules    []string
	Sinks    []string
	HeldBack []string
	// Payload is the provider's object as received (RawPayload), or, when
	// the source kept none, PayloadMap; Cut is set when Payload is only
	// the first MaxPayload bytes of a larger one.
	Payload    []byte
	PayloadMap map[string]any
	Cut        int // the full payload's size when cut, else 0
	Headers    map[string]string

	seq        uint64
	mu         sync.Mutex
	deliveries []delivery
}

// NewEntry makes the entry of an accepted, filtered or duplicate event;
// rules, sinks and heldBack are kept as given.
func NewEntry(ev *router.Event, outcome string, rules, sinks, heldBack []string) *Entry {
	var e *Entry
	if outcome == Accepted && len(sinks) == 1 {
		// The common case in one allocation: the entry and its delivery.
		x := &struct {
			Entry
			d [1]delivery
		}{}
		x.d[0] = delivery{sink: sinks[0], state: Pending}
		e = &x.Entry
		e.deliveries = x.d[:1]
	} else {
		e = &Entry{}
	}
	*e = Entry{deliveries: e.deliveries, ID: ev.ID, Source: ev.Source, Event: ev.Event, Status: ev.Status, Time: ev.Time,
		ReceivedAt: ev.ReceivedAt, Outcome: outcome, Rules: rules, Sinks: sinks, HeldBack: heldBack,
		Payload: ev.RawPayload, Headers: ev.Headers}
	switch {
	case len(e.Payload) > MaxPayload:
		e.Cut = len(e.Payload)
		e.Payload = slices.Clone(e.Payload[:MaxPayload])
	case e.Payload == nil:
		e.PayloadMap = ev.Payload
	}
	return e
}

// delivery is what became of the event at one sink.
type delivery struct {
	sink       string
	deliveryID string
	state      string
	next       time.Time // of a retry
	attempts   []Attempt
	omitted    int // attempts not kept, between the first and the rest
}

// Attempt is one delivery attempt.
type Attempt struct {
	At   time.Time
	Took time.Duration
	// Status is the receiver's answer (HTTP status) where the sink knows
	// one, else 0.
	Status  int
	Outcome string // success, retry, dead
	Error   string
}

type key struct{ source, id string }

const shardCount = 64

type shard struct {
	mu sync.Mutex
	m  map[key]*Entry
	// early holds stand-ins for entries not added yet (see find).
	early map[key]*Entry
	_     [32]byte // one shard per cache line: adds on several cores
}

// A delivery can be attempted before its event's entry is added: the
// queue hands a new event's deliveries to the workers as it stores them,
// and the accept path adds the entry once the store returns. Attempts of
// an event received less than earlyWindow ago that find no entry are kept
// on a stand-in, which Add takes over; at most maxEarly stand-ins per
// shard, and Sweep drops those no entry came for (an event accepted just
// before a restart).
const (
	earlyWindow = 10 * time.Second
	maxEarly    = 64
)

// Store is the bounded history. A nil *Store keeps nothing: every method
// is a no-op, so that history can be off.
type Store struct {
	ring   []atomic.Pointer[Entry]
	next   atomic.Uint64 // seq of the next entry; seq 0 is never used
	maxAge atomic.Int64  // nanoseconds; 0: no age limit
	seed   maphash.Seed
	shards [shardCount]shard
}

// New returns a store of maxEvents entries, or nil (history off) when
// maxEvents is 0.
func New(maxEvents int, maxAge time.Duration) *Store {
	if maxEvents <= 0 {
		return nil
	}
	s := &Store{ring: make([]atomic.Pointer[Entry], maxEvents), seed: maphash.MakeSeed()}
	s.next.Store(1)
	s.maxAge.Store(int64(maxAge))
	for i := range s.shards {
		s.shards[i].m = make(map[key]*Entry, maxEvents/shardCount+1)
		s.shards[i].early = map[key]*Entry{}
	}
	return s
}

// SetMaxAge changes history.max_age (a reload).
func (s *Store) SetMaxAge(d time.Duration) {
	if s != nil {
		s.maxAge.Store(int64(d))
	}
}

// Cap is history.max_events, 0 when history is off.
func (s *Store) Cap() int {
	if s == nil {
		return 0
	}
	return len(s.ring)
}

func (s *Store) shard(k key) *shard {
	return &s.shards[maphash.String(s.seed, k.id)%shardCount]
}

// Add records e, pushing out the oldest entry when the ring is full.
// Only accepted entries are found by Attempt: a duplicate's deliveries
// are its original's.
func (s *Store) Add(e *Entry) {
	if s == nil {
		return
	}
	// Indexed before it enters the ring: once in the ring, another Add
	// may push it out and forget it at once.
	if e.Outcome == Accepted && len(e.Sinks) > 0 {
		if e.deliveries == nil {
			e.deliveries = make([]delivery, len(e.Sinks))
			for i, name := range e.Sinks {
				e.deliveries[i] = delivery{sink: name, state: Pending}
			}
		}
		k := key{e.Source, e.ID}
		sh := s.shard(k)
		sh.mu.Lock()
		if early := sh.early[k]; early != nil {
			delete(sh.early, k)
			e.takeOver(early)
		}
		sh.m[k] = e
		sh.mu.Unlock()
	}
	e.seq = s.next.Add(1) - 1
	if old := s.ring[e.seq%uint64(len(s.ring))].Swap(e); old != nil {
		s.forget(old)
	}
}

// forget removes e from the index, unless a newer entry took its key.
func (s *Store) forget(e *Entry) {
	if e.Outcome != Accepted || len(e.Sinks) == 0 {
		return
	}
	k := key{e.Source, e.ID}
	sh := s.shard(k)
	sh.mu.Lock()
	if sh.m[k] == e {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

// find returns the entry of (source, id), locked, or nil. When there is
// none and the event was received less than earlyWindow ago, it returns
// the event's stand-in, made if need be, for Add to take over.
func (s *Store) find(source, id string, received time.Time) *Entry {
	k := key{source, id}
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	if e == nil {
		e = sh.early[k]
	}
	if e == nil && time.Since(received) < earlyWindow && len(sh.early) < maxEarly {
		e = &Entry{Source: source, ID: id, ReceivedAt: received}
		sh.early[k] = e
	}
	// Locked before the shard is released, so that Add, which takes a
	// stand-in over under the shard's lock, waits for this update.
	if e != nil {
		e.mu.Lock()
	}
	return e
}

// Attempting marks the delivery of (source, id) to sink in flight;
// received is when the event was received.
func (s *Store) Attempting(source, id, sink string, received time.Time) {
	if s == nil {
		return
	}
	if e := s.find(source, id, received); e != nil {
		e.deliveryOrNew(sink).state = InFlight
		e.mu.Unlock()
	}
}

// Abandoned marks an attempt cut short by a stopping worker: the delivery
// is pending again and the attempt does not count.
func (s *Store) Abandoned(source, id, sink string, received time.Time) {
	if s == nil {
		return
	}
	if e := s.find(source, id, received); e != nil {
		if d := e.delivery(sink); d != nil && d.state == InFlight {
			d.state = Pending
		}
		e.mu.Unlock()
	}
}

// Attempted records an attempt's end; next is when a retry is due.
func (s *Store) Attempted(source, id, sink string, received time.Time, deliveryID string, a Attempt, next time.Time) {
	if s == nil {
		return
	}
	e := s.find(source, id, received)
	if e == nil {
		return // older than the history, or accepted before a restart
	}
	defer e.mu.Unlock()
	// A sink the event was not routed to: a replayed dead letter.
	d := e.deliveryOrNew(sink)
	d.deliveryID = deliveryID
	switch a.Outcome {
	case "success":
		d.state = Delivered
	case "dead":
		d.state = Dead
	default:
		d.state, d.next = Retrying, next
	}
	if len(d.attempts) == maxAttempts {
		// Keep the first attempt: it says how the trouble began.
		copy(d.attempts[1:], d.attempts[2:])
		d.attempts = d.attempts[:maxAttempts-1]
		d.omitted++
	}
	d.attempts = append(d.attempts, a)
}

func (e *Entry) delivery(sink string) *delivery {
	for i := range e.deliveries {
		if e.deliveries[i].sink == sink {
			return &e.deliveries[i]
		}
	}
	return nil
}

func (e *Entry) deliveryOrNew(sink string) *delivery {
	if d := e.delivery(sink); d != nil {
		return d
	}
	e.deliveries = append(e.deliveries, delivery{sink: sink, state: Pending})
	return &e.deliveries[len(e.deliveries)-1]
}

// takeOver moves what the stand-in early recorded into e, which is not
// published yet.
func (e *Entry) takeOver(early *Entry) {
	early.mu.Lock()
	defer early.mu.Unlock()
	for _, d := range early.deliveries {
		*e.deliveryOrNew(d.sink) = d
	}
}

// Sweep drops the entries older than history.max_age; the daemon calls
// it from time to time so that an idle daemon gives the memory back.
func (s *Store) Sweep(now time.Time) int {
	if s == nil {
		return 0
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, e := range sh.early {
			if now.Sub(e.ReceivedAt) > earlyWindow {
				delete(sh.early, k)
			}
		}
		sh.mu.Unlock()
	}
	if s.maxAge.Load() == 0 {
		return 0
	}
	cutoff := now.Add(-time.Duration(s.maxAge.Load()))
	n := 0
	for i := range s.ring {
		if e := s.ring[i].Load(); e != nil && e.ReceivedAt.Before(cutoff) && s.ring[i].CompareAndSwap(e, nil) {
			s.forget(e)
			n++
		}
	}
	return n
}

// Len is the number of entries held.
func (s *Store) Len() int {
	if s == nil {
		return 0
	}
	n := 0
	for i := range s.ring {
		if s.ring[i].Load() != nil {
			n++
		}
	}
	return n
}

// Query selects entries.
type Query struct {
	// ID selects the entries of one event id (of any source).
	ID string
	// Source, Since and Until select by source and time of receipt;
	// zero values select all.
	Source       string
	Since, Until time.Time
	// Limit is the most entries answered (default and cap 500); Before
	// continues a listing: entries older than that cursor.
	Limit  int
	Before uint64
}

// Page is a query's answer, newest first; Next is the cursor of the next
// page, 0 when there is none.
type Page struct {
	Items []View `json:"items"`
	Next  uint64 `json:"next_cursor,omitempty"`
}

// Find answers q at now. It scans the ring: a query costs time in
// proportion to history.max_events, and holds no lock the accept path
// waits for.
func (s *Store) Find(q Query, now time.Time) Page {
	page := Page{Items: []View{}}
	if s == nil {
		return page
	}
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	var cutoff time.Time
	if age := s.maxAge.Load(); age > 0 {
		cutoff = now.Add(-time.Duration(age))
	}
	var hits []*Entry
	for i := range s.ring {
		e := s.ring[i].Load()
		switch {
		case e == nil, q.Before != 0 && e.seq >= q.Before, !cutoff.IsZero() && e.ReceivedAt.Before(cutoff),
			q.ID != "" && e.ID != q.ID, q.Source != "" && e.Source != q.Source,
			!q.Since.IsZero() && e.ReceivedAt.Before(q.Since), !q.Until.IsZero() && e.ReceivedAt.After(q.Until):
			continue
		}
		hits = append(hits, e)
	}
	slices.SortFunc(hits, func(a, b *Entry) int { return -cmp.Compare(a.seq, b.seq) })
	if len(hits) > limit {
		page.Next = hits[limit-1].seq
		hits = hits[:limit]
	}
	for _, e := range hits {
		page.Items = append(page.Items, e.View())
	}
	return page
}

// View is an entry as the admin API answers it.
type View struct {
	Cursor     uint64            `json:"cursor"`
	ID         string            `json:"id"`
	Source     string            `json:"source"`
	EventName  string            `json:"event_name"`
	Status     string            `json:"status,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
	Outcome    string            `json:"outcome"`
	Rules      []string          `json:"rules"`
	Sinks      []string          `json:"sinks"`
	HeldBack   []string          `json:"held_back,omitempty"`
	Event      json.RawMessage   `json:"event"`
	CutAt      int               `json:"payload_cut_at,omitempty"`
	Size       int               `json:"payload_bytes,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Deliveries []DeliveryView    `json:"deliveries"`
}

// DeliveryView is what became of the event at one sink.
type DeliveryView struct {
	Sink       string        `json:"sink"`
	State      string        `json:"state"`
	DeliveryID string        `json:"delivery_id,omitempty"`
	Next       time.Time     `json:"next_attempt,omitzero"`
	Attempts   []AttemptView `json:"attempts"`
	// Omitted attempts were made between the first and the ones listed.
	Omitted int `json:"attempts_omitted,omitempty"`
}

// AttemptView is one attempt as the admin API answers it.
type AttemptView struct {
	At      time.Time `json:"at"`
	TookMS  float64   `json:"took_ms"`
	Status  int       `json:"status,omitempty"`
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
}

// View renders the entry: the normalized event as a sink would receive
// it (its payload cut to MaxPayload, as a JSON string, if larger).
func (e *Entry) View() View {
	v := View{Cursor: e.seq, ID: e.ID, Source: e.Source, EventName: e.Event, Status: e.Status,
		ReceivedAt: e.ReceivedAt, Outcome: e.Outcome, Rules: orEmpty(e.Rules), Sinks: orEmpty(e.Sinks),
		HeldBack: e.HeldBack, Headers: e.Headers, Deliveries: []DeliveryView{}}
	ev := &router.Event{ID: e.ID, Source: e.Source, Event: e.Event, Status: e.Status, Time: e.Time,
		ReceivedAt: e.ReceivedAt, RawPayload: e.Payload, Payload: e.PayloadMap}
	if e.Cut > 0 {
		// The head of a payload is not JSON: shown as text.
		ev.RawPayload, _ = json.Marshal(string(e.Payload))
		v.CutAt, v.Size = MaxPayload, e.Cut
	}
	v.Event, _ = ev.MarshalJSON()
	if v.Event == nil {
		v.Event = json.RawMessage(`null`)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.deliveries {
		dv := DeliveryView{Sink: d.sink, State: d.state, DeliveryID: d.deliveryID, Omitted: d.omitted,
			Attempts: make([]AttemptView, len(d.attempts))}
		if d.state == Retrying {
			dv.Next = d.next
		}
		for i, a := range d.attempts {
			dv.Attempts[i] = AttemptView{At: a.At, TookMS: float64(a.Took.Microseconds()) / 1000, Status: a.Status,
				Outcome: a.Outcome, Error: a.Error}
		}
		v.Deliveries = append(v.Deliveries, dv)
	}
	return v
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
