package cisco

// The whole path with the real daemon: the provider's server streams
// events, the daemon routes them through the durable queue (files in a
// temporary directory) to file sinks, and the server sees acks only for
// what was queued.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/daemon/daemontest"
	"switchboard/sources/cisco/internal/pb"
)

func e2eConfig(e *env, dir, maxBytes, maxInFlight string) string {
	return `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + dir + `, max_bytes: ` + maxBytes + ` }
sources:
  wgtwo:
    type: cisco
    target: ` + e.addr + `
    plaintext: true
    oauth:
      client_id: ` + testClientID + `
      client_secret: ` + testSecret + `
      token_url: ` + e.tokens.URL + `/oauth2/token
    events: [VOICE_EVENT, VOICEMAIL_EVENT, SMS_DELIVERY_REPORT_EVENT]
    durable_name: switchboard
    max_in_flight: ` + maxInFlight + `
    manual_ack: { enabled: true, timeout: 300ms }
sinks:
  failed-sms: { type: file, path: ` + filepath.Join(dir, "failed-sms.jsonl") + ` }
  archive: { type: file, path: ` + filepath.Join(dir, "archive.jsonl") + ` }
rules:
  - name: failed-sms
    events: [SMS_DELIVERY_REPORT_EVENT]
    filters:
      - { key: status, value: FINAL_FAILURE }
      - { key: status, value: EXPIRED }
    to: [failed-sms]
  - name: archive
    to: [archive]
