package cisco

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sources"
	"switchboard/sources/cisco/internal/pb"
)

// DefaultTokenURL is the provider's OAuth2 token endpoint.
const DefaultTokenURL = "https://id.wgtwo.com/oauth2/token"

// eventType is one event type of the API: its proto name, the OAuth scope
// a client needs to subscribe to it ("" when none is documented) and the
// statuses its events can have.
type eventType struct {
	name     string
	typ      pb.EventType
	scope    string
	statuses []string
}

// eventTypes is the catalog, in the API's enum order. The scopes are the
// documented "required rights"; CONSENT_REVOKE_EVENT needs none, and none
// is documented for TOKEN_AUDIT_EVENT, FIRST_ATTACHMENT_EVENT and
// PERIODIC_COUNTRY_EVENT.
var eventTypes = []eventType{
	{"VOICE_EVENT", pb.EventType_VOICE_EVENT, "events.voice.subscribe",
		[]string{"CALL_INITIATED", "CALL_RINGING", "CALL_ANSWERED", "CALL_ENDED", "CALL_FWD_VOICEMAIL"}},
	{"VOICEMAIL_EVENT", pb.EventType_VOICEMAIL_EVENT, "events.voicemail.subscribe", []string{"NEW_VOICEMAIL"}},
	{"LOCATION_UPDATE_EVENT", pb.EventType_LOCATION_UPDATE_EVENT, "events.location.subscribe", nil},
	{"COUNTRY_CHANGE_EVENT", pb.EventType_COUNTRY_CHANGE_EVENT, "events.roaming.subscribe", nil},
	{"TOKEN_AUDIT_EVENT", pb.EventType_TOKEN_AUDIT_EVENT, "", nil},
	{"SMS_EVENT", pb.EventType_SMS_EVENT, "events.sms.subscribe", nil},
	{"SMS_DELIVERY_REPORT_EVENT", pb.EventType_SMS_DELIVERY_REPORT_EVENT, "events.sms_delivery_report.subscribe",
		[]string{"DELIVERED", "TEMPORARY_FAILURE", "FINAL_FAILURE", "EXPIRED", "STATUS_UNKNOWN"}},
	{"CONSENT_REVOKE_EVENT", pb.EventType_CONSENT_REVOKE_EVENT, "", nil},
	{"HANDSET_UPDATE_EVENT", pb.EventType_HANDSET_UPDATE_EVENT, "events.handset_update.subscribe", nil},
	{"FIRST_ATTACHMENT_EVENT", pb.EventType_FIRST_ATTACHMENT_EVENT, "", nil},
	{"PERIODIC_COUNTRY_EVENT", pb.EventType_PERIODIC_COUNTRY_EVENT, "", nil},
}

// aliases maps the names the provider's documentation uses, which are not
// in the proto, to the proto names.
var aliases = map[string]string{
	"ROAMING_EVENT":      "COUNTRY_CHANGE_EVENT",
	"SMS_DELIVERY_EVENT": "SMS_DELIVERY_REPORT_EVENT",
}

func lookupType(name string) (eventType, bool) {
	if a, ok := aliases[name]; ok {
		name = a
	}
	for _, et := range eventTypes {
		if et.name == name {
			return et, true
		}
	}
	return eventType{}, false
}

func typeNames() []string {
	names := make([]string, len(eventTypes))
	for i, et := range eventTypes {
		names[i] = et.name
	}
	return names
}

func init() {
	for _, et := range eventTypes {
		router.DeclareEvent(et.name, et.statuses...)
	}
	for alias, name := range aliases {
		router.DeclareAlias(alias, name)
	}
	sources.Register("cisco", func() sources.Builder {
		return &Options{
			OAuth:     OAuth{TokenURL: DefaultTokenURL},
			ManualAck: ManualAck{Enabled: true, Timeout: 30 * time.Second},
			Start:     "new",
		}
	})
}

// Options are the cisco source's settings. The event types to subscribe
// to are the source's common `events` setting (sources.Info.Events).
type Options struct {
	// Target is the regional gRPC gateway, host:port.
	Target string `koanf:"target"`
	// Plaintext talks to a local server without TLS (tests, mocks). The
	// bearer token is sent all the same.
	Plaintext bool `koanf:"plaintext"`
	// CAFile is a PEM bundle of the CAs to trust instead of the system
	// roots, for a server with a private CA.
	CAFile string `koanf:"ca_file"`
	OAuth  OAuth  `koanf:"oauth"`
	// ClientID, QueueName and DurableName name the subscription; ClientID
	// defaults to OAuth.ClientID.
	ClientID    string `koanf:"client_id"`
	QueueName   string `koanf:"queue_name"`
	DurableName string `koanf:"durable_name"`
	// MaxInFlight is how many unacked events the server sends at once (0:
	// the server's default) and how many switchboard queues at once.
	MaxInFlight uint32    `koanf:"max_in_flight"`
	ManualAck   ManualAck `koanf:"manual_ack"`
	// Start is where a new subscription begins: new, oldest,
	// last_received, sequence:N or time:RFC3339.
	Start string `koanf:"start"`
}

