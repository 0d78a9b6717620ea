#!/bin/sh
# Sends a sample to switchboard the way TeleCMI would: a .json file as a
# POST with a JSON body, a .form.txt file as a POST form, a .query.txt file
# as a GET with that query string, a .js file (TeleCMI's printed samples) as
# a POST JSON body.
#
#   TELECMI_TOKEN=... examples/telecmi/send.sh examples/telecmi/cdr-incoming-missed.json
#
# SWITCHBOARD_URL is the source's URL without the token (default
# http://127.0.0.1:8080/hooks/telecmi); TELECMI_TOKEN, when set, is appended
# as the last path segment, as on the URL given to TeleCMI.
set -eu
file=${1:?usage: $0 PAYLOAD_FILE}
target=${SWITCHBOARD_URL:-http://127.0.0.1:8080/hooks/telecmi}
if [ -n "${TELECMI_TOKEN:-}" ]; then
	target="$target/$TELECMI_TOKEN"
fi
case "$file" in
*.query.txt)
	exec curl -sS "$target?$(tr -d '\n' <"$file")" ;;
*.form.txt)
	exec curl -sS -X POST "$target" -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$file" ;;
*)
	exec curl -sS -X POST "$target" -H 'Content-Type: application/json' --data-binary @"$file" ;;
esac
