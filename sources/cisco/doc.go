// Package cisco is the source type for the event API of Cisco Mobility
// Services (formerly Working Group Two, "wgtwo"): switchboard is a gRPC
// client of wgtwo.events.v0.EventsService. It subscribes once per source to
// every configured event type, turns each event into a normalized event,
// hands it to the daemon and acknowledges it to the server only once the
// daemon says its deliveries are durably queued.
//
// It owns the subscription (settings, OAuth2 client credentials, TLS,
// reconnects) and the normalization; routing, queueing and deduplication
// are the daemon's.
//
// # Normalization
//
//   - event: the event type's proto name: VOICE_EVENT, VOICEMAIL_EVENT,
//     SMS_EVENT, SMS_DELIVERY_REPORT_EVENT, COUNTRY_CHANGE_EVENT, ... (the
//     documentation's ROAMING_EVENT and SMS_DELIVERY_EVENT are accepted in
//     the config as aliases, but events carry the proto names).
//   - status: the event's sub-type where it has one: VoiceEvent.type
//     (CALL_INITIATED ... CALL_FWD_VOICEMAIL), VoicemailEvent.type
//     (NEW_VOICEMAIL), SmsDeliveryReportEvent.status (DELIVERED,
//     TEMPORARY_FAILURE, FINAL_FAILURE, EXPIRED, STATUS_UNKNOWN); omitted
//     for the other types and for an UNSPECIFIED sub-type.
//   - payload: the inner event message in protojson form (camelCase names,
//     enums by name, unset fields left out, as grpcurl prints it), plus the
//     envelope's `owner` and `serviceId`. Phone numbers stay as protojson
//     gives them: {"e164": "+4799990000"}.
//   - time: the event's timestamp; the receipt time when it has none.
//   - id: for SMS_EVENT, the message's uuid (the same on every delivery of
//     the message) joined with its direction, "<uuid>:FROM_SUBSCRIBER",
//     because one message between two subscribers is two events with one
//     uuid; otherwise, and for an SMS without uuid, a digest of the event
//     type, the timestamp and the payload (router.DeriveID). Metadata
//     (sequence, ack inbox, is_redelivered) is left out, so a redelivery
//     gets the id of its first delivery and the queue's deduplication
//     recognises it.
//
// # Acknowledgement
//
// With manual_ack enabled (the default), an event is acked with
// Ack{inbox: metadata.ack_inbox, sequence: metadata.sequence} only after the
// Acceptor returned nil: its deliveries are queued, or it is a duplicate of
// one that was. An event that cannot be queued is not acked, and the server
// sends it again after manual_ack.timeout.
//
// The generated code in internal/pb comes from the .proto files under
// proto/, written for switchboard from the provider's wire contract.
package cisco

//go:generate protoc -I proto --go_out=internal/pb --go_opt=module=switchboard/sources/cisco/internal/pb --go-grpc_out=internal/pb --go-grpc_opt=module=switchboard/sources/cisco/internal/pb wgtwo/common/v0/phonenumber.proto wgtwo/events/v0/events.proto
