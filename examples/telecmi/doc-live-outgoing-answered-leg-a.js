{
call_id: 'e51d5392-d9cf-123b-fe91-3cecefb9bfb6',
leg: 'a',
type: 'event',
user: '202_2222223',
cmiuuid: 'ccd826f9-67a4-4467-acfb-a53093ff5c9d',
direction: 'outbound',
callerid: '442000000000',
app_id: 2223343,
time: 1650635340436,
custom: '{"crm":"true"}',
extra_params: '{"click2call":"true"}',
request_id: 'bvS68LlqtFunYMQO0db6g9klSdfS0UHHDoK9S9Qvaed',
status: 'answered',
to: '442000000001',
conversation_uuid: 'ccd826f9-67a4-4467-acfb-a53093ff5c9d'
}