// OAuth are the OAuth2 client credentials of the product.
type OAuth struct {
	ClientID     string        `koanf:"client_id"`
	ClientSecret config.Secret `koanf:"client_secret"`
	TokenURL     string        `koanf:"token_url"`
	// Scopes requested with the token; empty asks for those the
	// configured event types need.
	Scopes []string `koanf:"scopes"`
}

// ManualAck asks the server to wait for an explicit ack of each event and
// to send it again when none comes within Timeout.
type ManualAck struct {
	Enabled bool          `koanf:"enabled"`
	Timeout time.Duration `koanf:"timeout"`
}

// Events implements sources.Catalog: every event type the API has.
func (o *Options) Events() []string { return typeNames() }

// Build implements sources.Builder. It reads ca_file but connects to
// nothing.
func (o *Options) Build(info sources.Info) (any, error) {
	var ps config.Problems
	s := &Source{name: info.Name, target: o.Target, manualAck: o.ManualAck.Enabled, plaintext: o.Plaintext}

	if o.Target == "" {
		ps.Add("target", "is required: the gRPC gateway of the region your subscription lives in, as host:port, e.g. api.shamrock.wgtwo.com:443 (EU) or api.oak.wgtwo.com:443 (US)")
	} else if host, port, err := net.SplitHostPort(o.Target); err != nil || host == "" || !validPort(port) {
		ps.Add("target", "%q is not host:port; write it like api.shamrock.wgtwo.com:443", o.Target)
	}

	switch {
	case o.Plaintext && o.CAFile != "":
		ps.Add("ca_file", "is for TLS, but plaintext is true; remove one of them")
	case o.Plaintext:
		s.transport = insecure.NewCredentials()
	default:
		cfg := &tls.Config{MinVersion: tls.VersionTLS12} // nil RootCAs: the system roots
		if o.CAFile != "" {
			pool, err := readCAs(o.CAFile)
			if err != nil {
				ps.Add("ca_file", "%v", err)
			}
			cfg.RootCAs = pool
		}
		s.transport = credentials.NewTLS(cfg)
	}

	// Event types: one subscription carries them all.
	var needed []string // scopes, sorted, unique
	if len(info.Events) == 0 {
		ps.Add("events", "is empty; name the event types to subscribe to, e.g. events: [VOICE_EVENT, SMS_DELIVERY_REPORT_EVENT]; valid: %s", strings.Join(typeNames(), ", "))
	}
	for i, name := range info.Events {
		et, ok := lookupType(name)
		if !ok {
			ps.Add(fmt.Sprintf("events[%d]", i), "unknown event type %q; valid: %s (ROAMING_EVENT and SMS_DELIVERY_EVENT are taken for COUNTRY_CHANGE_EVENT and SMS_DELIVERY_REPORT_EVENT)",
				name, strings.Join(typeNames(), ", "))
			continue
		}
		if slices.Contains(s.types, et.typ) {
			continue
		}
		s.types = append(s.types, et.typ)
		s.names = append(s.names, et.name)
		if et.scope != "" && !slices.Contains(needed, et.scope) {
			needed = append(needed, et.scope)
		}
	}
	slices.Sort(needed)
	s.scopeHint = scopeHint(s.names)

	// OAuth2 client credentials, sent as HTTP Basic, the only method the
	// provider accepts by default.
	switch {
	case o.OAuth.ClientID == "" && o.OAuth.ClientSecret == "":
		// No token: only the provider's sandbox/mock takes that.
	case o.OAuth.ClientID == "" || o.OAuth.ClientSecret == "":
		ps.Add("oauth", "needs both client_id and client_secret (the product's OAuth2 client credentials), or neither for a server without auth")
	default:
		if u, err := url.Parse(o.OAuth.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			ps.Add("oauth.token_url", "%q is not an http(s) URL; leave it out for %s", o.OAuth.TokenURL, DefaultTokenURL)
		}
		scopes := o.OAuth.Scopes
		if len(scopes) == 0 {
			scopes = needed
		}
		for _, name := range s.names {
			et, _ := lookupType(name)
			if len(o.OAuth.Scopes) > 0 && et.scope != "" && !slices.Contains(o.OAuth.Scopes, et.scope) {
				ps.Add("oauth.scopes", "%s needs %s; add it, or leave scopes out to request what the events need", et.name, et.scope)
			}
		}
		s.oauth = &clientcredentials.Config{
			ClientID:     o.OAuth.ClientID,
			ClientSecret: o.OAuth.ClientSecret.Reveal(),
			TokenURL:     o.OAuth.TokenURL,
			Scopes:       slices.Clone(scopes),
			AuthStyle:    oauth2.AuthStyleInHeader,
		}
	}

	req := &pb.SubscribeEventsRequest{
		Type:        s.types,
		ClientId:    o.ClientID,
		QueueName:   o.QueueName,
		DurableName: o.DurableName,
		MaxInFlight: o.MaxInFlight,
	}
	if req.ClientId == "" {
		req.ClientId = o.OAuth.ClientID
	}
	if o.ManualAck.Enabled {
		if o.ManualAck.Timeout <= 0 {
			ps.Add("manual_ack.timeout", "must be a positive duration, e.g. 30s: how long the server waits for an ack before sending the event again")
		}
		req.ManualAck = &pb.ManualAckConfig{Enable: true, Timeout: durationpb.New(o.ManualAck.Timeout)}
		s.ackTimeout = o.ManualAck.Timeout
	}
	if err := applyStart(req, o.Start); err != nil {
		ps.Add("start", "%v", err)
	}
	if t := req.GetStartAtTimestamp(); t != nil {
		s.startTime = t.AsTime()
	}
	if o.MaxInFlight > maxInFlightLimit {
		// Also what a negative number in the YAML becomes.
		ps.Add("max_in_flight", "%d is out of range; give 1 to %d (the provider recommends 50), or leave it out for the server's default", o.MaxInFlight, maxInFlightLimit)
	}
	s.req = req
	s.workers = workersFor(o.MaxInFlight)

	if len(ps) > 0 {
		return nil, ps
	}
	return s, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

func readCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA bundle: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate; give the CA certificate(s) of the server, PEM encoded", path)
	}
	return pool, nil
}

