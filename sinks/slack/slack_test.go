package slack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/router"
	"switchboard/sinks"
	"switchboard/sinks/sinktest"
)

// hookPath is the credential part of a webhook URL; no error may show it.
const hookPath = "/services/T0000SECRET/B0000SECRET/XXXXSECRETXXXX"

// build decodes raw the way the host does and builds the sink.
func build(t *testing.T, raw map[string]any) *Sink {
	t.Helper()
	return sinktest.MustBuild[*Sink](t, "slack", "oncall", raw)
}

var (
	eventTime = time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC)
	// slackDate is eventTime as the default text writes it.
	slackDate = "<!date^1795417200^{date_short_pretty} {time_secs}|2026-11-23 07:00:00 UTC>"
)

// event builds an event whose payload is the provider's JSON, decoded as
// sources decode it.
func event(t *testing.T, source, name, status, payload string) *router.Event {
	t.Helper()
	p, err := router.DecodeObject([]byte(payload))
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	id, _ := p["id"].(string)
	if id == "" {
		id = "ev-1"
	}
	return &router.Event{ID: id, Source: source, Event: name, Status: status,
		Time: eventTime, ReceivedAt: eventTime.Add(2 * time.Millisecond), Payload: p}
}

// A Bird voice call that failed (the payload of examples/bird/voice-outbound-failed.json).
func birdFailedCall(t *testing.T) *router.Event {
	return event(t, "bird", "voice.outbound", "failed", `{
		"id": "3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11",
		"channelId": "b827924e-9789-4c2f-a4d5-b352175354f6",
		"from": "+31612345678", "to": "+31687654321",
		"direction": "outgoing", "status": "failed", "reason": "call-rejected",
		"type": "pstn", "duration": 0, "hangupCauseCode": 21,
		"createdAt": "2026-11-23T07:00:00.123Z", "updatedAt": "2026-11-23T07:00:04.456Z"}`)
}

type request struct {
	header http.Header
	path   string
	body   string
}

