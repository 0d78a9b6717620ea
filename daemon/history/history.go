// Package history is the daemon's memory of recent events, for "where did
// my event go?": each event as accepted (or filtered, or recognised as a
// provider's retry), the rules it matched, the sinks chosen, and per sink
// every delivery attempt up to delivery or death.
//
// It is bounded twice: a ring of history.max_events entries, the oldest
// overwritten by the newest, and history.max_age, past which Sweep drops
// entries. Nothing is written to disk: a restart forgets.
//
// Cost on the accept path: an Entry and its record (the event's fields,
// payload head and headers, copied into one byte slice) allocated by the
// caller, one atomic add and swap into the ring, and a short critical
// section in one of 64 shards of the index that delivery attempts use to
// find their entry. An entry keeps nothing of the event alive.
package history

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"math"
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

// Entry is one event and what became of it. What the accepting side
// knows is encoded once into rec, a byte slice the garbage collector never
// scans, and does not change; deliveries are guarded by mu.
//
// Why encoded: a full history is tens of thousands of live entries, and
// an entry holding the event's strings, header map and body would keep a
// dozen objects alive each, all of which every collection cycle marks. At
// full load that marking, not the history's own work, was most of its
// cost to the accept path's tail latency.
type Entry struct {
	rec []byte
	// payloadMap is the payload when the source kept no raw bytes.
	payloadMap map[string]any
	received   int64 // unix nanoseconds, what queries and sweeps compare
	outcome    string
	routed     bool // accepted and sent to at least one sink: indexed

	seq        uint64
	mu         sync.Mutex
	deliveries []delivery
}

