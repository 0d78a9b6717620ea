package daemon

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"switchboard/config"
	"switchboard/metrics"
	"switchboard/redact"
	"switchboard/sinks"
)

// Changes says what a reload changed.
type Changes struct {
	SinksAdded     []string `json:"sinks_added,omitempty"`
	SinksRemoved   []string `json:"sinks_removed,omitempty"`
	SinksChanged   []string `json:"sinks_changed,omitempty"`
	SourcesAdded   []string `json:"sources_added,omitempty"`
	SourcesRemoved []string `json:"sources_removed,omitempty"`
	SourcesChanged []string `json:"sources_changed,omitempty"`
	Rules          int      `json:"rules"`
	RulesAdded     []string `json:"rules_added,omitempty"`
	RulesRemoved   []string `json:"rules_removed,omitempty"`
	// RulesChanged are rules whose settings changed, or that moved.
	RulesChanged []string `json:"rules_changed,omitempty"`
	// NeedRestart lists changed settings that only a restart applies.
	NeedRestart []string `json:"need_restart,omitempty"`
	// Unchanged is set when the file is byte for byte what is running.
	Unchanged bool `json:"unchanged,omitempty"`
}

// Reload reads ConfigPath and, if it is valid (everything `check` checks),
// swaps it in: rules at once, sinks and sources that changed rebuilt,
// unchanged ones kept with their connections and state. An invalid file
// leaves the running config in place; the error is config.Problems.
func (d *Daemon) Reload(trigger string) (Changes, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.draining.Load() {
		return Changes{}, errors.New("shutting down")
	}
	raw, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		return Changes{}, d.reloadFailed(trigger, config.Problems{{Msg: "cannot read config: " + err.Error()}})
	}
	hash := sha256.Sum256(raw)
	// Built even when the bytes are those running: the secret files the
	// config names (X_file) are read again at every reload, so that a
	// rotated secret applies although the config file did not change.
	next, err := d.build(raw)
	if err != nil {
		return Changes{}, d.reloadFailed(trigger, err)
	}
	old := d.snap.Load()
	if hash == d.lastHash && sameSecrets(next.Secrets, old.Secrets) {
		// The running config, as it is: keep everything, including storm
		// control's windows, and clear a refused reload's state.
		closeSinks(d, next)
		if !d.recovered(trigger) {
			d.log.Info("config unchanged; nothing to reload", "trigger", trigger)
		}
		return Changes{Unchanged: true, Rules: len(old.File.Rules)}, nil
	}
	ch := diff(old, next)
	// The old secrets stay redacted too: errors of deliveries attempted
	// with them may still arrive.
	redact.Set(redact.New(next.Secrets...).With(redact.New(old.Secrets...)))

	// Everything that can fail is done; from here on the new config is
	// applied. Unchanged sinks and sources keep their running instances.
	for name, s := range next.Sinks {
		if o := old.Sinks[name]; o != nil && !slices.Contains(ch.SinksChanged, name) {
			closeSink(d, s) // the fresh, unneeded instance
			next.Sinks[name] = o
		}
	}
	for name, s := range next.Sources {
		if o := old.Sources[name]; o != nil && !slices.Contains(ch.SourcesChanged, name) {
			next.Sources[name] = o
			if s.HTTP != nil {
				next.byPath[s.Path] = o
			}
		}
	}
	// Storm control moves over first: a throttle the new config keeps
	// counts in the same windows whichever snapshot an accept holds.
	next.Table.Inherit(old.Table)
	// Publish, then wait for the accepts still routing and queueing under
	// the old snapshot (new ones take the new snapshot at once): past
	// this, no event routed by the old config is on its way into the
	// queue, so removed sinks' deliveries can be moved aside and the
	// throttles the new config dropped can be summarised.
	// Until then both configs route: the sinks of either share
	// queue.max_bytes, so that the shares never add up to more than it.
	d.shareQueue(len(sinkUnion(old, next)))
	d.snap.Store(next)
	old.accepting.Lock()
	old.accepting.Unlock()
	d.shareQueue(len(next.Sinks))
	d.queueSummaries(next.Table.Retired(old.Table, time.Now()), "config reload")

	for _, name := range append(slices.Clone(ch.SinksRemoved), ch.SinksChanged...) {
		d.stopWorker(name)
		closeSink(d, old.Sinks[name])
	}
	if len(ch.SinksRemoved) > 0 {
		if dl, ok := d.queue.(interface {
			DeadLetterSinks(keep func(string) bool, reason string) (int, error)
		}); ok {
			n, err := dl.DeadLetterSinks(func(s string) bool { return next.Sinks[s] != nil }, "sink removed")
			if err != nil {
				d.log.Error("could not move deliveries of removed sinks to the dead-letter queue; they stay queued", "err", err)
			} else if n > 0 {
				d.log.Warn("queued deliveries of removed sinks moved to the dead-letter queue", "count", n, "sinks", ch.SinksRemoved, "reason", "sink removed")
			}
		}
	}
	for _, name := range append(slices.Clone(ch.SinksAdded), ch.SinksChanged...) {
		d.startWorker(name, next.Sinks[name])
	}
	for _, name := range append(slices.Clone(ch.SourcesRemoved), ch.SourcesChanged...) {
		d.stopStream(name)
	}
	for _, name := range append(slices.Clone(ch.SourcesAdded), ch.SourcesChanged...) {
		d.startStream(next.Sources[name])
	}
	publishSeries(old, next)
	d.history.SetMaxAge(next.File.History.MaxAge)
	d.lastHash = hash
	d.failed = false
	d.noteApplied(trigger, hash)
	metrics.ReloadSuccessful.Set(1)
	metrics.ReloadSuccessTime.SetToCurrentTime()
	for _, key := range ch.NeedRestart {
		d.log.Warn("setting changed but only applies after a restart; the old value stays in use", "setting", key)
	}
	logConfigWarnings(d.log, old.File, next.File)
	d.log.Info("config reloaded", "trigger", trigger, "path", d.ConfigPath, "rules", ch.Rules,
		"rules_added", ch.RulesAdded, "rules_removed", ch.RulesRemoved, "rules_changed", ch.RulesChanged,
		"sinks_added", ch.SinksAdded, "sinks_removed", ch.SinksRemoved, "sinks_changed", ch.SinksChanged,
		"sources_added", ch.SourcesAdded, "sources_removed", ch.SourcesRemoved, "sources_changed", ch.SourcesChanged)
	return ch, nil
}

