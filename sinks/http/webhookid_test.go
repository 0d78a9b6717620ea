package http

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/router"
	"switchboard/sinks/sinktest"
)

var awkwardIDs = map[string]string{
	"crlf":         "c1\r\nX-Injected: yes",
	"non-ASCII":    "appel-€-ü",
	"control":      "a\x00b\x7f",
	"space":        "call 1:ringing",
	"very long":    strings.Repeat("x", 10000),
	"empty":        "",
	"digest-like":  "sha256_abc",
	"plain":        "c1:ringing",
	"uuid and leg": "ccd826f9-67a4-4467-acfb-a53093ff5c9d:a:event:answered",
}

func TestWebhookIDIsAlwaysAHeaderValue(t *testing.T) {
	seen := map[string]string{}
	for name, id := range awkwardIDs {
		h := WebhookID(id)
		if !safeWebhookID(h) && !strings.HasPrefix(h, digestPrefix) || len(h) > 128 || strings.ContainsAny(h, " \r\n\t") {
			t.Errorf("%s: webhook-id %q is not a plain header value", name, h)
		}
		for i := 0; i < len(h); i++ {
			if h[i] <= ' ' || h[i] > '~' {
				t.Errorf("%s: webhook-id %q has byte %#x", name, h, h[i])
			}
		}
		if other, dup := seen[h]; dup {
			t.Errorf("%s and %s share webhook-id %q", name, other, h)
		}
		seen[h] = name
		if WebhookID(id) != h {
			t.Errorf("%s: webhook-id is not stable across retries", name)
		}
	}
	if WebhookID("c1:ringing") != "c1:ringing" {
		t.Error("a plain id must go out as it is")
	}
}

// Every id goes out, signed over the header's value exactly as the
// specification computes it: ${webhook-id}.${webhook-timestamp}.${body}.
func TestAwkwardIDsAreDeliveredAndVerifiable(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for name, id := range awkwardIDs {
		t.Run(name, func(t *testing.T) {
			srv, got := receiver(t, nil)
			s := build(t, map[string]any{"url": srv.URL, "signing_secret": "whsec_" + base64.StdEncoding.EncodeToString(key)})
			e := sinktest.Event("x")
			e.ID = id
			if err := s.Send(context.Background(), e); err != nil {
				t.Fatalf("send: %v", err)
			}
			r := <-got
			msgID, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(msgID + "." + ts + "." + string(r.body)))
			want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if r.header.Get("webhook-signature") != want {
				t.Errorf("signature %s, want %s over webhook-id %q", r.header.Get("webhook-signature"), want, msgID)
			}
			if msgID != WebhookID(id) {
				t.Errorf("webhook-id %q, want %q", msgID, WebhookID(id))
			}
		})
	}
}

// A header no request can carry fails for good at once: retries would
// fail alike for hours.
func TestUnsendableHeaderIsPermanent(t *testing.T) {
	srv, _ := receiver(t, nil)
	s := build(t, map[string]any{"url": srv.URL, "body": "raw"})
	e := sinktest.Event("x")
	e.Body = []byte("hello")
	e.Headers = map[string]string{"content-type": "text/plain\r\nX-Evil: 1"}
	err := s.Send(context.Background(), e)
	var p *router.PermanentError
	if err == nil || !errors.As(err, &p) || !strings.Contains(err.Error(), "header Content-Type of event x holds a line break") {
		t.Fatalf("got %v (%T), want a permanent error naming the header", err, err)
	}
}

// The official Node library (npm standardwebhooks) verifies what the sink
// sends, for every awkward id. Skipped where node and npm are missing or
// the package cannot be installed (offline).
func TestNodeStandardWebhooksVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("installs an npm package")
	}
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		t.Skip("node or npm not installed")
	}
	dir := t.TempDir()
	install := exec.Command(npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", dir, "standardwebhooks@1")
	if out, err := install.CombinedOutput(); err != nil {
		t.Skipf("cannot install standardwebhooks from npm: %v\n%s", err, out)
	}
	script := filepath.Join(dir, "verify.js")
	os.WriteFile(script, []byte(`
const { Webhook } = require("standardwebhooks");
let input = "";
process.stdin.on("data", d => input += d);
process.stdin.on("end", () => {
  const { secret, body, headers } = JSON.parse(input);
  new Webhook(secret).verify(body, headers);
  console.log("verified");
});
`), 0o644)
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	for name, id := range awkwardIDs {
		t.Run(name, func(t *testing.T) {
			srv, got := receiver(t, nil)
			s := build(t, map[string]any{"url": srv.URL, "signing_secret": secret})
			e := sinktest.Event("x")
			e.ID = id
			if err := s.Send(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			r := <-got
			in, _ := json.Marshal(map[string]any{"secret": secret, "body": string(r.body), "headers": map[string]string{
				"webhook-id": r.header.Get("webhook-id"), "webhook-timestamp": r.header.Get("webhook-timestamp"),
				"webhook-signature": r.header.Get("webhook-signature"),
			}})
			cmd := exec.Command(node, script)
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(string(in))
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "verified") {
				t.Errorf("standardwebhooks refused webhook-id %q: %v\n%s", r.header.Get("webhook-id"), err, out)
			}
		})
	}
}
