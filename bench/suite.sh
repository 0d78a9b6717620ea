#!/usr/bin/env bash
# bench/suite.sh — switchboard under load on this machine, from a fresh clone.
#
#   bash bench/suite.sh [OUTFILE]
#
# Builds switchboard, bench/loadgen, bench/sink and bench/summarize, then runs
# each load scenario ROUNDS times, interleaved round-robin so that machine
# noise hits them alike, then the backlog scenarios, and prints median tables
# and per-round ratios. Raw key=value lines go to OUTFILE (or a temp file).
#
# Load scenarios (loadgen -> router -> http sink -> counting sink, loopback):
#   sb-match1        every event matches (MATCH=1.0): each one stored before its 2xx
#   sb-match10       10 % match, one rule
#   sb-rules1000     10 % match, 1,000 rules (rule i: status == "failed" &&
#                    payload.payload.channel == "x<i>"), 1,000 channels
#   sb-match1@RATE   every event matches, at a fixed FIXED_RATE events/s:
#                    p99 accept latency and router CPU at equal load
#   sb-nats-match1   with NATS=1: sb-match1 on queue.driver nats, one replica
#                    on a local nats-server (bench/natsserver, a fresh store
#                    per run, port 4222); nats_cpu_cores is the server's CPU
# With REF set, ref-match1, ref-match10 and ref-match1@RATE run the same load
# against a reference router: REF is its command line, run by bash with
# SINK_URL (forward matching events there) and BENCH_DIR (a fresh directory)
# exported; it must listen on 127.0.0.1:9200/events. For example the load
# harness's reference with durability on:
#   REF='/path/to/limit -sink $SINK_URL -rules 1 -durable -wal $BENCH_DIR/wal' bash bench/suite.sh
#
# Backlog scenarios (switchboard only; the counting sink holds every delivery
# unanswered while loadgen posts N matching events, then lets them through):
#   sb-backlog       N=BACKLOG: disk per pending delivery, drain rate, and the
#                    queue's size on disk once drained (space given back)
#   sb-pending       N=PENDING: RSS with N pending, kill -9 and restart to
#                    /readyz, then drain rate
#
# Environment (defaults keep a run to a few minutes; the issue's figures use
# ROUNDS=5 DURATION=8s BACKLOG=200000 PENDING=1000000):
#   ROUNDS=3 DURATION=4s WARMUP=1s CONC=32 FIXED_RATE=2000 (0 skips)
#   BACKLOG=20000 PENDING=50000 (0 skips) BACKLOG_ROUNDS=1 DRAIN_MAX=15
#   REF=  NATS=1 (add sb-nats-match1; NATS_SYNC=1: the server fsyncs every
#   message)  ONLY="labels..." (a subset)  SWITCHBOARD=path (a built binary
#   instead of building this checkout)  KEEP=1 (keep the work directory)
# Needs bash, Go, and coreutils; ports 9100, 9200 and 9291 (and 4222 with
# NATS=1) on 127.0.0.1 free.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-4s}"; WARMUP="${WARMUP:-1s}"; CONC="${CONC:-32}"
FIXED_RATE="${FIXED_RATE:-2000}"; BACKLOG="${BACKLOG:-20000}"; PENDING="${PENDING:-50000}"
BACKLOG_ROUNDS="${BACKLOG_ROUNDS:-1}"; DRAIN_MAX="${DRAIN_MAX:-15}"; REF="${REF:-}"
NATS="${NATS:-}"; NATS_SYNC="${NATS_SYNC:-}"
ROUTER=127.0.0.1:9200; ADMIN=127.0.0.1:9291; SINK=127.0.0.1:9100; NATSADDR=127.0.0.1:4222
export SINK_URL="http://$SINK/in"
WORK="$(mktemp -d /tmp/switchboard-bench.XXXXXX)"
OUT="${1:-$(mktemp /tmp/switchboard-suite.XXXXXX)}"
BIN="$WORK/bin"; LOGS="$WORK/logs"; mkdir -p "$BIN" "$LOGS"
TCK=$(getconf CLK_TCK)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do stop "$p"; done
  if [ -z "${KEEP:-}" ] && ! grep -q 'failed=1' "$OUT" 2>/dev/null; then rm -rf "$WORK"
  else echo "# logs of each run: $WORK/logs" >&2; fi
}
trap cleanup EXIT

