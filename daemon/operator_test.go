package daemon_test

// What an operator sees: refused reloads and their recovery, the names in
// the reload and start-up logs, and metric series that exist from the
// first scrape and go away with what they count.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/daemon/daemontest"
)

// A truncated file is refused, the sources keep answering, and putting the
// running content back clears the refusal, through the file watcher alone.
func TestTruncatedFileIsRefusedAndRevertingItClearsTheFailure(t *testing.T) {
	r := newReloadRig(t, ruleToCRM)
	good := reloadConfig(r.dir, r.rcv.URL, ruleToCRM)
	for _, bad := range []string{"", "# everything else was lost\n", "sinks: {}\nsources: {}\n"} {
		r.write(t, bad)
		daemontest.Eventually(t, "the refusal", func() bool {
			return scrape(t, r.d, "switchboard_config_last_reload_successful") == "0"
		})
		if code, _ := daemontest.Post(t, "http://"+r.d.WebhookAddr()+"/hooks/app", `{"event":"e","id":"x"}`); code != http.StatusOK {
			t.Fatalf("after writing %q, the source answers %d; the running config must stay", bad, code)
		}
		r.write(t, good)
		daemontest.Eventually(t, "the recovery", func() bool {
			return scrape(t, r.d, "switchboard_config_last_reload_successful") == "1"
		})
	}
	if n := len(r.logs.lines("config file is back to the running config; the earlier refused reload no longer applies")); n != 3 {
		t.Errorf("%d recovery log lines, want 3", n)
	}
	refused := r.logs.lines("config rejected: the file is empty (no settings, or only comments); a config needs sources and sinks, e.g. those of config.example.yaml")
	if len(refused) != 2 || refused[0]["path"] != r.path {
		t.Errorf("refusals of the empty file logged: %v", refused)
	}
}

// A reload that run would refuse at start (a file sink that cannot write)
// is refused too.
func TestReloadRefusesAnUnwritableFileSink(t *testing.T) {
	r := newReloadRig(t, ruleToCRM)
	blocker := filepath.Join(r.dir, "events.jsonl") // becomes a file below
	r.write(t, strings.Replace(reloadConfig(r.dir, r.rcv.URL, ruleToArchive), "events.jsonl", "events.jsonl/x.jsonl", 1))
	writeFile(t, blocker, "x")
	code, body := postAdmin(t, r.d, "/-/reload")
	want := "sinks.archive.path: " + blocker + " is a file, not a directory; make it writable by the user switchboard runs as, or choose another path"
	if code != http.StatusBadRequest || fmt.Sprint(body["errors"]) != "["+want+"]" {
		t.Fatalf("reload: %d %v\nwant 400 with %q", code, body, want)
	}
	if r.rules() != "to-crm" {
		t.Errorf("rules = %s, want to-crm kept", r.rules())
	}
}

// The reload log names the rules that were added, removed and changed.
func TestReloadLogNamesTheRules(t *testing.T) {
	r := newReloadRig(t, "  - { name: a, to: [crm] }\n  - { name: b, to: [crm] }\n  - { name: c, to: [crm] }\n")
	r.write(t, reloadConfig(r.dir, r.rcv.URL, "  - { name: b, to: [archive] }\n  - { name: c, to: [crm] }\n  - { name: d, to: [crm] }\n"))
	code, body := postAdmin(t, r.d, "/-/reload")
	if code != http.StatusOK {
		t.Fatalf("reload: %d %v", code, body)
	}
	ch := body["changes"].(map[string]any)
	// c moved up one place: it changed, since order decides what stop skips.
	want := map[string]any{"rules_added": []any{"d"}, "rules_removed": []any{"a"}, "rules_changed": []any{"b", "c"}}
	for k, v := range want {
		if !reflect.DeepEqual(ch[k], v) {
			t.Errorf("%s = %v, want %v", k, ch[k], v)
		}
	}
	lines := r.logs.lines("config reloaded")
	if len(lines) != 1 {
		t.Fatalf("%d 'config reloaded' lines", len(lines))
	}
	for k, v := range want {
		if !reflect.DeepEqual(lines[0][k], v) {
			t.Errorf("log %s = %v, want %v", k, lines[0][k], v)
		}
	}
}