// build does everything `check` does to a new file, and builds it.
func (d *Daemon) build(raw []byte) (*Snapshot, error) {
	f, err := config.Parse(raw)
	if err != nil {
		return nil, err
	}
	next, err := Build(f)
	if err != nil {
		return nil, err
	}
	if ps := Preflight(next); len(ps) > 0 {
		closeSinks(d, next)
		return nil, ps
	}
	return next, nil
}

// sameSecrets reports whether two configs hold the same credentials.
func sameSecrets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// recovered is a reload of the very file that runs: after a refused
// reload, the file is back to what runs, so the refusal no longer stands.
func (d *Daemon) recovered(trigger string) bool {
	if !d.failed {
		return false
	}
	d.failed = false
	metrics.ReloadSuccessful.Set(1)
	d.noteRecovered()
	d.log.Info("config file is back to the running config; the earlier refused reload no longer applies",
		"trigger", trigger, "path", d.ConfigPath)
	return true
}

// closeSinks releases the sinks of a snapshot that will not be used.
func closeSinks(d *Daemon, s *Snapshot) {
	for _, sk := range s.Sinks {
		closeSink(d, sk)
	}
}

func (d *Daemon) reloadFailed(trigger string, err error) error {
	d.failed = true
	metrics.ReloadSuccessful.Set(0)
	d.noteRefused(trigger, err)
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			d.log.Error("config rejected: "+p.Error(), "trigger", trigger, "path", d.ConfigPath)
		}
	} else {
		d.log.Error("config rejected", "trigger", trigger, "path", d.ConfigPath, "err", err)
	}
	d.log.Error("reload refused; the running config stays in force", "trigger", trigger)
	return err
}

// diff compares two snapshots by their settings (after ${VAR} expansion).
func diff(old, next *Snapshot) Changes {
	ch := Changes{Rules: len(next.File.Rules)}
	ch.RulesAdded, ch.RulesRemoved, ch.RulesChanged = diffRules(old.File.Rules, next.File.Rules)
	for name, s := range next.Sinks {
		switch o := old.Sinks[name]; {
		case o == nil:
			ch.SinksAdded = append(ch.SinksAdded, name)
		case !reflect.DeepEqual(o.Conf, s.Conf):
			ch.SinksChanged = append(ch.SinksChanged, name)
		}
	}
	for name := range old.Sinks {
		if next.Sinks[name] == nil {
			ch.SinksRemoved = append(ch.SinksRemoved, name)
		}
	}
	for name, s := range next.Sources {
		switch o := old.Sources[name]; {
		case o == nil:
			ch.SourcesAdded = append(ch.SourcesAdded, name)
		case !reflect.DeepEqual(o.Conf, s.Conf):
			ch.SourcesChanged = append(ch.SourcesChanged, name)
		}
	}
	for name := range old.Sources {
		if next.Sources[name] == nil {
			ch.SourcesRemoved = append(ch.SourcesRemoved, name)
		}
	}
	of, nf := old.File, next.File
	if of.Server.Listen != nf.Server.Listen {
		ch.NeedRestart = append(ch.NeedRestart, "server.listen")
	}
	if of.Server.MaxConnections != nf.Server.MaxConnections {
		ch.NeedRestart = append(ch.NeedRestart, "server.max_connections")
	}
	if of.Admin.Listen != nf.Admin.Listen {
		ch.NeedRestart = append(ch.NeedRestart, "admin.listen")
	}
	oq, nq := of.Queue, nf.Queue
	if oq.Driver != nq.Driver {
		ch.NeedRestart = append(ch.NeedRestart, "queue.driver")
	}
	if oq.NATS != nq.NATS {
		ch.NeedRestart = append(ch.NeedRestart, "queue.nats")
	}
	oq.Driver, oq.NATS = nq.Driver, nq.NATS
	if oq != nq {
		ch.NeedRestart = append(ch.NeedRestart, "queue")
	}
	if of.History.MaxEvents != nf.History.MaxEvents {
		ch.NeedRestart = append(ch.NeedRestart, "history.max_events")
	}
	for _, l := range [][]string{ch.SinksAdded, ch.SinksRemoved, ch.SinksChanged, ch.SourcesAdded, ch.SourcesRemoved, ch.SourcesChanged} {
		slices.Sort(l)
	}
	return ch
}

