// Package logqueue is switchboard's embedded durable queue: a router.Queue
// and router.DeadLetters kept as an append-only log of segments under
// queue.dir.
//
// # What is written when
//
// One writer goroutine appends every change as a record and commits in
// groups: each Enqueue waiting when a write starts shares it and its fsync,
// and returns only after that fsync, so a source answers 2xx only for an
// event on disk. A delivery's success, retry or death is appended in the
// next write without making the worker wait and without an fsync of its own
// (writes that hold no event are synced at the next one that does, or by
// the checkpoint within a second): a crash may lose an acknowledgement, and
// the delivery is then made again (at least once), never an event. Memory
// follows the log: a change shows in the schedule only once its record is
// written, so memory and disk never disagree, and a write that fails (a full
// disk) is retried, with Enqueue answering an error meanwhile.
//
// # Files
//
//	LOCK                one daemon per directory (flock)
//	seg-<16 hex>.log    segments of the log, numbered consecutively
//	ddp-<16 hex>.log    dedup chunks: remembered (source, id) keys
//	queue.state         checkpoint: the live files and their synced lengths
//
// Each file starts with a header naming the previous file's sealed length
// and checksum; each record is framed with its length and a CRC-32C (see
// frame.go). At start every file is checked: any damage before a length
// known to be synced stops the start with one error naming the file and
// what to do; a torn tail past it (a crash's unsynced write) is cut off and
// logged. While the queue is open, zeros are kept written ahead of the
// head's end (fill.go), so that the group commit's fsync does not grow the
// file; at start they are the log's clean end, cut off quietly, and a
// segment is cut back to its records before it is sealed and on Close.
//
// # Memory
//
// Deliveries and events live in flat tables (mem.go): per delivery about 40
// bytes, per event 16, plus a sink's ready list and delay heap of slot
// numbers. Deliveries queued by Enqueue are handed to workers from memory
// (the accepted *router.Event, already encoded) while a bounded cache holds
// them; past it, after a restart and for deferred retries, Next reads the
// record back with one pread and no JSON parse.
//
// # Space
//
// The oldest segment is deleted once nothing in it is live; when the log
// holds more than twice its live bytes, the oldest segment's live events
// are copied forward (with their deliveries' current state) and it is
// deleted, so space is given back while the daemon runs.
package logqueue