// slackServer records every post and answers with answer (200 "ok" when nil).
func slackServer(t *testing.T, answer http.HandlerFunc) (string, <-chan request) {
	t.Helper()
	got := make(chan request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- request{header: r.Header.Clone(), path: r.URL.Path, body: string(b)}
		if answer != nil {
			answer(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + hookPath, got
}

func answer(code int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func TestDefaultTextReadsWellForEachProvider(t *testing.T) {
	tests := []struct {
		name  string
		event *router.Event
		want  string
	}{
		{"Bird failed call: status, reason, both parties", birdFailedCall(t),
			":rotating_light: *voice.outbound* failed (call-rejected) via bird\n" +
				"from +31612345678 to +31687654321\n" + slackDate + " · id 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11"},
		{"MOBtexting SMS not delivered: the mobile is the party", event(t, "mob", "sms:message:status", "UNDELIV",
			`{"id":"5f0e8a3c:1","mobile":918921269123,"status":"UNDELIV","credits":"1.0000","units":1,"deliv_time":"2026-11-23 06:59:58","cid":"12344441234"}`),
			":rotating_light: *sms:message:status* UNDELIV via mob\nto 918921269123\n" + slackDate + " · id 5f0e8a3c:1"},
		{"MOBtexting unsubscription: the receiver is the party", event(t, "mob", "sms:unsubscription", "Unsubscriber created successfully",
			`{"id":"d105a1ef","receiver":"917002088xxx","type":"sender","value":"Demo12","created_at":"2023-07-08T12:52:54.000000Z","status":"Unsubscriber created successfully"}`),
			":rotating_light: *sms:unsubscription* Unsubscriber created successfully via mob\nto 917002088xxx\n" + slackDate + " · id d105a1ef"},
		{"MOBtexting inbound message: recipient.from", event(t, "mob", "vmn:message:in", "",
			`{"id":"msg-1","channels":[{"name":"vmn","to":"919019XXXXXX"}],"recipient":{"from":"918074XXXXXX","user":{"id":"u"}},"message":{"type":"text"}}`),
			":rotating_light: *vmn:message:in* via mob\nfrom 918074XXXXXX\n" + slackDate + " · id msg-1"},
		{"MOBtexting WhatsApp failed: from and to", event(t, "mob", "whatsapp:message:status", "failed",
			`{"id":"a418d672","channel":"whatsapp","from":"919019120123","to":"919019912345","status":"failed"}`),
			":rotating_light: *whatsapp:message:status* failed via mob\nfrom 919019120123 to 919019912345\n" + slackDate + " · id a418d672"},
		{"TeleCMI missed inbound call: caller to the virtual number, hangup reason", event(t, "telecmi", "telecmi:cdr", "missed",
			`{"virtual_number":"442000000000","type":"cdr","direction":"inbound","cmiuuid":"0c1d2e3f","status":"missed","from":"442000000003","time":1650636000000,"waitedsec":21,"hangup_reason":"recv_cancel"}`),
			":rotating_light: *telecmi:cdr* missed (recv_cancel) via telecmi\nfrom 442000000003 to 442000000000\n" + slackDate + " · id ev-1"},
		{"TeleCMI missed outbound call: the agent to the customer", event(t, "telecmi", "telecmi:cdr", "missed",
			`{"type":"cdr","appid":2223343,"to":"442000000001","cmiuuid":"3e2d1c0b","status":"missed","user":"202_2222223","time":1650637000000,"direction":"outbound"}`),
			":rotating_light: *telecmi:cdr* missed via telecmi\nfrom 202_2222223 to 442000000001\n" + slackDate + " · id ev-1"},
		{"an event with no parties and no status", event(t, "hooks", "deploy", "", `{"id":"d-1"}`),
			":rotating_light: *deploy* via hooks\n" + slackDate + " · id d-1"},
		{"a payload DefaultText cannot read falls back to one line", event(t, "hooks", "odd", "new", `{"id":"o-1","recipient":"not an object"}`),
			":rotating_light: *odd* new via hooks · id o-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, got := slackServer(t, nil)
			s := build(t, map[string]any{"webhook_url": url})
			if err := s.Send(context.Background(), tt.event); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := <-got
			want := `{"text":` + jsonString(tt.want) + `}`
			if r.body != want {
				t.Errorf("body\n got %s\nwant %s", r.body, want)
			}
			if r.path != hookPath || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("posted to %s as %q", r.path, r.header.Get("Content-Type"))
			}
		})
	}
}

// jsonString quotes s as the sink does: JSON, with < > & left readable.
func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func TestPayloads(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"custom text, channel, username and icon", map[string]any{
			"text":       `{{ upper .status }}: {{ .from }} → {{ .to }} at {{ time "15:04" .time }}`,
			"channel":    "#oncall",
			"username":   "switchboard",
			"icon_emoji": ":telephone_receiver:",
		}, `{"text":"FAILED: +31612345678 → +31687654321 at 07:00","channel":"#oncall","username":"switchboard","icon_emoji":":telephone_receiver:"}`},
		{"blocks with a text fallback", map[string]any{
			"text": "Call {{ .status }} to {{ .to }}",
			"blocks": `[
				{"type": "header", "text": {"type": "plain_text", "text": {{ printf "Call %s" .status | json }}}},
				{"type": "section", "fields": [
					{"type": "mrkdwn", "text": {{ printf "*From*\n%s" .from | json }}},
					{"type": "mrkdwn", "text": {{ printf "*Reason*\n%s" (default "-" .reason) | json }}}
				]}
			]`,
		}, `{"text":"Call failed to +31687654321","blocks":[{"type":"header","text":{"type":"plain_text","text":"Call failed"}},{"type":"section","fields":[{"type":"mrkdwn","text":"*From*\n+31612345678"},{"type":"mrkdwn","text":"*Reason*\ncall-rejected"}]}]}`},
		{"blocks that render nothing send the text alone", map[string]any{
			"text":   "{{ .status }}",
			"blocks": `{{ if eq .status "busy" }}[{"type": "divider"}]{{ end }}`,
		}, `{"text":"failed"}`},
		{"blocks with the default text as the notification text", map[string]any{
			"blocks": `[{"type": "section", "text": {"type": "mrkdwn", "text": {{ json .reason }}}}]`,
		}, `{"text":":rotating_light: *voice.outbound* failed (call-rejected) via bird\nfrom +31612345678 to +31687654321\n` + slackDate +
			` · id 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"call-rejected"}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, got := slackServer(t, nil)
			tt.settings["webhook_url"] = url
			s := build(t, tt.settings)
			e := birdFailedCall(t)
			if err := s.Send(context.Background(), e); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if r := <-got; r.body != tt.want {
				t.Errorf("body\n got %s\nwant %s", r.body, tt.want)
			}
			preview, err := s.Preview(e)
			if err != nil || string(preview) != tt.want {
				t.Errorf("Preview = %s, %v; want the posted body", preview, err)
			}
		})
	}
}

type outcome int

const (
	success outcome = iota
	transient
	permanent
)

func (o outcome) String() string { return [...]string{"success", "transient", "permanent"}[o] }

func classOf(err error) outcome {
	switch {
	case err == nil:
		return success
	case router.IsPermanent(err):
		return permanent
	}
	return transient
}

func TestSlackAnswers(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		want       outcome
		retryAfter time.Duration // want a *router.RetryAfterError with this wait; -1 for none
		err        string
	}{
		{"200 ok is delivered", answer(200, "ok"), success, -1, ""},
		{"429 with Retry-After waits that long", answer(429, "rate_limited", "Retry-After", "30"), transient, 30 * time.Second,
			"slack webhook: 429 Too Many Requests: rate_limited"},
		{"500 is transient", answer(500, "internal_error"), transient, -1,
			"slack webhook: 500 Internal Server Error: internal_error"},
		{"503 is transient", answer(503, ""), transient, -1, "slack webhook: 503 Service Unavailable"},
		{"400 invalid_payload is permanent with Slack's answer", answer(400, "invalid_payload"), permanent, -1,
			"slack webhook: 400 Bad Request: invalid_payload"},
		{"403 action_prohibited is permanent", answer(403, "action_prohibited"), permanent, -1,
			"slack webhook: 403 Forbidden: action_prohibited (the webhook or its channel is gone or closed to it; check webhook_url and channel)"},
		{"404 channel_not_found is permanent", answer(404, "channel_not_found"), permanent, -1,
			"slack webhook: 404 Not Found: channel_not_found (the webhook or its channel is gone or closed to it; check webhook_url and channel)"},
		{"410 channel_is_archived is permanent", answer(410, "channel_is_archived"), permanent, -1,
			"slack webhook: 410 Gone: channel_is_archived (the webhook or its channel is gone or closed to it; check webhook_url and channel)"},
		{"Slack's answer is cut at 200 bytes", answer(400, long), permanent, -1,
			"slack webhook: 400 Bad Request: " + long[:200] + "…"},
		{"a redirect is not followed", answer(302, "", "Location", "/elsewhere"), permanent, -1,
			"slack webhook: 302 Found (Slack redirects; check webhook_url)"},
		{"an answer echoing the webhook path does not leak it", answer(400, "no_service for "+hookPath), permanent, -1,
			"slack webhook: 400 Bad Request: no_service for /<webhook path>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := slackServer(t, tt.answer)
			err := build(t, map[string]any{"webhook_url": url}).Send(context.Background(), birdFailedCall(t))
			if got := classOf(err); got != tt.want {
				t.Fatalf("outcome = %v (%v), want %v", got, err, tt.want)
			}
			if err != nil && err.Error() != tt.err {
				t.Errorf("err = %q\nwant %q", err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("err = %q leaks the webhook URL", err)
			}
			var ra *router.RetryAfterError
			if errors.As(err, &ra) != (tt.retryAfter >= 0) {
				t.Fatalf("err = %#v, want a RetryAfterError: %v", err, tt.retryAfter >= 0)
			}
			if ra != nil && ra.After != tt.retryAfter {
				t.Errorf("After = %s, want %s", ra.After, tt.retryAfter)
			}
		})
	}
}

func TestNetworkErrorsAreTransientAndNeverShowTheWebhook(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + hookPath
	srv.Close()
	err := build(t, map[string]any{"webhook_url": url}).Send(context.Background(), birdFailedCall(t))
	if classOf(err) != transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if !strings.HasPrefix(err.Error(), "slack webhook: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %q, want it to say slack webhook and connection refused", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("err = %q leaks the webhook URL", err)
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	url, _ := slackServer(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	err := build(t, map[string]any{"webhook_url": url, "timeout": "50ms"}).Send(context.Background(), birdFailedCall(t))
	if classOf(err) != transient || err.Error() != "slack webhook: no answer within timeout 50ms" {
		t.Errorf("err = %v, want transient: slack webhook: no answer within timeout 50ms", err)
	}
}

func TestTemplateFailuresArePermanentAndPostNothing(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"text that fails", map[string]any{"text": `{{ time "RFC3339" .to }}`},
			`text template of sink oncall failed on event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11: template: oncall:1:3: executing "oncall" at <time "RFC3339" .to>: error calling time: time: "+31687654321" is not an RFC 3339 time`},
		{"text that renders nothing", map[string]any{"text": `{{ default "" .nope }}`},
			`text template of sink oncall rendered an empty message for event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11, which Slack refuses; use default for fields the event may lack`},
		{"blocks that fail", map[string]any{"blocks": `[{{ json .payload.nope.x }}]`},
			`blocks template of sink oncall failed on event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11: template: oncall.blocks:1:17: executing "oncall.blocks" at <.payload.nope.x>: nil pointer evaluating interface {}.x`},
		{"blocks that are not JSON", map[string]any{"blocks": `[{"type": "section", "text": {"type": "mrkdwn", "text": "{{ .reason }}"}},]`},
			`blocks template of sink oncall rendered invalid JSON (invalid character ']' looking for beginning of value) for event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11; it must produce a JSON array of blocks, with values quoted by json ("text": {{ json .reason }})`},
		{"blocks that are not an array", map[string]any{"blocks": `{"type": "divider"}`},
			`blocks template of sink oncall rendered JSON that is not an array for event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11; it must produce a JSON array of blocks, with values quoted by json ("text": {{ json .reason }})`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, got := slackServer(t, nil)
			tt.settings["webhook_url"] = url
			s := build(t, tt.settings)
			err := s.Send(context.Background(), birdFailedCall(t))
			if !router.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
			if err.Error() != tt.want {
				t.Errorf("err = %s\nwant %s", err, tt.want)
			}
			if _, perr := s.Preview(birdFailedCall(t)); perr == nil || perr.Error() != tt.want {
				t.Errorf("Preview error = %v, want the same error", perr)
			}
			select {
			case <-got:
				t.Error("a message was posted for a template that failed")
			default:
			}
		})
	}
}

func TestPacingWaitsForTokensInOrder(t *testing.T) {
	url, got := slackServer(t, nil)
	s := build(t, map[string]any{"webhook_url": url, "text": "{{ .id }}", "rate_limit": 1, "burst": 1})
	start := time.Now()
	for _, id := range []string{"e1", "e2", "e3"} {
		e := birdFailedCall(t)
		e.ID = id
		if err := s.Send(context.Background(), e); err != nil {
			t.Fatalf("Send %s: %v", id, err)
		}
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		if r := <-got; r.body != `{"text":"`+id+`"}` {
			t.Errorf("posted %s, want %s next", r.body, id)
		}
	}
	// At one a second with a burst of one, three messages span at least
	// two seconds: a lower bound the token bucket guarantees.
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("three messages at rate_limit 1, burst 1 went out in %s: the sink did not wait", took)
	}
}

func TestCancelWhileWaitingForPaceReturnsPromptly(t *testing.T) {
	url, got := slackServer(t, nil)
	// One message every 1000 s: the second one would wait for ages.
	s := build(t, map[string]any{"webhook_url": url, "rate_limit": 0.001, "burst": 1})
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatal(err)
	}
	<-got
	err := sendCancelled(t, s)
	if !errors.Is(err, context.Canceled) || classOf(err) != transient {
		t.Errorf("err = %v, want transient context.Canceled", err)
	}
	select {
	case r := <-got:
		t.Errorf("posted %s while it should wait", r.body)
	default:
	}
}

// sendCancelled sends with a context cancelled shortly after, and fails
// the test if Send does not return soon after.
func sendCancelled(t *testing.T, s *Sink) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, birdFailedCall(t)) }()
	time.AfterFunc(20*time.Millisecond, cancel)
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
		return nil
	}
}

func TestA429PausesTheWebhookForEveryMessage(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	url, _ := slackServer(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		answer(429, "rate_limited", "Retry-After", "30")(w, nil)
	})
	s := build(t, map[string]any{"webhook_url": url})
	var ra *router.RetryAfterError
	if err := s.Send(context.Background(), birdFailedCall(t)); !errors.As(err, &ra) {
		t.Fatalf("err = %v, want RetryAfter", err)
	}
	// The next message waits out Slack's pause instead of earning another 429.
	if err := sendCancelled(t, s); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled while paused", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("Slack saw %d posts, want 1: the second should wait for the Retry-After", calls)
	}
}

func TestSinksOnOneWebhookShareItsPace(t *testing.T) {
	url, got := slackServer(t, nil)
	settings := func() map[string]any { return map[string]any{"webhook_url": url, "rate_limit": 0.001, "burst": 1} }
	a, b := build(t, settings()), build(t, settings())
	if a.pace != b.pace {
		t.Fatal("two sinks on one webhook with the same settings have separate buckets")
	}
	if err := a.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatal(err)
	}
	<-got
	if err := sendCancelled(t, b); !errors.Is(err, context.Canceled) {
		t.Errorf("second sink on the webhook: err = %v, want it to wait for the shared bucket", err)
	}
}

func TestBuildProblems(t *testing.T) {
	const ok = "https://hooks.slack.com/services/T0/B0/X"
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"webhook_url is required", map[string]any{},
			"webhook_url: is required: the incoming webhook URL Slack shows when you add the app to a channel, e.g. ${SLACK_WEBHOOK_URL}"},
		{"webhook_url must parse, and is not echoed", map[string]any{"webhook_url": "https://hooks.slack.com/services/%zzSECRET"},
			"webhook_url: is not a valid URL; paste it exactly as Slack shows it (https://hooks.slack.com/services/...)"},
		{"webhook_url must be https, and is not echoed", map[string]any{"webhook_url": "hooks.slack.com/services/T0/B0/SECRET"},
			"webhook_url: is not an https:// URL; paste it exactly as Slack shows it (https://hooks.slack.com/services/...)"},
		{"webhook_url needs a host", map[string]any{"webhook_url": "https:///services/SECRET"},
			"webhook_url: has no host; paste it exactly as Slack shows it (https://hooks.slack.com/services/...)"},
		{"text must parse", map[string]any{"webhook_url": ok, "text": "{{ .event "},
			"text: does not parse: template: oncall:1: unclosed action"},
		{"blocks must parse", map[string]any{"webhook_url": ok, "blocks": "[{{ nope }}]"},
			`blocks: does not parse: template: oncall.blocks:1: function "nope" not defined`},
		{"channel is one word", map[string]any{"webhook_url": ok, "channel": "on call"},
			`channel: "on call" is not a channel; write it like #oncall, @username or a channel ID like C0123456789`},
		{"icon_emoji is :name:", map[string]any{"webhook_url": ok, "icon_emoji": "rotating_light"},
			`icon_emoji: "rotating_light" is not an emoji name; write it like :rotating_light:`},
		{"timeout must be positive", map[string]any{"webhook_url": ok, "timeout": "0s"},
			"timeout: must be a positive duration, e.g. 10s"},
		{"rate_limit must be positive", map[string]any{"webhook_url": ok, "rate_limit": 0},
			"rate_limit: must be a number of messages per second above 0 and at most 1000, e.g. 1 (Slack allows about one a second per webhook) or 0.5 (one every two seconds)"},
		{"burst must be at least one", map[string]any{"webhook_url": ok, "burst": 0},
			"burst: must be at least 1: how many messages may go at once after a quiet spell"},
		{"a typo is an unknown setting", map[string]any{"webhook_url": ok, "icon": ":x:"},
			"icon: unknown setting; known settings: blocks, burst, channel, icon_emoji, rate_limit, text, timeout, username, webhook_url, webhook_url_file"},
		{"every problem is reported at once", map[string]any{"text": "{{", "timeout": "-1s", "burst": -1},
			"webhook_url: is required: the incoming webhook URL Slack shows when you add the app to a channel, e.g. ${SLACK_WEBHOOK_URL}\n" +
				"text: does not parse: template: oncall:1: unclosed action\n" +
				"timeout: must be a positive duration, e.g. 10s\n" +
				"burst: must be at least 1: how many messages may go at once after a quiet spell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sinktest.WantProblems(t, "slack", "oncall", tt.settings, tt.want)
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("problems %q leak the webhook URL", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	f, _ := sinks.Lookup("slack")
	o := f().(*Options)
	if o.Timeout != 10*time.Second || o.RateLimit != 1 || o.Burst != 5 || o.DefaultConcurrency() != 1 {
		t.Errorf("defaults = %+v, concurrency %d", o, o.DefaultConcurrency())
	}
}

// TestSendStatusReportsSlacksAnswer checks what the delivery history
// shows of an attempt: Slack's status on success and failure.
func TestSendStatusReportsSlacksAnswer(t *testing.T) {
	for _, tt := range []struct {
		answer http.HandlerFunc
		want   int
		ok     bool
	}{
		{nil, 200, true},
		{answer(404, "no_service"), 404, false},
		{answer(500, "oops"), 500, false},
	} {
		url, _ := slackServer(t, tt.answer)
		code, err := build(t, map[string]any{"webhook_url": url}).SendStatus(context.Background(), birdFailedCall(t))
		if code != tt.want || (err == nil) != tt.ok {
			t.Errorf("SendStatus = %d, %v; want %d (success %v)", code, err, tt.want, tt.ok)
		}
	}
}
