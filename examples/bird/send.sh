#!/bin/sh
# Sends a payload file to switchboard signed the way Bird signs it:
#   base64(HMAC-SHA256(key, timestamp + "\n" + URL + "\n" + SHA-256(body)))
#
#   BIRD_SIGNING_KEY=... examples/bird/send.sh examples/bird/voice-outbound-failed.json
#
# SWITCHBOARD_URL is where the request goes (default
# http://127.0.0.1:8080/hooks/bird); BIRD_PUBLIC_URL, when the source sets
# public_url, is the URL that is signed. Without BIRD_SIGNING_KEY the
# request goes unsigned.
set -eu
body=${1:?usage: $0 PAYLOAD_FILE}
target=${SWITCHBOARD_URL:-http://127.0.0.1:8080/hooks/bird}
signed=${BIRD_PUBLIC_URL:-$target}
if [ -z "${BIRD_SIGNING_KEY:-}" ]; then
	exec curl -sS -X POST "$target" -H 'Content-Type: application/json' --data-binary @"$body"
fi
ts=$(date +%s)
sig=$({ printf '%s\n%s\n' "$ts" "$signed"; openssl dgst -sha256 -binary "$body"; } |
	openssl dgst -sha256 -hmac "$BIRD_SIGNING_KEY" -binary | base64)
exec curl -sS -X POST "$target" -H 'Content-Type: application/json' \
	-H "messagebird-signature: $sig" -H "messagebird-request-timestamp: $ts" \
	--data-binary @"$body"
