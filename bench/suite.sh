#!/usr/bin/env bash
# Interleaved rounds of switchboard against the load harness's reference
# router with durability on (../shared/bench: loadgen, counting sink,
# `limit -durable`), at max rate and at a fixed 2,000 events/s.
#   bash bench/suite.sh            (ROUNDS=3 DURATION=8s by default)
# Prints the harness's median table; raw lines in $OUT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/../shared/bench}"
ROUNDS="${ROUNDS:-3}"; export DURATION="${DURATION:-8s}"
OUT="${OUT:-$(mktemp /tmp/switchboard-suite.XXXXXX)}"
WORK="$(mktemp -d)"; cp -r "$HARNESS/." "$WORK/"; chmod -R u+w "$WORK"
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && go build -o "$WORK/bin/switchboard" ./cmd/switchboard)
cd "$WORK" && go build -o bin/ ./cmd/...
export NOBUILD=1
LIMIT='bin/limit -sink $SINK_URL -rules 1 -durable -wal '"$WORK"'/limit-wal.log'
SB='env BENCH_DIR=$(mktemp -d) bin/switchboard run -c '"$ROOT"'/examples/bench/switchboard.yaml'
for r in $(seq 1 "$ROUNDS"); do
  for l in limit-durable switchboard limit-durable@2000 switchboard@2000; do
    case $l in
      limit-durable)      line=$(./run.sh "$l" "$LIMIT" || echo "label=$l failed=1");;
      switchboard)        line=$(./run.sh "$l" "$SB" || echo "label=$l failed=1");;
      limit-durable@2000) line=$(RATE=2000 ./run.sh "$l" "$LIMIT" || echo "label=$l failed=1");;
      switchboard@2000)   line=$(RATE=2000 ./run.sh "$l" "$SB" || echo "label=$l failed=1");;
    esac
    echo "round=$r $line" | tee -a "$OUT"
  done
done
go run ./cmd/summarize -ref limit-durable < "$OUT"
