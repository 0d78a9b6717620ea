package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/daemon/daemontest"
)

// reloadRig is a daemon started from a real file in a temp dir, watching it.
type reloadRig struct {
	dir, path string
	d         *daemon.Daemon
	rcv       *daemontest.Receiver
	logs      *syncBuffer // the daemon's log, JSON lines
}

// syncBuffer collects a log written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the log lines whose msg is msg, decoded.
func (s *syncBuffer) lines(msg string) []map[string]any {
	s.mu.Lock()
	text := s.b.String()
	s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(text, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func reloadConfig(dir, url, rule string) string {
	return `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  app: { type: generic }
sinks:
  crm: { type: http, url: "` + url + `/crm", retry: { initial_interval: 10ms, max_interval: 20ms } }
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
rules:
` + rule
}

const ruleToCRM = `  - { name: to-crm, to: [crm] }
`
const ruleToArchive = `  - { name: to-archive, to: [archive] }
`

func newReloadRig(t *testing.T, rules string) *reloadRig {
	t.Helper()
	dir := t.TempDir()
	r := &reloadRig{dir: dir, path: filepath.Join(dir, "switchboard.yaml"), rcv: daemontest.NewReceiver(t)}
	r.write(t, reloadConfig(dir, r.rcv.URL, rules))
	r.start(t)
	return r
}

// start runs the daemon on the config at r.path, watching it: unlike
// daemontest.Start, ConfigPath must be set before the daemon starts.
func (r *reloadRig) start(t *testing.T) {
	t.Helper()
	f, err := config.Load(r.path)
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
	r.logs = &syncBuffer{}
	r.d = daemon.New(snap, q, slog.New(slog.NewJSONHandler(r.logs, nil)))
	r.d.ConfigPath = r.path
	if err := r.d.Start(); err != nil {
		q.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.Shutdown(t.Context()) })
}

func (r *reloadRig) write(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(r.path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ruleNames is what the running config's rules are, seen through `route`
// semantics: the rules the daemon would evaluate.
func (r *reloadRig) rules() string {
	var names []string
	for _, rule := range r.d.Snapshot().File.Rules {
		names = append(names, rule.Name)
	}
	return strings.Join(names, ",")
}

func (r *reloadRig) waitRules(t *testing.T, want string) {
	t.Helper()
	daemontest.Eventually(t, "rules "+want, func() bool { return r.rules() == want })
}

func TestReloadOnEveryKindOfEdit(t *testing.T) {
	edits := []struct {
		name  string
		apply func(t *testing.T, r *reloadRig, content string)
	}{
		{"write in place", func(t *testing.T, r *reloadRig, content string) {
			f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(content)
			f.Close()
		}},
		{"rename over (editor save)", func(t *testing.T, r *reloadRig, content string) {
			tmp := r.path + ".swp"
			os.WriteFile(tmp, []byte(content), 0o644)
			if err := os.Rename(tmp, r.path); err != nil {
				t.Fatal(err)
			}
		}},
		{"remove and create", func(t *testing.T, r *reloadRig, content string) {
			os.Remove(r.path)
			os.WriteFile(r.path, []byte(content), 0o644)
		}},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			r := newReloadRig(t, ruleToCRM)
			e.apply(t, r, reloadConfig(r.dir, r.rcv.URL, ruleToArchive))
			r.waitRules(t, "to-archive")
		})
	}
}

// TestReloadKubernetesConfigMapSwap mimics how the kubelet updates a
// mounted ConfigMap: the file is a symlink through ..data, and an update
// swaps the ..data symlink to a new timestamped directory.
func TestReloadKubernetesConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	mount := filepath.Join(dir, "mount")
	os.MkdirAll(filepath.Join(mount, "..2026_11_23_v1"), 0o755)
	os.WriteFile(filepath.Join(mount, "..2026_11_23_v1", "switchboard.yaml"), []byte(reloadConfig(dir, rcv.URL, ruleToCRM)), 0o644)
	os.Symlink("..2026_11_23_v1", filepath.Join(mount, "..data"))
	os.Symlink(filepath.Join("..data", "switchboard.yaml"), filepath.Join(mount, "switchboard.yaml"))
	r := &reloadRig{dir: dir, path: filepath.Join(mount, "switchboard.yaml"), rcv: rcv}
	r.start(t)

	os.MkdirAll(filepath.Join(mount, "..2026_11_23_v2"), 0o755)
	os.WriteFile(filepath.Join(mount, "..2026_11_23_v2", "switchboard.yaml"), []byte(reloadConfig(dir, rcv.URL, ruleToArchive)), 0o644)
	os.Symlink("..2026_11_23_v2", filepath.Join(mount, "..data_tmp"))
	if err := os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	r.waitRules(t, "to-archive")
}

