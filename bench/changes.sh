#!/usr/bin/env bash
# Cost of one table change (issue 19, "Scale of changes").
# Times single `rvsadm -a` commands (each one process, one change, one
# acknowledged write) on a 1-service table and on a SERVICES x SERVERS table
# (default 10,000 x 10), then CHANGES sequential `rvsadm -a` on the big one.
# A read-only `rvsadm -L --timeout` is timed too: the floor every command
# pays (process start, connect, hello).
# Goals: single -a at 10,000 x 10 within 2x of its cost at 1 service;
# 1,000 sequential changes at that size <= 5 s.
# Services are UDP on 127.1.x.y:80 (loopback only; UDP and one data-plane
# thread so that 10,000 services fit in 20,000 descriptors); the real
# servers are 10.x addresses that only fill the table (nothing is ever sent
# to them).
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES=${SERVICES:-10000}
SERVERS=${SERVERS:-10}
CHANGES=${CHANGES:-1000}
SAMPLES=${SAMPLES:-30}

# BIN_DIR=dir: time those rvsd/rvsadm (e.g. an older build) instead.
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --bins -q
  BIN_DIR=$PWD/target/release
fi
RVSD=$BIN_DIR/rvsd
RVSADM=$BIN_DIR/rvsadm
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/rvs-changes.XXXXXX)
sock=$work/rvsd.sock
export RVS_SOCKET=$sock
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() { # "keep" keeps the state directory
  [ "${1:-}" = keep ] || rm -rf "$work/state"
  "$RVSD" --socket "$sock" --state-dir "$work/state" --log-level warn --default-check none --worker-threads 1 2>>"$work/rvsd.log" &
  pid=$!
  for _ in $(seq 200); do [ -S "$sock" ] && return; sleep 0.05; done
  echo "rvsd did not start" >&2; cat "$work/rvsd.log" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
now() { date +%s%N; }
# median and p90 in ms of the command lines on stdin, one sample each
sample() {
  local s e
  while read -r line; do
    s=$(now); eval "$line" >/dev/null; e=$(now)
    echo $(( (e - s) / 1000 ))
  done | sort -n | awk '{a[NR]=$1} END {printf "median %.2f ms  p90 %.2f ms  (n=%d)", a[int((NR+1)/2)]/1000, a[int(NR*0.9+0.5)]/1000, NR}'
}
single_adds() { # $1 = service, $2 = third octet of the new servers
  for i in $(seq "$SAMPLES"); do echo "$RVSADM -a -u $1 -r 10.250.$2.$i:8080 -w 1"; done | sample
}
reads() {
  for _ in $(seq "$SAMPLES"); do echo "$RVSADM -L --timeout"; done | sample
}

if [ "$BIN_DIR" = "$PWD/target/release" ]; then
  echo "rvs change benchmark (build of $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
else
  echo "rvs change benchmark (binaries in $BIN_DIR)"
fi
start
"$RVSADM" -A -u 127.1.0.1:80 -s wlc
echo "1 service:"
echo "  read  (-L --timeout):  $(reads)"
echo "  single -a:             $(single_adds 127.1.0.1:80 1)"
stop

python3 - "$SERVICES" "$SERVERS" > "$work/rules" <<'PY'
import sys
n, m = int(sys.argv[1]), int(sys.argv[2])
out = []
for i in range(n):
    vip = f"127.1.{i // 250}.{i % 250 + 1}:80"
    out.append(f"-A -u {vip} -s wlc")
    for j in range(m):
        out.append(f"-a -u {vip} -r 10.{i // 250}.{i % 250}.{j + 1}:8080 -m -w {j + 1}")
print("\n".join(out))
PY
start
s=$(now); "$RVSADM" -R < "$work/rules"; e=$(now)
echo "$SERVICES x $SERVERS: restore (-R) $(( (e - s) / 1000000 )) ms"
echo "  read  (-L --timeout):  $(reads)"
echo "  single -a:             $(single_adds 127.1.0.1:80 2)"
s=$(now)
for i in $(seq 0 $((CHANGES - 1))); do
  "$RVSADM" -a -u "127.1.$(( i % 40 )).$(( i % 250 + 1 )):80" -r "10.251.$(( i / 250 )).$(( i % 250 + 1 )):8080" -w 1
done
e=$(now)
echo "  $CHANGES sequential -a:  $(( (e - s) / 1000000 )) ms"
s=$(now)
for _ in $(seq "$CHANGES"); do "$RVSADM" -L --timeout >/dev/null; done
e=$(now)
echo "  $CHANGES sequential reads (-L --timeout, the rvsadm floor):  $(( (e - s) / 1000000 )) ms"
ls -l "$work/state" | awk 'NR > 1 {print "  state file:", $NF, $5, "bytes"}'
echo "  rvsd RSS: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
s=$(now); stop; e=$(now)
echo "  stop (SIGTERM): $(( (e - s) / 1000000 )) ms"
s=$(now); start keep; e=$(now)
echo "  restart: $(( (e - s) / 1000000 )) ms, $("$RVSADM" -S -n | wc -l) rules back"
