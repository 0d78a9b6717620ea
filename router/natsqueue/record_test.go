package natsqueue

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"switchboard/router"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   *router.Event
	}{
		{"webhook", event("bird", "e1")},
		{"batch body", func() *router.Event {
			e := event("bird", "e2")
			e.Body = []byte(`{"events":[{"id":"e2"}]}`)
			return e
		}()},
		{"no headers no body", func() *router.Event {
			e := event("app", "e3")
			e.Headers, e.Body = nil, nil
			return e
		}()},
		{"times out of the JSON's range", func() *router.Event {
			e := event("app", "e4")
			e.Time = time.Date(12000, 1, 2, 3, 4, 5, 999999999, time.UTC)
			e.ReceivedAt = time.Date(-50, 1, 1, 0, 0, 0, 1, time.UTC)
			return e
		}()},
		{"zero times, no payload, odd id", &router.Event{ID: "\r\nX: \x00\"", Source: "s", Event: "ü"}},
		// The normalized JSON compacts such a payload; the body, forwarded
		// as received by body: raw, must keep its bytes.
		{"pretty-printed body", func() *router.Event {
			e := event("app", "e5")
			e.RawPayload = []byte("{\n  \"id\": \"e5\",\r\n\t\"status\": \"failed\"\n}\n")
			e.Body = e.RawPayload
			e.Payload, _ = router.DecodeObject(e.RawPayload)
			return e
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := encodeEvent(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeEvent(rec)
			if err != nil {
				t.Fatal(err)
			}
			sameEvent(t, got, tc.ev)
			if !got.Time.Equal(tc.ev.Time) || !got.ReceivedAt.Equal(tc.ev.ReceivedAt) {
				t.Errorf("times %v %v, want %v %v", got.Time, got.ReceivedAt, tc.ev.Time, tc.ev.ReceivedAt)
			}
		})
	}
}

// A delivery reads the event's fields from the normalized JSON without
// decoding its payload; the payload is decoded when a template asks, and a
// JSON of another shape is still read, in full.
func TestRecordPayloadIsDecodedOnDemand(t *testing.T) {
	for _, ev := range []*router.Event{
		event("bird", "e1"),
		{ID: `q"uo\te `, Source: "s", Event: "x", RawPayload: []byte(`{"a":{"b":[1,"\""]}}`)},
		{ID: "1", Source: "s", Event: "x", Status: "failed", Payload: map[string]any{"n": json.Number("12345678901234567890")}},
	} {
		rec, err := encodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEvent(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got.Payload != nil {
			t.Errorf("%s: payload decoded on read", ev.ID)
		}
		sameEvent(t, got, ev)
		if want, _ := ev.PayloadJSON(); !sameJSON(mustJSON(t, got.Fields()), want) {
			t.Errorf("%s: fields %v, want %s", ev.ID, got.Fields(), want)
		}
	}
	// Records whose JSON has its keys in another order: the fields are
	// read whatever the order; a payload that is not the last member is
	// decoded in full at once.
	for _, tc := range []struct {
		name, ej string
		lazy     bool
	}{
		{"id after source", `{"source":"s","id":"e9","event":"x","time":"2026-11-26T00:00:00Z","received_at":"2026-11-26T00:00:00Z","payload":{"k":"v"}}`, true},
		{"payload not last", `{"id":"e9","source":"s","event":"x","payload":{"k":"v"},"time":"2026-11-26T00:00:00Z","received_at":"2026-11-26T00:00:00Z"}`, false},
	} {
		rec := append([]byte{recordVersion, 0}, appendTime(appendTime(nil, time.Time{}), time.Time{})...)
		rec = append(binaryChunk(rec, []byte(tc.ej)), 0)
		got, err := decodeEvent(rec)
		if err != nil || got.ID != "e9" || got.Source != "s" || got.Event != "x" || got.Fields()["k"] != "v" ||
			string(got.RawPayload) != `{"k":"v"}` || (got.Payload == nil) != tc.lazy {
			t.Errorf("%s: %+v, %v", tc.name, got, err)
		}
	}
}

func binaryChunk(b, c []byte) []byte {
	return append(append(b, byte(len(c))), c...)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordDamage(t *testing.T) {
	rec, _ := encodeEvent(event("bird", "e1"))
	for n := range len(rec) {
		if _, err := decodeEvent(rec[:n]); err == nil && n < len(rec)-len(event("bird", "e1").RawPayload) {
			t.Errorf("record cut at %d of %d decoded without error", n, len(rec))
		}
	}
	bad := bytes.Clone(rec)
	bad[0] = 9
	if _, err := decodeEvent(bad); err == nil {
		t.Error("unknown version decoded")
	}
}

// FuzzRecord: whatever Enqueue may store comes back equal, and no bytes
// make the decoder panic.
func FuzzRecord(f *testing.F) {
	f.Add("e1", "bird", `{"a":1}`, []byte("body"), int64(0), int64(5), "k", "v")
	f.Add("", "", `{}`, []byte(nil), int64(-62135596800), int64(253402300800), "", "")
	f.Add("\xff", "s", `{"n":1e400,"s":"\u2028"}`, []byte(`{"n":1e400}`), int64(1<<40), int64(-1<<40), "x-a", "\r\n")
	f.Fuzz(func(t *testing.T, id, source, payload string, body []byte, sec1, sec2 int64, hk, hv string) {
		raw := []byte(payload)
		p, err := router.DecodeObject(raw)
		if err != nil {
			decodeEvent(append([]byte{recordVersion, 0}, raw...)) // arbitrary bytes: must not panic
			return
		}
		ev := &router.Event{ID: id, Source: source, Event: "e", Time: time.Unix(sec1%(1<<50), 7).UTC(),
			ReceivedAt: time.Unix(sec2%(1<<50), 999).UTC(), Payload: p, RawPayload: raw, Body: body}
		if hk != "" {
			ev.Headers = map[string]string{hk: hv}
		}
		rec, err := encodeEvent(ev)
		if err != nil {
			return // not JSON-encodable: Enqueue refuses it too
		}
		got, err := decodeEvent(rec)
		if err != nil {
			t.Fatalf("decode what was encoded: %v", err)
		}
		gj, _ := got.MarshalJSON()
		wj, _ := ev.MarshalJSON()
		// Invalid UTF-8 in an id becomes U+FFFD once written as JSON,
		// which prints unescaped when written again: equal values.
		if !sameJSON(gj, wj) || !bytes.Equal(got.Body, ev.Body) || !got.Time.Equal(ev.Time) || !got.ReceivedAt.Equal(ev.ReceivedAt) {
			t.Fatalf("round trip:\n got %s %q\nwant %s %q", gj, got.Body, wj, ev.Body)
		}
		if len(ev.Headers) > 0 && !reflect.DeepEqual(got.Headers, ev.Headers) {
			t.Fatalf("headers %v, want %v", got.Headers, ev.Headers)
		}
	})
}

func sameJSON(a, b []byte) bool {
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	return da.Decode(&va) == nil && db.Decode(&vb) == nil && reflect.DeepEqual(va, vb)
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://a:4222, nats://b:4222", "nats://a:4222,nats://b:4222"},
		{"nats://user:pa55@a:4222,tls://tok3n@b:4222", "nats://<secret>@a:4222,tls://<secret>@b:4222"},
		{"", ""},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
