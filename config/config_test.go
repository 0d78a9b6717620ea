package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env is a fake environment for parse: tests never touch the process's.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func parseFile(t *testing.T, name string, vars map[string]string) (*File, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "config", name))
	if err != nil {
		t.Fatal(err)
	}
	return parse(b, env(vars))
}

// problemLines returns err's problems as `check` prints them, one a line.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, not Problems: %v", err, err)
	}
	return strings.Split(ps.Error(), "\n")
}

// badConfigs maps each testdata/config/bad-*.yaml to every problem it must
// report, in the order reported (sorted by path).
var badConfigs = []struct {
	file string
	env  map[string]string
	want []string
}{
	{file: "bad-unknown-top-level.yaml", want: []string{
		`sever: unknown setting; did you mean "server"?`,
	}},
	{file: "bad-unknown-nested.yaml", want: []string{
		`server.listen_addr: unknown setting; known settings: listen, max_batch_events, max_body_bytes, max_connections, max_event_name_bytes, read_timeout, shutdown_timeout, write_timeout`,
	}},
	{file: "bad-unknown-rule-key.yaml", want: []string{
		`rules[0].wen: unknown setting; did you mean "when"?`,
	}},
	{file: "bad-duration.yaml", want: []string{
		`server.read_timeout: "10 seconds" is not a duration; write it like 500ms, 30s, 5m or 1h`,
	}},
	{file: "bad-duration-no-unit.yaml", want: []string{
		`server.shutdown_timeout: 15 has no unit; write it like 30s or 5m`,
	}},
	{file: "bad-server-limits.yaml", want: []string{
		`server.max_batch_events: must be 1 or more (defaults: max_event_name_bytes 256, max_batch_events 1000, max_connections 1024)`,
		`server.max_connections: must be 1 or more (defaults: max_event_name_bytes 256, max_batch_events 1000, max_connections 1024)`,
		`server.max_event_name_bytes: must be 1 or more (defaults: max_event_name_bytes 256, max_batch_events 1000, max_connections 1024)`,
	}},
	{file: "bad-size.yaml", want: []string{
		`server.max_body_bytes: "lots" is not a size; write it like 512KiB, 1MiB or 4096 (bytes)`,
	}},
	{file: "bad-size-overflow.yaml", want: []string{
		`server.max_body_bytes: "1e+300" is not a size; write it like 512KiB, 1MiB or 4096 (bytes)`,
	}},
	{file: "bad-listen.yaml", want: []string{
		`admin.listen: "localhost" is not host:port; write it like ":8080" or "127.0.0.1:9090"`,
		`server.listen: "8080" is not host:port; write it like ":8080" or "127.0.0.1:9090"`,
	}},
	{file: "bad-listen-clash.yaml", want: []string{
		`admin.listen: "127.0.0.1:8080" and server.listen ":8080" take the same port, so the daemon could not start; give the admin listener its own port, e.g. 127.0.0.1:9090`,
	}},
	{file: "bad-history.yaml", want: []string{
		"history.max_age: must be 0 (kept until max_events newer events push it out) or a duration such as 1h",
		"history.max_events: must be 0 (history off) to 1000000; each event kept costs about 1 KB of memory",
	}},
	{file: "bad-log.yaml", want: []string{
		`log.format: "pretty" is not a format; use text (human, coloured on a terminal) or json`,
		`log.level: "verbose" is not a level; use debug, info, warn or error`,
	}},
	{file: "bad-env-unset.yaml", want: []string{
		`sources.bird.signing_key: environment variable BIRD_SIGNING_KEY is not set; export it or give a default with ${BIRD_SIGNING_KEY:-value}`,
	}},
	{file: "bad-env-unset.yaml", env: map[string]string{"BIRD_SIGNING_KEY_2": "x"}, want: []string{
		`sources.bird.signing_key: environment variable BIRD_SIGNING_KEY is not set; export it or give a default with ${BIRD_SIGNING_KEY:-value}`,
	}},
	{file: "bad-env-unset-in-list.yaml", want: []string{
		`rules[0].to[1]: environment variable EXTRA_SINK is not set; export it or give a default with ${EXTRA_SINK:-value}`,
	}},
	{file: "bad-env-syntax.yaml", want: []string{
		`sinks.crm.token: unterminated ${ in "${CRM_TOKEN"; close it with } (write $${ for a literal ${)`,
		`sinks.crm.url: ${CRM PATH} is not a valid variable reference; use ${NAME} or ${NAME:-default}`,
	}},
	{file: "bad-source-name.yaml", want: []string{
		`sources.my bird: source names use letters, digits, - and _ (they appear in paths and metrics)`,
	}},
	{file: "bad-source-path.yaml", want: []string{
		`sources.bird.path: "hooks/bird" must start with /`,
	}},
	{file: "bad-duplicate-path.yaml", want: []string{
		`sources.telecmi.path: "/hooks/voice" is already the path of source "bird"; give each source its own path`,
	}},
	{file: "bad-sink-type.yaml", want: []string{
		`sinks.archive.type: is required`,
	}},
	{file: "bad-retry.yaml", want: []string{
		`sinks.crm.retry.max_interval: 5s is below initial_interval 10s`,
		`sinks.crm.retry.multiplier: must be 1 or more (1 = constant interval)`,
	}},
	{file: "bad-wrong-type.yaml", want: []string{
		`sinks.crm.concurrency: cannot parse value as 'int'`,
		`sinks.crm.retry.max_attempts: cannot parse value as 'int'`,
	}},
	{file: "bad-queue-driver.yaml", want: []string{
		`queue.driver: "kafka" is not a queue driver; use embedded (a queue in queue.dir, one daemon) or nats (a JetStream stream shared by several replicas)`,
	}},
	{file: "bad-nats-no-url.yaml", want: []string{
		`queue.nats.url: is required with queue.driver nats: the NATS server, or a comma-separated list of a cluster's servers, e.g. nats://nats-0:4222,nats://nats-1:4222`,
	}},
	{file: "bad-nats.yaml", want: []string{
		`queue.nats: give one of credentials_file, nkey_file and token_file, not several`,
		`queue.nats.ack_wait: must be at least 1s, e.g. 30s`,
		`queue.nats.credentials_file: cannot be read: open /nonexistent/user.creds: no such file or directory`,
		`queue.nats.replicas: 7 is out of range; JetStream keeps 1 to 5 copies (3 in production)`,
		`queue.nats.stream: "my.stream" is not a stream name; use 1 to 32 letters, digits, - and _ (e.g. SWITCHBOARD)`,
		`queue.nats.tls: cert_file and key_file go together: give both for a client certificate, or neither`,
		`queue.nats.tls.cert_file: cannot be read: open /nonexistent/cert.pem: no such file or directory`,
		`queue.nats.token_file: cannot be read: open /nonexistent/token: no such file or directory`,
		`queue.nats.url: "http://b:80" has scheme http; use nats:// (or tls://, ws://, wss://)`,
		`queue.nats.url: "nats://:4222" names no host; write it like nats://nats-0:4222`,
	}},
	{file: "bad-queue.yaml", want: []string{
		`queue.dead_letter_max_age: must be 0 (keep until replayed or purged) or a duration such as 720h (30 days)`,
		`queue.dead_letter_max_bytes: must be 0 (no bound) or a size such as 1GiB`,
		`queue.dedup_window: must be 0 (off) or a duration such as 1h`,
		`queue.max_bytes: must be 0 (no limit) or a size such as 1GiB`,
		`queue.max_pending_per_sink: must be 0 (no bound) or a number of deliveries such as 100000`,
	}},
	{file: "bad-not-yaml.yaml", want: []string{
		`not valid YAML: yaml: line 2: did not find expected key`,
	}},
	{file: "bad-tab-indent.yaml", want: []string{
		`not valid YAML: YAML does not allow tabs for indentation; use spaces (line 4)`,
	}},
	{file: "bad-empty.yaml", want: []string{
		`the file is empty (no settings, or only comments); a config needs sources and sinks, e.g. those of config.example.yaml`,
	}},
	{file: "bad-no-sources.yaml", want: []string{
		`sources: none defined; a config needs at least one source to receive events, e.g. sources: {events: {type: generic}}`,
	}},
	{file: "bad-no-sinks.yaml", want: []string{
		`sinks: none defined; a config needs at least one sink to deliver to, e.g. sinks: {archive: {type: file, path: ./data/events.jsonl}}`,
	}},
	{file: "bad-several.yaml", want: []string{
		`log.format: "pretty" is not a format; use text (human, coloured on a terminal) or json`,
		`log.level: "loud" is not a level; use debug, info, warn or error`,
		`server.listen: "8080" is not host:port; write it like ":8080" or "127.0.0.1:9090"`,
		`sinks.archive.concurrency: must be 0 (the type's default) or more`,
		`sinks.archive.type: is required`,
		`sinks.crm.retry.max_attempts: must be at least 1`,
		`sinks.crm.type: is required`,
	}},
	{file: "bad-secret-file-both.yaml", want: []string{
		`admin.auth.bearer_token_file: is set together with bearer_token; set one of them: bearer_token holds the value, bearer_token_file the path of a file holding it`,
	}},
	{file: "bad-secret-file-missing.yaml", want: []string{
		`admin.auth.bearer_token_file: cannot read the secret file: stat /nonexistent/switchboard/admin-token: no such file or directory`,
	}},
	{file: "bad-secret-file-not-a-path.yaml", want: []string{
		`admin.auth.bearer_token_file: must be the path of a file holding the bearer_token, e.g. /run/secrets/bearer_token`,
	}},
	{file: "bad-env-secret-in-wrong-field.yaml", env: map[string]string{
		"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/s3cr3tXYZ", "SHORT": "k3y", "CRM_TOKEN": "crm-token-123"},
		want: []string{
			`server.max_body_bytes: the value of ${SHORT} is not a size; write it like 512KiB, 1MiB or 4096 (bytes)`,
			`server.read_timeout: the value of ${SLACK_WEBHOOK_URL} is not a duration; write it like 500ms, 30s, 5m or 1h`,
			`sinks.crm.retry.max_age: the value of ${CRM_TOKEN} is not a duration; write it like 500ms, 30s, 5m or 1h`,
		}},
	{file: "bad-admin.yaml", want: []string{
		`admin.allowed_hosts[0]: "https://switchboard.example.com" is a URL, not a host; write a host name as requests give it in Host, e.g. switchboard.monitoring.svc or switchboard.example.com:9090`,
		`admin.allowed_hosts[1]: "" is empty; write a host name as requests give it in Host, e.g. switchboard.monitoring.svc or switchboard.example.com:9090`,
		`admin.allowed_hosts[2]: "a b" is not a host name; write a host name as requests give it in Host, e.g. switchboard.monitoring.svc or switchboard.example.com:9090`,
		`sources.bird.keep_headers[1]: Authorization carries the sender's credentials, which are never stored; remove it`,
		`sources.bird.keep_headers[2]: "x y" is not a header name; write it like content-type or x-request-id`,
	}},
	{file: "bad-several-decode.yaml", want: []string{
		`server.max_body_bytes: "huge" is not a size; write it like 512KiB, 1MiB or 4096 (bytes)`,
		`server.read_timeout: "soon" is not a duration; write it like 500ms, 30s, 5m or 1h`,
		`sinks.crm.retry.max_age: "forever" is not a duration; write it like 500ms, 30s, 5m or 1h`,
		`sinks.crm.token: environment variable CRM_TOKEN is not set; export it or give a default with ${CRM_TOKEN:-value}`,
	}},
}