// diffRules names the rules added, removed and changed, by name; a rule
// that moved in the order changed, since order decides what stop skips.
func diffRules(old, next []config.Rule) (added, removed, changed []string) {
	at := make(map[string]int, len(old))
	for i, r := range old {
		at[r.Name] = i
	}
	seen := map[string]bool{}
	for i, r := range next {
		seen[r.Name] = true
		j, ok := at[r.Name]
		switch {
		case !ok:
			added = append(added, r.Name)
		case i != j || !reflect.DeepEqual(old[j], r):
			changed = append(changed, r.Name)
		}
	}
	for _, r := range old {
		if !seen[r.Name] {
			removed = append(removed, r.Name)
		}
	}
	return added, removed, changed
}

func closeSink(d *Daemon, s *Sink) {
	if s == nil {
		return
	}
	if c, ok := s.Sink.(sinks.Closer); ok {
		if err := c.Close(); err != nil {
			d.log.Warn("closing sink failed", "sink", s.Name, "err", err)
		}
	}
}

// stopStream stops a stream source and waits (briefly) for it to end, so
// that a changed source's old and new streams do not run side by side.
func (d *Daemon) stopStream(name string) {
	d.mu.Lock()
	st, ok := d.streams[name]
	delete(d.streams, name)
	d.mu.Unlock()
	if !ok {
		return
	}
	st.cancel()
	select {
	case <-st.done:
	case <-time.After(10 * time.Second):
		d.log.Warn("stream source did not stop within 10s; starting its replacement anyway", "source", name)
	}
}

// serveReload is POST /-/reload: 200 with what changed, or 400 with every
// problem of the new file.
func (d *Daemon) serveReload(w http.ResponseWriter, r *http.Request) {
	ch, err := d.Reload("admin API")
	if err != nil {
		var ps config.Problems
		msgs := []string{err.Error()}
		if errors.As(err, &ps) {
			msgs = msgs[:0]
			for _, p := range ps {
				msgs = append(msgs, p.Error())
			}
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": "invalid", "errors": msgs})
		return
	}
	status := "reloaded"
	if ch.Unchanged {
		status = "unchanged"
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": status, "changes": ch})
}

// Debounce is how long the config file must be quiet before a reload:
// editors write in several steps, and one reload should see the last.
const Debounce = 300 * time.Millisecond

// watch reloads on changes to ConfigPath. It watches the directory, not
// the file, so that editors' rename-on-save and Kubernetes ConfigMap
// updates (a `..data` symlink swapped in the same directory) are seen as
// well as writes in place.
func (d *Daemon) watch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(d.ConfigPath)
	if err != nil {
		w.Close()
		return err
	}
	dir, base := filepath.Dir(abs), filepath.Base(abs)
	if err := w.Add(dir); err != nil {
		w.Close()
		return err
	}
	if h, err := os.ReadFile(abs); err == nil {
		d.reloadMu.Lock()
		d.lastHash = sha256.Sum256(h)
		d.reloadMu.Unlock()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer w.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-d.ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Base(ev.Name)
				if name != base && name != "..data" {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(Debounce)
				} else {
					timer.Reset(Debounce)
				}
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.log.Warn("config watcher error", "err", err)
			case <-fire:
				fire = nil
				d.Reload("file change")
			}
		}
	}()
	return nil
}

// sinkUnion returns the names of the sinks of either snapshot.
func sinkUnion(a, b *Snapshot) map[string]bool {
	out := make(map[string]bool, len(a.Sinks)+len(b.Sinks))
	for name := range a.Sinks {
		out[name] = true
	}
	for name := range b.Sinks {
		out[name] = true
	}
	return out
}