// Every outcome series of every configured source, rule, sink and
// throttle is there from the first scrape, at 0, and a reload deletes the
// series of what it removes.
func TestSeriesExistFromTheFirstScrapeAndGoWithWhatTheyCount(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	conf := func(source, rule, sink string) string {
		return `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  ` + source + `: { type: generic }
sinks:
  ` + sink + `: { type: http, url: "` + rcv.URL + `", throttle: { key: status, limit: 1, per: 1m } }
rules:
  - { name: ` + rule + `, to: [` + sink + `], throttle: { key: status, limit: 5, per: 1m } }
`
	}
	path := filepath.Join(dir, "switchboard.yaml")
	writeFile(t, path, conf("zs-src", "zs-rule", "zs-sink"))
	d := startFile(t, path)
	present := func(source, rule, sink string) []string {
		return []string{
			`switchboard_events_received_total{outcome="accepted",reason="",source="` + source + `"}`,
			`switchboard_events_received_total{outcome="filtered",reason="",source="` + source + `"}`,
			`switchboard_events_received_total{outcome="duplicate",reason="",source="` + source + `"}`,
			`switchboard_events_received_total{outcome="rejected",reason="queue_full",source="` + source + `"}`,
			`switchboard_events_received_total{outcome="rejected",reason="too_large",source="` + source + `"}`,
			`switchboard_events_unmatched_total{source="` + source + `"}`,
			`switchboard_rule_matches_total{rule="` + rule + `"}`,
			`switchboard_rule_errors_total{rule="` + rule + `"}`,
			`switchboard_throttled_total{throttle="rule ` + rule + `"}`,
			`switchboard_throttled_total{throttle="sink ` + sink + `"}`,
			`switchboard_deliveries_total{outcome="success",sink="` + sink + `"}`,
			`switchboard_deliveries_total{outcome="retry",sink="` + sink + `"}`,
			`switchboard_deliveries_total{outcome="dead",sink="` + sink + `"}`,
			`switchboard_delivery_latency_seconds_count{sink="` + sink + `"}`,
			`switchboard_queue_depth{sink="` + sink + `"}`,
			`switchboard_dead_letters{sink="` + sink + `"}`,
			`switchboard_dead_letters_dropped_total{sink="` + sink + `"}`,
		}
	}
	for _, s := range present("zs-src", "zs-rule", "zs-sink") {
		if got := scrape(t, d, s); got != "0" {
			t.Errorf("%s = %q at start, want 0", s, got)
		}
	}
	writeFile(t, path, conf("zs-src2", "zs-rule2", "zs-sink2"))
	if code, body := postAdmin(t, d, "/-/reload"); code != http.StatusOK {
		t.Fatalf("reload: %d %v", code, body)
	}
	for _, s := range present("zs-src", "zs-rule", "zs-sink") {
		if got := scrape(t, d, s); got != "" {
			t.Errorf("%s = %q after the reload removed it, want no series", s, got)
		}
	}
	for _, s := range present("zs-src2", "zs-rule2", "zs-sink2") {
		if got := scrape(t, d, s); got != "0" {
			t.Errorf("%s = %q after the reload added it, want 0", s, got)
		}
	}
}

// A sink removed by one reload and added back by the next counts its
// deliveries in its series again: its worker's counters are the live ones.
func TestASinkAddedBackCountsItsDeliveries(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	conf := func(sink string) string {
		return `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  ab-src: { type: generic }
sinks:
  ` + sink + `: { type: http, url: "` + rcv.URL + `" }
rules:
  - { name: ab-all, to: [` + sink + `] }
`
	}
	path := filepath.Join(dir, "switchboard.yaml")
	writeFile(t, path, conf("ab-sink"))
	d := startFile(t, path)
	for _, sink := range []string{"ab-other", "ab-sink"} {
		writeFile(t, path, conf(sink))
		if code, body := postAdmin(t, d, "/-/reload"); code != http.StatusOK {
			t.Fatalf("reload to %s: %d %v", sink, code, body)
		}
	}
	if code, ans := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/ab-src", `{"event":"e","id":"back-1"}`); code != 200 {
		t.Fatalf("post: %d %v", code, ans)
	}
	series := `switchboard_deliveries_total{outcome="success",sink="ab-sink"}`
	daemontest.Eventually(t, series+" = 1", func() bool { return scrape(t, d, series) == "1" })
	if got := scrape(t, d, `switchboard_delivery_latency_seconds_count{sink="ab-sink"}`); got != "1" {
		t.Errorf("latency count = %q, want 1", got)
	}
}

