package logqueue

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"switchboard/router"
)

// fuzzEvent builds an event from fuzz input the way a source could: any
// strings, any times, any payload bytes (parsed when they are JSON), any
// headers and body.
func fuzzEvent(id, source, name, status string, sec, nsec, rsec, rnsec int64, raw []byte, headers string, body []byte, bodyMode uint8) *router.Event {
	e := &router.Event{ID: id, Source: source, Event: name, Status: status,
		Time: time.Unix(sec, nsec), ReceivedAt: time.Unix(rsec, rnsec)}
	switch bodyMode % 4 {
	case 0:
		e.RawPayload, e.Body = raw, raw
	case 1:
		e.RawPayload, e.Body = raw, body
	case 2:
		e.RawPayload = raw
	case 3:
		e.Body = body
	}
	if p, err := router.DecodeObject(raw); err == nil {
		e.Payload = p
		if bodyMode%4 == 3 {
			e.RawPayload = nil // built from Payload, as a stream source does
		}
	} else if bodyMode%4 == 3 {
		e.Payload = map[string]any{"text": string(raw)}
	}
	if headers != "" {
		e.Headers = map[string]string{}
		for _, kv := range strings.Split(headers, "\n") {
			k, v, _ := strings.Cut(kv, ":")
			e.Headers[k] = v
		}
	}
	return e
}

// sameStored fails unless got is what want reads back as: every field
// exact, times to the nanosecond, the normalized JSON byte for byte.
func sameStored(t *testing.T, got, want *router.Event) {
	t.Helper()
	if got == want {
		return // handed over from memory: the accepted event itself
	}
	if got.ID != want.ID || got.Source != want.Source || got.Event != want.Event || got.Status != want.Status {
		t.Fatalf("names = %q %q %q %q, want %q %q %q %q", got.ID, got.Source, got.Event, got.Status, want.ID, want.Source, want.Event, want.Status)
	}
	for _, p := range [][2]time.Time{{got.Time, want.Time}, {got.ReceivedAt, want.ReceivedAt}} {
		if !p[0].Equal(p[1]) || p[0].Unix() != p[1].Unix() || p[0].Nanosecond() != p[1].Nanosecond() {
			t.Fatalf("time %v (%d.%09d), want %v (%d.%09d)", p[0], p[0].Unix(), p[0].Nanosecond(), p[1], p[1].Unix(), p[1].Nanosecond())
		}
	}
	wj, err := want.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	gj, err := got.MarshalJSON()
	if err != nil || !bytes.Equal(gj, wj) {
		t.Fatalf("normalized JSON = %q %v\nwant %q", gj, err, wj)
	}
	wantRaw := want.RawPayload
	if wantRaw == nil {
		wantRaw, _ = want.PayloadJSON()
	}
	if !bytes.Equal(got.RawPayload, wantRaw) {
		t.Fatalf("raw payload = %q, want %q", got.RawPayload, wantRaw)
	}
	if !reflect.DeepEqual(got.Headers, want.Headers) {
		t.Fatalf("headers = %#v, want %#v", got.Headers, want.Headers)
	}
	if !bytes.Equal(got.Body, want.Body) || (got.Body == nil) != (want.Body == nil) {
		t.Fatalf("body = %q, want %q", got.Body, want.Body)
	}
	if want.Payload != nil && want.RawPayload != nil && !reflect.DeepEqual(got.Fields(), want.Fields()) {
		t.Fatalf("fields = %#v, want %#v", got.Fields(), want.Fields())
	}
}

