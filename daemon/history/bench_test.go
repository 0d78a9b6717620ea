package history

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"switchboard/router"
)

// benchPayload is the load harness's WhatsApp status event, about 450
// bytes as received.
const benchPayload = `{"event":"whatsapp:message:status","payload":{"id":"a418d672","channel":"x1","from":"919019120123","to":"919019912345","status":"delivered","delivered_at":"2021-06-18T14:48:06.886358Z","processed_at":"2021-06-18T14:48:06.886358Z","timestamp":"2021-06-18T14:48:06.886358Z","error":{"code":null,"message":null},"bench_id":"b%d","bench_ts":1763600000123456789}}`

// typicalEvent is an accepted event as a source leaves it: its own body
// buffer, the payload a slice of it, its strings.
func typicalEvent(i int) *router.Event {
	body := []byte(fmt.Sprintf(benchPayload, i))
	return &router.Event{ID: fmt.Sprintf("b%d", i), Source: "events", Event: "whatsapp:message:status", Status: "delivered",
		Time: time.Now(), ReceivedAt: time.Now(), RawPayload: body, Body: body}
}

// BenchmarkAdd is the accept path's cost of history: one entry of a
// routed event added, on all cores at once.
func BenchmarkAdd(b *testing.B) {
	s := New(10_000, time.Hour)
	events := make([]*router.Event, 1024)
	for i := range events {
		events[i] = typicalEvent(i)
	}
	rules, sinks := []string{"failed"}, []string{"sink"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Add(NewEntry(events[i%len(events)], Accepted, rules, sinks, nil))
			i++
		}
	})
}

// TestMemoryPerEvent measures what a full history of typical events holds
// beyond the events' own bodies being freed: the figure the README gives
// as the cost per event.
func TestMemoryPerEvent(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures memory; skipped with -short and under the race detector")
	}
	const n = 20_000
	s := New(n, 0)
	rules, sinks := []string{"failed"}, []string{"sink"}
	before := heap()
	for i := range n {
		e := typicalEvent(i)
		s.Add(NewEntry(e, Accepted, rules, sinks, nil))
		s.Attempted(at(e.Source, e.ID, time.Time{}), "sink", "d", Attempt{At: time.Now(), Status: 200, Outcome: "success"}, time.Time{})
	}
	after := heap()
	per := float64(after-before) / n
	t.Logf("history: %.0f bytes per event of %d payload bytes (%d events, %.1f MB)", per, len(fmt.Sprintf(benchPayload, 0)), n, float64(after-before)/1e6)
	if per > 2048 {
		t.Errorf("%.0f bytes per typical event; the README promises about 1 KB", per)
	}
	runtime.KeepAlive(s)
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
