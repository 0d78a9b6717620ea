package cisco

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"switchboard/config"
	"switchboard/daemon"
	_ "switchboard/sinks/all"
	"switchboard/sources/cisco/internal/pb"
)

// checkConfig runs what `switchboard check` runs and returns its lines.
func checkConfig(t *testing.T, source string) []string {
	t.Helper()
	yaml := "sources:\n  wgtwo:\n    type: cisco\n" + source + `
sinks:
  out: { type: log }
rules:
  - { name: all, to: [out] }
`
	f, err := config.Parse([]byte(yaml))
	if err != nil {
		return strings.Split(err.Error(), "\n")
	}
	if _, err := daemon.Build(f); err != nil {
		return strings.Split(err.Error(), "\n")
	}
	return nil
}

func TestCheckNamesEveryProblem(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "not-a-ca.pem")
	os.WriteFile(caFile, []byte("hello"), 0o600)
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"valid", `
    target: api.shamrock.wgtwo.com:443
    oauth: { client_id: id, client_secret: secret }
    events: [VOICE_EVENT, ROAMING_EVENT, SMS_DELIVERY_EVENT, CONSENT_REVOKE_EVENT]
    durable_name: switchboard
    queue_name: switchboard
    max_in_flight: 50
    manual_ack: { enabled: true, timeout: 2m }
    start: time:2026-11-23T07:00:00Z
`, nil},
		{"nothing", `
    plaintext: false
`, []string{
			"sources.wgtwo.events: is empty; name the event types to subscribe to, e.g. events: [VOICE_EVENT, SMS_DELIVERY_REPORT_EVENT]; valid: VOICE_EVENT, VOICEMAIL_EVENT, LOCATION_UPDATE_EVENT, COUNTRY_CHANGE_EVENT, TOKEN_AUDIT_EVENT, SMS_EVENT, SMS_DELIVERY_REPORT_EVENT, CONSENT_REVOKE_EVENT, HANDSET_UPDATE_EVENT, FIRST_ATTACHMENT_EVENT, PERIODIC_COUNTRY_EVENT",
			"sources.wgtwo.target: is required: the gRPC gateway of the region your subscription lives in, as host:port, e.g. api.shamrock.wgtwo.com:443 (EU) or api.oak.wgtwo.com:443 (US)",
		}},
		{"scopes miss what the events need", `
    target: api.shamrock.wgtwo.com:443
    oauth: { client_id: id, client_secret: secret, scopes: [events.sms.subscribe] }
    events: [SMS_EVENT, VOICE_EVENT, ROAMING_EVENT, CONSENT_REVOKE_EVENT]
`, []string{
			"sources.wgtwo.oauth.scopes: VOICE_EVENT needs events.voice.subscribe; add it, or leave scopes out to request what the events need",
			"sources.wgtwo.oauth.scopes: COUNTRY_CHANGE_EVENT needs events.roaming.subscribe; add it, or leave scopes out to request what the events need",
		}},
		{"unknown event and bad values", `
    target: api.shamrock.wgtwo.com
    plaintext: true
    ca_file: /etc/ssl/ca.pem
    oauth: { client_id: id, token_url: "id.wgtwo.com/token" }
    events: [VOICE_EVENT, CALL_EVENT]
    manual_ack: { timeout: 0s }
    start: yesterday
`, []string{
			`sources.wgtwo.ca_file: is for TLS, but plaintext is true; remove one of them`,
			`sources.wgtwo.events[1]: unknown event type "CALL_EVENT"; valid: VOICE_EVENT, VOICEMAIL_EVENT, LOCATION_UPDATE_EVENT, COUNTRY_CHANGE_EVENT, TOKEN_AUDIT_EVENT, SMS_EVENT, SMS_DELIVERY_REPORT_EVENT, CONSENT_REVOKE_EVENT, HANDSET_UPDATE_EVENT, FIRST_ATTACHMENT_EVENT, PERIODIC_COUNTRY_EVENT (ROAMING_EVENT and SMS_DELIVERY_EVENT are taken for COUNTRY_CHANGE_EVENT and SMS_DELIVERY_REPORT_EVENT)`,
			`sources.wgtwo.manual_ack.timeout: must be a positive duration, e.g. 30s: how long the server waits for an ack before sending the event again`,
			`sources.wgtwo.oauth: needs both client_id and client_secret (the product's OAuth2 client credentials), or neither for a server without auth`,
			`sources.wgtwo.start: "yesterday" is not a start position; write new, oldest, last_received, sequence:N or time:2026-11-23T07:00:00Z`,
			`sources.wgtwo.target: "api.shamrock.wgtwo.com" is not host:port; write it like api.shamrock.wgtwo.com:443`,
		}},
		{"bad ca file, token url, sequence", `
    target: localhost:8443
    ca_file: ` + caFile + `
    oauth: { client_id: id, client_secret: s, token_url: "ftp://id.example.com/token" }
    events: [SMS_EVENT]
    start: sequence:-1
`, []string{
			"sources.wgtwo.ca_file: " + caFile + " holds no PEM certificate; give the CA certificate(s) of the server, PEM encoded",
			`sources.wgtwo.oauth.token_url: "ftp://id.example.com/token" is not an http(s) URL; leave it out for https://id.wgtwo.com/oauth2/token`,
			`sources.wgtwo.start: "sequence:-1": the sequence is not a whole number ≥ 0; write new, oldest, last_received, sequence:N or time:2026-11-23T07:00:00Z`,
		}},
		{"negative max_in_flight", `
    target: api.shamrock.wgtwo.com:443
    events: [SMS_EVENT]
    max_in_flight: -3
`, []string{
			"sources.wgtwo.max_in_flight: 4294967293 is out of range; give 1 to 65535 (the provider recommends 50), or leave it out for the server's default",
		}},
		{"unknown key", `
    target: api.shamrock.wgtwo.com:443
    events: [SMS_EVENT]
    durable: x
`, []string{
			"sources.wgtwo.durable: unknown setting; known settings: ca_file, client_id, durable_name, manual_ack, max_in_flight, oauth, plaintext, queue_name, start, target",
		}},
		{"status filter the event cannot have", `
    target: api.shamrock.wgtwo.com:443
    events: [VOICE_EVENT]
    filters: [ {key: status, value: CALL_MISSED} ]
`, []string{
			`sources.wgtwo.filters[0].value: "CALL_MISSED" is not a status of VOICE_EVENT; it can be one of: CALL_ANSWERED, CALL_ENDED, CALL_FWD_VOICEMAIL, CALL_INITIATED, CALL_RINGING`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkConfig(t, tc.yaml)
			if !sameSet(got, tc.want) {
				t.Errorf("check said:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestDefaults(t *testing.T) {
	o := defaultOptions()
	if o.OAuth.TokenURL != DefaultTokenURL || !o.ManualAck.Enabled || o.ManualAck.Timeout.String() != "30s" || o.Start != "new" {
		t.Errorf("defaults = %+v", o)
	}
	o.Target = "api.shamrock.wgtwo.com:443"
	o.OAuth.ClientID, o.OAuth.ClientSecret = "id", "secret"
	s := build(t, o, "VOICEMAIL_EVENT", "SMS_DELIVERY_EVENT")
	if s.plaintext || s.transport.Info().SecurityProtocol != "tls" {
		t.Errorf("default transport = %v, want TLS", s.transport.Info())
	}
	if got, want := s.oauth.Scopes, []string{"events.sms_delivery_report.subscribe", "events.voicemail.subscribe"}; !slices.Equal(got, want) {
		t.Errorf("scopes = %v, want %v", got, want)
	}
	if s.oauth.AuthStyle != 2 { // oauth2.AuthStyleInHeader
		t.Errorf("auth style = %v, want HTTP Basic", s.oauth.AuthStyle)
	}
	if got := s.Events(); !slices.Equal(got, []string{"VOICEMAIL_EVENT", "SMS_DELIVERY_REPORT_EVENT"}) {
		t.Errorf("Events() = %v, want the proto names", got)
	}
	req := s.req
	if req.GetClientId() != "id" || !req.GetManualAck().GetEnable() || req.GetManualAck().GetTimeout().AsDuration().String() != "30s" || req.GetStartPosition() != nil {
		t.Errorf("default request = %v", req)
	}
	if !slices.Equal(req.GetType(), []pb.EventType{pb.EventType_VOICEMAIL_EVENT, pb.EventType_SMS_DELIVERY_REPORT_EVENT}) {
		t.Errorf("types = %v", req.GetType())
	}
	if s.workers != 1 {
		t.Errorf("workers = %d without max_in_flight, want 1", s.workers)
	}
	// Only CONSENT_REVOKE_EVENT: no scope at all.
	if s := build(t, o, "CONSENT_REVOKE_EVENT"); len(s.oauth.Scopes) != 0 {
		t.Errorf("scopes for CONSENT_REVOKE_EVENT = %v, want none", s.oauth.Scopes)
	}
	if got := (&Options{}).Events(); len(got) != 11 {
		t.Errorf("catalog has %d events, want 11", len(got))
	}
}
