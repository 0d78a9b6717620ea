// Package sources defines what a source type is and keeps the registry of
// types. Each type lives in its own package (sources/generic,
// sources/bird, ...), registers itself in init, and is linked in by one
// blank import in sources/all.
//
// A source is either an HTTPSource, served by the daemon's webhook listener
// at the source's path, or a StreamSource, which runs its own client (a
// gRPC event stream) and hands events to an Acceptor. Everything common to
// all sources (body limits, status codes, source-level events and filters,
// routing, queueing) is the daemon's job, not the source's.
package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"switchboard/registry"
	"switchboard/router"
)

// Builder is a source type's decoded options. The registry hands the
// daemon a fresh one with defaults set; config.Decode fills it from YAML;
// Build checks it and makes the source without starting anything (so that
// `check` and `route` run the same code as `run`).
type Builder interface {
	// Build returns an HTTPSource or a StreamSource. Problems with
	// settings are returned as config.Problems naming the setting.
	Build(info Info) (any, error)
}

// Info is what a source knows about its place in the configuration.
type Info struct {
	Name string // configured source name
	// Events is the source's common `events` setting: for webhook sources
	// a filter the host applies, for stream sources what to subscribe to.
	Events []string
}

// HTTPSource parses webhook requests.
type HTTPSource interface {
	// Parse turns one request into events. A request that must be refused
	// returns an error made with Reject (any other error answers 400).
	Parse(req *Request) (*Result, error)
}

// Prechecker is optionally implemented by an HTTPSource whose
// authentication reads only the request line and headers (a bearer token,
// basic credentials, a token in the URL, the presence of signature
// headers). The daemon calls Precheck before it reads the body, so that a
// request the headers already condemn is refused before `100 Continue` is
// sent and before its body crosses the network. Request.Body is nil.
// Parse must still check everything itself.
type Prechecker interface {
	Precheck(req *Request) error
}

// Methods is optionally implemented by an HTTPSource that takes more than
// POST. A source that takes GET takes HEAD too.
type Methods interface {
	Methods() []string
}

// Subpaths is optionally implemented by an HTTPSource that also takes
// requests one path segment below its path: /hooks/mob/sms:message:status,
// /hooks/telecmi/<token>. The segment arrives as Request.Subpath.
type Subpaths interface {
	TakesSubpath() bool
}

// Catalog is optionally implemented by a Builder whose type only ever
// emits a known set of events. A source of that type pins its events, so
// that status filters of the rules limited to it are checked at load.
type Catalog interface {
	Events() []string
}

// DefaultKeepHeaders are the request headers stored with every event of a
// webhook source that sets no keep_headers, besides what its type adds
// (HeaderDefaults): what rules and sinks use (the http sink's body: raw
// forwards the content type) and what tells requests apart in a log.
var DefaultKeepHeaders = []string{"content-type", "user-agent", "x-forwarded-for", "x-request-id"}

// HeaderDefaults is optionally implemented by a Builder whose provider
// sends headers worth keeping with each event (its own request id); they
// are added to DefaultKeepHeaders for sources without keep_headers.
type HeaderDefaults interface {
	KeepHeaders() []string
}

// StreamSource runs a client that receives events, until ctx ends.
type StreamSource interface {
	Run(ctx context.Context, acc Acceptor) error
}

// Connector is optionally implemented by a StreamSource that can tell
// whether its stream is up; /readyz names the sources whose stream is down.
type Connector interface {
	Connected() bool
}

// ReplayWindow is optionally implemented by a built source whose requests
// stay valid for a while after they are made (a signature with a timestamp
// checked against a maximum age): an accepted event's id is remembered for
// at least that long, so that a captured request replayed while it is
// still valid is acknowledged but never routed twice.
type ReplayWindow interface {
	ReplayWindow() time.Duration
}

// LogSetter is optionally implemented by a StreamSource that logs; the
// daemon hands it its logger before Run.
type LogSetter interface {
	SetLogger(*slog.Logger)
}

