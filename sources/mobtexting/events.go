package mobtexting

import (
	"slices"
	"strings"

	"switchboard/router"
)

// kind is what a MOBtexting event is, which decides how its id is made.
type kind int

const (
	kindStatus   kind = iota // *:message:status: one message, many status changes
	kindIn                   // *:message:in: an incoming message, no status
	kindUnsub                // *:unsubscription: an opt-out record
	kindVoice                // voice:message:out: a call detail record
	kindContacts             // contacts:subscriber:subscription
)

// eventKinds is every event of the MOBtexting events page, in its order.
var eventKinds = []struct {
	name string
	kind kind
}{
	{"sms:message:status", kindStatus},
	{"sms:unsubscription", kindUnsub},
	{"whatsapp:message:in", kindIn},
	{"whatsapp:message:status", kindStatus},
	{"whatsapp:unsubscription", kindUnsub},
	{"rcs:message:in", kindIn},
	{"rcs:message:status", kindStatus},
	{"rcs:unsubscription", kindUnsub},
	{"voice:message:out", kindVoice},
	{"voice:unsubscription", kindUnsub},
	{"viber:message:status", kindStatus},
	{"viber:message:in", kindIn},
	{"viber:unsubscription", kindUnsub},
	{"vmn:message:in", kindIn},
	{"contacts:subscriber:subscription", kindContacts},
}

// eventNames lists the events, sorted, for messages and the catalog.
var eventNames = func() []string {
	out := make([]string, len(eventKinds))
	for i, e := range eventKinds {
		out[i] = e.name
	}
	slices.Sort(out)
	return out
}()

func knownEvent(name string) bool {
	_, ok := slices.BinarySearch(eventNames, name)
	return ok
}

// kindOf returns the kind of a known event, or guesses one from the name's
// suffix for an event the envelope names but the docs do not list yet (a
// new product), so that its id is still made the same way.
func kindOf(name string) kind {
	for _, e := range eventKinds {
		if e.name == name {
			return e.kind
		}
	}
	switch {
	case strings.HasSuffix(name, ":message:status"):
		return kindStatus
	case strings.HasSuffix(name, ":unsubscription"):
		return kindUnsub
	}
	return kindIn
}

// Statuses as the platform sends them.
var (
	// messageStatuses are those of whatsapp, rcs and viber message:status.
	messageStatuses = []string{"sent", "delivered", "read", "failed", "deleted"}

	// smsStatuses are the SMS delivery report statuses of the SMPP docs
	// (v2/sms/smpp.md) and the interim ones of the pull API and reports.
	smsStatuses = []string{
		"DELIVRD",
		"AWAITING-DLR", "TIMEOUT-DLR",
		"INVALID-SUB", "ABSENT-SUB", "HANDSET-ERR", "HANDSET-BUSY", "MEMEXEC", "MOB-OFF", "BARRED",
		"NET-ERR", "FAILED", "EXPIRED", "UNDELIV", "REJECTED",
		"SERIES-BLK", "SERIES-BLOCK", "DNDNUMB", "BLACKLST", "SNDR-BLOCK", "NOT-OPTIN", "OPTOUT-REJ", "PROMO-TMOUT", "SPAM",
		"NO-CREDITS", "NO-ACCOUNT", "SERVER-ERR", "INV-NUMBER",
		"TEMPLATE-NOT-FOUND", "INV-TEMPLATE", "INV-SENDER",
		"NOTALLOWED", "DUPLICATE", "THROTTLED", "REJ-MULTIPART",
		"DLT-REJECTED", "DLT-INV-TMID", "DLT-INV-ENTITY", "DLT-INV-TM-ID", "DLT-TM-VAR-EXECEED",
		"DLT-ENTITY-NOT-FOUND", "DLT-TM-BLACKLST", "DLT-ENTITY-BLACKLST", "DLT-HEADER-INACTIVE",
		"DLT-TM-INACTIVE", "DLT-SENDER-NOT-REG-TM",
		"INV-PROVISION", "INV-SERVICE", "INV-SCHEDULE",
	}

	// unsubscribed is the one status of every *:unsubscription event: the
	// platform reports the record it created, in words.
	unsubscribed = "Unsubscriber created successfully"

	contactStatuses = []string{"Subscriber created successfully", "Subscriber updated successfully"}
)

// declare tells the router which statuses each event can have, so that
// `check` refuses a status filter that could never match.
//
// voice:message:out is declared open: the docs show only ANSWER, and a
// call that was not answered surely reports something else (NOANSWER,
// BUSY, ... are undocumented). Declaring [ANSWER] would make `check` refuse
// a rule waiting for the real failure statuses; open, no status check
// applies to it, nor to a glob such as voice:* that matches it.
func declare() {
	for _, e := range eventKinds {
		switch {
		case e.name == "sms:message:status":
			router.DeclareEvent(e.name, smsStatuses...)
		case e.kind == kindStatus:
			router.DeclareEvent(e.name, messageStatuses...)
		case e.kind == kindIn:
			router.DeclareEvent(e.name) // incoming messages carry no status
		case e.kind == kindUnsub:
			router.DeclareEvent(e.name, unsubscribed)
		case e.kind == kindContacts:
			router.DeclareEvent(e.name, contactStatuses...)
		case e.kind == kindVoice:
			router.DeclareOpenEvent(e.name)
		}
	}
}

// shape is the outcome of telling an unwrapped body's event by its fields.
type shape struct {
	event string   // the one event the body can be, or ""
	unsub bool     // the body is an unsubscription (of some product)
	also  []string // every event the body looks like, when several
}

// detect tells an unwrapped payload's event from its fields, only where
// that is unambiguous (PROVIDERS.md §3):
//   - sms:message:status: mobile + status + (units + credits, or deliv_time);
//   - voice:message:out: bridge, or mid + flow_id, or source "OBD";
//   - contacts:subscriber:subscription: identity + (first_name or
//     attributes) + status "Subscriber created/updated successfully";
//   - an unsubscription (receiver + type + value) is recognisable, but
//     every product sends the same body, so its event is not.
func detect(p map[string]any) shape {
	var s shape
	if has(p, "mobile") && has(p, "status") && (has(p, "units") && has(p, "credits") || has(p, "deliv_time")) {
		s.also = append(s.also, "sms:message:status")
	}
	if has(p, "bridge") || has(p, "mid") && has(p, "flow_id") || p["source"] == "OBD" {
		s.also = append(s.also, "voice:message:out")
	}
	if st, _ := p["status"].(string); has(p, "identity") && (has(p, "first_name") || has(p, "attributes")) && slices.Contains(contactStatuses, st) {
		s.also = append(s.also, "contacts:subscriber:subscription")
	}
	if has(p, "receiver") && has(p, "type") && has(p, "value") {
		s.unsub = true
		s.also = append(s.also, "an unsubscription")
	}
	if len(s.also) == 1 && !s.unsub {
		s.event = s.also[0]
	}
	return s
}

func has(p map[string]any, key string) bool {
	_, ok := p[key]
	return ok
}