# stop ends one process this script started: TERM, then KILL after 3 s.
stop() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 30); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# up HOST:PORT succeeds once something listens there.
up() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# get HOST:PORT PATH prints the body of a GET (HTTP/1.0: the server closes).
get() (
  exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3
  resp="$(cat <&3)"
  printf '%s' "${resp#*$'\r\n\r\n'}"
)

# status HOST:PORT PATH prints the status code of a GET, or 000.
status() (
  exec 2>/dev/null 3<>"/dev/tcp/${1%:*}/${1##*:}" || { echo 000; exit 0; }
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3
  read -r line <&3 || true
  line="${line#* }"; echo "${line%% *}"
)

waitup() { for _ in $(seq 1 300); do up "$1" && return 0; sleep 0.05; done; echo "$1 never came up" >&2; return 1; }
# A router that died mid-run reads as 0 here and fails its run's checks.
cpu() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }     # clock ticks, user+sys
mem() { awk -v k="$2:" '$1==k{printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }  # MB
now() { date +%s.%N; }
delivered() { get "$SINK" /stats | sed -n 's/.*"delivered":\([0-9]*\).*/\1/p'; }
diskbytes() { du -sb "$1" | cut -f1; }

# settle waits until the sink's count has not moved for a second (at most
# $1 seconds): deliveries still on their way are counted.
settle() {
  local prev=-1 cur
  for _ in $(seq 1 "$1"); do cur=$(delivered); [ "$cur" = "$prev" ] && return; prev=$cur; sleep 1; done
}

# start_sink and start_router run a process in the background, logging to
# $LOGS/$1.*, and set SPID / RPID.
start_sink() {
  "$BIN/sink" -addr "$SINK" >"$LOGS/$1.sink.out" 2>"$LOGS/$1.sink.err" & SPID=$!; PIDS+=("$SPID")
  waitup "$SINK"
}
start_router() {
  bash -c "exec $2" >"$LOGS/$1.router.out" 2>>"$LOGS/$1.router.err" & RPID=$!; PIDS+=("$RPID")
  waitup "$ROUTER"
}
end_run() { stop "$RPID"; stop "$SPID"; [ -n "${NPID:-}" ] && stop "$NPID"; NPID=""; PIDS=(); }

# start_nats runs a fresh single JetStream server for a nats scenario and
# sets NPID.
start_nats() {
  local sync=(); [ -n "$NATS_SYNC" ] && sync=(-sync)
  "$BIN/natsserver" -addr "$NATSADDR" -store "$BENCH_DIR/nats" "${sync[@]}" >"$LOGS/$1.nats.out" 2>&1 & NPID=$!; PIDS+=("$NPID")
  waitup "$NATSADDR"
}

loadgen() { "$BIN/loadgen" -url "http://$ROUTER/events" -c "$CONC" "$@"; }

# steal prints the machine's CPU time stolen by the hypervisor, and in all.
steal() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# load LABEL COMMAND MATCH CHANNELS RATE prints one line of figures.
load() {
  local label=$1 cmd=$2 match=$3 channels=$4 rate=$5 r0 r1 r2 t0 t1 s0 s1 lg sk rss n0=0 n1=0
  export BENCH_DIR; BENCH_DIR="$(mktemp -d "$WORK/q.XXXXXX")"
  if [[ $label == *nats* ]]; then start_nats "$label" || { end_run; echo "label=$label failed=1"; return; }; fi
  start_sink "$label" && start_router "$label" "$cmd" || { end_run; echo "label=$label failed=1"; return; }
  loadgen -d "$WARMUP" -match "$match" -channels "$channels" >/dev/null
  settle 10; get "$SINK" /reset >/dev/null
  r0=$(cpu "$RPID"); t0=$(now); s0=$(steal); [ -n "${NPID:-}" ] && n0=$(cpu "$NPID")
  lg=$(loadgen -d "$DURATION" -rate "$rate" -match "$match" -channels "$channels")
  t1=$(now); r1=$(cpu "$RPID"); s1=$(steal); [ -n "${NPID:-}" ] && n1=$(cpu "$NPID")
  settle "$DRAIN_MAX"
  r2=$(cpu "$RPID"); sk=$(get "$SINK" '/stats?kv=1'); rss=$(mem "$RPID" VmHWM)
  end_run; rm -rf "$BENCH_DIR"
  awk -v l="$label" -v lg="$lg" -v sk="$sk" -v r0="$r0" -v r1="$r1" -v r2="$r2" -v t0="$t0" -v t1="$t1" \
      -v tck="$TCK" -v rss="$rss" -v s0="$s0" -v s1="$s1" -v n0="$n0" -v n1="$n1" 'BEGIN{
    split(s0, a, " "); split(s1, b, " "); tot = b[2]-a[2]
    printf "label=%s %s %s router_cpu_cores=%.2f router_cpu_s_incl_drain=%.2f router_peak_rss_mb=%s box_steal_pct=%.0f",
      l, lg, sk, (r1-r0)/tck/(t1-t0), (r2-r0)/tck, rss, (tot > 0 ? 100*(b[1]-a[1])/tot : 0)
    if (n1 > 0) printf " nats_cpu_cores=%.2f", (n1-n0)/tck/(t1-t0)
    printf "\n" }'
}

