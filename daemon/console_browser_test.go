package daemon_test

// The console in a real browser: Debian's chromium, driven headless with
// chromedp, against a real daemon. Every test fails on a console error, an
// uncaught exception or any request to another address than the admin
// listener. Screenshots go to a directory under os.TempDir (named in the
// log) and, with -screenshots DIR, to DIR as well: that is how docs/console
// is made.

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"switchboard/daemon"
	"switchboard/daemon/daemontest"
)

var screenshotDir = flag.String("screenshots", "", "also write the console's screenshots to `DIR` (the README's are in ../docs/console)")

// chromium finds a Chromium or Chrome, or skips the test saying how to
// get one.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("drives a browser")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found; install Debian's chromium (apt-get install chromium, as .ci/run does) to run the console's browser tests")
	return ""
}

// page is one browser tab on the console, watching for what must never
// happen: console errors, exceptions, requests elsewhere.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string
	loaded   map[string]float64 // bytes received per URL
}

// openConsole starts a browser (a fresh profile, no network but the
// loopback) and opens the console of d at hash; width and height are the
// window's, dark selects the dark colour scheme.
func openConsole(t *testing.T, d *daemon.Daemon, hash string, width, height int64, dark bool) *page {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(width), int(height)),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	p := &page{t: t, ctx: ctx, base: "http://" + d.AdminAddr(), loaded: map[string]float64{}}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	urls := map[network.RequestID]string{}
	if err := chromedp.Listen(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls[ev.RequestID] = ev.Request.URL
			if u, err := url.Parse(ev.Request.URL); err != nil || u.Host != d.AdminAddr() && u.Scheme != "data" {
				p.problems = append(p.problems, "request to another address: "+ev.Request.URL)
			}
		case *network.EventLoadingFinished:
			p.loaded[urls[ev.RequestID]] += ev.EncodedDataLength
		case *runtime.EventExceptionThrown:
			p.problems = append(p.problems, "exception: "+ev.ExceptionDetails.Text+" "+describe(ev.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				p.problems = append(p.problems, fmt.Sprintf("console.%s: %s", ev.Type, describeArgs(ev.Args)))
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				p.problems = append(p.problems, "browser log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	p.do(
		chromedp.EmulateViewport(width, height),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme},
					{Name: "prefers-reduced-motion", Value: "reduce"}}}) // screenshots without a flash half done
			return err
		}),
		chromedp.Navigate(p.base+"/#"+hash),
	)
	t.Cleanup(p.check)
	return p
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

func describeArgs(args []*runtime.RemoteObject) string {
	var out []string
	for _, a := range args {
		if a.Description != "" {
			out = append(out, a.Description)
		} else {
			out = append(out, string(a.Value))
		}
	}
	return strings.Join(out, " ")
}

// allow forgets the problems seen so far that contain text: a refusal
// the test itself provoked (a wrong token, a broken expression).
func (p *page) allow(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.problems[:0]
	for _, pr := range p.problems {
		if !strings.Contains(pr, text) {
			kept = append(kept, pr)
		}
	}
	p.problems = kept
}

// check fails the test on anything the page must never do.
func (p *page) check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.problems {
		p.t.Errorf("console page: %s", pr)
	}
}

// do runs actions, each within 15 seconds.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	for _, a := range actions {
		ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
		err := chromedp.Do(ctx, a)
		cancel()
		if err != nil {
			p.shot("failure")
			p.t.Fatalf("browser: %v", err)
		}
	}
}

// waitFor waits until the JavaScript expression is true.
func (p *page) waitFor(what, js string, within time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, within)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		p.shot("failure")
		p.t.Fatalf("%s: not within %s (%v)", what, within, err)
	}
}

func (p *page) eval(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("eval %s: %v", js, err)
	}
	return s
}

func (p *page) text(sel string) string {
	return p.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel))
}

