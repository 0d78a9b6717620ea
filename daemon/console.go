package daemon

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"switchboard/daemon/history"
)

// consoleAssets is the path prefix of the operator console's static
// files. GET / (the console's page) and GET under this prefix are the only
// admin paths open without the token: what they serve carries no data.
// Everything the page shows comes from the token- or session-protected
// API.
const consoleAssets = "/console/"

// The console is plain HTML, CSS and JavaScript, committed and embedded:
// `go build` builds it, and it makes no request but to this listener.
//
//go:embed console
var consoleFS embed.FS

// consoleCSP allows the page nothing but its own files and this
// listener's API: no inline script, no other origin, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// mountConsole is where the operator console adds its handlers to the
// admin listener: the page at "GET /{$}", static files under consoleAssets,
// its API under /api/. Every handler mounted here sits behind adminGuard
// (see admin.go) with nothing more to do: Host and Origin are checked, the
// token or session is required outside the page and its files, and a
// handler for anything but GET and HEAD only ever sees a POST with a JSON
// body. The session endpoints the console logs in with are in session.go.
//
//	GET  /api/status    the overview: sources, rules, sinks, reload, version
//	GET  /api/tap       server-sent events: each request's outcome, live
//	GET  /api/history   recent events and their delivery attempts
//	POST /api/try       a payload through the ingest pipeline, delivering nothing
//	GET  /api/config    the running config, redacted, and the file's diff
func (d *Daemon) mountConsole(mux *http.ServeMux) {
	static, _ := fs.Sub(consoleFS, "console")
	files := http.StripPrefix(consoleAssets, http.FileServerFS(static))
	mux.Handle("GET "+consoleAssets, consoleHeaders(files))
	mux.Handle("GET /{$}", consoleHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})))
	mux.HandleFunc("GET /api/status", d.serveStatus)
	mux.HandleFunc("GET /api/tap", d.serveTap)
	mux.HandleFunc("GET /api/history", d.serveHistory)
	mux.HandleFunc("POST /api/try", d.serveTry)
	mux.HandleFunc("GET /api/config", d.serveConfig)
}

func consoleHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", consoleCSP)
		h.ServeHTTP(w, r)
	})
}

// serveHistory is GET /api/history: ?id=EVENT_ID, or ?source=&since=&until=
// (RFC 3339 times, or durations meaning "ago": since=15m), with limit and
// cursor for the next page. It answers {"items": [...], "next_cursor": n},
// newest first.
func (d *Daemon) serveHistory(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	q := r.URL.Query()
	hq := history.Query{ID: q.Get("id"), Source: q.Get("source")}
	var err error
	if hq.Since, err = timeParam(q.Get("since"), now); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "since: " + err.Error()})
		return
	}
	if hq.Until, err = timeParam(q.Get("until"), now); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "until: " + err.Error()})
		return
	}
	for _, p := range []struct {
		name string
		dst  any
	}{{"limit", &hq.Limit}, {"cursor", &hq.Before}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": p.name + " must be a whole number, got " + strconv.Quote(v)})
			return
		}
		switch dst := p.dst.(type) {
		case *int:
			*dst = int(n)
		case *uint64:
			*dst = n
		}
	}
	if d.history == nil {
		writeJSON(w, http.StatusOK, map[string]any{"items": []any{}, "off": true})
		return
	}
	writeJSON(w, http.StatusOK, d.history.Find(hq, now))
}

// timeParam reads an RFC 3339 time, or a duration before now.
func timeParam(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &paramError{v}
	}
	return t, nil
}

type paramError struct{ v string }

func (e *paramError) Error() string {
	return strconv.Quote(e.v) + " is neither a time like 2026-11-26T03:00:00Z nor a duration like 15m (that long ago)"
}
