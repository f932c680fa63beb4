#!/bin/bash
# gen.sh BIN_DIR OUT_DIR: write a representative table with the rvsd and
# rvsadm in BIN_DIR and keep its state files and listings in OUT_DIR
# (golden files for tests/upgrades.rs). Made with:
#   state-v2: the release before the journal (c4c661d, a debug build):
#     git worktree add /tmp/rvs-v2 c4c661d; (cd /tmp/rvs-v2 && cargo build --bins)
#     tests/data/gen.sh /tmp/rvs-v2/target/debug tests/data/state-v2
#   state-v3: V3=1 tests/data/gen.sh target/debug tests/data/state-v3
#     (restarted half-way, then killed: a snapshot and a journal)
# A new format gets its own directory, made by the last release that wrote
# the old one. Addresses: 127.51.0.0/16 and [::1] on fixed ports.
set -euo pipefail
BIN=$1; OUT=$2
W=$(mktemp -d /tmp/golden-run.XXXX)
S=$W/rvsd.sock
start() {
  $BIN/rvsd --socket $S --state-dir $W/state --default-check none --log-level info >/dev/null 2>>$W/rvsd.log &
  PID=$!
  for i in $(seq 100); do [ -S $S ] && break; sleep 0.1; done
}
trap 'kill $PID 2>/dev/null || true' EXIT
start
a() { RVS_SOCKET=$S $BIN/rvsadm "$@"; }
# TCP, wlc, persistence with a /24, HTTP check with every option, sorry server, slow start.
a -A -t 127.51.0.1:8080 -s wlc -p 300 -M 255.255.255.0 --check http --check-http-path /healthz \
  --check-http-host www.example.test --check-http-status 200-299 --check-http-body OK \
  --check-interval 500ms --check-timeout 300ms --check-rise 3 --check-fall 2 --check-jitter 100ms \
  --check-initial down --sorry-server 127.51.9.9:8080 --slow-start 30
a -a -t 127.51.0.1:8080 -r 127.51.1.1:8080 -m -w 3 -x 100 -y 50 --check none
a -a -t 127.51.0.1:8080 -r 127.51.1.2:8081 -m -w 0 --check none
a -a -t 127.51.0.1:8080 -r 127.51.1.3:8082 -m -w 7 --check none
# TCP, mh with flags; a server with its own TCP check (address and port).
a -A -t 127.51.0.2:8443 -s mh -b mh-fallback,mh-port
a -a -t 127.51.0.2:8443 -r 127.51.2.1:443 -m -w 2 --check tcp --check-addr 127.51.2.9 --check-port 9443 \
  --check-interval 2s --check-timeout 1s --check-fall 5 --check-rise 1
a -a -t 127.51.0.2:8443 -r 127.51.2.2:443 -m -w 1
# UDP, sh with flags, UDP check.
a -A -u 127.51.0.3:5353 -s sh -b sh-fallback,sh-port --check udp --check-udp-send ping --check-udp-expect pong
a -a -u 127.51.0.3:5353 -r 127.51.3.1:53 -m -w 5 --check none
a -a -u 127.51.0.3:5353 -r 127.51.3.2:53 -m -w 1 -x 10 --check none
if [ -n "${V3:-}" ]; then
  # The format 3 golden: what came before is in the snapshot, the rest in the journal.
  kill -TERM $PID; wait $PID || true
  start
fi
# IPv6 TCP, persistence with a /64, wrr.
a -A -t [::1]:5151 -s wrr -p 60 -M 64
a -a -t [::1]:5151 -r [::1]:9001 -m -w 4
a -a -t [::1]:5151 -r [::1]:9002 -m -w 2 -x 40 -y 20
# IPv6 UDP, exec check (service default; the servers say none, so nothing runs).
a -A -u [::1]:5152 -s lc --check exec --check-exec '/bin/sh -c "exit 0" "$RVS_SERVER_ADDR"' --check-timeout 2s
a -a -u [::1]:5152 -r [::1]:9053 -m --check none
# A server with an exec check of its own, and one left on the service's default check (none).
a -A -t 127.51.0.4:8000 -s rr
a -a -t 127.51.0.4:8000 -r 127.51.4.1:80 -m --check exec --check-exec 'test -n "$RVS_SERVER_ADDR"' --check-interval 10s
a -a -t 127.51.0.4:8000 -r 127.51.4.2:80 -m -w 9
# An empty service, other schedulers.
a -A -t 127.51.0.5:8001 -s sed
a -A -u 127.51.0.6:8002 -s dh
a --set 900 120 300
mkdir -p $OUT
a -S -n > $OUT/save.txt
a -L -n --thresholds > $OUT/thresholds.txt
a -L --timeout > $OUT/timeout.txt
if [ -n "${V3:-}" ]; then kill -KILL $PID; else kill -TERM $PID; fi
wait $PID || true
cp $W/state/table.state $OUT/
[ -e $W/state/table.journal ] && cp $W/state/table.journal $OUT/ || true
cat $W/rvsd.log | tail -5
rm -rf $W
