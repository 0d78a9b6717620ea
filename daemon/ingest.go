package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"switchboard/router"
	"switchboard/sinks"
	"switchboard/sources"
)

// The one ingest pipeline. The webhook listener, `switchboard route`,
// `switchboard test` and any other dry run take a request through the
// same steps, so that a dry run can never disagree with production:
//
//  1. Read: find the source by path (404), check the method (405), read
//     the body within server.max_body_bytes (413), let the source parse
//     it (its own 4xx, or 413 past server.max_batch_events), then check
//     each event: a name longer than server.max_event_name_bytes is 400;
//     an event time outside years 0000-9999 becomes the receipt time
//     (logged at warn, the payload keeps the value as sent).
//  2. Route: the source's own events and filters, then the rules; a dry
//     run also gets each rule's verdict and each sink's body.
//
// The daemon then queues what Route chose (Daemon.accept); a dry run
// delivers nothing.

// Intake is a request read and parsed by its source.
type Intake struct {
	// Source is the source the request's path names; nil for a path no
	// source serves.
	Source *Source
	Events []*router.Event
	// Reply, when set, is the answer to a verification request; there
	// are no events then.
	Reply []byte

	req sources.Request // the source's view of the request, in the same allocation
}

// Read is the pipeline's first half (see above). An error is always a
// *sources.RejectError with the status to answer; Intake.Source is set
// whenever the path names a source, for the caller's counters.
func (s *Snapshot) Read(r *http.Request, received time.Time, log *slog.Logger) (*Intake, error) {
	src, subpath := s.Lookup(r.URL.Path)
	if src == nil {
		return &Intake{}, sources.Reject(http.StatusNotFound, "unknown_path", "no source is configured at %s", shortPath(r.URL.Path))
	}
	in := &Intake{Source: src}
	if !slices.Contains(src.Methods, r.Method) {
		return in, sources.Reject(http.StatusMethodNotAllowed, "method",
			"method %s is not allowed here; use %s", r.Method, orList(src.Methods))
	}
	// HEAD is GET without an answer body (RFC 9110 9.3.2); the server
	// drops the body, the source sees a GET.
	hr := r
	if r.Method == http.MethodHead {
		hr = r.Clone(r.Context())
		hr.Method = http.MethodGet
	}
	in.req = sources.Request{HTTP: hr, ReceivedAt: received, Source: src.Name,
		Subpath: subpath, MaxBatchEvents: s.File.Server.MaxBatchEvents}
	req := &in.req
	// Nothing reads the body before the headers are judged: Go's server
	// sends `100 Continue` to a client that asked for it only on the first
	// read of the body, so a request refused on its headers is refused
	// before the client sends its body.
	if pc, ok := src.HTTP.(sources.Prechecker); ok {
		if err := pc.Precheck(req); err != nil {
			return in, err
		}
	}
	body, err := s.readBody(r)
	if err != nil {
		return in, err
	}
	req.Body = body
	res, err := src.HTTP.Parse(req)
	if err != nil {
		var re *sources.RejectError
		if !errors.As(err, &re) {
			re = &sources.RejectError{Status: http.StatusBadRequest, Reason: "parse", Msg: err.Error()}
		}
		return in, re
	}
	if res.Reply != nil {
		in.Reply = res.Reply
		return in, nil
	}
	headers := src.EventHeaders(r.Header)
	for _, ev := range res.Events {
		ev.Headers = headers
	}
	if err := s.Check(src, res.Events, log); err != nil {
		return in, err
	}
	in.Events = res.Events
	return in, nil
}

// readBody reads the request body within server.max_body_bytes, into one
// buffer sized by Content-Length when the sender gave it.
func (s *Snapshot) readBody(r *http.Request) ([]byte, error) {
	limit := int64(s.File.Server.MaxBodyBytes)
	tooLarge := func() error {
		return sources.Reject(http.StatusRequestEntityTooLarge, "too_large",
			"body is larger than server.max_body_bytes (%s)", s.File.Server.MaxBodyBytes)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	size := int64(512)
	if r.ContentLength > 0 {
		size = r.ContentLength + 1 // one more byte to see the end without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) { // no Content-Length, or a wrong one
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, tooLarge()
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, sources.Reject(http.StatusBadRequest, "read", "could not read the body: %v", err)
		}
	}
}

