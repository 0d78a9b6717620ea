package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"switchboard/router"
	"switchboard/sources"
)

// DryRequest is one request to take through the ingest pipeline without
// a server and without delivering anything: what `switchboard route`
// and the console's "try a payload" send.
type DryRequest struct {
	Source string `json:"source"`
	// Path is the request path, for sources that take a segment below
	// their own; default the source's path.
	Path    string            `json:"path,omitempty"`
	Query   string            `json:"query,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the payload; nil makes the request a GET carrying only
	// Query (GET-style sources).
	Body []byte `json:"-"`
	// RemoteAddr is the client address; default 127.0.0.1:40000.
	RemoteAddr string `json:"-"`
}

// UsageError is a dry request naming no usable source or path.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Try runs dr through the pipeline: the webhook's own steps (method, body
// size, the source's parsing and checks) then routing with every rule's
// verdict; for a stream source, its JSON form of one event. A body that is
// already a normalized event (a file sink's line, an event from the tap)
// is routed as it is. It returns the trials, or the answer to a
// verification request; an error is a UsageError or the rejection the
// webhook listener would answer. Nothing is queued, counted or
// throttled.
func (s *Snapshot) Try(dr DryRequest, log *slog.Logger) ([]Trial, []byte, error) {
	if ev := Normalized(dr.Body); ev != nil {
		src := s.Sources[ev.Source]
		if src == nil {
			src = s.Sources[dr.Source]
		}
		if src != nil {
			return []Trial{s.TryEvent(src, ev)}, nil, nil
		}
	}
	src := s.Sources[dr.Source]
	if src != nil && src.Stream != nil && dr.Body != nil {
		if _, ok := src.Stream.(sources.JSONParser); ok {
			trials, err := s.DryRunStream(src, dr.Body, log)
			return trials, nil, err
		}
	}
	if src == nil || src.HTTP == nil {
		return nil, nil, UsageError{fmt.Sprintf("no webhook source named %q; sources: %s", dr.Source, strings.Join(s.TryableSources(), ", "))}
	}
	target := src.Path
	if dr.Path != "" {
		if found, _ := s.Lookup(dr.Path); found != src {
			return nil, nil, UsageError{fmt.Sprintf("path %s is not served by source %s (its path is %s)", dr.Path, src.Name, src.Path)}
		}
		target = dr.Path
	}
	if dr.Query != "" {
		target += "?" + strings.TrimPrefix(dr.Query, "?")
	}
	method := http.MethodPost
	if dr.Body == nil {
		method = http.MethodGet
	}
	req := httptest.NewRequest(method, target, bytes.NewReader(dr.Body))
	req.RemoteAddr = "127.0.0.1:40000"
	if dr.RemoteAddr != "" {
		req.RemoteAddr = dr.RemoteAddr
	}
	if len(dr.Body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range dr.Headers {
		req.Header.Set(k, v)
	}
	in, trials, err := s.DryRun(req, log)
	if err != nil {
		return nil, nil, err
	}
	return trials, in.Reply, nil
}

// TryableSources names the sources Try takes payloads for: every webhook
// source, and stream sources that read their events as JSON.
func (s *Snapshot) TryableSources() []string {
	var out []string
	for name, src := range s.Sources {
		if _, ok := src.Stream.(sources.JSONParser); src.HTTP != nil || ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Normalized returns the event when b is a normalized event, as the file
// sink writes it and the tap shows it, else nil.
func Normalized(b []byte) *router.Event {
	var probe struct {
		ID         *string          `json:"id"`
		Source     *string          `json:"source"`
		ReceivedAt *string          `json:"received_at"`
		Payload    *json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(b, &probe) != nil || probe.ID == nil || probe.Source == nil || probe.ReceivedAt == nil || probe.Payload == nil {
		return nil
	}
	ev := &router.Event{}
	if ev.UnmarshalJSON(b) != nil {
		return nil
	}
	return ev
}

// tryRequest is POST /api/try's body: DryRequest with the payload as text.
type tryRequest struct {
	DryRequest
	Payload *string `json:"payload"`
}

// tryAnswer is POST /api/try's answer: the trials, the answer to a
// verification request, or the rejection the webhook would answer.
type tryAnswer struct {
	Trials   []Trial   `json:"trials"`
	Reply    string    `json:"reply,omitempty"`
	Rejected *rejected `json:"rejected,omitempty"`
}

type rejected struct {
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

// serveTry is POST /api/try.
func (d *Daemon) serveTry(w http.ResponseWriter, r *http.Request) {
	snap := d.snap.Load()
	var req tryRequest
	limit := int64(snap.File.Server.MaxBodyBytes)*2 + 64<<10 // a body within the limit, quoted as JSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"source": "...", "payload": "...", "query": "k=v", "headers": {"K": "V"}}: ` + err.Error()})
		return
	}
	if req.Payload != nil {
		req.Body = []byte(*req.Payload)
	}
	trials, reply, err := snap.Try(req.DryRequest, nil)
	var ue UsageError
	var re *sources.RejectError
	switch {
	case errors.As(err, &ue):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": ue.Msg})
		return
	case errors.As(err, &re):
		writeJSON(w, http.StatusOK, tryAnswer{Trials: []Trial{}, Rejected: &rejected{Status: re.Status, Reason: re.Reason, Error: re.Msg}})
		return
	case err != nil:
		writeJSON(w, http.StatusOK, tryAnswer{Trials: []Trial{}, Rejected: &rejected{Status: http.StatusBadRequest, Reason: "parse", Error: err.Error()}})
		return
	}
	if trials == nil {
		trials = []Trial{}
	}
	writeJSON(w, http.StatusOK, tryAnswer{Trials: trials, Reply: string(reply)})
}
