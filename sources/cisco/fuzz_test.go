package cisco

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"switchboard/sources/cisco/internal/pb"
)

// FuzzNormalize feeds arbitrary bytes through what the stream does with a
// message: unmarshal, normalize, encode for the queue. Nothing may panic,
// and every event that normalizes has a name, an id and valid JSON.
func FuzzNormalize(f *testing.F) {
	for _, ev := range sampleEvents() {
		b, err := proto.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x22, 0x00})                   // voice_event, empty
	f.Add([]byte{0x12, 0x02, 0x08, 0x7f})       // a timestamp alone
	f.Add([]byte{0x82, 0x01, 0x00, 0x4a, 0x00}) // unknown field 16, sms_event
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev pb.Event
		if err := proto.Unmarshal(b, &ev); err != nil {
			return
		}
		out, err := normalize("cisco", &ev, time.Unix(0, 0).UTC())
		if err != nil {
			return
		}
		if out.Event == "" || out.ID == "" {
			t.Fatalf("event %q id %q from %x", out.Event, out.ID, b)
		}
		enc, err := out.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		if !json.Valid(enc) {
			t.Fatalf("invalid JSON %s", enc)
		}
	})
}