# backlog LABEL N RESTART prints one line of figures for N pending
# deliveries; with RESTART the router is killed (-9) and started again
# before the sink lets them through.
backlog() {
  local label=$1 n=$2 restart=$3 t0 t1 lg bytes rss ready="" rss2="" drain
  export BENCH_DIR BENCH_SINK_TIMEOUT=1h; BENCH_DIR="$(mktemp -d "$WORK/q.XXXXXX")"
  local cmd="$SB -c $WORK/r1.yaml"
  start_sink "$label" && start_router "$label" "$cmd" || { end_run; echo "label=$label failed=1"; return; }
  get "$SINK" /pause >/dev/null
  t0=$(now)
  lg=$(loadgen -n "$n" -d 1h -match 1)
  t1=$(now)
  bytes=$(diskbytes "$BENCH_DIR"); rss=$(mem "$RPID" VmRSS)
  if [ "$restart" = 1 ]; then
    kill -KILL "$RPID"; wait "$RPID" 2>/dev/null || true
    local s; s=$(now)
    bash -c "exec $cmd" >"$LOGS/$label.router.out" 2>>"$LOGS/$label.router.err" & RPID=$!; PIDS=("$SPID" "$RPID")
    for _ in $(seq 1 1200); do [ "$(status "$ADMIN" /readyz)" = 200 ] && break; sleep 0.01; done
    ready=$(awk -v a="$s" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'); rss2=$(mem "$RPID" VmRSS)
  fi
  local d0; d0=$(now)
  get "$SINK" /resume >/dev/null
  for _ in $(seq 1 $((n / 500 + 60))); do [ "$(delivered)" -ge "$n" ] && break; sleep 0.2; done
  drain=$(awk -v n="$(delivered)" -v a="$d0" -v b="$(now)" 'BEGIN{printf "%.0f", n/(b-a)}')
  # Space is given back once deliveries are done: wait until the size holds.
  local after prev=-1
  for _ in $(seq 1 20); do after=$(diskbytes "$BENCH_DIR"); [ "$after" = "$prev" ] && break; prev=$after; sleep 0.5; done
  local sk; sk=$(get "$SINK" '/stats?kv=1'); local peak; peak=$(mem "$RPID" VmHWM)
  end_run; rm -rf "$BENCH_DIR"; unset BENCH_SINK_TIMEOUT
  awk -v l="$label" -v n="$n" -v lg="$lg" -v sk="$sk" -v t0="$t0" -v t1="$t1" -v b="$bytes" -v a="$after" \
      -v rss="$rss" -v ready="$ready" -v rss2="$rss2" -v drain="$drain" -v peak="$peak" 'BEGIN{
    split(lg, f, " "); for (i in f) { split(f[i], kv, "="); if (kv[1]=="req_bytes") rb=kv[2]; if (kv[1]=="accepted") acc=kv[2] }
    printf "label=%s pending=%d accepted=%d req_bytes=%s fill_per_s=%.0f disk_mb=%.1f disk_per_pending_b=%.0f rss_pending_mb=%s",
      l, n, acc, rb, acc/(t1-t0), b/1048576, b/(acc>0?acc:1), rss
    if (ready != "") printf " restart_ready_s=%s rss_after_restart_mb=%s", ready, rss2
    printf " drain_per_s=%s %s disk_after_drain_mb=%.1f router_peak_rss_mb=%s\n", drain, sk, a/1048576, peak }'
}