// The start-up log says what runs and what was left from the last run.
func TestStartLogSaysWhatRunsAndTheBacklog(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	rcv.SetStatus(http.StatusServiceUnavailable)
	path := filepath.Join(dir, "switchboard.yaml")
	writeFile(t, path, `
server: { listen: "127.0.0.1:0", shutdown_timeout: 1s }
admin: { listen: "127.0.0.1:0" }
queue: { dir: `+filepath.Join(dir, "q")+` }
sources:
  sl-app: { type: generic, path: /in/app }
sinks:
  sl-crm: { type: http, url: "`+rcv.URL+`", retry: { initial_interval: 1h, max_interval: 1h } }
rules:
  - { name: all, to: [sl-crm] }
`)
	d, _ := startLogged(t, path)
	daemontest.Post(t, "http://"+d.WebhookAddr()+"/in/app", `{"event":"e","id":"left-1"}`)
	daemontest.Eventually(t, "the first attempt", func() bool { return len(rcv.Got()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Shutdown(ctx)

	d, logs := startLogged(t, path)
	started := logs.lines("switchboard started")
	if len(started) != 1 {
		t.Fatalf("%d start lines", len(started))
	}
	for k, v := range map[string]any{"version": "test-1.0", "config": path, "queue_dir": filepath.Join(dir, "q"),
		"pending": float64(1), "dead_letters": float64(0), "admin": d.AdminAddr(), "listen": d.WebhookAddr()} {
		if started[0][k] != v {
			t.Errorf("start line %s = %v, want %v", k, started[0][k], v)
		}
	}
	src := logs.lines("source ready")
	if len(src) != 1 || src[0]["source"] != "sl-app" || src[0]["path"] != "/in/app" || src[0]["type"] != "generic" {
		t.Errorf("source lines = %v", src)
	}
	backlog := logs.lines("backlog resumed")
	if len(backlog) != 1 || backlog[0]["sink"] != "sl-crm" || backlog[0]["pending"] != float64(1) {
		t.Errorf("backlog lines = %v", backlog)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startFile runs a daemon on the config file at path, watching it.
func startFile(t *testing.T, path string) *daemon.Daemon {
	t.Helper()
	d, _ := start(t, path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return d
}

// startLogged is startFile with the daemon's log kept, and a version set.
func startLogged(t *testing.T, path string) (*daemon.Daemon, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	d, _ := start(t, path, slog.New(slog.NewJSONHandler(logs, nil)))
	return d, logs
}

func start(t *testing.T, path string, log *slog.Logger) (*daemon.Daemon, daemon.DurableQueue) {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	q, err := daemon.OpenQueue(f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := daemon.New(snap, q, log)
	d.ConfigPath = path
	d.Version = "test-1.0"
	if err := d.Start(); err != nil {
		q.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d, q
}

// The dead-letter gauge follows a purge and a replay at once, not at the
// next tick: an operator who just purged must not see stale figures.
func TestDeadLetterGaugeFollowsPurgeAndReplayAtOnce(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	rcv.SetStatus(http.StatusBadRequest) // permanent: straight to the dead letters
	path := filepath.Join(dir, "switchboard.yaml")
	writeFile(t, path, `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: `+filepath.Join(dir, "q")+` }
sources:
  app: { type: generic }
sinks:
  crm: { type: http, url: "`+rcv.URL+`" }
rules:
  - { name: all, to: [crm] }
`)
	d := startFile(t, path)
	for _, id := range []string{"g1", "g2"} {
		if code, _ := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/app", `{"event":"e","id":"`+id+`"}`); code != 200 {
			t.Fatalf("post %s: %d", id, code)
		}
	}
	const gauge = `switchboard_dead_letters{sink="crm"}`
	daemontest.Eventually(t, "two dead letters counted", func() bool { return scrape(t, d, gauge) == "2" })
	rcv.SetStatus(http.StatusOK)
	code, body := daemontest.Admin(t, d, "POST", "/api/dlq/purge", "", `{"all": true, "q": "nothing matches this"}`)
	if code != 200 || scrape(t, d, gauge) != "2" {
		t.Fatalf("purge of none: %d %s, gauge %s", code, body, scrape(t, d, gauge))
	}
	var list struct {
		Items []struct{ ID string } `json:"items"`
	}
	_, raw := daemontest.Admin(t, d, "GET", "/api/dlq", "", "")
	if err := json.Unmarshal([]byte(raw), &list); err != nil || len(list.Items) != 2 {
		t.Fatalf("dlq: %v %s", err, raw)
	}
	if code, body := daemontest.Admin(t, d, "POST", "/api/dlq/purge", "", `{"ids": ["`+list.Items[0].ID+`"]}`); code != 200 {
		t.Fatalf("purge: %d %s", code, body)
	}
	if got := scrape(t, d, gauge); got != "1" {
		t.Errorf("%s = %s right after purging one of two, want 1", gauge, got)
	}
	if code, body := daemontest.Admin(t, d, "POST", "/api/dlq/replay", "", `{"all": true}`); code != 200 {
		t.Fatalf("replay: %d %s", code, body)
	}
	if got := scrape(t, d, gauge); got != "0" {
		t.Errorf("%s = %s right after replaying the last, want 0", gauge, got)
	}
}