// JSONParser is optionally implemented by a StreamSource whose events can
// be written as JSON (as the provider's tools print them), so that `route`
// can dry-run them.
type JSONParser interface {
	ParseJSON(b []byte, received time.Time) ([]*router.Event, error)
}

// Acceptor takes events from a stream source. Accept returns only when the
// events' deliveries are queued (or the events were filtered or are
// duplicates); a stream source acks its server only after that.
type Acceptor interface {
	Accept(ctx context.Context, events []*router.Event) error
}

// Request is one webhook request, body already read within the limit.
type Request struct {
	HTTP       *http.Request
	Body       []byte
	ReceivedAt time.Time
	Source     string
	// Subpath is the path segment below the source's path, for sources
	// implementing Subpaths; "" otherwise.
	Subpath string
	// MaxBatchEvents is server.max_batch_events: a source taking batches
	// refuses larger ones (DecodeBatch does). 0 means no bound.
	MaxBatchEvents int
}

// Result is what a source made of a request.
type Result struct {
	Events []*router.Event
	// Reply, when set, is answered (200, JSON) instead of accepting events:
	// a webhook verification challenge, for example.
	Reply []byte

	one [1]*router.Event
}

// NewResult returns a Result with room for n events, in one allocation
// when n is 1, as for nearly every request.
func NewResult(n int) *Result {
	r := &Result{}
	if n == 1 {
		r.Events = r.one[:0]
	} else {
		r.Events = make([]*router.Event, 0, n)
	}
	return r
}

// OneEvent returns the Result of a request holding ev alone.
func OneEvent(ev *router.Event) *Result {
	r := NewResult(1)
	r.Events = append(r.Events, ev)
	return r
}

// RejectError is a request refused with an HTTP status and a message that
// tells the sender what is wrong.
type RejectError struct {
	Status int
	Reason string // short, for metrics: bad_json, no_event, auth, ...
	Msg    string
	// Challenge is the WWW-Authenticate value of a 401: how the sender
	// authenticates (RFC 9110 requires one, and clients that send their
	// credentials only after a challenge need it).
	Challenge string
}

func (e *RejectError) Error() string { return e.Msg }

// Reject makes a RejectError.
func Reject(status int, reason, format string, args ...any) error {
	return &RejectError{Status: status, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// WithChallenge gives err, when it is a 401 RejectError, the
// WWW-Authenticate challenge; other errors are returned as they are.
func WithChallenge(err error, challenge string) error {
	var re *RejectError
	if errors.As(err, &re) && re.Status == http.StatusUnauthorized {
		re.Challenge = challenge
	}
	return err
}

// Challenges for WWW-Authenticate. Schemes without a standard (a
// signature, a token in the URL) are named after what the sender must
// send, with the source's name as realm.
const BearerChallenge = "Bearer"

// BasicChallenge is the HTTP Basic challenge for a source.
func BasicChallenge(source string) string {
	return `Basic realm="` + source + `", charset="UTF-8"`
}

// SchemeChallenge is a challenge of the given scheme for a source.
func SchemeChallenge(scheme, source string) string {
	return scheme + ` realm="` + source + `"`
}

// BearerToken returns the token of an Authorization header value of the
// Bearer scheme. The scheme is matched without regard to case (RFC 9110
// 11.1) and any run of spaces may follow it.
func BearerToken(header string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimSpace(rest)
	return tok, tok != ""
}

// Factory returns a Builder with its defaults set.
type Factory func() Builder

var types = registry.New[Factory]("source")

// Register adds a type. It panics on an empty or duplicate name, so that a
// wiring mistake fails at start, not at the first event.
func Register(typ string, f Factory) {
	if f == nil {
		panic("sources: Register(" + typ + ") with a nil factory")
	}
	types.Add(typ, f)
}

// Lookup returns the factory of a type.
func Lookup(typ string) (Factory, bool) { return types.Lookup(typ) }

// Types lists the registered types, sorted.
func Types() []string { return types.Types() }
