package history

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/router"
)

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func event(source, id string, at time.Time, payload string) *router.Event {
	return &router.Event{ID: id, Source: source, Event: "voice.outbound", Status: "failed", Time: at, ReceivedAt: at,
		RawPayload: []byte(payload)}
}

// at is an event of (source, id) received then, as a delivery carries it
// back from the queue: without the entry the daemon attaches.
func at(source, id string, received time.Time) *router.Event {
	return &router.Event{Source: source, ID: id, ReceivedAt: received}
}

func accepted(source, id string, at time.Time, sinks ...string) *Entry {
	return NewEntry(event(source, id, at, `{"to":"+31612345678"}`), Accepted, []string{"failed-calls"}, sinks, nil)
}

func ids(p Page) []string {
	var out []string
	for _, v := range p.Items {
		out = append(out, v.Source+"/"+v.ID)
	}
	return out
}

func TestFindByIDAndBySourceAndTime(t *testing.T) {
	s := New(10, time.Hour)
	s.Add(accepted("bird", "a", t0, "crm"))
	s.Add(accepted("mob", "a", t0.Add(time.Second), "crm"))
	s.Add(accepted("bird", "b", t0.Add(2*time.Second)))
	s.Add(NewEntry(event("bird", "a", t0.Add(3*time.Second), `{}`), Duplicate, nil, nil, nil))
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		name string
		q    Query
		want string
	}{
		{"an id of two sources, and its duplicate, newest first", Query{ID: "a"}, "bird/a mob/a bird/a"},
		{"by source", Query{Source: "bird"}, "bird/a bird/b bird/a"},
		{"since", Query{Since: t0.Add(time.Second)}, "bird/a bird/b mob/a"},
		{"until", Query{Until: t0.Add(time.Second)}, "mob/a bird/a"},
		{"nothing", Query{ID: "zzz"}, ""},
		{"limit leaves a cursor", Query{Limit: 2}, "bird/a bird/b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(ids(s.Find(tc.q, now)), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	p := s.Find(Query{Limit: 2}, now)
	rest := s.Find(Query{Limit: 2, Before: p.Next}, now)
	if got := strings.Join(ids(rest), " "); got != "mob/a bird/a" || rest.Next != 0 {
		t.Errorf("second page %q (next %d), want \"mob/a bird/a\" and no next", got, rest.Next)
	}
}

func TestTheOldestIsPushedOutAndForgotten(t *testing.T) {
	s := New(3, 0)
	for i := range 5 {
		s.Add(accepted("bird", fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), "crm"))
	}
	if got := strings.Join(ids(s.Find(Query{}, t0)), " "); got != "bird/4 bird/3 bird/2" {
		t.Errorf("kept %q, want the newest three", got)
	}
	// An attempt for a pushed-out event finds nothing and changes nothing.
	s.Attempted(at("bird", "0", time.Time{}), "crm", "d0", Attempt{At: t0, Outcome: "success"}, time.Time{})
	for i := range s.shards {
		for _, e := range s.shards[i].m {
			if e.is("bird", "0") || e.is("bird", "1") {
				t.Errorf("index still holds pushed-out event %s", e.rec)
			}
		}
	}
	if n := s.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

func TestAttemptsUpToDeliveryOrDeath(t *testing.T) {
	s := New(10, 0)
	s.Add(accepted("bird", "e1", t0, "crm", "oncall"))
	s.Attempting(at("bird", "e1", time.Time{}), "crm")
	if st := s.Find(Query{ID: "e1"}, t0).Items[0].Deliveries[0].State; st != InFlight {
		t.Errorf("state while attempting = %s, want in_flight", st)
	}
	next := t0.Add(2 * time.Second)
	s.Attempted(at("bird", "e1", time.Time{}), "crm", "d1", Attempt{At: t0, Took: 1500 * time.Microsecond, Status: 503, Outcome: "retry", Error: "503 Service Unavailable"}, next)
	s.Attempted(at("bird", "e1", time.Time{}), "crm", "d1", Attempt{At: next, Status: 200, Outcome: "success"}, time.Time{})
	s.Attempted(at("bird", "e1", time.Time{}), "oncall", "d2", Attempt{At: t0, Status: 404, Outcome: "dead", Error: "permanent failure: 404"}, time.Time{})
	v := s.Find(Query{ID: "e1"}, t0).Items[0]
	crm, oncall := v.Deliveries[0], v.Deliveries[1]
	if crm.State != Delivered || len(crm.Attempts) != 2 || crm.Attempts[0].Status != 503 || crm.Attempts[0].TookMS != 1.5 || crm.Attempts[1].Status != 200 {
		t.Errorf("crm = %+v, want delivered after 503 then 200", crm)
	}
	if oncall.State != Dead || oncall.DeliveryID != "d2" || oncall.Attempts[0].Error == "" {
		t.Errorf("oncall = %+v, want dead with its error and dead letter id", oncall)
	}
}

func TestRetryShowsNextAttemptAndAbandonIsPending(t *testing.T) {
	s := New(10, 0)
	s.Add(accepted("bird", "e1", t0, "crm"))
	s.Attempted(at("bird", "e1", time.Time{}), "crm", "d1", Attempt{At: t0, Outcome: "retry", Error: "timeout"}, t0.Add(time.Minute))
	d := s.Find(Query{ID: "e1"}, t0).Items[0].Deliveries[0]
	if d.State != Retrying || !d.Next.Equal(t0.Add(time.Minute)) {
		t.Errorf("after a retry: %+v", d)
	}
	s.Attempting(at("bird", "e1", time.Time{}), "crm")
	s.Abandoned(at("bird", "e1", time.Time{}), "crm")
	if d := s.Find(Query{ID: "e1"}, t0).Items[0].Deliveries[0]; d.State != Pending || len(d.Attempts) != 1 {
		t.Errorf("after an abandoned attempt: %+v, want pending with the one attempt", d)
	}
}

func TestAttemptsAreCappedKeepingTheFirst(t *testing.T) {
	s := New(10, 0)
	s.Add(accepted("bird", "e1", t0, "crm"))
	for i := range 100 {
		s.Attempted(at("bird", "e1", time.Time{}), "crm", "d1", Attempt{At: t0.Add(time.Duration(i) * time.Second), Outcome: "retry", Error: fmt.Sprint(i)}, t0)
	}
	d := s.Find(Query{ID: "e1"}, t0).Items[0].Deliveries[0]
	if len(d.Attempts) != maxAttempts || d.Attempts[0].Error != "0" || d.Attempts[1].Error != "69" ||
		d.Attempts[maxAttempts-1].Error != "99" || d.Omitted != 100-maxAttempts {
		t.Errorf("kept %d attempts (first %q, second %q, last %q), omitted %d", len(d.Attempts), d.Attempts[0].Error,
			d.Attempts[1].Error, d.Attempts[maxAttempts-1].Error, d.Omitted)
	}
}

func TestReplayedToAnotherSinkIsAdded(t *testing.T) {
	s := New(10, 0)
	s.Add(accepted("bird", "e1", t0, "crm"))
	s.Attempted(at("bird", "e1", time.Time{}), "archive", "d9", Attempt{At: t0, Outcome: "success"}, time.Time{})
	v := s.Find(Query{ID: "e1"}, t0).Items[0]
	if len(v.Deliveries) != 2 || v.Deliveries[1].Sink != "archive" || v.Deliveries[1].State != Delivered {
		t.Errorf("deliveries = %+v", v.Deliveries)
	}
}

func TestMaxAgeHidesAndSweepDrops(t *testing.T) {
	s := New(10, time.Minute)
	s.Add(accepted("bird", "old", t0, "crm"))
	s.Add(accepted("bird", "new", t0.Add(2*time.Minute), "crm"))
	now := t0.Add(2*time.Minute + time.Second)
	if got := strings.Join(ids(s.Find(Query{}, now)), " "); got != "bird/new" {
		t.Errorf("found %q, want only the event within max_age", got)
	}
	if n := s.Sweep(now); n != 1 || s.Len() != 1 || s.lookup("bird", "old") != nil {
		t.Errorf("Sweep dropped %d, %d left, old indexed: %v", n, s.Len(), s.lookup("bird", "old") != nil)
	}
	s.SetMaxAge(0)
	if n := s.Sweep(now.Add(time.Hour)); n != 0 {
		t.Errorf("Sweep without max_age dropped %d", n)
	}
}

func TestPayloadIsCutPastMaxPayload(t *testing.T) {
	s := New(10, 0)
	big := `{"blob":"` + strings.Repeat("x", 2*MaxPayload) + `"}`
	s.Add(NewEntry(event("bird", "big", t0, big), Accepted, nil, nil, nil))
	s.Add(NewEntry(event("bird", "small", t0, `{"a": 1,`+"\n"+` "b": [1, 2]}`), Accepted, nil, nil, nil))
	for _, v := range s.Find(Query{}, t0).Items {
		var ev struct{ Payload any }
		if err := json.Unmarshal(v.Event, &ev); err != nil {
			t.Fatalf("%s: event is not JSON: %v\n%s", v.ID, err, v.Event)
		}
		switch v.ID {
		case "big":
			p, _ := ev.Payload.(string)
			if len(p) != MaxPayload || v.CutAt != MaxPayload || v.Size != len(big) {
				t.Errorf("cut payload: %d bytes, cut_at %d, size %d", len(p), v.CutAt, v.Size)
			}
		case "small":
			if v.CutAt != 0 || !strings.Contains(string(v.Event), `"payload":{"a":1,"b":[1,2]}`) {
				t.Errorf("small payload shown as %s", v.Event)
			}
		}
	}
}

func TestPayloadMapWhenNoRawPayload(t *testing.T) {
	s := New(10, 0)
	ev := &router.Event{ID: "m", Source: "s", Event: "x", ReceivedAt: t0, Payload: map[string]any{"n": 1}}
	s.Add(NewEntry(ev, Accepted, nil, nil, nil))
	if got := string(s.Find(Query{}, t0).Items[0].Event); !strings.Contains(got, `"payload":{"n":1}`) {
		t.Errorf("event = %s", got)
	}
}

// An entry shows the event as accepted: its fields, its times to the
// nanosecond (or zero), the lists and headers; and the event's own memory
// is not kept alive by it.
func TestEntryShowsTheEventAndKeepsNothingOfIt(t *testing.T) {
	kolkata := time.FixedZone("IST", 5*3600+1800)
	at := time.Date(2026, 11, 26, 9, 30, 0, 123456789, kolkata)
	for _, tc := range []struct {
		name string
		when time.Time
		want string
	}{
		{"an offset", at, `"time":"2026-11-26T04:00:00.123Z"`},
		{"before 1678, past what nanoseconds hold", time.Date(1200, 1, 2, 3, 4, 5, 6e6, time.UTC), `"time":"1200-01-02T03:04:05.006Z"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(10, 0)
			body := []byte(`{"to":"+31612345678"}`)
			ev := &router.Event{ID: "e1", Source: "bird", Event: "voice.outbound", Status: "failed", Time: tc.when,
				ReceivedAt: t0, RawPayload: body, Body: body, Headers: map[string]string{"user-agent": "Bird/1.0", "x-trace": ""}}
			collected := make(chan struct{})
			runtime.AddCleanup(&body[0], func(struct{}) { close(collected) }, struct{}{})
			s.Add(NewEntry(ev, Accepted, []string{"failed-calls"}, []string{"crm"}, []string{"rule quiet"}))
			ev, body = nil, nil
			for range 10 {
				runtime.GC()
				select {
				case <-collected:
				default:
					time.Sleep(time.Millisecond)
					continue
				}
				break
			}
			select {
			case <-collected:
			default:
				t.Error("the entry keeps the event's body alive")
			}
			v := s.Find(Query{}, t0).Items[0]
			if !strings.Contains(string(v.Event), tc.want) || !strings.Contains(string(v.Event), `"payload":{"to":"+31612345678"}`) {
				t.Errorf("event = %s, want %s and the payload", v.Event, tc.want)
			}
			if v.ID != "e1" || v.Source != "bird" || v.EventName != "voice.outbound" || v.Status != "failed" ||
				!v.ReceivedAt.Equal(t0) || v.Outcome != Accepted || fmt.Sprint(v.Rules, v.Sinks, v.HeldBack) != "[failed-calls] [crm] [rule quiet]" ||
				fmt.Sprint(v.Headers) != "map[user-agent:Bird/1.0 x-trace:]" {
				t.Errorf("view = %+v", v)
			}
		})
	}
	t.Run("zero time and no lists", func(t *testing.T) {
		v := NewEntry(&router.Event{ID: "z", Source: "s"}, Filtered, nil, nil, nil).View()
		if !strings.Contains(string(v.Event), `"time":"0001-01-01T00:00:00.000Z","received_at":"0001-01-01T00:00:00.000Z","payload":{}}`) ||
			v.Rules == nil || v.Sinks == nil || v.HeldBack != nil || v.Headers != nil {
			t.Errorf("view = %+v, event %s", v, v.Event)
		}
	})
}

func TestNilStoreIsOff(t *testing.T) {
	var s *Store = New(0, time.Hour)
	if s != nil {
		t.Fatal("New(0) is not nil")
	}
	s.Add(accepted("bird", "a", t0, "crm"))
	s.Attempting(at("bird", "a", time.Time{}), "crm")
	s.Attempted(at("bird", "a", time.Time{}), "crm", "d", Attempt{}, t0)
	s.Abandoned(at("bird", "a", time.Time{}), "crm")
	s.SetMaxAge(time.Second)
	if p := s.Find(Query{}, t0); len(p.Items) != 0 || s.Len() != 0 || s.Cap() != 0 || s.Sweep(t0) != 0 {
		t.Error("a nil store answered something")
	}
}

// TestConcurrentUse runs adds, attempts, sweeps and queries together; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	s := New(64, time.Hour)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				id := fmt.Sprintf("%d-%d", w, i)
				s.Add(accepted("bird", id, t0, "crm"))
				s.Attempting(at("bird", id, time.Time{}), "crm")
				s.Attempted(at("bird", id, time.Time{}), "crm", "d", Attempt{At: t0, Outcome: "success"}, time.Time{})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			s.Find(Query{Source: "bird"}, t0)
			s.Sweep(t0)
		}
	}()
	wg.Wait()
	if n := s.Len(); n != 64 {
		t.Errorf("Len = %d, want 64", n)
	}
	indexed := 0
	for i := range s.shards {
		indexed += len(s.shards[i].m)
	}
	if indexed != 64 {
		t.Errorf("index holds %d entries, want the 64 in the ring", indexed)
	}
}

// lookup is the indexed entry of (source, id), or nil.
func (s *Store) lookup(source, id string) *Entry {
	k := s.key(source, id)
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[k]
}

// The queue hands a new event's deliveries to the workers as it stores
// them, before the accept path adds the event: attempts made in between
// are kept and shown once it is added.
func TestAttemptsBeforeTheEntryIsAddedAreKept(t *testing.T) {
	s := New(10, 0)
	now := time.Now()
	s.Attempting(at("bird", "e1", now), "crm")
	s.Attempted(at("bird", "e1", now), "crm", "d1", Attempt{At: now, Status: 200, Outcome: "success"}, time.Time{})
	s.Attempting(at("bird", "e1", now), "oncall")
	s.Add(accepted("bird", "e1", now, "crm", "oncall", "archive"))
	v := s.Find(Query{ID: "e1"}, now).Items[0]
	got := map[string]string{}
	for _, d := range v.Deliveries {
		got[d.Sink] = fmt.Sprint(d.State, len(d.Attempts))
	}
	want := map[string]string{"crm": "delivered1", "oncall": "in_flight0", "archive": "pending0"}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(v.Deliveries) != 3 {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	if n := len(s.shard(s.key("bird", "e1")).early); n != 0 {
		t.Errorf("%d stand-ins left after the add", n)
	}
}

// An event that carries its entry (Memo) updates it directly, before and
// after the entry is added, with no stand-in and no index lookup.
func TestAttemptsOnTheEntryTheEventCarries(t *testing.T) {
	s := New(10, 0)
	now := time.Now()
	ev := event("bird", "e1", now, `{}`)
	e := NewEntry(ev, Accepted, []string{"r"}, []string{"crm", "oncall"}, nil)
	ev.Memo = e
	s.Attempting(ev, "crm")
	s.Attempted(ev, "crm", "d1", Attempt{At: now, Status: 200, Outcome: "success"}, time.Time{})
	s.Attempting(ev, "oncall")
	for i := range s.shards {
		if n := len(s.shards[i].early); n != 0 {
			t.Fatalf("%d stand-ins made for an event that carries its entry", n)
		}
	}
	s.Add(e)
	s.Attempted(ev, "oncall", "d2", Attempt{At: now, Status: 503, Outcome: "retry"}, now.Add(time.Minute))
	got := map[string]string{}
	for _, d := range s.Find(Query{ID: "e1"}, now).Items[0].Deliveries {
		got[d.Sink] = fmt.Sprint(d.State, len(d.Attempts))
	}
	if fmt.Sprint(got) != "map[crm:delivered1 oncall:retrying1]" {
		t.Errorf("deliveries %v", got)
	}
	// A copy of the event read back from the queue finds the same entry.
	s.Attempted(at("bird", "e1", now), "oncall", "d2", Attempt{At: now, Status: 200, Outcome: "success"}, time.Time{})
	if d := s.Find(Query{ID: "e1"}, now).Items[0].Deliveries[1]; d.State != Delivered || len(d.Attempts) != 2 {
		t.Errorf("after an attempt from the store: %+v", d)
	}
}

// A stand-in made by an attempt read back from the store is taken over
// while the event's own workers update its entry through Memo: both kept,
// no race.
func TestTakeOverWhileTheMemoIsUpdated(t *testing.T) {
	for range 50 {
		s := New(10, 0)
		now := time.Now()
		ev := event("bird", "e1", now, `{}`)
		e := NewEntry(ev, Accepted, nil, []string{"crm", "oncall"}, nil)
		ev.Memo = e
		s.Attempted(at("bird", "e1", now), "archive", "d0", Attempt{At: now, Outcome: "success"}, time.Time{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.Attempted(ev, "crm", "d1", Attempt{At: now, Outcome: "success"}, time.Time{})
		}()
		go func() {
			defer wg.Done()
			s.Add(e)
		}()
		wg.Wait()
		got := map[string]string{}
		for _, d := range s.Find(Query{ID: "e1"}, now).Items[0].Deliveries {
			got[d.Sink] = d.State
		}
		if fmt.Sprint(got) != "map[archive:delivered crm:delivered oncall:pending]" {
			t.Fatalf("deliveries %v", got)
		}
	}
}

func TestAttemptsRacingTheAddAreKept(t *testing.T) {
	s := New(1000, 0)
	now := time.Now()
	var wg sync.WaitGroup
	for i := range 200 {
		id := fmt.Sprint(i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.Attempted(at("bird", id, now), "crm", "d"+id, Attempt{At: now, Outcome: "success"}, time.Time{})
		}()
		go func() {
			defer wg.Done()
			s.Add(accepted("bird", id, now, "crm"))
		}()
	}
	wg.Wait()
	for _, v := range s.Find(Query{Limit: 500}, now).Items {
		if d := v.Deliveries[0]; d.State != Delivered || len(d.Attempts) != 1 {
			t.Errorf("event %s: %s with %d attempts, want delivered with 1", v.ID, d.State, len(d.Attempts))
		}
	}
}

// An attempt of an event received long ago (accepted before a restart,
// or pushed out of the history) makes no stand-in; those no entry came
// for are swept.
func TestStandInsAreBounded(t *testing.T) {
	s := New(10, 0)
	s.Attempted(at("bird", "old", t0), "crm", "d1", Attempt{At: t0, Outcome: "success"}, time.Time{})
	now := time.Now()
	for i := range 10 * maxEarly * shardCount {
		s.Attempting(at("bird", fmt.Sprint(i), now), "crm")
	}
	early := 0
	for i := range s.shards {
		if n := len(s.shards[i].early); n > maxEarly {
			t.Errorf("shard %d holds %d stand-ins, more than %d", i, n, maxEarly)
		}
		early += len(s.shards[i].early)
	}
	old := s.key("bird", "old")
	if s.shard(old).early[old] != nil || early == 0 {
		t.Errorf("%d stand-ins; one for the old event: %v", early, s.shard(old).early[old] != nil)
	}
	s.Sweep(now.Add(earlyWindow + time.Second))
	for i := range s.shards {
		if n := len(s.shards[i].early); n != 0 {
			t.Errorf("shard %d still holds %d stand-ins after a sweep", i, n)
		}
	}
}
