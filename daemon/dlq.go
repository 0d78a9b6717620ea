package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"switchboard/router"
)

// The dead-letter API behind `switchboard dlq` and the console:
//
//	GET  /api/dlq?sink=&q=&limit=&cursor=
//	                       a page of dead letters, newest first, without events:
//	                       {"items": [...], "next_cursor": "..."} ("" on the last page);
//	                       sink filters by sink, q by text in the last error (any case),
//	                       limit is 1 to 1000 (default 100)
//	GET  /api/dlq/{id}     one, with its event
//	POST /api/dlq/replay   {"ids": [...]} or {"all": true[, "sink": S, "q": TEXT]} -> {"replayed": n, "skipped": [...]}
//	POST /api/dlq/purge    {"ids": [...]} or {"all": true[, "sink": S, "q": TEXT]} -> {"purged": n}
//
// Replay puts a dead letter back in its sink's queue with a fresh attempt
// count; dead letters of sinks the config no longer has are skipped and
// listed, since nothing would deliver them.

// DLQRequest selects dead letters for replay or purge: by id, or all of
// them, narrowed by Sink and Q as the listing is.
type DLQRequest struct {
	IDs  []string `json:"ids,omitempty"`
	All  bool     `json:"all,omitempty"`
	Sink string   `json:"sink,omitempty"`
	Q    string   `json:"q,omitempty"`
}

// DLQPage is the answer of GET /api/dlq.
type DLQPage struct {
	Items      []router.DeadLetter `json:"items"`
	NextCursor string              `json:"next_cursor"`
}

// MaxDLQPage bounds the limit of GET /api/dlq.
const MaxDLQPage = 1000

func (d *Daemon) dlqRoutes(mux *http.ServeMux) {
	store, ok := d.queue.(router.DeadLetters)
	if !ok {
		mux.HandleFunc("/api/dlq/", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this queue keeps no dead letters"})
		})
		return
	}
	mux.HandleFunc("GET /api/dlq", func(w http.ResponseWriter, r *http.Request) {
		query, err := deadQuery(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		page, err := store.ListDead(query)
		switch {
		case errors.Is(err, router.ErrBadCursor):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error() + "; start again without cursor"})
			return
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if page.Items == nil {
			page.Items = []router.DeadLetter{}
		}
		writeJSON(w, http.StatusOK, DLQPage{Items: page.Items, NextCursor: page.NextCursor})
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
		d.refreshQueueGauges()
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
		n, err := Purge(store, req)
		d.refreshQueueGauges()
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

// deadQuery reads the listing's query parameters.
func deadQuery(v url.Values) (router.DeadQuery, error) {
	q := router.DeadQuery{Sink: v.Get("sink"), Text: v.Get("q"), Cursor: v.Get("cursor")}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxDLQPage {
			return q, fmt.Errorf("limit %q must be a number from 1 to %d", l, MaxDLQPage)
		}
		q.Limit = n
	}
	return q, nil
}

// EachDead calls fn for every dead letter matching query, newest first.
func EachDead(store router.DeadLetters, query router.DeadQuery, fn func(router.DeadLetter)) error {
	query.Limit = MaxDLQPage
	for {
		page, err := store.ListDead(query)
		if err != nil {
			return err
		}
		for _, dl := range page.Items {
			fn(dl)
		}
		if page.NextCursor == "" {
			return nil
		}
		query.Cursor = page.NextCursor
	}
}

// Replay replays the selected dead letters whose sink is configured
// (known), reporting the others. Shared by the admin API and the CLI on a
// stopped daemon's queue.
func Replay(store router.DeadLetters, req DLQRequest, known func(sink string) bool) (DLQResult, error) {
	var res DLQResult
	var ids []string
	pick := func(dl router.DeadLetter) {
		if !known(dl.Sink) {
			res.Skipped = append(res.Skipped, Skipped{ID: dl.ID, Sink: dl.Sink, Reason: "sink is not configured"})
			return
		}
		ids = append(ids, dl.ID)
	}
	if req.All {
		if err := EachDead(store, router.DeadQuery{Sink: req.Sink, Text: req.Q}, pick); err != nil {
			return res, err
		}
	} else {
		for _, id := range req.IDs {
			dl, err := store.GetDead(id)
			if err != nil {
				if errors.Is(err, router.ErrNotFound) {
					return res, fmt.Errorf("%w: %s", router.ErrNotFound, id)
				}
				return res, err
			}
			pick(*dl)
		}
	}
	if len(ids) == 0 {
		return res, nil
	}
	var err error
	res.Replayed, err = store.Replay(ids)
	return res, err
}

// Purge deletes the selected dead letters.
func Purge(store router.DeadLetters, req DLQRequest) (int, error) {
	if !req.All {
		return store.Purge(req.IDs)
	}
	if req.Sink == "" && req.Q == "" {
		return store.Purge(nil)
	}
	var ids []string
	if err := EachDead(store, router.DeadQuery{Sink: req.Sink, Text: req.Q}, func(dl router.DeadLetter) { ids = append(ids, dl.ID) }); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return store.Purge(ids)
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