func TestBadConfigReportsEveryProblemWithItsPath(t *testing.T) {
	for _, tc := range badConfigs {
		t.Run(tc.file, func(t *testing.T) {
			f, err := parseFile(t, tc.file, tc.env)
			if err == nil {
				t.Fatalf("parsed without error: %+v", f)
			}
			if f != nil {
				t.Errorf("returned a File along with the error")
			}
			got := problemLines(t, err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func TestEveryBadConfigFileIsInTheTable(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "config", "bad-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tc := range badConfigs {
		listed[tc.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no expected problems in badConfigs", f)
		}
	}
}

// Map iteration is random; the same file must always give the same report.
func TestProblemsAreStableAcrossRuns(t *testing.T) {
	const doc = "sources:\n" +
		"  a: {type: x, path: /p}\n  b: {type: x, path: /p}\n  c: {type: x, path: /p}\n" +
		"sinks:\n  s1: {}\n  s2: {}\n  s3: {}\n"
	_, first := parse([]byte(doc), env(nil))
	want := []string{
		`sinks.s1.type: is required`,
		`sinks.s2.type: is required`,
		`sinks.s3.type: is required`,
		`sources.b.path: "/p" is already the path of source "a"; give each source its own path`,
		`sources.c.path: "/p" is already the path of source "b"; give each source its own path`,
	}
	if got := problemLines(t, first); !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n got: %q\nwant: %q", got, want)
	}
	for range 50 {
		_, err := parse([]byte(doc), env(nil))
		if err.Error() != first.Error() {
			t.Fatalf("report changed between runs:\n%v\n---\n%v", first, err)
		}
	}
}

func TestDefaultsApplied(t *testing.T) {
	f, err := parseFile(t, "good-minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Sources = map[string]Source{"bird": {Type: "bird", Path: "/hooks/bird"}}
	want.Sinks = map[string]Sink{"archive": {Type: "file", Retry: DefaultRetry}}
	want.Rules = []Rule{{Name: "everything", To: []string{"archive"}}}
	if !reflect.DeepEqual(*f, want) {
		t.Errorf("got  %+v\nwant %+v", *f, want)
	}
	// The defaults the contract names, spelled out.
	if f.Server.Listen != ":8080" {
		t.Errorf("server.listen = %q, want :8080", f.Server.Listen)
	}
	if f.Server.MaxBodyBytes != 1<<20 {
		t.Errorf("server.max_body_bytes = %d, want 1MiB", f.Server.MaxBodyBytes)
	}
	if f.Admin.Listen != "127.0.0.1:9090" || f.Log != (Log{Level: "info", Format: "text"}) || f.Queue.Dir != "./data" {
		t.Errorf("admin/log/queue defaults: %+v %+v %+v", f.Admin, f.Log, f.Queue)
	}
	if f.Queue.DeadLetterMaxAge != 30*24*time.Hour || f.Queue.DeadLetterMaxBytes != 1<<30 {
		t.Errorf("dead-letter bounds default to %v and %d, want 30 days and 1GiB", f.Queue.DeadLetterMaxAge, f.Queue.DeadLetterMaxBytes)
	}
}

func TestEmptyFileIsRefused(t *testing.T) {
	for _, doc := range []string{"", "\n", "# nothing yet\n", "{}\n", "---\n"} {
		_, err := parse([]byte(doc), env(nil))
		if err == nil {
			t.Fatalf("%q: parsed", doc)
		}
		want := []string{"the file is empty (no settings, or only comments); a config needs sources and sinks, e.g. those of config.example.yaml"}
		if got := problemLines(t, err); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: problems %q, want %q", doc, got, want)
		}
	}
}

// withRequired adds a source and a sink to a document that lacks them, so
// that a test of one setting is not refused for want of them.
func withRequired(doc string) string {
	if !strings.Contains(doc, "sources:") {
		doc += "\nsources: {zz-events: {type: generic}}"
	}
	if !strings.Contains(doc, "sinks:") {
		doc += "\nsinks: {zz-log: {type: log}}"
	}
	return doc + "\n"
}

func TestFullConfigDecodes(t *testing.T) {
	f, err := parseFile(t, "good-full.yaml", map[string]string{
		"BIRD_SIGNING_KEY":  "k3y",
		"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Settings the file does not give (queue limits) keep their defaults.
	queue := Defaults().Queue
	queue.Dir = "/var/lib/switchboard"
	want := File{
		Server: Server{Listen: "127.0.0.1:18080", MaxBodyBytes: 4 << 10, MaxEventNameBytes: 128, MaxBatchEvents: 50,
			MaxConnections: 64, ReadTimeout: 3 * time.Second, WriteTimeout: 4 * time.Second, ShutdownTimeout: time.Minute},
		Admin:   Admin{Listen: ":19090"},
		Log:     Log{Level: "debug", Format: "json"},
		Queue:   queue,
		History: History{MaxEvents: 500, MaxAge: 10 * time.Minute},
		Sources: map[string]Source{
			"bird": {Type: "bird", Path: "/in/bird", Events: []string{"voice.inbound", "voice.outbound"},
				Filters: []Filter{{Key: "status", Value: "failed"}, {Key: "status", Value: "busy"}},
				Options: map[string]any{"signing_key": "k3y", "public_url": "https://hooks.example.com/in/bird"}},
			"generic": {Type: "generic", Path: "/hooks/generic"},
		},
		Sinks: map[string]Sink{
			"oncall": {Type: "slack", Concurrency: 4,
				Retry: Retry{MaxAttempts: 3, InitialInterval: 500 * time.Millisecond, MaxInterval: 10 * time.Second,
					Multiplier: 1.5, MaxAge: time.Hour},
				Options: map[string]any{"webhook_url": "https://hooks.slack.com/services/T/B/X",
					"text": "{{ .event }} {{ .status }} to {{ .payload.to }}"}},
			"archive": {Type: "file", Retry: DefaultRetry,
				Options: map[string]any{"path": "./data/events.jsonl", "max_size": "10MB"}},
		},
		Rules: []Rule{{Name: "failed-calls", Sources: []string{"bird"}, Events: []string{"voice.*"},
			When: `event startsWith "voice." && status in ["failed", "busy", "no-answer"]`,
			To:   []string{"oncall", "archive"}, Stop: true}},
		Unmatched: []string{"archive"},
	}
	f.env = nil // what the variables became: see TestEnvValuesAreNamedNotPrinted
	if !reflect.DeepEqual(*f, want) {
		t.Errorf("got  %#v\nwant %#v", *f, want)
	}
}

func TestSinkRetryDefaultsFillOnlyWhatIsUnset(t *testing.T) {
	f, err := parse([]byte(withRequired("sinks:\n  crm: {type: http, retry: {max_attempts: 3, max_interval: 1h}}\n")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultRetry
	want.MaxAttempts = 3
	want.MaxInterval = time.Hour
	if got := f.Sinks["crm"].Retry; got != want {
		t.Errorf("retry = %+v, want %+v", got, want)
	}
}

func TestSizesInConfig(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  Size
	}{
		{"1MiB", 1 << 20},
		{"4KiB", 4 << 10},
		{"10MB", 10_000_000},
		{"4096", 4096},
		{"65536", 65536},
		{`"2048"`, 2048},
		{"1.5KiB", 1536},
		{"2 MiB", 2 << 20},
	} {
		t.Run(tc.value, func(t *testing.T) {
			f, err := parse([]byte(withRequired("server: {max_body_bytes: "+tc.value+"}\n")), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if f.Server.MaxBodyBytes != tc.want {
				t.Errorf("max_body_bytes = %d, want %d", f.Server.MaxBodyBytes, tc.want)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	vars := map[string]string{"HOST": "crm.example.com", "TOKEN": "t0k", "EMPTY": "", "SINK": "archive", "EV": "voice.inbound"}
	for _, tc := range []struct {
		name string
		doc  string
		get  func(*File) any
		want any
	}{
		{
			name: "variable inside a string",
			doc:  "sinks: {crm: {type: http, url: 'https://${HOST}/hooks?x=1'}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["url"] },
			want: "https://crm.example.com/hooks?x=1",
		},
		{
			name: "default used when unset",
			doc:  "sinks: {crm: {type: http, url: '${CRM_URL:-http://localhost:9000}'}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["url"] },
			want: "http://localhost:9000",
		},
		{
			name: "default used when set but empty",
			doc:  "sinks: {crm: {type: http, url: '${EMPTY:-http://fallback}'}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["url"] },
			want: "http://fallback",
		},
		{
			name: "set but empty without default is empty",
			doc:  "sinks: {crm: {type: http, url: 'x${EMPTY}y'}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["url"] },
			want: "xy",
		},
		{
			name: "default ignored when set",
			doc:  "sinks: {crm: {type: http, url: 'https://${HOST:-localhost}'}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["url"] },
			want: "https://crm.example.com",
		},
		{
			name: "double dollar is a literal",
			doc:  "sinks: {crm: {type: http, body: 'cost $${PRICE} for ${TOKEN}'}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["body"] },
			want: "cost ${PRICE} for t0k",
		},
		{
			name: "inside a list",
			doc:  "sources: {bird: {type: bird, events: ['${EV}', voice.outbound]}}",
			get:  func(f *File) any { return f.Sources["bird"].Events },
			want: []string{"voice.inbound", "voice.outbound"},
		},
		{
			name: "inside a nested map",
			doc:  "sinks: {crm: {type: http, headers: {Authorization: 'Bearer ${TOKEN}'}}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["headers"] },
			want: map[string]any{"Authorization": "Bearer t0k"},
		},
		{
			name: "inside a list of maps",
			doc:  "sinks: {archive: {type: file}}\nrules: [{name: r, to: ['${SINK}'], filters: [{key: event, value: '${EV}'}]}]",
			get:  func(f *File) any { return f.Rules[0] },
			want: Rule{Name: "r", To: []string{"archive"}, Filters: []Filter{{Key: "event", Value: "voice.inbound"}}},
		},
		{
			name: "keys are not expanded",
			doc:  "sinks: {crm: {type: http, headers: {'${TOKEN}': v}}}",
			get:  func(f *File) any { return f.Sinks["crm"].Options["headers"] },
			want: map[string]any{"${TOKEN}": "v"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parse([]byte(withRequired(tc.doc)), env(vars))
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(f); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestExpandString(t *testing.T) {
	lookup := env(map[string]string{"A": "1", "B_2": "two", "EMPTY": "", "DOLLAR": "$x"})
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "plain", want: "plain"},
		{in: "$A", want: "$A"},
		{in: "${A}", want: "1"},
		{in: "${A}${B_2}", want: "1two"},
		{in: "pre-${A}-post", want: "pre-1-post"},
		{in: "${UNSET:-dflt}", want: "dflt"},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "${EMPTY}", want: ""},
		{in: "${EMPTY:-dflt}", want: "dflt"},
		{in: "$${A}", want: "${A}"},
		{in: "$${A} and ${A}", want: "${A} and 1"},
		{in: "${DOLLAR}", want: "$x"},
		{in: "${UNSET}", err: "environment variable UNSET is not set; export it or give a default with ${UNSET:-value}"},
		{in: "ok ${A} then ${MISSING}", err: "environment variable MISSING is not set; export it or give a default with ${MISSING:-value}"},
		{in: "${A", err: `unterminated ${ in "${A"; close it with } (write $${ for a literal ${)`},
		{in: "${}", err: "${} is not a valid variable reference; use ${NAME} or ${NAME:-default}"},
		{in: "${1A}", err: "${1A} is not a valid variable reference; use ${NAME} or ${NAME:-default}"},
		{in: "${A-B}", err: "${A-B} is not a valid variable reference; use ${NAME} or ${NAME:-default}"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := expandString(tc.in, lookup, nil)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "4096", want: 4096},
		{in: "1B", want: 1},
		{in: "512KiB", want: 512 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "1KB", want: 1000},
		{in: "10MB", want: 10_000_000},
		{in: "3GB", want: 3_000_000_000},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "4K", want: 4096},
		{in: "1M", want: 1 << 20},
		{in: "1G", want: 1 << 30},
		{in: "1.5KiB", want: 1536},
		{in: " 2 MiB ", want: 2 << 20},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "lots", bad: true},
		{in: "-1", bad: true},
		{in: "-1KiB", bad: true},
		{in: "1mib", bad: true},
		{in: "1 PiB", bad: true},
		{in: "NaN", bad: true},
		{in: "Inf", bad: true},
		{in: "+Inf", bad: true},
		{in: "1e30", bad: true},
		{in: "10000000TB", bad: true},
		{in: "1e400", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.bad {
				want := fmt.Sprintf("%q is not a size; write it like 512KiB, 1MiB or 4096 (bytes)", tc.in)
				if err == nil || err.Error() != want {
					t.Fatalf("ParseSize(%q) = %d, %v; want error %q", tc.in, got, err, want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	for _, tc := range []struct {
		in   Size
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1000, "1000B"},
		{1023, "1023B"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{4 << 10, "4KiB"},
		{1 << 20, "1MiB"},
		{1<<20 + 1<<10, "1025KiB"},
		{10_000_000, "10000000B"},
		{3 << 30, "3GiB"},
		{1 << 40, "1024GiB"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
		if back, err := ParseSize(tc.in.String()); err != nil || back != tc.in {
			t.Errorf("ParseSize(%q) = %d, %v; want the size back", tc.in.String(), back, err)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"server", "server", 0},
		{"sever", "server", 1},
		{"sevrer", "server", 2},
		{"wen", "when", 1},
		{"listen_addr", "listen", 5},
		{"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields, _ := structKeys(reflect.TypeOf(File{}))
	server, _ := structKeys(reflect.TypeOf(Server{}))
	for _, tc := range []struct {
		key    string
		fields map[string]reflect.Type
		want   string
	}{
		{"sever", fields, `; did you mean "server"?`},
		{"Server", fields, `; did you mean "server"?`},
		{"SINKS", fields, `; did you mean "sinks"?`},
		{"rule", fields, `; did you mean "rules"?`},
		{"unmached", fields, `; did you mean "unmatched"?`},
		{"queues", fields, `; did you mean "queue"?`},
		{"listen_addr", server, "; known settings: listen, max_batch_events, max_body_bytes, max_connections, max_event_name_bytes, read_timeout, shutdown_timeout, write_timeout"},
		{"xyz", fields, "; known settings: admin, history, log, queue, rules, server, sinks, sources, unmatched"},
		{"anything", map[string]reflect.Type{}, "; this section takes no settings"},
	} {
		if got := suggest(tc.key, tc.fields); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestDecodeIntoPluginOptions(t *testing.T) {
	type options struct {
		URL     string        `koanf:"url"`
		Token   Secret        `koanf:"token"`
		Timeout time.Duration `koanf:"timeout"`
		MaxSize Size          `koanf:"max_size"`
		Retries int           `koanf:"retries"`
	}
	t.Run("decodes over defaults", func(t *testing.T) {
		o := options{Timeout: 5 * time.Second, Retries: 2}
		raw := map[string]any{"url": "https://x", "token": "s3cret", "max_size": "10MB"}
		if ps := Decode(raw, &o, "sinks.crm"); ps != nil {
			t.Fatal(ps)
		}
		want := options{URL: "https://x", Token: "s3cret", Timeout: 5 * time.Second, MaxSize: 10_000_000, Retries: 2}
		if o != want {
			t.Errorf("got %+v, want %+v", o, want)
		}
	})
	t.Run("every problem under the given path", func(t *testing.T) {
		var o options
		raw := map[string]any{"url": "https://x", "timout": "1s"}
		got := Decode(raw, &o, "sinks.crm").Error()
		want := `sinks.crm.timout: unknown setting; did you mean "timeout"?`
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		raw = map[string]any{"timeout": "soon", "max_size": "big", "retries": "many"}
		want = `sinks.crm.max_size: "big" is not a size; write it like 512KiB, 1MiB or 4096 (bytes)` + "\n" +
			`sinks.crm.retries: cannot parse value as 'int'` + "\n" +
			`sinks.crm.timeout: "soon" is not a duration; write it like 500ms, 30s, 5m or 1h`
		ps := Decode(raw, &o, "sinks.crm")
		ps.Sort()
		if got = ps.Error(); got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
}

func TestLoad(t *testing.T) {
	f, err := Load(filepath.Join("testdata", "config", "good-minimal.yaml"))
	if err != nil || f.Sources["bird"].Path != "/hooks/bird" {
		t.Fatalf("Load = %+v, %v", f, err)
	}
	_, err = Load(filepath.Join("testdata", "config", "no-such-file.yaml"))
	want := "cannot read config: open testdata/config/no-such-file.yaml: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestProblems(t *testing.T) {
	var ps Problems
	if ps.Err() != nil {
		t.Error("no problems must be a nil error")
	}
	ps.Add("sinks.b", "is %s", "wrong")
	ps.Add("", "whole file")
	ps.Add("rules[1]", "100% literal") // no args: not a format string
	ps.Merge("sinks.a", Problem{Path: "url", Msg: `"x" is not a URL`})
	ps.Merge("sinks.c", Problems{{Path: "[0]", Msg: "first"}, {Path: "", Msg: "here"}})
	ps.Merge("sinks.d", errors.New("plain"))
	ps.Merge("sinks.e", nil)
	ps.Sort()
	want := "whole file\n" +
		"rules[1]: 100% literal\n" +
		`sinks.a.url: "x" is not a URL` + "\n" +
		"sinks.b: is wrong\n" +
		"sinks.c: here\n" +
		"sinks.c[0]: first\n" +
		"sinks.d: plain"
	if got := ps.Err().Error(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestJoin(t *testing.T) {
	for _, tc := range [][3]string{
		{"", "a", "a"}, {"a", "", "a"}, {"a", "b", "a.b"}, {"rules", "[2]", "rules[2]"}, {"a.b", "c.d", "a.b.c.d"},
	} {
		if got := Join(tc[0], tc[1]); got != tc[2] {
			t.Errorf("Join(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	for _, tc := range []struct{ format, want string }{
		{"%v", "<secret>"},
		{"%s", "<secret>"},
		{"%#v", "<secret>"},
		{"%+v", "<secret>"},
		{"%q", `"<secret>"`},
		{"%v", "<secret>"},
	} {
		if got := fmt.Sprintf(tc.format, s); got != tc.want {
			t.Errorf("Sprintf(%q) = %q, want %q", tc.format, got, tc.want)
		}
	}
	// A wrong verb must not print the value either.
	for _, format := range []string{"%d", "%x", "%X", "%t", "%10s", "%.3s", "%T=%v"} {
		if got := fmt.Sprintf(format, s); strings.Contains(got, "hunter2") || strings.Contains(got, hex.EncodeToString([]byte("hunter2"))) {
			t.Errorf("Sprintf(%q) = %q leaks the secret", format, got)
		}
	}
	if got := fmt.Sprint(s); got != "<secret>" {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintf("%v %+v", struct{ Token Secret }{s}, &struct{ Token Secret }{s}); got != "{<secret>} &{Token:<secret>}" {
		t.Errorf("in a struct: %q", got)
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal = %q", s.Reveal())
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	log.Info("loaded", "key", s, slog.Any("any", s), slog.Group("g", "k", s), "opts", struct{ Token Secret }{s})
	want := `{"level":"INFO","msg":"loaded","key":"<secret>","any":"<secret>","g":{"k":"<secret>"},"opts":{"Token":"<secret>"}}` + "\n"
	if buf.String() != want {
		t.Errorf("slog JSON:\n got %s\nwant %s", buf.String(), want)
	}

	b, err := json.Marshal(map[string]Secret{"token": s})
	if err != nil || string(b) != `{"token":"\u003csecret\u003e"}` {
		t.Errorf("json = %s, %v", b, err)
	}
}

func TestListenersClash(t *testing.T) {
	for _, tt := range []struct {
		server, admin string
		clash         bool
	}{
		{":8080", ":9090", false},
		{":8080", ":8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"0.0.0.0:9090", "127.0.0.1:9090", true},
		{"[::]:9090", "[::1]:9090", true},
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"localhost:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "[::1]:8080", false},
		{"10.0.0.1:8080", "127.0.0.1:8080", false},
		{"127.0.0.1:0", "127.0.0.1:0", false}, // each picks a free port
		{"8080", "8080", false},               // not host:port: its own problem
	} {
		if got := listenersClash(tt.server, tt.admin); got != tt.clash {
			t.Errorf("listenersClash(%q, %q) = %v, want %v", tt.server, tt.admin, got, tt.clash)
		}
	}
}
