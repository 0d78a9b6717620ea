package cisco

import (
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"switchboard/router"
	"switchboard/sources/cisco/internal/pb"
	"switchboard/sources/sourcetest"
)

var received = time.Date(2026, 11, 23, 7, 0, 0, 456000000, time.UTC)

func e164(n string) *pb.PhoneNumber { return &pb.PhoneNumber{E164: n} }

// sampleEvents is one event of each type, as the server sends them.
func sampleEvents() map[string]*pb.Event {
	owner := &pb.Owner{PhoneNumber: e164("+4799990000"), Sub: "9f3c1e52-sub"}
	env := func(ev *pb.Event) *pb.Event {
		ev.Metadata = &pb.EventMetadata{Sequence: 7, AckInbox: testInbox}
		ev.Timestamp = timestamppb.New(testTime)
		ev.ServiceId = "switchboard-product"
		ev.Owner = owner
		return ev
	}
	country := func(code, name string) *pb.CountryChangeEvent_Country {
		return &pb.CountryChangeEvent_Country{Code: code, Name: name}
	}
	return map[string]*pb.Event{
		"VOICE_EVENT": env(&pb.Event{Event: &pb.Event_VoiceEvent{VoiceEvent: &pb.VoiceEvent{
			CallId: "b1a6e2d0-call", Type: pb.VoiceEvent_CALL_RINGING,
			FromNumber: e164("+4799991111"), ToNumber: e164("+4799990000"), CallerIdHidden: true,
		}}}),
		"VOICEMAIL_EVENT": env(&pb.Event{Event: &pb.Event_VoicemailEvent{VoicemailEvent: &pb.VoicemailEvent{
			VoicemailId: "vm-31337", Type: pb.VoicemailEvent_NEW_VOICEMAIL,
			FromNumber: e164("+4799991111"), ToNumber: e164("+4799990000"),
		}}}),
		"SMS_EVENT": env(&pb.Event{Event: &pb.Event_SmsEvent{SmsEvent: &pb.SmsEvent{
			Id: "route-1", Uuid: "0d9c6c3a-5f7e-4b7e-9a51-1f1f2a2b3c4d",
			FromAddress: &pb.SmsEvent_FromE164{FromE164: e164("+4799990000")},
			ToAddress:   &pb.SmsEvent_ToTextAddress{ToTextAddress: &pb.TextAddress{TextAddress: "Bank"}},
			Direction:   pb.SmsEvent_FROM_SUBSCRIBER,
			Content:     &pb.SmsEvent_Text{Text: "Hi <3 & bye"},
		}}}),
		"SMS_DELIVERY_REPORT_EVENT": env(&pb.Event{Event: &pb.Event_SmsDeliveryReportEvent{SmsDeliveryReportEvent: &pb.SmsDeliveryReportEvent{
			Id: "dr-1", SmsId: "sms-1",
			FromAddress: &pb.SmsDeliveryReportEvent_FromE164{FromE164: e164("+4799990000")},
			ToAddress:   &pb.SmsDeliveryReportEvent_ToNationalPhoneNumber{ToNationalPhoneNumber: &pb.NationalPhoneNumber{NationalPhoneNumber: "99991111"}},
			Direction:   pb.SmsDeliveryReportEvent_FROM_SUBSCRIBER,
			Status:      pb.SmsDeliveryReportEvent_FINAL_FAILURE,
		}}}),
		"LOCATION_UPDATE_EVENT": env(&pb.Event{Event: &pb.Event_LocationUpdateEvent{LocationUpdateEvent: &pb.LocationUpdateEvent{
			Number: e164("+4799990000"),
			Previous: &pb.LocationUpdateEvent_Locations{
				Msc: &pb.LocationUpdateEvent_GlobalTitle{Value: "4790000001"}, Vlr: &pb.LocationUpdateEvent_GlobalTitle{Value: "4790000002"},
			},
			Current: &pb.LocationUpdateEvent_Locations{
				Sgsn: &pb.LocationUpdateEvent_GlobalTitle{Value: "4690000003"},
				Mme:  &pb.LocationUpdateEvent_Fqdn{Value: "mme1.epc.mnc001.mcc240.3gppnetwork.org"},
			},
		}}}),
		"COUNTRY_CHANGE_EVENT": env(&pb.Event{Event: &pb.Event_CountryChangeEvent{CountryChangeEvent: &pb.CountryChangeEvent{
			Msisdn: e164("+4799990000"), Previous: country("NO", "Norway"), Current: country("SE", "Sweden"),
		}}}),
		"TOKEN_AUDIT_EVENT": env(&pb.Event{Event: &pb.Event_TokenAuditEvent{TokenAuditEvent: &pb.TokenAuditEvent{
			Operation: pb.TokenAuditEvent_MODIFIED,
			TokenChanged: &pb.TokenAuditEvent_OperatorToken{OperatorToken: &pb.TokenAuditEvent_OperatorTokenChanged{
				New: &pb.TokenAuditEvent_OperatorTokenMetadata{ClientId: "c1", Name: "ops", Rights: []string{"events.voice.subscribe", "events.sms.subscribe"}},
				Old: &pb.TokenAuditEvent_OperatorTokenMetadata{ClientId: "c1", Name: "ops", Rights: []string{"events.voice.subscribe"}},
			}},
		}}}),
		"CONSENT_REVOKE_EVENT": env(&pb.Event{Event: &pb.Event_ConsentRevokeEvent{ConsentRevokeEvent: &pb.ConsentRevokeEvent{
			Msisdn: e164("+4799990000"),
		}}}),
		"HANDSET_UPDATE_EVENT": env(&pb.Event{Event: &pb.Event_HandsetUpdateEvent{HandsetUpdateEvent: &pb.HandsetUpdateEvent{
			Previous: &pb.Handset{ImeiSv: &pb.ImeiSv{Imei: "35209900176148", SoftwareVersion: "01"}},
			Current:  &pb.Handset{ImeiSv: &pb.ImeiSv{Imei: "35693803564380", SoftwareVersion: "23"}},
			Imsi:     &pb.Imsi{Value: "242019900000001"},
			Number:   e164("+4799990000"),
		}}}),
		"FIRST_ATTACHMENT_EVENT": env(&pb.Event{Event: &pb.Event_FirstAttachmentEvent{FirstAttachmentEvent: &pb.FirstAttachmentEvent{
			Number: e164("+4799990000"), Imsi: &pb.Imsi{Value: "242019900000001"},
		}}}),
		"PERIODIC_COUNTRY_EVENT": env(&pb.Event{Event: &pb.Event_PeriodicCountryEvent{PeriodicCountryEvent: &pb.PeriodicCountryEvent{
			Number: e164("+4799990000"), Imsi: &pb.Imsi{Value: "242019900000001"}, Country: country("SE", "Sweden"),
		}}}),
	}
}