// Check applies the checks every event gets, from a webhook or a stream:
// its name within server.max_event_name_bytes (else a 400 naming the
// event), and its time within years 0000-9999 (else the receipt time, and
// one warn line saying why).
func (s *Snapshot) Check(src *Source, events []*router.Event, log *slog.Logger) error {
	max := s.File.Server.MaxEventNameBytes
	for i, ev := range events {
		if len(ev.Event) <= max {
			continue
		}
		at := ""
		if len(events) > 1 {
			at = fmt.Sprintf("batch element %d: ", i)
		}
		return sources.Reject(http.StatusBadRequest, "event_name",
			"%sevent name is %d bytes long, longer than server.max_event_name_bytes (%d); event names are short identifiers such as voice.inbound",
			at, len(ev.Event), max)
	}
	for _, ev := range events {
		note := ev.TimeNote
		if !router.TimeInRange(ev.Time) {
			note = "event time " + ev.Time.UTC().Format(time.RFC3339Nano) + " is outside years 0000-9999"
			ev.Time = ev.ReceivedAt
		}
		if note != "" && log != nil {
			log.Warn("event time unusable; the event keeps the receipt time as its time, and its payload the value as sent",
				"event_id", ev.ID, "source", src.Name, "event", ev.Event, "problem", note)
		}
	}
	return nil
}

// Route is the pipeline's second half for one event: the source's own
// events and filters, then the rules. It appends to dst the indexes (in
// s.Table) of the sinks that receive ev; passed is false when the source
// drops it. trace, when not nil, gets each rule's verdict.
func (s *Snapshot) Route(src *Source, ev *router.Event, dst []int, obs router.RuleObserver, trace *[]router.Verdict) (sinks []int, passed bool) {
	if !src.Passes(ev) {
		return dst, false
	}
	return s.Table.Route(ev, dst, obs, trace), true
}

// Passes reports whether ev gets past the source's own events and filters.
func (s *Source) Passes(ev *router.Event) bool {
	if len(s.events) > 0 && !s.events.Match(ev.Event) {
		return false
	}
	return s.Filters.Match(ev)
}

// Trial is what a dry run makes of one event: what `route` prints.
type Trial struct {
	Event  *router.Event              `json:"event"`
	Rules  []router.Verdict           `json:"rules"`
	Sinks  []string                   `json:"sinks"`
	Bodies map[string]json.RawMessage `json:"bodies"`
	// Filtered is set when the source's own events/filters drop the event.
	Filtered bool `json:"filtered,omitempty"`
}

// DryRun takes a request through the whole pipeline and delivers nothing:
// the Intake (its Reply for a verification request) and one Trial per
// event. Errors are Read's.
func (s *Snapshot) DryRun(r *http.Request, log *slog.Logger) (*Intake, []Trial, error) {
	in, err := s.Read(r, time.Now().UTC(), log)
	if err != nil || in.Reply != nil {
		return in, nil, err
	}
	return in, s.try(in.Source, in.Events), nil
}

// DryRunStream is DryRun for a stream source: body is one event as the
// provider's tools print it.
func (s *Snapshot) DryRunStream(src *Source, body []byte, log *slog.Logger) ([]Trial, error) {
	p, ok := src.Stream.(sources.JSONParser)
	if !ok {
		return nil, fmt.Errorf("source %s cannot read events as JSON", src.Name)
	}
	events, err := p.ParseJSON(body, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	if err := s.Check(src, events, log); err != nil {
		return nil, err
	}
	return s.try(src, events), nil
}

// TryEvent routes an event that is already normalized (a line of a file
// sink's archive), delivering nothing.
func (s *Snapshot) TryEvent(src *Source, ev *router.Event) Trial {
	return s.try(src, []*router.Event{ev})[0]
}

func (s *Snapshot) try(src *Source, events []*router.Event) []Trial {
	out := make([]Trial, 0, len(events))
	for _, ev := range events {
		t := Trial{Event: ev, Rules: []router.Verdict{}, Sinks: []string{}, Bodies: map[string]json.RawMessage{}}
		idx, passed := s.Route(src, ev, nil, nil, &t.Rules)
		t.Filtered = !passed
		for _, i := range idx {
			name := s.Table.SinkName(i)
			t.Sinks = append(t.Sinks, name)
			t.Bodies[name] = preview(s.Sinks[name], ev)
		}
		out = append(out, t)
	}
	return out
}

// preview is the body a sink would send, as JSON when it is JSON, else as
// a JSON string.
func preview(s *Sink, ev *router.Event) json.RawMessage {
	var b []byte
	var err error
	if s == nil {
		b, err = nil, errors.New("sink not built")
	} else if p, ok := s.Sink.(sinks.Previewer); ok {
		b, err = p.Preview(ev)
	} else {
		b, err = ev.MarshalJSON()
	}
	if err != nil {
		b = []byte("error: " + err.Error())
	}
	if json.Valid(b) {
		return bytes.TrimSpace(b)
	}
	q, _ := json.Marshal(string(b))
	return q
}