`
}

// startDaemon runs switchboard on the config in file until the test ends
// (or the returned stop is called). Unlike daemontest.Start it watches
// nothing but can reload the file, and the source logs to e.logs.
func startDaemon(t *testing.T, e *env, file string) (d *daemon.Daemon, stop func()) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(raw)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	// The daemon's log is where the source logs (the daemon hands the
	// source its logger; the source is also given it directly, for a daemon
	// that does not).
	var w io.Writer = e.logs
	if testing.Verbose() {
		w = io.MultiWriter(e.logs, os.Stderr)
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	snap.Sources["wgtwo"].Stream.(*Source).SetLogger(log)
	q, err := daemon.OpenQueue(f, log)
	if err != nil {
		t.Fatalf("queue: %v", err)
	}
	d = daemon.New(snap, q, log)
	d.ConfigPath = file
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	return d, stop
}

func dr(id string, st pb.SmsDeliveryReportEvent_Status) *pb.Event {
	ev := sampleEvents()["SMS_DELIVERY_REPORT_EVENT"]
	ev.Metadata = nil
	ev.GetSmsDeliveryReportEvent().Id = id
	ev.GetSmsDeliveryReportEvent().Status = st
	return ev
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "switchboard.yaml")
	os.WriteFile(file, []byte(e2eConfig(e, dir, "1GiB", "8")), 0o600)
	d, _ := startDaemon(t, e, file)

	vm := sampleEvents()["VOICEMAIL_EVENT"]
	vm.Metadata = nil
	e.srv.publish(
		voiceEvent("call-1", pb.VoiceEvent_CALL_ENDED),
		vm,
		dr("dr-failed", pb.SmsDeliveryReportEvent_FINAL_FAILURE),
		dr("dr-ok", pb.SmsDeliveryReportEvent_DELIVERED),
	)
	// The voicemail's first ack is lost: the server sends it again after the
	// ack timeout; the queue recognises it and it is acked, not routed twice.
	e.srv.set(func(f *fakeServer) { f.loseAcks[2] = 1 })
	waitFor(t, "4 acks", func() bool { return e.srv.ackedCount() == 4 })
	archive := filepath.Join(dir, "archive.jsonl")
	waitFor(t, "4 archived events", func() bool { return len(daemontest.ReadLines(t, archive)) >= 4 })
	time.Sleep(100 * time.Millisecond) // a second copy would show up now

	byEvent := map[string]int{}
	for _, l := range daemontest.ReadLines(t, archive) {
		byEvent[l["event"].(string)+"/"+l["status"].(string)]++
	}
	want := map[string]int{"VOICE_EVENT/CALL_ENDED": 1, "VOICEMAIL_EVENT/NEW_VOICEMAIL": 1,
		"SMS_DELIVERY_REPORT_EVENT/FINAL_FAILURE": 1, "SMS_DELIVERY_REPORT_EVENT/DELIVERED": 1}
	if len(byEvent) != len(want) {
		t.Errorf("archive holds %v, want %v", byEvent, want)
	}
	for k, n := range want {
		if byEvent[k] != n {
			t.Errorf("archive holds %d %s, want %d (all: %v)", byEvent[k], k, n, byEvent)
		}
	}
	waitFor(t, "the failed report", func() bool { return len(daemontest.ReadLines(t, filepath.Join(dir, "failed-sms.jsonl"))) > 0 })
	failed := daemontest.ReadLines(t, filepath.Join(dir, "failed-sms.jsonl"))
	if len(failed) != 1 || failed[0]["status"] != "FINAL_FAILURE" || failed[0]["payload"].(map[string]any)["id"] != "dr-failed" {
		t.Errorf("failed-sms sink got %v", failed)
	}
	if e.trace.count("lost-ack:vm-31337") != 1 || e.trace.count("ack:vm-31337") != 1 {
		t.Errorf("trace %v: want the voicemail's lost ack, then one ack of its redelivery", e.trace.snapshot())
	}

	// Hot reload of the source's settings restarts its stream with them.
	os.WriteFile(file, []byte(e2eConfig(e, dir, "1GiB", "3")), 0o600)
	ch, err := d.Reload("test")
	if err != nil || len(ch.SourcesChanged) != 1 {
		t.Fatalf("reload: %v, %+v", err, ch)
	}
	waitFor(t, "a new subscription", func() bool { return len(e.srv.requests()) == 2 })
	if got := e.srv.requests()[1].GetMaxInFlight(); got != 3 {
		t.Errorf("after reload max_in_flight = %d, want 3", got)
	}
	waitFor(t, "one stream open", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return e.srv.open == 1
	})
	e.srv.publish(voiceEvent("call-2", pb.VoiceEvent_CALL_INITIATED))
	waitFor(t, "5 acks", func() bool { return e.srv.ackedCount() == 5 })
	waitFor(t, "5 archived events", func() bool { return len(daemontest.ReadLines(t, archive)) == 5 })
}

// A queue that takes nothing (full): no event is acked, the server keeps
// sending them; once switchboard runs with room, they are queued and acked.
func TestEndToEndQueueUnavailable(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "switchboard.yaml")
	os.WriteFile(file, []byte(e2eConfig(e, dir, "1B", "2")), 0o600)
	_, stop := startDaemon(t, e, file)
	e.srv.publish(voiceEvents(2)...)
	waitFor(t, "a redelivery", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return e.srv.sends[1] >= 2 && e.srv.sends[2] >= 2
	})
	if n := e.srv.ackedCount(); n != 0 {
		t.Fatalf("%d events acked that the queue did not take", n)
	}
	warns := e.logs.find("WARN", "could not queue an event; not acked")
	if len(warns) == 0 || !strings.Contains(warns[0]["err"].(string), "full") {
		t.Errorf("want a warning naming the full queue; logs: %v", e.logs.records())
	}
	stop()

	os.WriteFile(file, []byte(e2eConfig(e, dir, "1GiB", "2")), 0o600)
	startDaemon(t, e, file)
	waitFor(t, "2 acks", func() bool { return e.srv.ackedCount() == 2 })
	archive := filepath.Join(dir, "archive.jsonl")
	waitFor(t, "2 archived events", func() bool { return len(daemontest.ReadLines(t, archive)) == 2 })
}

// The documentation's names in the config: the events carry the proto
// names and still pass the source's own events setting.
func TestEndToEndAliases(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "switchboard.yaml")
	yaml := strings.Replace(e2eConfig(e, dir, "1GiB", "8"), "SMS_DELIVERY_REPORT_EVENT]", "SMS_DELIVERY_EVENT, ROAMING_EVENT]", 1)
	os.WriteFile(file, []byte(yaml), 0o600)
	d, _ := startDaemon(t, e, file)
	if got := d.Snapshot().Sources["wgtwo"].Events; !slices.Contains(got, "SMS_DELIVERY_REPORT_EVENT") {
		t.Fatalf("source events = %v: aliased events would be filtered out by their configured names", got)
	}
	roaming := sampleEvents()["COUNTRY_CHANGE_EVENT"]
	roaming.Metadata = nil
	e.srv.publish(dr("dr-1", pb.SmsDeliveryReportEvent_EXPIRED), roaming)
	archive := filepath.Join(dir, "archive.jsonl")
	waitFor(t, "2 archived events", func() bool { return len(daemontest.ReadLines(t, archive)) == 2 })
	// Each sink has its own workers: the archive being written says
	// nothing about failed-sms.
	waitFor(t, "the failed report", func() bool { return len(daemontest.ReadLines(t, filepath.Join(dir, "failed-sms.jsonl"))) > 0 })
	failed := daemontest.ReadLines(t, filepath.Join(dir, "failed-sms.jsonl"))
	if len(failed) != 1 || failed[0]["event"] != "SMS_DELIVERY_REPORT_EVENT" {
		t.Errorf("failed-sms got %v", failed)
	}
}

// /readyz says whether the stream is up.
func TestEndToEndReadiness(t *testing.T) {
	e := newEnv(t)
	e.srv.refuse = codes.Unavailable
	dir := t.TempDir()
	file := filepath.Join(dir, "switchboard.yaml")
	os.WriteFile(file, []byte(e2eConfig(e, dir, "1GiB", "8")), 0o600)
	d, _ := startDaemon(t, e, file)
	readyz := func() (int, map[string]any) {
		resp, err := http.Get("http://" + d.AdminAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	waitFor(t, "a refused subscription", func() bool { return len(e.srv.subscribeTimes()) > 0 })
	time.Sleep(2 * settle)
	code, body := readyz()
	if code != http.StatusServiceUnavailable || !slices.Equal(body["sources"].([]any), []any{"wgtwo"}) {
		t.Errorf("readyz with the stream down: %d %v", code, body)
	}
	e.srv.set(func(f *fakeServer) { f.refuse = codes.OK })
	waitFor(t, "ready", func() bool { c, _ := readyz(); return c == http.StatusOK })
}