// TestNormalizeGolden pins the normalized form of one event of each type:
// testdata/golden/<TYPE>.json is what the file sink would write.
func TestNormalizeGolden(t *testing.T) {
	samples := sampleEvents()
	if len(samples) != len(eventTypes) {
		t.Fatalf("%d samples for %d event types", len(samples), len(eventTypes))
	}
	for name, ev := range samples {
		t.Run(name, func(t *testing.T) {
			got, err := normalize("cisco", ev, received)
			if err != nil {
				t.Fatal(err)
			}
			if got.Event != name {
				t.Errorf("event = %q, want %q", got.Event, name)
			}
			sourcetest.Golden(t, filepath.Join("testdata", "golden", name+".json"), sourcetest.EventJSON(t, got))
		})
	}
}

func TestNormalizeFields(t *testing.T) {
	s := sampleEvents()
	for _, tc := range []struct {
		ev                 *pb.Event
		event, status, key string
		want               any
	}{
		{s["VOICE_EVENT"], "VOICE_EVENT", "CALL_RINGING", "fromNumber.e164", "+4799991111"},
		{s["VOICE_EVENT"], "VOICE_EVENT", "CALL_RINGING", "owner.phoneNumber.e164", "+4799990000"},
		{s["VOICE_EVENT"], "VOICE_EVENT", "CALL_RINGING", "serviceId", "switchboard-product"},
		{s["VOICEMAIL_EVENT"], "VOICEMAIL_EVENT", "NEW_VOICEMAIL", "voicemailId", "vm-31337"},
		{s["SMS_DELIVERY_REPORT_EVENT"], "SMS_DELIVERY_REPORT_EVENT", "FINAL_FAILURE", "status", "FINAL_FAILURE"},
		{s["SMS_DELIVERY_REPORT_EVENT"], "SMS_DELIVERY_REPORT_EVENT", "FINAL_FAILURE", "toNationalPhoneNumber.nationalPhoneNumber", "99991111"},
		{s["SMS_EVENT"], "SMS_EVENT", "", "direction", "FROM_SUBSCRIBER"},
		{s["SMS_EVENT"], "SMS_EVENT", "", "toTextAddress.textAddress", "Bank"},
		{s["COUNTRY_CHANGE_EVENT"], "COUNTRY_CHANGE_EVENT", "", "current.code", "SE"},
	} {
		got, err := normalize("cisco", tc.ev, received)
		if err != nil {
			t.Fatal(err)
		}
		if got.Event != tc.event || got.Status != tc.status {
			t.Errorf("%s: event, status = %q, %q; want %q, %q", tc.event, got.Event, got.Status, tc.event, tc.status)
		}
		if v, _ := got.Lookup(tc.key); v != tc.want {
			t.Errorf("%s: %s = %v, want %v", tc.event, tc.key, v, tc.want)
		}
		if !got.Time.Equal(testTime) || !got.ReceivedAt.Equal(received) {
			t.Errorf("%s: time, received_at = %v, %v", tc.event, got.Time, got.ReceivedAt)
		}
		if _, ok := got.Payload["metadata"]; ok {
			t.Errorf("%s: payload carries the transport metadata", tc.event)
		}
	}
}

