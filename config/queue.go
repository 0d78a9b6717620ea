package config

import (
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// streamRE is what JetStream accepts as a stream name and what stays one
// subject token: the stream name prefixes every subject switchboard uses.
var streamRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (q *Queue) check(ps *Problems) {
	switch q.Driver {
	case DriverEmbedded:
		if q.Dir == "" {
			ps.Add("queue.dir", "is required: the directory that holds queued deliveries")
		}
	case DriverNATS:
		q.NATS.check(ps)
	default:
		ps.Add("queue.driver", "%q is not a queue driver; use embedded (a queue in queue.dir, one daemon) or nats (a JetStream stream shared by several replicas)", q.Driver)
	}
}

func (n *NATS) check(ps *Problems) {
	const at = "queue.nats"
	if strings.TrimSpace(n.URL) == "" {
		ps.Add(at+".url", "is required with queue.driver nats: the NATS server, or a comma-separated list of a cluster's servers, e.g. nats://nats-0:4222,nats://nats-1:4222")
	}
	for _, u := range strings.Split(n.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			if msg := checkNATSURL(u); msg != "" {
				ps.Add(at+".url", "%q %s", u, msg)
			}
		}
	}
	if !streamRE.MatchString(n.Stream) {
		ps.Add(at+".stream", "%q is not a stream name; use 1 to 32 letters, digits, - and _ (e.g. SWITCHBOARD)", n.Stream)
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		ps.Add(at+".replicas", "%d is out of range; JetStream keeps 1 to 5 copies (3 in production)", n.Replicas)
	}
	if n.AckWait < time.Second {
		ps.Add(at+".ack_wait", "must be at least 1s, e.g. 30s")
	}
	auth := 0
	for _, f := range []struct{ key, path string }{
		{"credentials_file", n.CredentialsFile}, {"nkey_file", n.NKeyFile}, {"token_file", n.TokenFile},
		{"tls.ca_file", n.TLS.CAFile}, {"tls.cert_file", n.TLS.CertFile}, {"tls.key_file", n.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if !strings.HasPrefix(f.key, "tls.") {
			auth++
		}
		if msg := checkReadable(f.path); msg != "" {
			ps.Add(at+"."+f.key, "%s", msg)
		}
	}
	if auth > 1 {
		ps.Add(at, "give one of credentials_file, nkey_file and token_file, not several")
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		ps.Add(at+".tls", "cert_file and key_file go together: give both for a client certificate, or neither")
	}
}

// checkNATSURL returns what is wrong with one server address, or "".
func checkNATSURL(s string) string {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a URL; write it like nats://nats-0:4222"
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return "has scheme " + u.Scheme + "; use nats:// (or tls://, ws://, wss://)"
	}
	if u.Hostname() == "" {
		return "names no host; write it like nats://nats-0:4222"
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return "has a bad port; write it like nats://nats-0:4222"
		}
	}
	return ""
}

// checkReadable returns why path cannot be read, or "".
func checkReadable(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "cannot be read: " + err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return path + " is a directory; name the file"
	}
	return ""
}

// queueWarnings adds the queue settings that work but that an operator
// should think about again.
func (f *File) queueWarnings(ws *Problems) {
	if f.Queue.Driver == DriverNATS && f.Queue.NATS.Replicas == 1 {
		ws.Add("queue.nats.replicas", "is 1: one NATS server keeps the queue, and an acknowledged event is lost with its disk (and on power loss unless that server syncs always); use 3 in production")
	}
	// The embedded queue gives each sink an equal share of max_bytes.
	if n := len(f.Sinks); f.Queue.Driver != DriverNATS && f.Queue.MaxBytes > 0 && n > 1 {
		if share := f.Queue.MaxBytes / Size(n); share < f.Server.MaxBodyBytes {
			ws.Add("queue.max_bytes", "is %s for %d sinks: each sink's share (%s) is less than server.max_body_bytes (%s), so an event that large waits for no sink and goes straight to the dead-letter queue; raise queue.max_bytes to at least %s",
				f.Queue.MaxBytes, n, share, f.Server.MaxBodyBytes, f.Server.MaxBodyBytes*Size(n))
		}
	}
}
