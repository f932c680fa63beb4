#!/usr/bin/env bash
# Control-plane scale benchmark (issue: 10,000 services x 10 real servers).
# Builds a rules file, restores it with `rvsadm -R`, lists it with `-L -n`,
# saves it with `-S`, and prints the wall time of each step and rvsd's RSS.
# Goals: restore <= 2 s, list <= 1 s, RSS <= 200 MiB.
# Services listen on 127.1.x.y:80 (loopback only). The real servers are
# 10.x addresses that only fill the table: rvsd runs with --default-check none
# so that no health check (and no traffic) is ever sent to them.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES=${SERVICES:-10000}
SERVERS=${SERVERS:-10}

cargo build --release --bins -q
RVSD=target/release/rvsd
RVSADM=target/release/rvsadm
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/rvs-scale.XXXXXX)
sock=$work/rvsd.sock
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$SERVICES" "$SERVERS" > "$work/rules" <<'PY'
import sys
n, m = int(sys.argv[1]), int(sys.argv[2])
out = []
for i in range(n):
    vip = f"127.1.{i // 250}.{i % 250 + 1}:80"
    out.append(f"-A -t {vip} -s wlc")
    for j in range(m):
        out.append(f"-a -t {vip} -r 10.{i // 250}.{i % 250}.{j + 1}:8080 -m -w {j + 1}")
print("\n".join(out))
PY

"$RVSD" --socket "$sock" --state-dir "$work/state" --log-level warn --default-check none 2>"$work/rvsd.log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status"; }
t() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); awk -v a="$s" -v b="$e" "BEGIN{printf \"%.3f\", b-a}"; }

echo "rvs scale benchmark: $SERVICES services x $SERVERS real servers ($(wc -l < "$work/rules") rules)"
echo "rvsd RSS at start:   $(rss)"
r=$(t sh -c "RVS_SOCKET=$sock $RVSADM -R < $work/rules")
echo "restore (-R):        ${r} s   RSS $(rss)"
l=$(t sh -c "RVS_SOCKET=$sock $RVSADM -L -n > $work/list")
echo "list (-L -n):        ${l} s   $(wc -l < "$work/list") lines   RSS $(rss)"
s=$(t sh -c "RVS_SOCKET=$sock $RVSADM -S -n > $work/save")
echo "save (-S -n):        ${s} s   $(wc -l < "$work/save") lines   RSS $(rss)"
if diff -q <(sort "$work/rules") <(sort "$work/save") >/dev/null; then
  echo "round trip:          -S output matches the restored rules"
else
  echo "round trip:          MISMATCH between rules and -S output" >&2
  exit 1
fi
