#!/usr/bin/env bash
# User-space instructions per request of rvsd, counted by callgrind: the
# figure that does not drift with the machine's speed, for judging a change
# to the data path before and after (timings on this VM drift 10-30 %).
#
#   bench/instructions.sh [RVSD] [close|ka] [SECONDS]
#
# Starts one nginx back end (bench/compare/backend.conf) on 127.0.0.1:19581
# and RVSD (default target/release/rvsd, one data-plane thread) under
# valgrind on 127.0.0.1:19580, loads it with wrk (16 connections; "close":
# every request a new connection) for SECONDS (8), and prints the requests
# wrk completed, the instructions rvsd executed and their quotient. The
# callgrind profile is kept (its path is printed) for callgrind_annotate.
# Needs valgrind, nginx and wrk (bench/compare.sh installs the last two).
# Loopback only; bounded in time; stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
RVSD=${1:-target/release/rvsd}
MODE=${2:-close}
SECS=${3:-8}
case $MODE in close | ka) ;; *) echo "instructions.sh: mode is close or ka, not '$MODE'" >&2; exit 2 ;; esac
for t in valgrind callgrind_annotate nginx wrk; do
  command -v "$t" >/dev/null || { echo "instructions.sh: $t is missing (apt-get install -y valgrind nginx wrk)" >&2; exit 1; }
done
[ -x "$RVSD" ] || { echo "instructions.sh: no rvsd at $RVSD (cargo build --release)" >&2; exit 1; }
for port in 19580 19581; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "instructions.sh: port $port is taken" >&2
    exit 1
  fi
done

W=$(mktemp -d /tmp/rvs-instr.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$W/www" "$W/tmp"
sed -e "s#@DIR@#$W#g" -e "s#@PORT@#19581#g" bench/compare/backend.conf >"$W/backend.conf"
nginx -e "$W/backend.err" -p "$W" -c "$W/backend.conf" &
pids+=($!)
OUT=$W/callgrind.out
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$RVSD" --worker-threads 1 \
  --socket "$W/rvs.sock" --state-dir "$W/state" --log-level warn 2>"$W/valgrind.err" &
rvsd=$!
pids+=($rvsd)
for _ in $(seq 300); do [ -S "$W/rvs.sock" ] && break; sleep 0.1; done
[ -S "$W/rvs.sock" ] || { echo "instructions.sh: rvsd did not start: $(tail -3 "$W/valgrind.err")" >&2; exit 1; }
RVSADM=$(dirname "$RVSD")/rvsadm
[ -x "$RVSADM" ] || RVSADM=target/release/rvsadm
"$RVSADM" --socket "$W/rvs.sock" -A -t 127.0.0.1:19580 -s rr
"$RVSADM" --socket "$W/rvs.sock" -a -t 127.0.0.1:19580 -r 127.0.0.1:19581 -m
header=()
[ "$MODE" = close ] && header=(-H "Connection: close")
wrk -t1 -c16 -d"${SECS}s" "${header[@]}" http://127.0.0.1:19580/ >"$W/wrk.out"
requests=$(awk '/requests in/{print $1}' "$W/wrk.out")
kill -TERM "$rvsd"
wait "$rvsd" || true
instr=$(callgrind_annotate "$OUT" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ {gsub(",", "", $1); print $1}')
[ -n "$requests" ] && [ "$requests" -gt 0 ] && [ -n "$instr" ] ||
  { echo "instructions.sh: no result (wrk: $(tail -2 "$W/wrk.out"))" >&2; exit 1; }
echo "mode=$MODE requests=$requests instructions=$instr per_request=$((instr / requests)) profile=$OUT"