// Sub-types: UNSPECIFIED is no status, STATUS_UNKNOWN is one, a value newer
// than this build shows as its number.
func TestNormalizeStatusEdges(t *testing.T) {
	for _, tc := range []struct {
		ev   *pb.Event
		want string
	}{
		{&pb.Event{Event: &pb.Event_VoiceEvent{VoiceEvent: &pb.VoiceEvent{CallId: "c"}}}, ""},
		{&pb.Event{Event: &pb.Event_VoicemailEvent{VoicemailEvent: &pb.VoicemailEvent{}}}, ""},
		{&pb.Event{Event: &pb.Event_SmsDeliveryReportEvent{SmsDeliveryReportEvent: &pb.SmsDeliveryReportEvent{}}}, "STATUS_UNKNOWN"},
		{&pb.Event{Event: &pb.Event_VoiceEvent{VoiceEvent: &pb.VoiceEvent{Type: 9}}}, "9"},
		{&pb.Event{Event: &pb.Event_VoiceEvent{}}, ""},
	} {
		got, err := normalize("cisco", tc.ev, received)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != tc.want {
			t.Errorf("%v: status %q, want %q", tc.ev, got.Status, tc.want)
		}
		if !got.Time.Equal(received) {
			t.Errorf("an event without timestamp has time %v, want the receipt time", got.Time)
		}
	}
	if _, err := normalize("cisco", &pb.Event{}, received); err != errUnknownEvent {
		t.Errorf("event without type: err = %v, want errUnknownEvent", err)
	}
}

// A redelivery differs only in metadata and gets the same id; different
// events get different ids.
func TestIDsAreStableAcrossRedeliveries(t *testing.T) {
	ids := map[string]string{}
	for name, ev := range sampleEvents() {
		first, err := normalize("cisco", ev, received)
		if err != nil {
			t.Fatal(err)
		}
		again := proto.Clone(ev).(*pb.Event)
		again.Metadata = &pb.EventMetadata{Sequence: 99, IsRedelivered: true, AckInbox: "_INBOX.other"}
		second, err := normalize("cisco", again, received.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if first.ID != second.ID || first.ID == "" {
			t.Errorf("%s: ids %q and %q for an event and its redelivery", name, first.ID, second.ID)
		}
		if other, dup := ids[first.ID]; dup {
			t.Errorf("%s and %s share id %s", name, other, first.ID)
		}
		ids[first.ID] = name
	}
	sms := sampleEvents()["SMS_EVENT"]
	got, _ := normalize("cisco", sms, received)
	if got.ID != "0d9c6c3a-5f7e-4b7e-9a51-1f1f2a2b3c4d:FROM_SUBSCRIBER" {
		t.Errorf("SMS id = %q, want its uuid and direction", got.ID)
	}
	// The same message seen by its receiver, another subscriber: one uuid,
	// two events, both routed.
	mt := proto.Clone(sms).(*pb.Event)
	mt.GetSmsEvent().Direction = pb.SmsEvent_TO_SUBSCRIBER
	mt.GetSmsEvent().Id = "route-2"
	if got2, _ := normalize("cisco", mt, received); got2.ID == got.ID {
		t.Errorf("the sender's and the receiver's event of one SMS share id %s", got.ID)
	}
	// Later states of one call are distinct events.
	a, _ := normalize("cisco", voiceEvent("c1", pb.VoiceEvent_CALL_RINGING), received)
	b, _ := normalize("cisco", voiceEvent("c1", pb.VoiceEvent_CALL_ANSWERED), received)
	if a.ID == b.ID {
		t.Error("CALL_RINGING and CALL_ANSWERED of one call share an id")
	}
}

// The payload survives the round trip through the queue's encoding.
func TestNormalizedEventRoundTrips(t *testing.T) {
	for name, ev := range sampleEvents() {
		got, _ := normalize("cisco", ev, received)
		b, err := got.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back router.Event
		if err := back.UnmarshalJSON(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if back.ID != got.ID || back.Event != got.Event || back.Status != got.Status || !back.Time.Equal(got.Time) {
			t.Errorf("%s: round trip changed the event: %+v", name, &back)
		}
	}
}