// applyStart sets the request's start position from the start setting.
// "new" sets none: the server then sends only events published from now.
func applyStart(req *pb.SubscribeEventsRequest, start string) error {
	const how = "write new, oldest, last_received, sequence:N or time:2026-11-23T07:00:00Z"
	kind, arg, hasArg := strings.Cut(strings.TrimSpace(start), ":")
	switch {
	case (kind == "new" || kind == "") && !hasArg:
	case kind == "oldest" && !hasArg:
		req.StartPosition = &pb.SubscribeEventsRequest_StartAtOldestPossible{StartAtOldestPossible: &emptypb.Empty{}}
	case kind == "last_received" && !hasArg:
		req.StartPosition = &pb.SubscribeEventsRequest_StartWithLastReceived{StartWithLastReceived: &emptypb.Empty{}}
	case kind == "sequence" && hasArg:
		n, err := strconv.ParseUint(strings.TrimSpace(arg), 10, 64)
		if err != nil {
			return fmt.Errorf("%q: the sequence is not a whole number ≥ 0; %s", start, how)
		}
		req.StartPosition = &pb.SubscribeEventsRequest_StartAtSequence{StartAtSequence: n}
	case kind == "time" && hasArg:
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(arg))
		if err != nil {
			return fmt.Errorf("%q: the time is not RFC 3339; %s", start, how)
		}
		req.StartPosition = &pb.SubscribeEventsRequest_StartAtTimestamp{StartAtTimestamp: timestamppb.New(t)}
	default:
		return fmt.Errorf("%q is not a start position; %s", start, how)
	}
	return nil
}

// maxInFlightLimit is a sanity bound: v0 documents none, v1 allows 200.
const maxInFlightLimit = 65535

// maxWorkers bounds how many events are queued at once, whatever
// max_in_flight says (the v1 API caps that at 200).
const maxWorkers = 256

// workersFor is how many events one stream processes at once: up to
// max_in_flight, so that a full window of unacked events is queued in
// parallel (the durable queue commits them in groups); one, in order, when
// max_in_flight is left to the server.
func workersFor(maxInFlight uint32) int {
	switch {
	case maxInFlight == 0:
		return 1
	case maxInFlight > maxWorkers:
		return maxWorkers
	}
	return int(maxInFlight)
}

// scopeHint says which scope each of the event types needs, for error
// messages: "VOICE_EVENT needs events.voice.subscribe, ...".
func scopeHint(names []string) string {
	var parts []string
	for _, name := range names {
		et, _ := lookupType(name)
		if et.scope != "" {
			parts = append(parts, et.name+" needs "+et.scope)
		}
	}
	if len(parts) == 0 {
		return "the configured event types need no scope"
	}
	return strings.Join(parts, ", ")
}

var _ sources.Catalog = (*Options)(nil)