// contrastJS lists the visible text whose colour against its background
// is below WCAG AA's 4.5:1.
const contrastJS = `(() => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\d.]+/g).slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bgOf = (el) => {
    for (; el; el = el.parentElement) {
      const a = getComputedStyle(el).backgroundColor.match(/[\d.]+/g);
      if (a && (a.length < 4 || +a[3] > 0.5)) return getComputedStyle(el).backgroundColor;
    }
    return getComputedStyle(document.documentElement).backgroundColor;
  };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.getClientRects().length || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const s = getComputedStyle(el);
    if (s.visibility === 'hidden' || el.closest('[disabled], .tabs kbd')) continue;
    const fg = lum(s.color), bg = lum(bgOf(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) low.push(el.tagName + '.' + el.className + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
  }
  return JSON.stringify(low);
})()`

// contrast fails the test on text too faint to read.
func (p *page) contrast(where string) {
	p.t.Helper()
	if low := p.eval(contrastJS); low != "[]" {
		p.t.Errorf("%s: text below 4.5:1 contrast: %s", where, low)
	}
}

// shot saves a screenshot of the whole page as name.png.
func (p *page) shot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	dirs := []string{filepath.Join(os.TempDir(), "switchboard-console-screenshots")}
	if *screenshotDir != "" {
		dirs = append(dirs, *screenshotDir)
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatal(err)
		}
		f := filepath.Join(dir, name+".png")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			p.t.Fatal(err)
		}
		p.t.Logf("screenshot: %s", f)
	}
}

// browserSite is a daemon for the browser tests: a generic source, an
// http sink (a real peer), a second sink that always refuses, and rules
// that make the pages worth looking at.
func browserSite(t *testing.T, extra string) (*daemon.Daemon, *daemontest.Receiver, *daemontest.Receiver) {
	t.Helper()
	crm, partner := daemontest.NewReceiver(t), daemontest.NewReceiver(t)
	partner.SetStatus(http.StatusUnprocessableEntity)
	d := daemontest.Start(t, fmt.Sprintf(`
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0"%s }
queue: { dir: %q }
sources:
  bird-voice: { type: generic, path: /hooks/bird, event_field: event, status_field: payload.status, id_field: payload.id }
sinks:
  crm: { type: http, url: %q, headers: { Authorization: "Bearer crm-secret-never-shown" }, retry: { max_attempts: 3, initial_interval: 100ms, max_interval: 200ms } }
  partner: { type: http, url: %q }
rules:
  - { name: failed-calls, when: 'status in ["failed", "busy"]', to: [crm] }
  - { name: uk-partner, when: 'payload.payload.to startsWith "+44"', to: [partner] }
`, extra, t.TempDir(), crm.URL, partner.URL))
	return d, crm, partner
}

func postCall(t *testing.T, d *daemon.Daemon, id, status, to string) time.Time {
	t.Helper()
	at := time.Now()
	body := fmt.Sprintf(`{"event":"voice.outbound","payload":{"id":%q,"status":%q,"to":%q,"duration":12}}`, id, status, to)
	if code, ans := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/bird", body, "Content-Type", "application/json"); code != http.StatusOK {
		t.Fatalf("post %s: %d %v", id, code, ans)
	}
	return at
}