// NewEntry makes the entry of an accepted, filtered or duplicate event.
// Nothing of ev, rules or heldBack is kept but a copy; the sink names are
// kept as given (the configuration's own strings).
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
	e.received, e.outcome, e.routed = nanos(ev.ReceivedAt), outcome, outcome == Accepted && len(sinks) > 0
	payload, cut := ev.RawPayload, 0
	if len(payload) > MaxPayload {
		payload, cut = payload[:MaxPayload], len(payload)
	}
	if ev.RawPayload == nil {
		e.payloadMap = ev.Payload
	}
	n := 64 + len(ev.ID) + len(ev.Source) + len(ev.Event) + len(ev.Status) + len(payload)
	for _, l := range [][]string{rules, sinks, heldBack} {
		for _, s := range l {
			n += 2 + len(s)
		}
	}
	for k, v := range ev.Headers {
		n += 4 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = appendString(b, ev.ID)
	b = appendString(b, ev.Source)
	b = appendString(b, ev.Event)
	b = appendString(b, ev.Status)
	b = appendTime(b, ev.Time)
	b = appendTime(b, ev.ReceivedAt)
	b = appendList(b, rules)
	b = appendList(b, sinks)
	b = appendList(b, heldBack)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	b = append(b, payload...)
	b = binary.AppendUvarint(b, uint64(cut))
	b = binary.AppendUvarint(b, uint64(len(ev.Headers)))
	for k, v := range ev.Headers {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	e.rec = b
	if e.routed && e.deliveries == nil {
		e.deliveries = make([]delivery, len(sinks))
		for i, name := range sinks {
			e.deliveries[i] = delivery{sink: name, state: Pending}
		}
	}
	return e
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

// appendTime keeps the instant (the event's JSON shows times in UTC).
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// fields reads a record back; it was written by NewEntry, so it is never
// short, and a reader past its end only yields zero values.
type fields []byte

func (f *fields) uvarint() uint64 {
	v, n := binary.Uvarint(*f)
	*f = (*f)[max(n, 0):]
	return v
}

func (f *fields) varint() int64 {
	v, n := binary.Varint(*f)
	*f = (*f)[max(n, 0):]
	return v
}

func (f *fields) bytes() []byte {
	n := min(f.uvarint(), uint64(len(*f)))
	b := (*f)[:n:n]
	*f = (*f)[n:]
	return b
}

func (f *fields) string() string { return string(f.bytes()) }

func (f *fields) list() []string {
	n := min(f.uvarint(), uint64(len(*f)))
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = f.string()
	}
	return l
}

func (f *fields) time() time.Time {
	sec := f.varint()
	return time.Unix(sec, int64(f.uvarint())).UTC()
}

// nanos is t in unix nanoseconds, clamped to what an int64 holds.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var minNanos, maxNanos = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// head is the entry's id and source, without a copy.
func (e *Entry) head() (id, source []byte) {
	f := fields(e.rec)
	return f.bytes(), f.bytes()
}

// is reports whether the entry is (source, id)'s.
func (e *Entry) is(source, id string) bool {
	i, s := e.head()
	return string(i) == id && string(s) == source
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

const shardCount = 64

// The index maps a hash of (source, id) to the entry, so that its keys
// hold no strings (which would keep the event's body alive, and be marked
// by every collection); a lookup checks the entry is the one asked for.
type shard struct {
	mu sync.Mutex
	m  map[uint64]*Entry
	// early holds stand-ins for entries not added yet (see find).
	early map[uint64]*Entry
	_     [40]byte // one shard per cache line: adds on several cores
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
		s.shards[i].m = make(map[uint64]*Entry, maxEvents/shardCount+1)
		s.shards[i].early = map[uint64]*Entry{}
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

// key hashes (source, id).
func (s *Store) key(source, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(source)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

func (s *Store) shard(k uint64) *shard {
	return &s.shards[k%shardCount]
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
	if e.routed {
		id, source := e.head()
		k := s.key(string(source), string(id))
		sh := s.shard(k)
		sh.mu.Lock()
		if early := sh.early[k]; early != nil && early.is(string(source), string(id)) {
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
	if !e.routed {
		return
	}
	id, source := e.head()
	k := s.key(string(source), string(id))
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
	k := s.key(source, id)
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	if e == nil {
		e = sh.early[k]
	}
	if e != nil && !e.is(source, id) {
		return nil // another event's, by a one in 2^64 chance
	}
	if e == nil && time.Since(received) < earlyWindow && len(sh.early) < maxEarly {
		e = &Entry{rec: appendString(appendString(nil, id), source), received: nanos(received)}
		sh.early[k] = e
	}
	// Locked before the shard is released, so that Add, which takes a
	// stand-in over under the shard's lock, waits for this update.
	if e != nil {
		e.mu.Lock()
	}
	return e
}

// entry returns ev's entry, locked, or nil: the one the daemon attached
// to the event (Memo), else the indexed one (see find).
func (s *Store) entry(ev *router.Event) *Entry {
	if e, ok := ev.Memo.(*Entry); ok {
		e.mu.Lock()
		return e
	}
	return s.find(ev.Source, ev.ID, ev.ReceivedAt)
}

// Attempting marks the delivery of ev to sink in flight.
func (s *Store) Attempting(ev *router.Event, sink string) {
	if s == nil {
		return
	}
	if e := s.entry(ev); e != nil {
		e.deliveryOrNew(sink).state = InFlight
		e.mu.Unlock()
	}
}

// Abandoned marks an attempt cut short by a stopping worker: the delivery
// is pending again and the attempt does not count.
func (s *Store) Abandoned(ev *router.Event, sink string) {
	if s == nil {
		return
	}
	if e := s.entry(ev); e != nil {
		if d := e.delivery(sink); d != nil && d.state == InFlight {
			d.state = Pending
		}
		e.mu.Unlock()
	}
}

// Attempted records an attempt's end; next is when a retry is due.
func (s *Store) Attempted(ev *router.Event, sink, deliveryID string, a Attempt, next time.Time) {
	if s == nil {
		return
	}
	e := s.entry(ev)
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
// in the ring yet but may already be updated through its event's Memo.
func (e *Entry) takeOver(early *Entry) {
	early.mu.Lock()
	defer early.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
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
			if nanos(now)-e.received > int64(earlyWindow) {
				delete(sh.early, k)
			}
		}
		sh.mu.Unlock()
	}
	if s.maxAge.Load() == 0 {
		return 0
	}
	cutoff := nanos(now) - s.maxAge.Load()
	n := 0
	for i := range s.ring {
		if e := s.ring[i].Load(); e != nil && e.received < cutoff && s.ring[i].CompareAndSwap(e, nil) {
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
	cutoff := int64(math.MinInt64)
	if age := s.maxAge.Load(); age > 0 {
		cutoff = nanos(now) - age
	}
	since, until := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Since.IsZero() {
		since = nanos(q.Since)
	}
	if !q.Until.IsZero() {
		until = nanos(q.Until)
	}
	var hits []*Entry
	for i := range s.ring {
		e := s.ring[i].Load()
		if e == nil || q.Before != 0 && e.seq >= q.Before || e.received < cutoff || e.received < since || e.received > until {
			continue
		}
		if id, source := e.head(); q.ID != "" && string(id) != q.ID || q.Source != "" && string(source) != q.Source {
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
	f := fields(e.rec)
	ev := &router.Event{ID: f.string(), Source: f.string(), Event: f.string(), Status: f.string(), Time: f.time(),
		ReceivedAt: f.time(), Payload: e.payloadMap}
	v := View{Cursor: e.seq, ID: ev.ID, Source: ev.Source, EventName: ev.Event, Status: ev.Status,
		ReceivedAt: ev.ReceivedAt, Outcome: e.outcome, Rules: orEmpty(f.list()), Sinks: orEmpty(f.list()),
		HeldBack: f.list(), Deliveries: []DeliveryView{}}
	if payload := f.bytes(); len(payload) > 0 {
		ev.RawPayload = payload
	}
	if cut := int(f.uvarint()); cut > 0 {
		// The head of a payload is not JSON: shown as text.
		ev.RawPayload, _ = json.Marshal(string(ev.RawPayload))
		v.CutAt, v.Size = MaxPayload, cut
	}
	if n := f.uvarint(); n > 0 {
		v.Headers = make(map[string]string, min(n, uint64(len(f))))
		for range n {
			k := f.string()
			v.Headers[k] = f.string()
		}
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
