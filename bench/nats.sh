#!/usr/bin/env bash
# queue.driver nats against the embedded queue, in interleaved rounds of
# the load harness (../shared/bench, as bench/suite.sh): one replica on a
# local single nats-server (bench/natsserver, a fresh store each run).
#   bash bench/nats.sh          (ROUNDS=3 DURATION=8s MATCH=1.0 by default)
# Each nats line adds nats_cpu_s: the server's CPU over the run, which the
# harness's router_cpu figures leave out. SYNC=1 runs the server with
# sync_interval: always. Raw lines in $OUT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/../shared/bench}"
ROUNDS="${ROUNDS:-3}"; export DURATION="${DURATION:-8s}" MATCH="${MATCH:-1.0}"
OUT="${OUT:-$(mktemp /tmp/switchboard-nats.XXXXXX)}"
NATS_ADDR="${NATS_ADDR:-127.0.0.1:4222}"
WORK="$(mktemp -d)"; cp -r "$HARNESS/." "$WORK/"; chmod -R u+w "$WORK"
NPID=""
cleanup() { [ -n "$NPID" ] && kill -TERM "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
(cd "$ROOT" && go build -o "$WORK/bin/switchboard" ./cmd/switchboard && go build -o "$WORK/bin/natsserver" ./bench/natsserver)
cd "$WORK" && go build -o bin/ ./cmd/...
export NOBUILD=1 NATS_URL="nats://$NATS_ADDR"
EMB='env BENCH_DIR=$(mktemp -d) bin/switchboard run -c '"$ROOT"'/examples/bench/switchboard.yaml'
NATS='bin/switchboard run -c '"$ROOT"'/examples/bench/switchboard-nats.yaml'
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

natsrun() {
  local sync=(); [ -n "${SYNC:-}" ] && sync=(-sync)
  bin/natsserver -addr "$NATS_ADDR" "${sync[@]}" >"$WORK/nats.log" 2>&1 & NPID=$!
  for _ in $(seq 1 100); do grep -q ready "$WORK/nats.log" && break; sleep 0.1; done
  local c0; c0=$(cpu "$NPID")
  local line; line=$(./run.sh nats "$NATS" || echo "label=nats failed=1")
  local c1; c1=$(cpu "$NPID")
  kill -TERM "$NPID"; wait "$NPID" 2>/dev/null || true; NPID=""
  echo "$line nats_cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round=$r $(./run.sh embedded "$EMB" || echo "label=embedded failed=1")" | tee -a "$OUT"
  echo "round=$r $(natsrun)" | tee -a "$OUT"
done
go run ./cmd/summarize -ref embedded < "$OUT" || true
