package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"switchboard/router"
)

// The dead-letter API behind `switchboard dlq`:
//
//	GET  /api/dlq          every dead letter (without events)
//	GET  /api/dlq/{id}     one, with its event
//	POST /api/dlq/replay   {"ids": [...]} or {"all": true} -> {"replayed": n, "skipped": [...]}
//	POST /api/dlq/purge    {"ids": [...]} or {"all": true} -> {"purged": n}
//
// Replay puts a dead letter back in its sink's queue with a fresh attempt
// count; dead letters of sinks the config no longer has are skipped and
// listed, since nothing would deliver them.

// DLQRequest selects dead letters for replay or purge.
type DLQRequest struct {
	IDs []string `json:"ids,omitempty"`
	All bool     `json:"all,omitempty"`
}

func (d *Daemon) dlqRoutes(mux *http.ServeMux) {
	store, ok := d.queue.(router.DeadLetters)
	if !ok {
		mux.HandleFunc("/api/dlq/", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this queue keeps no dead letters"})
		})
		return
	}
	mux.HandleFunc("GET /api/dlq", func(w http.ResponseWriter, r *http.Request) {
		list, err := store.ListDead()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if list == nil {
			list = []router.DeadLetter{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET /api/dlq/{id}", func(w http.ResponseWriter, r *http.Request) {
		dl, err := store.GetDead(r.PathValue("id"))
		if errors.Is(err, router.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no dead letter " + r.PathValue("id")})
			return
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, dl)
	})
	mux.HandleFunc("POST /api/dlq/replay", func(w http.ResponseWriter, r *http.Request) {
		req, ok := readDLQRequest(w, r)
		if !ok {
			return
		}
		res, err := Replay(store, req, func(sink string) bool { return d.snap.Load().Sinks[sink] != nil })
		dlqAnswer(w, res, err)
		for _, s := range res.Skipped {
			d.log.Warn("dead letter not replayed: its sink is not configured", "dead_letter", s.ID, "sink", s.Sink)
		}
		if res.Replayed > 0 {
			d.log.Info("dead letters replayed", "count", res.Replayed)
		}
	})
	mux.HandleFunc("POST /api/dlq/purge", func(w http.ResponseWriter, r *http.Request) {
		req, ok := readDLQRequest(w, r)
		if !ok {
			return
		}
		var ids []string
		if !req.All {
			ids = req.IDs
		}
		n, err := store.Purge(ids)
		dlqAnswer(w, DLQResult{Purged: n}, err)
		if n > 0 {
			d.log.Info("dead letters purged", "count", n)
		}
	})
}

// DLQResult is the answer of replay and purge.
type DLQResult struct {
	Replayed int       `json:"replayed"`
	Purged   int       `json:"purged"`
	Skipped  []Skipped `json:"skipped,omitempty"`
}

// Skipped is a dead letter left alone by a replay.
type Skipped struct {
	ID     string `json:"id"`
	Sink   string `json:"sink"`
	Reason string `json:"reason"`
}

// Replay replays the selected dead letters whose sink is configured
// (known), reporting the others. Shared by the admin API and the CLI on a
// stopped daemon's queue.
func Replay(store router.DeadLetters, req DLQRequest, known func(sink string) bool) (DLQResult, error) {
	var res DLQResult
	list, err := store.ListDead()
	if err != nil {
		return res, err
	}
	want := map[string]bool{}
	for _, id := range req.IDs {
		want[id] = true
	}
	var ids []string
	for _, dl := range list {
		if !req.All && !want[dl.ID] {
			continue
		}
		delete(want, dl.ID)
		if !known(dl.Sink) {
			res.Skipped = append(res.Skipped, Skipped{ID: dl.ID, Sink: dl.Sink, Reason: "sink is not configured"})
			continue
		}
		ids = append(ids, dl.ID)
	}
	for id := range want {
		return res, fmt.Errorf("%w: %s", router.ErrNotFound, id)
	}
	if len(ids) == 0 {
		return res, nil
	}
	res.Replayed, err = store.Replay(ids)
	return res, err
}

func readDLQRequest(w http.ResponseWriter, r *http.Request) (DLQRequest, bool) {
	var req DLQRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"ids\": [...]} or {\"all\": true}: " + err.Error()})
		return req, false
	}
	if !req.All && len(req.IDs) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "name dead letters with \"ids\" or set \"all\": true"})
		return req, false
	}
	return req, true
}

func dlqAnswer(w http.ResponseWriter, res DLQResult, err error) {
	switch {
	case errors.Is(err, router.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