HOSTS=("$ROUTER" "$ADMIN" "$SINK"); [ -n "$NATS" ] && HOSTS+=("$NATSADDR")
for hp in "${HOSTS[@]}"; do if up "$hp"; then echo "$hp is in use; stop what listens there" >&2; exit 2; fi; done
echo "# building into $BIN" >&2
(cd "$ROOT" && go build -o "$BIN/" ./bench/loadgen ./bench/sink ./bench/summarize)
[ -n "$NATS" ] && (cd "$ROOT" && go build -o "$BIN/" ./bench/natsserver)
SB="${SWITCHBOARD:-}"
if [ -z "$SB" ]; then (cd "$ROOT" && go build -o "$BIN/" ./cmd/switchboard); SB="$BIN/switchboard"; fi
SB="$SB run"
cp "$ROOT/examples/bench/switchboard.yaml" "$WORK/r1.yaml"
{ sed '/^rules:/,$d' "$ROOT/examples/bench/switchboard.yaml"; echo "rules:"
  for i in $(seq 0 999); do echo "  - { name: r$i, when: 'status == \"failed\" && payload.payload.channel == \"x$i\"', to: [sink] }"; done
} >"$WORK/r1000.yaml"

declare -A CMD ARGS
CMD[sb-match1]="$SB -c $WORK/r1.yaml";       ARGS[sb-match1]="1.0 1 0"
CMD[sb-match10]="$SB -c $WORK/r1.yaml";      ARGS[sb-match10]="0.10 1 0"
CMD[sb-rules1000]="$SB -c $WORK/r1000.yaml"; ARGS[sb-rules1000]="0.10 1000 0"
ORDER="sb-match1 sb-match10 sb-rules1000"
if [ -n "$REF" ]; then
  CMD[ref-match1]="$REF";  ARGS[ref-match1]="1.0 1 0"
  CMD[ref-match10]="$REF"; ARGS[ref-match10]="0.10 1 0"
  ORDER="ref-match1 $ORDER ref-match10"
fi
if [ "$FIXED_RATE" != 0 ]; then
  CMD[sb-match1@$FIXED_RATE]="${CMD[sb-match1]}"; ARGS[sb-match1@$FIXED_RATE]="1.0 1 $FIXED_RATE"
  ORDER="$ORDER sb-match1@$FIXED_RATE"
  if [ -n "$REF" ]; then
    CMD[ref-match1@$FIXED_RATE]="$REF"; ARGS[ref-match1@$FIXED_RATE]="1.0 1 $FIXED_RATE"
    ORDER="$ORDER ref-match1@$FIXED_RATE"
  fi
fi
if [ -n "$NATS" ]; then
  export NATS_URL="nats://$NATSADDR"
  CMD[sb-nats-match1]="$SB -c $ROOT/examples/bench/switchboard-nats.yaml"; ARGS[sb-nats-match1]="1.0 1 0"
  ORDER="$ORDER sb-nats-match1"
fi
wanted() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

# record ROUND LABEL FUNCTION ARGS... runs one scenario in this shell (so
# that the exit trap knows its processes) and appends its line to $OUT.
record() {
  local round=$1; shift
  "$@" >"$WORK/line"
  echo "round=$round $(<"$WORK/line")" | tee -a "$OUT"
}

for r in $(seq 1 "$ROUNDS"); do
  for l in $ORDER; do
    # shellcheck disable=SC2086
    if wanted "$l"; then record "$r" load "$l" "${CMD[$l]}" ${ARGS[$l]}; fi
  done
done
for r in $(seq 1 "$BACKLOG_ROUNDS"); do
  if [ "$BACKLOG" != 0 ] && wanted sb-backlog; then record "$r" backlog sb-backlog "$BACKLOG" 0; fi
  if [ "$PENDING" != 0 ] && wanted sb-pending; then record "$r" backlog sb-pending "$PENDING" 1; fi
done

echo "# raw lines: $OUT"
RATIOS=(-ratio sb-rules1000/sb-match10)
[ -n "$NATS" ] && RATIOS+=(-ratio sb-nats-match1/sb-match1)
if [ -n "$REF" ]; then
  RATIOS+=(-ratio sb-match1/ref-match1 -ratio sb-match10/ref-match10)
  if [ "$FIXED_RATE" != 0 ]; then
    RATIOS+=(-ratio "sb-match1@$FIXED_RATE/ref-match1@$FIXED_RATE:in_p99_ms"
             -ratio "sb-match1@$FIXED_RATE/ref-match1@$FIXED_RATE:router_cpu_cores")
  fi
fi
"$BIN/summarize" "${RATIOS[@]}" <"$OUT"