// FuzzEventRecord: whatever Enqueue accepts, a read from disk returns
// equal (issue 10.1): extreme times, odd numbers, any bytes.
func FuzzEventRecord(f *testing.F) {
	f.Add("id-1", "bird", "voice.outbound", "failed", int64(1763600000), int64(123456789), int64(1763600000), int64(5),
		[]byte(`{"id":12345678901234567891,"n":1e400,"s":"\u00e9"}`), "content-type:application/json", []byte("x"), uint8(0))
	f.Add("", "", "", "", int64(math.MaxInt64), int64(999999999), int64(math.MinInt64), int64(0), []byte("{}"), "", []byte{}, uint8(1))
	f.Add("\r\n", "s\x00", "e", "", int64(253402300800), int64(0), int64(-62135596801), int64(1), []byte("{\n  \"a\": [1, 2]\n}"), "a:\nb:c", []byte(nil), uint8(2))
	f.Add("9000000000000000000", "generic", "x", "st", int64(-9e15), int64(-1), int64(9e15), int64(2e9), []byte(`not json`), "", []byte("id=1&s=2"), uint8(3))
	f.Fuzz(func(t *testing.T, id, source, name, status string, sec, nsec, rsec, rnsec int64, raw []byte, headers string, body []byte, mode uint8) {
		e := fuzzEvent(id, source, name, status, sec, nsec, rsec, rnsec, raw, headers, body, mode)
		rec, err := appendEvent(nil, e)
		if err != nil {
			return // Enqueue refuses it: it cannot be written as JSON
		}
		h := eventHead{dedup: true, key: keyOf(source, id), expiry: rsec, horizon: 3600,
			deliveries: []delivery{{id: 7, sink: "crm", queued: e.ReceivedAt}}}
		b, start := beginFrame(nil, recEvent)
		b = append(appendEventHead(b, &h), rec...)
		frame := endFrame(b, start)
		got, gh, err := decodeEventFrame(frame)
		if err != nil {
			t.Fatalf("a stored event does not read back: %v", err)
		}
		if gh.key != h.key || gh.expiry != h.expiry || len(gh.deliveries) != 1 || gh.deliveries[0].id != 7 || gh.deliveries[0].sink != "crm" {
			t.Fatalf("head = %+v, want %+v", gh, h)
		}
		if err := validateEvent(rec); err != nil {
			t.Fatalf("validateEvent refuses what decodeEvent reads: %v", err)
		}
		sameStored(t, got, e)
	})
}

// The same through the queue, both ways a delivery is made: from memory
// and read back from disk, and again after a restart.
func TestExtremeEventsRoundTripThroughTheQueue(t *testing.T) {
	events := []*router.Event{
		fuzzEvent("max", "s", "e", "", math.MaxInt64, 999999999, math.MinInt64, 0, []byte(`{"a":1}`), "", nil, 0),
		fuzzEvent("year-9999", "s", "e", "", 253402300799, 999999999, -62167219200, 0, []byte(`{"t":"9999-12-31T23:59:59-23:59"}`), "", nil, 1),
		fuzzEvent("big-numbers", "s", "e", "x", 1, 1, 1, 1, []byte(`{"id":12345678901234567891,"f":0.1000000000000000055511151231257827,"e":2e700,"neg":-9223372036854775809}`), "k:v", []byte("raw"), 1),
		fuzzEvent("unicode ☎", "s☎", "événement", "statüs", 1e9, 0, 1e9, 0, []byte(`{"name":"Zoë \ud83d\ude00","esc":"\u0000\u001f"}`), "x-ü:ä", nil, 0),
		fuzzEvent("pretty", "s", "e", "", 1e9, 0, 1e9, 0, []byte("{\n\t\"a\" :  [ 1 , 2 ]\n}"), "", nil, 0),
		fuzzEvent("built", "cisco", "e", "", 1e9, 0, 1e9, 0, []byte(`{"from":"+4712345678"}`), "", []byte{}, 3),
		fuzzEvent("huge", "s", "e", "", 1e9, 0, 1e9, 0, []byte(`{"blob":"`+strings.Repeat("x", 3<<20)+`"}`), "", nil, 0),
	}
	for _, hot := range []int64{DefaultHotBytes, -1} {
		dir := t.TempDir()
		q := open(t, Options{Dir: dir, HotBytes: hot, SegmentSize: 1 << 20})
		var batch []router.Routed
		for _, e := range events {
			batch = append(batch, router.Routed{Event: e, Sinks: []string{"a", "b"}})
		}
		if err := q.Enqueue(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			d := next(t, q, "a")
			sameStored(t, d.Event, e)
			q.Done(d)
		}
		q = reopen(t, q)
		for _, e := range events {
			d := next(t, q, "b")
			sameStored(t, d.Event, e)
			q.Done(d)
		}
	}
}