func TestBrowserOverviewCountersMove(t *testing.T) {
	d, _, _ := browserSite(t, "")
	p := openConsole(t, d, "overview", 1280, 900, true)
	p.waitFor("the sources table", `document.querySelectorAll('#sources-table tbody tr').length === 1`, 10*time.Second)
	before := p.text("#sources-table tbody tr td:nth-child(2)")
	postCall(t, d, "call-1", "failed", "+31612345678")
	postCall(t, d, "call-2", "completed", "+447700900123")
	postCall(t, d, "call-3", "busy", "+31687654321")
	p.waitFor("the accepted counter to change", fmt.Sprintf(`document.querySelector('#sources-table tbody tr td:nth-child(2)').innerText !== %q`, before), 5*time.Second)
	p.waitFor("the dead letter alert", `document.querySelector('#alerts').innerText.includes('partner has 1 dead letter')`, 10*time.Second)
	p.waitFor("the deliveries", `document.querySelector('#sinks-table').innerText.includes('crm')`, 5*time.Second)
	if body := p.eval(`document.documentElement.outerHTML`); strings.Contains(body, "crm-secret-never-shown") {
		t.Error("the overview shows a configured secret")
	}
	p.contrast("overview, dark")
	p.shot("overview")
	// The page's own files (the API's answers aside) within the budget.
	total := 0.0
	p.mu.Lock()
	for u, n := range p.loaded {
		if !strings.Contains(u, "/api/") {
			total += n
		}
	}
	p.mu.Unlock()
	if total == 0 || total > 150<<10 {
		t.Errorf("the console's page load is %.0f bytes; the budget is 150 KB", total)
	}
	t.Logf("page load: %.1f KB", total/1024)
}

func TestBrowserTapShowsAnEventWithinASecond(t *testing.T) {
	d, _, _ := browserSite(t, "")
	p := openConsole(t, d, "tap", 1280, 900, true)
	p.waitFor("the tap to be live", `document.querySelector('#tap-status').innerText.startsWith('live')`, 10*time.Second)
	posted := postCall(t, d, "tap-1", "failed", "+31612345678")
	p.waitFor("the event in the tap", `document.querySelector('#tap-table tbody').innerText.includes('tap-1')`, time.Second)
	t.Logf("shown %s after its POST", time.Since(posted).Round(time.Millisecond))
	postCall(t, d, "tap-2", "completed", "+447700900123")
	daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/bird", "not json")
	p.waitFor("the rejection", `document.querySelector('#tap-table tbody').innerText.includes('bad_json')`, 5*time.Second)
	// Click an event: its normalized event and payload.
	p.do(chromedp.Click(chromedp.CSS(`#tap-table tbody tr:last-child`)))
	p.waitFor("the detail", `!document.querySelector('#tap-detail').hidden && document.querySelector('#tap-detail').innerText.includes('"payload"')`, 5*time.Second)
	p.contrast("tap, dark")
	p.shot("tap")
	// Filter by expression; a broken one says why.
	p.do(chromedp.SetValue(chromedp.CSS(`#tap-when`), `status ==`), chromedp.Click(chromedp.CSS(`#tap-form button[type=submit]`)))
	p.waitFor("the expression's error", `document.querySelector('#tap-status').innerText.includes('when:')`, 5*time.Second)
	p.allow("status of 400 (Bad Request) " + p.base + "/api/tap?when=")
	p.do(chromedp.Click(chromedp.CSS(`#tap-clear`)),
		chromedp.SetValue(chromedp.CSS(`#tap-when`), `status == "failed"`), chromedp.Click(chromedp.CSS(`#tap-form button[type=submit]`)))
	p.waitFor("the tap to be live again", `document.querySelector('#tap-status').innerText.startsWith('live')`, 10*time.Second)
	postCall(t, d, "tap-3", "completed", "+31612345678")
	postCall(t, d, "tap-4", "failed", "+31612345678")
	p.waitFor("the matching event", `document.querySelector('#tap-table tbody').innerText.includes('tap-4')`, 5*time.Second)
	if strings.Contains(p.text("#tap-table tbody"), "tap-3") {
		t.Error("the tap shows an event its expression excludes")
	}
	// Pause with the keyboard: events wait, and come on resume.
	p.do(chromedp.Click(chromedp.CSS(`#tap-status`)), chromedp.KeyEvent("p"))
	p.waitFor("paused", `document.querySelector('#tap-pause').getAttribute('aria-pressed') === 'true'`, 5*time.Second)
	postCall(t, d, "tap-5", "failed", "+31612345678")
	p.waitFor("the waiting count", `document.querySelector('#tap-status').innerText.includes('1 waiting')`, 5*time.Second)
	if strings.Contains(p.text("#tap-table tbody"), "tap-5") {
		t.Error("a paused tap shows new events")
	}
	p.do(chromedp.KeyEvent("p"))
	p.waitFor("resumed", `document.querySelector('#tap-table tbody').innerText.includes('tap-5')`, 5*time.Second)
}