func TestInvalidEditKeepsRunningConfig(t *testing.T) {
	r := newReloadRig(t, ruleToCRM)
	r.write(t, reloadConfig(r.dir, r.rcv.URL, `  - { name: broken, when: 'status ==', to: [nope] }
`))
	time.Sleep(3 * daemon.Debounce)
	if got := r.rules(); got != "to-crm" {
		t.Fatalf("rules = %s, want the old to-crm kept", got)
	}
	if got := scrape(t, r.d, "switchboard_config_last_reload_successful"); got != "0" {
		t.Errorf("reload_successful = %s, want 0", got)
	}
	// Fixing the file applies it.
	r.write(t, reloadConfig(r.dir, r.rcv.URL, ruleToArchive))
	r.waitRules(t, "to-archive")
	if got := scrape(t, r.d, "switchboard_config_last_reload_successful"); got != "1" {
		t.Errorf("reload_successful = %s, want 1", got)
	}
}

func TestRapidEditsAreDebouncedToTheLast(t *testing.T) {
	r := newReloadRig(t, ruleToCRM)
	for i := range 20 {
		r.write(t, reloadConfig(r.dir, r.rcv.URL, fmt.Sprintf("  - { name: v%d, to: [crm] }\n", i)))
		time.Sleep(5 * time.Millisecond)
	}
	r.waitRules(t, "v19")
}

func TestReloadEndpoint(t *testing.T) {
	r := newReloadRig(t, ruleToCRM)
	r.write(t, reloadConfig(r.dir, r.rcv.URL, ruleToArchive)+"bogus: 1\n")
	code, body := postAdmin(t, r.d, "/-/reload")
	if code != 400 || body["status"] != "invalid" {
		t.Fatalf("invalid reload: %d %v", code, body)
	}
	errs, _ := body["errors"].([]any)
	if len(errs) != 1 || errs[0] != `bogus: unknown setting; did you mean "queue"?` && !strings.HasPrefix(errs[0].(string), "bogus: unknown setting") {
		t.Errorf("errors = %v", body["errors"])
	}
	newCfg := strings.Replace(reloadConfig(r.dir, r.rcv.URL, ruleToArchive), "/crm", "/crm2", 1)
	newCfg = strings.Replace(newCfg, `server: { listen: "127.0.0.1:0" }`, `server: { listen: "127.0.0.1:1" }`, 1)
	r.write(t, newCfg)
	code, body = postAdmin(t, r.d, "/-/reload")
	if code != 200 || body["status"] != "reloaded" {
		t.Fatalf("reload: %d %v", code, body)
	}
	ch := body["changes"].(map[string]any)
	if fmt.Sprint(ch["sinks_changed"]) != "[crm]" || fmt.Sprint(ch["need_restart"]) != "[server.listen]" {
		t.Errorf("changes = %v", ch)
	}
}

// TestReloadStormLosesAndDuplicatesNothing posts events from several
// goroutines while the rules flip between two configs; every accepted event
// reaches the one sink its config chose, exactly once.
func TestReloadStormLosesAndDuplicatesNothing(t *testing.T) {
	r := newReloadRig(t, ruleToCRM)
	base := "http://" + r.d.WebhookAddr() + "/hooks/app"
	var accepted sync.Map
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("g%d-%d", g, i)
				resp, err := http.Post(base, "application/json", strings.NewReader(`{"event":"e","id":"`+id+`"}`))
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					accepted.Store(id, true)
					n.Add(1)
				}
			}
		}()
	}
	for i := range 10 {
		rules := ruleToCRM
		if i%2 == 0 {
			rules = ruleToArchive
		}
		r.write(t, reloadConfig(r.dir, r.rcv.URL, rules)+fmt.Sprintf("# edit %d\n", i))
		if _, err := r.d.Reload("test"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	seen := map[string]int{}
	daemontest.Eventually(t, "every accepted event delivered", func() bool {
		clear(seen)
		for _, b := range r.rcv.Got() {
			var e map[string]any
			json.Unmarshal([]byte(b), &e)
			seen[e["id"].(string)]++
		}
		for _, l := range daemontest.ReadLines(t, filepath.Join(r.dir, "events.jsonl")) {
			seen[l["id"].(string)]++
		}
		return int64(len(seen)) >= n.Load()
	})
	accepted.Range(func(k, _ any) bool {
		if seen[k.(string)] != 1 {
			t.Errorf("event %s delivered %d times, want once", k, seen[k.(string)])
		}
		return true
	})
	t.Logf("%d events across 10 reloads", n.Load())
}

func postAdmin(t *testing.T, d *daemon.Daemon, path string) (int, map[string]any) {
	t.Helper()
	return daemontest.Post(t, "http://"+d.AdminAddr()+path, "", "Content-Type", "application/json")
}

func scrape(t *testing.T, d *daemon.Daemon, metric string) string {
	t.Helper()
	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, metric+" ") {
			return strings.TrimPrefix(line, metric+" ")
		}
	}
	return ""
}