// FuzzOpen feeds arbitrary bytes to the start as a segment: it must end
// in an error or a working queue, never a panic or a hang. The input is
// taken both as raw file content and as records with valid checksums, so
// that the record decoders see arbitrary bodies.
func FuzzOpen(f *testing.F) {
	// The zeros kept ahead of the log's end are part of every open; a small
	// window keeps them from costing each input megabytes of writes.
	defer func(w int64) { fillWindow = w }(fillWindow)
	fillWindow = 4 << 10
	valid := func() []byte {
		e := fuzzEvent("a", "s", "e", "x", 1e9, 0, 1e9, 0, []byte(`{"a":1}`), "h:v", nil, 0)
		rec, _ := appendEvent(nil, e)
		h := eventHead{deliveries: []delivery{{id: 1, sink: "crm", queued: e.ReceivedAt}, {id: 2, sink: "log", state: stDead}}}
		return append(appendEventHead(nil, &h), rec...)
	}()
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), append([]byte{recEvent, byte(len(valid)), byte(len(valid) >> 8)}, valid...))
	f.Add(uint8(1), []byte{recDone, 2, 0, 1, 1, recState, 3, 0, 2, 5, 0})
	f.Add(uint8(1), []byte{recReplay, 4, 0, 0, 0, 1, 2, recPurge, 2, 0, 1, 2, recRaw, 3, 0, 9, 0, 0})
	f.Add(uint8(0), bytes.Repeat([]byte{0xFF}, 64))
	f.Fuzz(func(t *testing.T, mode uint8, input []byte) {
		// A hang is a failure too: say where everything was.
		watchdog := time.AfterFunc(30*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic("hang:\n" + string(buf[:n]))
		})
		defer watchdog.Stop()
		dir := t.TempDir()
		var seg []byte
		if mode%2 == 0 {
			seg = append(fileHeader{kind: kindQueue, number: 1}.encode(), input...)
		} else {
			seg = fileHeader{kind: kindQueue, number: 1}.encode()
			for in := input; len(in) >= 3; {
				typ, n := in[0], int(binary.LittleEndian.Uint16(in[1:]))
				in = in[3:]
				n = min(n, len(in))
				var start int
				seg, start = beginFrame(seg, typ)
				seg = endFrame(append(seg, in[:n]...), start)
				in = in[n:]
			}
		}
		if mode&4 != 0 {
			seg = input // no header at all
		}
		os.WriteFile(path(dir, "seg-0000000000000001.log"), seg, 0o640)
		os.WriteFile(path(dir, "ddp-0000000000000001.log"), fileHeader{kind: kindDedup, number: 1}.encode(), 0o640)
		synced := int64(headerSize)
		if mode&2 != 0 {
			synced = int64(len(seg)) // all of it was synced: no torn tail
		}
		c := checkpoint{segFirst: 1, segLast: 1, segSynced: max(synced, headerSize), ddpFirst: 1, ddpLast: 1, ddpSynced: headerSize, nextID: 1}
		os.WriteFile(path(dir, stateFile), c.encode(), 0o640)
		// No fsync: this is about reading whatever is there, and fast.
		q, err := Open(Options{Dir: dir, FS: noSync{OS}, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			return
		}
		defer q.Close()
		q.Stats()
		q.OldestPending(time.Now())
		page, err := q.ListDead(router.DeadQuery{})
		if err == nil {
			for _, dl := range page.Items {
				q.GetDead(dl.ID)
			}
		}
		for _, sink := range []string{"crm", "log", unknownSink} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			if d, err := q.Next(ctx, sink); err == nil {
				q.Done(d)
			}
			cancel()
		}
		q.Replay(nil)
		q.Purge(nil)
	})
}