func TestBrowserEventSearchShowsItsAttempts(t *testing.T) {
	d, crm, _ := browserSite(t, "")
	crm.SetStatus(http.StatusServiceUnavailable)
	postCall(t, d, "call-42", "failed", "+447700900123")
	daemontest.Eventually(t, "a failed attempt", func() bool { return len(crm.Got()) >= 1 })
	crm.SetStatus(http.StatusOK)
	daemontest.Eventually(t, "the delivery", func() bool { return len(crm.Got()) >= 2 })
	p := openConsole(t, d, "events", 1280, 900, true)
	p.do(chromedp.WaitVisible(chromedp.CSS(`#hist-id`)), chromedp.SendKeys(chromedp.CSS(`#hist-id`), "call-42\r"))
	p.waitFor("the attempts", `(() => { const t = document.querySelector('#hist-results').innerText; return t.includes('503') && t.includes('200') && t.includes('422'); })()`, 10*time.Second)
	text := p.text("#hist-results")
	for _, want := range []string{"failed-calls, uk-partner", "crm", "delivered", "partner", "dead"} {
		if !strings.Contains(text, want) {
			t.Errorf("the event's page lacks %q:\n%s", want, text)
		}
	}
	p.contrast("events, dark")
	p.shot("events")
}

func TestBrowserTryShowsTheVerdicts(t *testing.T) {
	d, crm, _ := browserSite(t, "")
	p := openConsole(t, d, "try", 1280, 900, true)
	p.waitFor("the sources", `document.querySelector('#try-source').value === 'bird-voice'`, 10*time.Second)
	p.do(chromedp.SetValue(chromedp.CSS(`#try-payload`), `{"event":"voice.outbound","payload":{"id":"try-1","status":"failed","to":"+31612345678"}}`),
		chromedp.Focus(chromedp.CSS(`#try-payload`)), chromedp.KeyEvent("\r", chromedp.KeyModifiers(2))) // Ctrl+Enter
	p.waitFor("the verdicts", `document.querySelector('#try-results .verdicts') !== null`, 10*time.Second)
	text := p.text("#try-results")
	for _, want := range []string{"failed-calls", "match", "uk-partner", "no match", "when is false", "Sinks: crm"} {
		if !strings.Contains(text, want) {
			t.Errorf("the verdicts lack %q:\n%s", want, text)
		}
	}
	p.shot("try")
	time.Sleep(200 * time.Millisecond)
	if len(crm.Got()) != 0 {
		t.Error("trying a payload delivered it")
	}
}

func TestBrowserConfigIsRedacted(t *testing.T) {
	d, _, _ := browserSite(t, "")
	p := openConsole(t, d, "config", 1280, 900, true)
	p.waitFor("the running config", `document.querySelector('#config-running').innerText.includes('failed-calls')`, 10*time.Second)
	if body := p.eval(`document.documentElement.outerHTML`); strings.Contains(body, "crm-secret-never-shown") || !strings.Contains(body, "Authorization: &lt;secret&gt;") {
		t.Error("the config page shows a secret, or not the redacted header")
	}
	p.shot("config")
}

