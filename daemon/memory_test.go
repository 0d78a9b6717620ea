package daemon_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/daemon/daemontest"
)

// bodyShapes are bodies of about max_body_bytes (1 MiB) shaped to cost
// the most memory once decoded: many tiny values.
var bodyShapes = map[string]func(size int) string{
	// Issue 10.3's attack: 50,000 tiny objects. Refused at the 1,001st.
	"batch of 50k tiny objects": func(size int) string {
		return "[" + strings.Repeat(`{"event":"a"},`, size/14-1) + `{"event":"a"}]`
	},
	// The largest accepted batch: 1,000 objects of many small members.
	"batch of 1000 objects of small members": func(size int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range 1000 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"event":"a","id":"` + fmt.Sprint(i) + `"`)
			for k := 0; k < size/1000/8-6; k++ {
				fmt.Fprintf(&b, `,"%d":1`, k)
			}
			b.WriteString("}")
		}
		return b.String() + "]"
	},
	// What providers send: objects of short string and number fields.
	"batch of 1000 webhook-like events": func(size int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := 0; b.Len() < size-1100 && i < 1000; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"event":"whatsapp:message:status","id":"%d","payload":{"id":"a418d672-%d","channel":"x0",`+
				`"from":"919019120123","to":"919019912345","status":"delivered","delivered_at":"2021-06-18T14:48:06.886358Z",`+
				`"error":{"code":null,"message":null},"text":"%s","units":2,"price":0.0042}}`, i, i, strings.Repeat("x", 700))
		}
		return b.String() + "]"
	},
	"one object holding an array of zeros": func(size int) string {
		return `{"event":"a","z":[` + strings.Repeat("0,", size/2-20) + `0]}`
	},
	"one object holding empty objects": func(size int) string {
		return `{"event":"a","z":[` + strings.Repeat("{},", size/3-20) + `{}]}`
	},
	// A relaxed body is decoded at accept and written again as strict
	// JSON: that second pass must not build the values a second time.
	"relaxed one object holding empty objects": func(size int) string {
		return `{event:"a",z:[` + strings.Repeat("{},", size/3-20) + `{}]}`
	},
	"relaxed batch of 1000 objects holding empty objects": func(size int) string {
		return "[" + strings.Repeat(`{event:"a",z:[`+strings.Repeat("{},", size/3000-10)+`{}]},`, 999) + `{event:"a",z:[` + strings.Repeat("{},", size/3000-10) + `{}]}]`
	},
	"one object holding empty arrays": func(size int) string {
		return `{"event":"a","z":[` + strings.Repeat("[],", size/3-20) + `[]]}`
	},
}

// Issue 10.3: 16 concurrent requests at max_body_bytes took 3.8 GB. The
// heap in use must stay within a small multiple of 16 x max_body_bytes,
// with a rule that reads the payload, so that every body is decoded.
func TestMemoryPerRequestIsBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("posts 16 MiB of bodies per shape; the race detector multiplies memory and time")
	}
	const conc, size = 16, 1 << 20
	dir := t.TempDir()
	d := daemontest.Start(t, `
server: { listen: "127.0.0.1:0", max_body_bytes: 1MiB }
admin: { listen: "127.0.0.1:0" }
queue: { dir: `+filepath.Join(dir, "q")+`, dedup_window: 0s }
sources:
  app: { type: generic }
sinks:
  archive: { type: file, path: `+filepath.Join(dir, "events.jsonl")+` }
rules:
  - { name: reads-payload, events: ['*'], when: 'payload.q != nil', to: [archive] }
`)
	url := "http://" + d.WebhookAddr() + "/hooks/app"
	for name, shape := range bodyShapes {
		body := shape(size)
		if len(body) > size {
			t.Fatalf("%s: body of %d bytes", name, len(body))
		}
		runtime.GC()
		debug.FreeOSMemory()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		var wg sync.WaitGroup
		codes := make([]int, conc)
		for i := range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		close(done)
		grew := float64(peak.Load()-min(peak.Load(), base.HeapInuse)) / float64(conc*size)
		t.Logf("%-40s answered %d; heap in use grew by %.1f x (16 x max_body_bytes)", name, codes[0], grew)
		if grew > memoryBound {
			t.Errorf("%s: heap in use grew by %.1f x 16 x max_body_bytes, over the documented %d x", name, grew, memoryBound)
		}
	}
}

// memoryBound is the multiple of N x max_body_bytes that N concurrent
// requests may take, as the README documents it.
const memoryBound = 40
