package cisco

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"switchboard/router"
	"switchboard/sources/cisco/internal/pb"
)

// jsonForm is the protojson form grpcurl prints: camelCase names, enums by
// name, unset fields left out.
var jsonForm = protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: false}

// errUnknownEvent is an event whose oneof this build does not know: a type
// added to the API after the .proto was written.
var errUnknownEvent = errors.New("the event carries no event type this switchboard knows (a type newer than its copy of the API?)")

// normalize turns one event of the stream into the normalized event. See
// the package doc for how each field is derived.
func normalize(source string, ev *pb.Event, received time.Time) (*router.Event, error) {
	name, inner, status := classify(ev)
	if name == "" {
		return nil, errUnknownEvent
	}
	b, err := jsonForm.Marshal(inner)
	if err != nil {
		return nil, err
	}
	payload, err := router.DecodeObject(b)
	if err != nil {
		return nil, err
	}
	if o := ev.GetOwner(); o != nil {
		ob, err := jsonForm.Marshal(o)
		if err != nil {
			return nil, err
		}
		if payload["owner"], err = router.DecodeObject(ob); err != nil {
			return nil, err
		}
	}
	if id := ev.GetServiceId(); id != "" {
		payload["serviceId"] = id
	}
	// protojson's spacing is deliberately unstable; encoding/json sorts the
	// keys, so these bytes are the same for the same event in every run:
	// what the id digest needs. No HTML escaping: SMS texts stay readable.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		return nil, err
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := &router.Event{
		Source:     source,
		Event:      name,
		Status:     status,
		Time:       received,
		ReceivedAt: received,
		Payload:    payload,
		RawPayload: raw,
	}
	if ts := ev.GetTimestamp(); ts != nil && ts.IsValid() {
		out.Time = ts.AsTime()
	}
	// Body is the whole event as grpcurl prints it, for sinks that forward
	// what the provider sent.
	if out.Body, err = jsonForm.Marshal(ev); err != nil {
		return nil, err
	}
	out.ID = eventID(source, name, ev, raw)
	return out, nil
}

func eventID(source, name string, ev *pb.Event, payload []byte) string {
	if sms := ev.GetSmsEvent(); sms != nil && sms.GetUuid() != "" {
		// The uuid is the message's, not the event's: a message between two
		// subscribers is an event for each, with one uuid.
		return sms.GetUuid() + ":" + sms.GetDirection().String()
	}
	b := make([]byte, 0, len(name)+40+len(payload))
	b = append(b, name...)
	b = append(b, 0)
	if ts := ev.GetTimestamp(); ts != nil {
		b = append(b, ts.AsTime().UTC().Format(time.RFC3339Nano)...)
	}
	b = append(b, 0)
	b = append(b, payload...)
	return router.DeriveID(source, b)
}

// classify returns the event type's name, the inner message and the
// status; name is "" when the event's oneof is unset or unknown.
func classify(ev *pb.Event) (name string, inner proto.Message, status string) {
	switch x := ev.GetEvent().(type) {
	case *pb.Event_VoiceEvent:
		e := orEmpty(x.VoiceEvent)
		return "VOICE_EVENT", e, enumStatus(int32(e.GetType()), e.GetType().String())
	case *pb.Event_VoicemailEvent:
		e := orEmpty(x.VoicemailEvent)
		return "VOICEMAIL_EVENT", e, enumStatus(int32(e.GetType()), e.GetType().String())
	case *pb.Event_SmsDeliveryReportEvent:
		e := orEmpty(x.SmsDeliveryReportEvent)
		// STATUS_UNKNOWN (0) is a status the provider reports, not "unset".
		return "SMS_DELIVERY_REPORT_EVENT", e, e.GetStatus().String()
	case *pb.Event_SmsEvent:
		return "SMS_EVENT", orEmpty(x.SmsEvent), ""
	case *pb.Event_LocationUpdateEvent:
		return "LOCATION_UPDATE_EVENT", orEmpty(x.LocationUpdateEvent), ""
	case *pb.Event_CountryChangeEvent:
		return "COUNTRY_CHANGE_EVENT", orEmpty(x.CountryChangeEvent), ""
	case *pb.Event_TokenAuditEvent:
		return "TOKEN_AUDIT_EVENT", orEmpty(x.TokenAuditEvent), ""
	case *pb.Event_ConsentRevokeEvent:
		return "CONSENT_REVOKE_EVENT", orEmpty(x.ConsentRevokeEvent), ""
	case *pb.Event_HandsetUpdateEvent:
		return "HANDSET_UPDATE_EVENT", orEmpty(x.HandsetUpdateEvent), ""
	case *pb.Event_FirstAttachmentEvent:
		return "FIRST_ATTACHMENT_EVENT", orEmpty(x.FirstAttachmentEvent), ""
	case *pb.Event_PeriodicCountryEvent:
		return "PERIODIC_COUNTRY_EVENT", orEmpty(x.PeriodicCountryEvent), ""
	}
	return "", nil, ""
}

// enumStatus is a sub-type enum as a status: its name, its number for a
// value newer than this build, nothing for UNSPECIFIED.
func enumStatus(n int32, name string) string {
	if n == 0 {
		return ""
	}
	return name
}

// orEmpty guards against a oneof wrapper holding nil (possible in Go, not
// on the wire).
func orEmpty[T any, P interface {
	*T
	proto.Message
}](m P) P {
	if m == nil {
		return P(new(T))
	}
	return m
}

// ParseJSON normalizes an event written the way grpcurl prints the stream:
// a SubscribeEventsResponse ({"event": {...}}) or the Event itself. It is
// for dry runs (`switchboard route`) and replays of captured events; the
// stream itself never goes through JSON.
func (s *Source) ParseJSON(b []byte, received time.Time) ([]*router.Event, error) {
	var resp pb.SubscribeEventsResponse
	ev := new(pb.Event)
	if err := protojson.Unmarshal(b, &resp); err == nil && resp.GetEvent() != nil {
		ev = resp.GetEvent()
	} else if err := protojson.Unmarshal(b, ev); err != nil {
		return nil, fmt.Errorf("not an event of the wgtwo.events.v0 API in protojson form ({\"event\": {...}} as grpcurl prints it, or the event object): %v", err)
	}
	e, err := normalize(s.name, ev, received)
	if err != nil {
		return nil, err
	}
	return []*router.Event{e}, nil
}