// A reload refused: its problems, and the diff from the file with the
// change in view, unchanged lines folded away.
func TestBrowserConfigDiffShowsTheChange(t *testing.T) {
	chromium(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.yaml")
	crm := daemontest.NewReceiver(t)
	yaml := fmt.Sprintf(`
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: %q }
sources:
  calls: { type: generic, path: /hooks/calls, id_field: id, status_field: status }
sinks:
  crm: { type: http, url: %q }
rules:
  - { name: failed-calls, when: 'status == "failed"', to: [crm] }
`, filepath.Join(dir, "q"), crm.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.StartFile(t, path)
	edited := strings.Replace(yaml, `to: [crm] }`, `to: [nowhere] }`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	daemontest.Eventually(t, "the refused reload", func() bool {
		_, body := daemontest.Admin(t, d, http.MethodGet, "/api/config", "", "")
		return strings.Contains(body, `"refused"`)
	})
	p := openConsole(t, d, "config", 1280, 900, false)
	p.waitFor("the diff", `document.querySelector('#config-disk pre.diff') !== null`, 10*time.Second)
	diff := p.text("#config-disk pre.diff")
	if !strings.Contains(diff, "- ") || !strings.Contains(diff, "nowhere") || !strings.Contains(diff, "unchanged lines …") ||
		strings.Contains(diff, "max_event_name_bytes") {
		t.Errorf("the diff shows:\n%s\nwant the changed rule with a little context, the rest folded", diff)
	}
	if !strings.Contains(p.text("#config-disk"), "nowhere") {
		t.Error("the refused reload's problem is not shown")
	}
	p.contrast("config diff, light")
	p.shot("config-diff")
}

func TestBrowserAsksForTheToken(t *testing.T) {
	d, _, _ := browserSite(t, `, auth: { bearer_token: "console-token-1234" }`)
	p := openConsole(t, d, "overview", 1280, 900, true)
	p.waitFor("the login dialog", `document.querySelector('#login').open`, 10*time.Second)
	p.shot("login")
	p.do(chromedp.SendKeys(chromedp.CSS(`#login-token`), "wrong\r"))
	p.waitFor("the refusal", `document.querySelector('#login-error').innerText.includes('not right')`, 5*time.Second)
	p.allow("status of 401 (Unauthorized) " + p.base + "/api/session") // the wrong token's
	p.eval(`document.querySelector('#login-token').value = ''`)
	p.do(chromedp.SendKeys(chromedp.CSS(`#login-token`), "console-token-1234\r"))
	p.waitFor("the overview", `!document.querySelector('#login').open && document.querySelectorAll('#sources-table tbody tr').length === 1`, 10*time.Second)
	// The session survives a reload: no second prompt.
	p.do(chromedp.Reload())
	p.waitFor("the overview after a reload", `document.querySelectorAll('#sources-table tbody tr').length === 1`, 10*time.Second)
	if p.eval(`String(document.querySelector('#login').open)`) == "true" {
		t.Error("the token was asked again after a reload")
	}
}

func TestBrowserKeyboardAndPhoneWidth(t *testing.T) {
	d, _, _ := browserSite(t, "")
	postCall(t, d, "call-1", "failed", "+447700900123")
	p := openConsole(t, d, "overview", 390, 844, false)
	p.waitFor("the overview", `document.querySelectorAll('#sinks-table tbody tr').length === 2`, 10*time.Second)
	if w := p.eval(`String(document.documentElement.scrollWidth - window.innerWidth)`); w != "0" {
		t.Errorf("at phone width the page scrolls sideways by %s px", w)
	}
	p.contrast("overview, light, phone")
	p.shot("overview-phone")
	p.do(chromedp.KeyEvent("3"))
	p.waitFor("the events page by its key", `location.hash === '#events' && !document.querySelector('#page-events').hidden`, 5*time.Second)
	p.do(chromedp.KeyEvent("/"))
	p.waitFor("/ to focus the search", `document.activeElement.id === 'hist-id'`, 5*time.Second)
	p.do(chromedp.KeyEvent("\x1b"), chromedp.KeyEvent("?"))
	p.waitFor("the keys' help", `document.querySelector('#help').open`, 5*time.Second)
}

func TestBrowserDeadLetterReplayDelivers(t *testing.T) {
	d, _, partner := browserSite(t, "")
	for i := range 3 {
		postCall(t, d, fmt.Sprintf("uk-%d", i), "completed", "+44770090000"+fmt.Sprint(i))
	}
	daemontest.Eventually(t, "three refusals", func() bool { return len(partner.Got()) == 3 })
	partner.SetStatus(http.StatusOK)
	p := openConsole(t, d, "dlq", 1280, 900, true)
	p.waitFor("three dead letters", `document.querySelectorAll('#dlq-table tbody tr').length === 3`, 10*time.Second)
	// One, from its detail, confirmed.
	p.do(chromedp.Click(chromedp.CSS(`#dlq-table tbody tr:first-child td:nth-child(3)`)))
	p.waitFor("the detail", `!document.querySelector('#dlq-detail').hidden && document.querySelector('#dlq-detail').innerText.includes('422')`, 5*time.Second)
	// With its event: the normalized event as JSON, its payload included.
	p.waitFor("the dead letter's event", `document.querySelector('#dlq-detail pre.code:last-of-type').innerText.includes('"to": "+44770090000')`, 5*time.Second)
	if txt := p.text("#dlq-detail"); strings.Contains(txt, "[object") {
		t.Errorf("the dead letter's detail shows an object's name instead of its content:\n%s", txt)
	}
	p.contrast("dead letters, dark")
	p.shot("dlq")
	p.do(chromedp.Click(chromedp.CSS(`#dlq-replay-one`)))
	p.waitFor("the confirmation", `document.querySelector('#confirm').open`, 5*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#confirm-yes`)))
	daemontest.Eventually(t, "the replayed dead letter delivered", func() bool { return len(partner.Got()) == 4 })
	p.waitFor("two left", `document.querySelectorAll('#dlq-table tbody tr').length === 2`, 5*time.Second)
	// A selection: one more.
	p.do(chromedp.Click(chromedp.CSS(`#dlq-table tbody tr:first-child input`)), chromedp.Click(chromedp.CSS(`#dlq-replay-sel`)))
	p.waitFor("the confirmation", `document.querySelector('#confirm').open && document.querySelector('#confirm-text').innerText.includes('Replay 1 dead letter')`, 5*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#confirm-yes`)))
	daemontest.Eventually(t, "the selected dead letter delivered", func() bool { return len(partner.Got()) == 5 })
	// Every match of a filter that matches none: nothing happens.
	p.do(chromedp.SetValue(chromedp.CSS(`#dlq-q`), "no such error"), chromedp.Click(chromedp.CSS(`#dlq-form button`)))
	p.waitFor("no match", `!document.querySelector('#dlq-empty').hidden`, 5*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#dlq-purge-all`)))
	p.waitFor("the confirmation names the filter", `document.querySelector('#confirm-text').innerText.includes('no such error')`, 5*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#confirm-yes`)))
	p.waitFor("nothing purged", `document.querySelector('#dlq-status').innerText.startsWith('Purged 0')`, 5*time.Second)
	// Every match of a filter that matches the last one: purged.
	p.do(chromedp.SetValue(chromedp.CSS(`#dlq-q`), "422"), chromedp.Click(chromedp.CSS(`#dlq-form button`)))
	p.waitFor("the last one", `document.querySelectorAll('#dlq-table tbody tr').length === 1`, 5*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#dlq-purge-all`)))
	p.waitFor("the confirmation", `document.querySelector('#confirm').open`, 5*time.Second)
	p.do(chromedp.Click(chromedp.CSS(`#confirm-yes`)))
	p.waitFor("purged", `document.querySelector('#dlq-status').innerText.startsWith('Purged 1')`, 5*time.Second)
	if n := len(partner.Got()); n != 5 {
		t.Errorf("the receiver got %d requests, want 5 (3 refused, 2 replayed)", n)
	}
}
