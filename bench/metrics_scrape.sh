#!/usr/bin/env bash
# Memory and control-socket latency of rvsd under a burst of concurrent
# Prometheus scrapes of a big table (issue 19, B3).
#
#   bench/metrics_scrape.sh [RVSD] [SERVICES] [SERVERS] [SCRAPES]
#
# Starts RVSD (default target/debug/rvsd; one data-plane thread, no health
# checks) with --metrics-listen on 127.41.200.1, loads SERVICES (2000) TCP
# services with SERVERS (10) real servers each (documentation addresses,
# never contacted) in one `rvsadm -R`, then opens SCRAPES (300) connections
# at once, each sending `GET /metrics` and reading the answer to the end,
# while sampling rvsd's RSS every 20 ms and timing `rvsadm -L -n` back to
# back. Prints RSS before and at peak, the scrapes answered / refused /
# failed, and the slowest `rvsadm -L -n`. Loopback only; every step is
# bounded in time (120 s for the burst); stops only the rvsd it started.
set -euo pipefail
cd "$(dirname "$0")/.."
RVSD=${1:-target/debug/rvsd}
SERVICES=${2:-2000}
SERVERS=${3:-10}
SCRAPES=${4:-300}
RVSADM=$(dirname "$RVSD")/rvsadm
[ -x "$RVSADM" ] || RVSADM=target/debug/rvsadm
[ -x "$RVSD" ] || { echo "metrics_scrape.sh: no rvsd at $RVSD (cargo build)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "metrics_scrape.sh: needs python3" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/rvs-metrics-bench.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.41.200.1",0));print(s.getsockname()[1])')
maddr=127.41.200.1:$port
"$RVSD" --socket "$work/sock" --state-dir "$work/state" --worker-threads 1 \
  --default-check none --metrics-listen "$maddr" --log-level warn 2>"$work/log" &
pid=$!
for _ in $(seq 150); do [ -S "$work/sock" ] && break; sleep 0.1; done
[ -S "$work/sock" ] || { echo "rvsd did not start: $(cat "$work/log")" >&2; exit 1; }

python3 - "$SERVICES" "$SERVERS" >"$work/table" <<'EOF'
import sys
services, servers = int(sys.argv[1]), int(sys.argv[2])
for i in range(services):
    vip = f"127.41.{201 + i // 250}.{1 + i % 250}:19700"
    print(f"-A -t {vip} -s rr")
    for r in range(servers):
        print(f"-a -t {vip} -r 198.51.100.{1 + r}:{8000 + i % 1000} -w 1")
EOF
RVS_SOCKET=$work/sock "$RVSADM" -R <"$work/table"

python3 - "$pid" "$maddr" "$SCRAPES" "$RVSADM" "$work/sock" <<'EOF'
import socket, subprocess, sys, threading, time
pid, maddr, n, rvsadm, sock = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
host, port = maddr.rsplit(":", 1)
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) // 1024
def scrape_once():
    s = socket.create_connection((host, int(port)), timeout=120)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: rvs\r\nConnection: close\r\n\r\n")
    data = bytearray()
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        data += b
    s.close()
    return bytes(data)
body = scrape_once().split(b"\r\n\r\n", 1)[1]
before = rss()
results, peak, stop = [], [before], threading.Event()
def sampler():
    while not stop.is_set():
        peak.append(rss())
        time.sleep(0.02)
def list_once():
    t = time.time()
    try:
        subprocess.run([rvsadm, "-L", "-n"], env={"RVS_SOCKET": sock},
                       stdout=subprocess.DEVNULL, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    return time.time() - t
idle_lat = [list_once() for _ in range(3)]
lat, lat_timeouts = [], [0]
def control():
    while not stop.is_set():
        d = list_once()
        if d is None:
            lat_timeouts[0] += 1
        else:
            lat.append(d)
go = threading.Barrier(n + 1)
def scraper():
    go.wait()
    t = time.time()
    try:
        r = scrape_once()
        if r.startswith(b"HTTP/1.1 200"):
            ok = r.split(b"\r\n\r\n", 1)[1]
            results.append(("ok" if len(ok) > len(body) // 2 else "short", time.time() - t))
        elif not r:
            results.append(("refused", time.time() - t))
        else:
            results.append(("other", time.time() - t))
    except (ConnectionResetError, BrokenPipeError):
        results.append(("refused", time.time() - t))
    except Exception as e:
        results.append((f"failed: {e}", time.time() - t))
threads = [threading.Thread(target=scraper) for _ in range(n)]
for t in threads:
    t.start()
bg = [threading.Thread(target=sampler), threading.Thread(target=control)]
for t in bg:
    t.start()
t0 = time.time()
go.wait()
for t in threads:
    t.join(timeout=max(1, 120 - (time.time() - t0)))
wall = time.time() - t0
time.sleep(0.5)
stop.set()
for t in bg:
    t.join()
kinds = {}
for k, _ in results:
    kinds[k] = kinds.get(k, 0) + 1
served = [d for k, d in results if k == "ok"]
print(f"body {len(body) / 1e6:.1f} MB; {n} concurrent scrapes in {wall:.2f} s: {kinds}")
if served:
    print(f"answered scrapes: slowest {max(served):.2f} s")
print(f"rvsd RSS: {before} MiB before, {max(peak)} MiB at peak, {rss()} MiB after")
print(f"rvsadm -L -n before the burst: slowest of 3 {max(x or 60 for x in idle_lat):.2f} s")
print(f"rvsadm -L -n during the burst: {len(lat)} answered (slowest "
      f"{max(lat) if lat else 0:.2f} s), {lat_timeouts[0]} not answered within 60 s")
EOF