// TestReloadsKeepStormControl: reloads that leave a throttle as it was,
// whatever triggers them and whether the file's bytes changed, keep its
// window, so a burst across three of them pages once, not four times; a
// reload that changes the throttle sends what it held back at once.
func TestReloadsKeepStormControl(t *testing.T) {
	throttled := func(limit int) string {
		return fmt.Sprintf("  - { name: alert, to: [crm], throttle: { key: payload.k, limit: %d, per: 1h } }\n", limit)
	}
	r := newReloadRig(t, throttled(1))
	base := "http://" + r.d.WebhookAddr() + "/hooks/app"
	post := func(id string) {
		t.Helper()
		if code, body := daemontest.Post(t, base, `{"event":"e","id":"`+id+`","k":"one"}`); code != 200 {
			t.Fatalf("post %s: %d %v", id, code, body)
		}
	}
	content := reloadConfig(r.dir, r.rcv.URL, throttled(1))
	post("e1")
	daemontest.Eventually(t, "the first event delivered", func() bool { return len(r.rcv.Got()) == 1 })

	// A comment changes the bytes, so this goes all the way to a new table.
	r.write(t, content+"# reviewed\n")
	if ch, err := r.d.Reload("test"); err != nil || ch.Unchanged {
		t.Fatalf("edited reload: %+v %v", ch, err)
	}
	post("e2")
	if code, body := postAdmin(t, r.d, "/-/reload"); code != 200 || body["status"] != "unchanged" {
		t.Fatalf("identical reload through the API: %d %v", code, body)
	}
	post("e3")
	if ch, err := r.d.Reload("SIGHUP"); err != nil || !ch.Unchanged {
		t.Fatalf("identical reload by signal: %+v %v", ch, err)
	}
	post("e4")
	if got := scrape(t, r.d, `switchboard_throttled_total{throttle="rule alert"}`); got != "3" {
		t.Errorf("held back %q events across three reloads, want 3", got)
	}

	r.write(t, reloadConfig(r.dir, r.rcv.URL, throttled(2)))
	if _, err := r.d.Reload("test"); err != nil {
		t.Fatal(err)
	}
	var summary map[string]any
	daemontest.Eventually(t, "the changed throttle's summary delivered", func() bool {
		for _, b := range r.rcv.Got() {
			var e map[string]any
			if json.Unmarshal([]byte(b), &e) == nil && e["event"] == "switchboard:throttled" {
				summary = e["payload"].(map[string]any)
				return true
			}
		}
		return false
	})
	if summary["suppressed"] != 3.0 || summary["first_id"] != "e2" || summary["last_id"] != "e4" {
		t.Errorf("summary = %v, want e2..e4 held back", summary)
	}
	var pages []string
	for _, b := range r.rcv.Got() {
		var e map[string]any
		json.Unmarshal([]byte(b), &e)
		if e["event"] == "e" {
			pages = append(pages, e["id"].(string))
		}
	}
	if len(pages) != 1 {
		t.Errorf("paged for %v, want only e1", pages)
	}
}

// A reload that brings a new warning says it (at warn, once): here a third
// sink makes each sink's share of queue.max_bytes smaller than the largest
// body a source takes. A reload that changes nothing about it says nothing
// again.
func TestReloadLogsWarningsItAdds(t *testing.T) {
	r := newReloadRig(t, ruleToCRM)
	small := func(cfg string) string {
		cfg = strings.Replace(cfg, `server: { listen: "127.0.0.1:0" }`, `server: { listen: "127.0.0.1:0", max_body_bytes: 1MiB }`, 1)
		return strings.Replace(cfg, "queue: { dir: ", "queue: { max_bytes: 2MiB, dir: ", 1)
	}
	const spare = "sinks:\n  spare: { type: log }\n"
	const msg = "is 2MiB for 3 sinks: each sink's share (699050B) is less than server.max_body_bytes (1MiB), so an event that large waits for no sink and goes straight to the dead-letter queue; raise queue.max_bytes to at least 3MiB"
	reload := func(cfg string) {
		t.Helper()
		r.write(t, cfg)
		if code, body := postAdmin(t, r.d, "/-/reload"); code != 200 || body["status"] != "reloaded" {
			t.Fatalf("reload: %d %v", code, body)
		}
	}
	reload(small(reloadConfig(r.dir, r.rcv.URL, ruleToCRM)))
	if got := r.logs.lines(msg); len(got) != 0 {
		t.Fatalf("two sinks share 2MiB: warned %v", got)
	}
	reload(strings.Replace(small(reloadConfig(r.dir, r.rcv.URL, ruleToCRM)), "sinks:\n", spare, 1))
	got := r.logs.lines(msg)
	if len(got) != 1 || got[0]["level"] != "WARN" || got[0]["setting"] != "queue.max_bytes" {
		t.Fatalf("third sink: warnings %v, want one at warn naming queue.max_bytes", got)
	}
	reload(strings.Replace(small(reloadConfig(r.dir, r.rcv.URL, ruleToArchive)), "sinks:\n", spare, 1))
	if got := r.logs.lines(msg); len(got) != 1 {
		t.Errorf("a reload that kept the warning repeated it: %d lines", len(got))
	}
}
