package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNATSQueueSettings(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, []byte("creds"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]byte(withRequired(`
queue:
  driver: nats
  max_bytes: 2GiB
  nats:
    url: nats://nats-0:4222, nats-1:4222 ,tls://nats-2.example.com:4222
    replicas: 3
    credentials_file: ` + creds + `
`)))
	if err != nil {
		t.Fatal(err)
	}
	n := f.Queue.NATS
	if f.Queue.Driver != DriverNATS || n.Stream != "SWITCHBOARD" || n.Replicas != 3 || n.AckWait != 30*time.Second || n.CredentialsFile != creds {
		t.Errorf("settings: %+v", f.Queue)
	}
	if f.Queue.DeadLetterMaxAge != 30*24*time.Hour || f.Queue.DeadLetterMaxBytes != 1<<30 {
		t.Errorf("dead-letter limits default to 30d and 1GiB, got %v %v", f.Queue.DeadLetterMaxAge, f.Queue.DeadLetterMaxBytes)
	}
	if ws := f.Warnings(); len(ws) != 0 {
		t.Errorf("replicas 3 warned: %v", ws)
	}
}

func TestQueueWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"embedded", `queue: { dir: /tmp/x }`, ""},
		{"nats R3", `queue: { driver: nats, nats: { url: "nats://n:4222", replicas: 3 } }`, ""},
		{"nats R1", `queue: { driver: nats, nats: { url: "nats://n:4222" } }`,
			"queue.nats.replicas: is 1: one NATS server keeps the queue, and an acknowledged event is lost with its disk (and on power loss unless that server syncs always); use 3 in production"},
		{"one sink takes all of max_bytes", "queue: { max_bytes: 64KiB }\nserver: { max_body_bytes: 64KiB }\nsinks: { a: { type: log } }", ""},
		{"shares of max_bytes hold the largest body", "queue: { max_bytes: 128KiB }\nserver: { max_body_bytes: 64KiB }\nsinks: { a: { type: log }, b: { type: log } }", ""},
		{"a share smaller than the largest body", "queue: { max_bytes: 100KiB }\nserver: { max_body_bytes: 64KiB }\nsinks: { a: { type: log }, b: { type: log } }",
			"queue.max_bytes: is 100KiB for 2 sinks: each sink's share (50KiB) is less than server.max_body_bytes (64KiB), so an event that large waits for no sink and goes straight to the dead-letter queue; raise queue.max_bytes to at least 128KiB"},
		{"nats has no shares", "queue: { driver: nats, max_bytes: 100KiB, nats: { url: \"nats://n:4222\", replicas: 3 } }\nserver: { max_body_bytes: 64KiB }\nsinks: { a: { type: log }, b: { type: log } }", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(withRequired(tc.yaml)))
			if err != nil {
				t.Fatal(err)
			}
			got := f.Warnings().Error()
			if got != tc.want {
				t.Errorf("warnings:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
