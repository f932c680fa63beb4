#!/usr/bin/env bash
# rvs against HAProxy (mode tcp), nginx stream and pen, on this machine, in
# the same run, with the same back ends and settings.
#
#   sudo bench/compare.sh             # full run (9 rounds, about 20 minutes)
#   QUICK=1 sudo bench/compare.sh     # one short round, for iteration
#
# Two nginx HTTP back ends (127.0.0.1:19081, :19082: "hello\n" at /, 64 MiB at
# /big) and two UDP echo back ends (:19091, :19092) sit behind every proxy.
# All proxies run at once, each on ports of its own (TCP 19100 + 10 i, UDP
# one above), idle but the one measured; "direct" hits :19081 / :19091
# without a proxy. The load generator runs on CPU $LOAD_CPU, proxies and
# back ends on CPU $PROXY_CPU. In each round every workload runs on every
# proxy in turn, short runs back to back (the order rotated from round to
# round), so that the machine's noise, which comes in bursts of seconds,
# lands on all proxies alike; the table shows medians, min/max and the
# ratio rvs / best peer, and a verdict paired by round.
#
# Environment: ROUNDS (9), DUR (3 s per throughput run), LAT_DUR (2 s, one
# connection), UDP_DUR (2 s), CONNS (64), BULK_CONNS (4), IDLE_CONNS (8000),
# IDLE_ROUNDS (3: the RSS test, on a proxy started afresh for it, only in
# the first rounds; it varies least and costs most), PROXIES (all), WORKLOADS (ka close bulk lat1 udp idle),
# LOAD_CPU (0), PROXY_CPU (1), KEEP (1: keep the work dir),
# PERF (1: perf profiles of rvsd per workload, kept in the work dir),
# RVSD_ARGS (more rvsd flags), RVSD_WRAP (a command to start rvsd under).
# Only loopback addresses; every load run is bounded in time; only processes
# this script started are stopped, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD

if [ "${QUICK:-0}" = 1 ]; then
  : "${ROUNDS:=1}" "${DUR:=2}" "${LAT_DUR:=1}" "${UDP_DUR:=1}" "${IDLE_CONNS:=2000}"
fi
ROUNDS=${ROUNDS:-9}
DUR=${DUR:-3}
LAT_DUR=${LAT_DUR:-2}
UDP_DUR=${UDP_DUR:-2}
IDLE_ROUNDS=${IDLE_ROUNDS:-3}
CONNS=${CONNS:-64}
BULK_CONNS=${BULK_CONNS:-4}
IDLE_CONNS=${IDLE_CONNS:-8000}
PROXIES=${PROXIES:-"rvs rvs-1t haproxy-1t haproxy-2t nginx-1w nginx-2w pen direct"}
LOAD_CPU=${LOAD_CPU:-0}
PROXY_CPU=${PROXY_CPU:-1}
UDP_FLOWS=${UDP_FLOWS:-16}
UDP_WINDOW=${UDP_WINDOW:-16}
UDP_SIZE=${UDP_SIZE:-64}
WORKLOADS=${WORKLOADS:-"ka close bulk lat1 udp idle"}

# --- tools -----------------------------------------------------------------
need=()
for t in haproxy nginx pen wrk taskset; do command -v "$t" >/dev/null 2>&1 || need+=("$t"); done
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "compare.sh: missing ${need[*]}: run as root (or: apt-get install -y haproxy nginx libnginx-mod-stream pen wrk)" >&2
    exit 1
  fi
  # Packages may start their services: stop only what they start now.
  pre_nginx=$( [ -s /run/nginx.pid ] && cat /run/nginx.pid || true)
  pre_haproxy=$( [ -s /run/haproxy.pid ] && cat /run/haproxy.pid || true)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx libnginx-mod-stream pen wrk util-linux >/dev/null
  for f in nginx haproxy; do
    pre=pre_$f
    if [ -s "/run/$f.pid" ] && [ "$(cat "/run/$f.pid")" != "${!pre}" ]; then
      echo "compare.sh: stopping the $f service the package started (pid $(cat "/run/$f.pid"))" >&2
      service "$f" stop >/dev/null 2>&1 || kill "$(cat "/run/$f.pid")" 2>/dev/null || true
    fi
  done
fi
ulimit -n "$(ulimit -Hn)"

cargo build --release --bins -q
RVSD=$here/target/release/rvsd
RVSADM=$here/target/release/rvsadm

W=$(mktemp -d /tmp/rvs-compare.XXXXXX)
chmod 755 "$W"   # the nginx workers run as nobody
mkdir -p "$W/www" "$W/tmp"
truncate -s 64M "$W/www/big"
rustc -O -o "$W/udpbench" bench/compare/udp.rs
RESULTS=$W/results
: > "$RESULTS"

backend_pids=()
declare -A main_pid tport uport pidx
proxy_main=
cleanup() {
  for p in "${main_pid[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${backend_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap "exit 130" INT TERM

# subst FILE PORT N [UDP_PORT] [NAME]
subst() { sed -e "s|@DIR@|$W|g" -e "s|@PORT@|${2:-}|g" -e "s|@THREADS@|${3:-}|g" -e "s|@WORKERS@|${3:-}|g" -e "s|@UDP_PORT@|${4:-}|g" -e "s|@NAME@|${5:-}|g" "$1"; }
# Started with `taskset ... &` directly (not through a function), so that
# $! is the PID of the program itself (taskset execs it).
on_load_cpu() { taskset -c "$LOAD_CPU" "$@"; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.025
  done
  echo "compare.sh: nothing listens on port $1" >&2
  return 1
}

# --- back ends -------------------------------------------------------------
for port in 19081 19082; do
  subst bench/compare/backend.conf "$port" > "$W/backend-$port.conf"
  taskset -c "$PROXY_CPU" nginx -e "$W/backend-$port.err" -p "$W" -c "$W/backend-$port.conf" &
  backend_pids+=($!)
done
for port in 19091 19092; do
  taskset -c "$PROXY_CPU" "$W/udpbench" echo "127.0.0.1:$port" &
  backend_pids+=($!)
done
wait_port 19081
wait_port 19082

# --- proxies ---------------------------------------------------------------
# start_proxy NAME TCP_PORT UDP_PORT: starts the proxy, records its PID
# (the one to stop; its workers are its children) and ports.
start_proxy() {
  local name=$1 tp=$2 up=$3 pid=
  if (exec 3<>"/dev/tcp/127.0.0.1/$tp") 2>/dev/null; then
    echo "compare.sh: port $tp is already taken before starting $name" >&2
    exit 1
  fi
  case $name in
    rvs | rvs-1t)
      # "rvs": two data-plane threads on the one proxy CPU (as nginx-2w has
      # two workers); "rvs-1t": one.
      local threads=2
      [ "$name" = rvs-1t ] && threads=1
      rm -rf "$W/$name-state" "$W/$name.sock"
      taskset -c "$PROXY_CPU" ${RVSD_WRAP:-} "$RVSD" --worker-threads "$threads" ${RVSD_ARGS:-} --socket "$W/$name.sock" --state-dir "$W/$name-state" --log-level warn --drain-timeout 1 2>>"$W/$name.err" &
      pid=$!
      for _ in $(seq 200); do [ -S "$W/$name.sock" ] && break; sleep 0.025; done
      local a=("$RVSADM" --socket "$W/$name.sock")
      "${a[@]}" -A -t "127.0.0.1:$tp" -s rr
      "${a[@]}" -a -t "127.0.0.1:$tp" -r 127.0.0.1:19081 -m
      "${a[@]}" -a -t "127.0.0.1:$tp" -r 127.0.0.1:19082 -m
      "${a[@]}" -A -u "127.0.0.1:$up" -s rr
      "${a[@]}" -a -u "127.0.0.1:$up" -r 127.0.0.1:19091 -m
      "${a[@]}" -a -u "127.0.0.1:$up" -r 127.0.0.1:19092 -m
      ;;
    haproxy-*)
      local t=${name#haproxy-}
      subst bench/compare/haproxy.cfg "$tp" "${t%t}" "" "$name" > "$W/$name.cfg"
      taskset -c "$PROXY_CPU" haproxy -db -f "$W/$name.cfg" 2>>"$W/$name.err" &
      pid=$!
      up=
      ;;
    nginx-*)
      local n=${name#nginx-}
      subst bench/compare/nginx-stream.conf "$tp" "${n%w}" "$up" "$name" > "$W/$name.conf"
      taskset -c "$PROXY_CPU" nginx -e "$W/$name.err" -p "$W" -c "$W/$name.conf" &
      pid=$!
      ;;
    pen)
      taskset -c "$PROXY_CPU" pen -f -r -x 10000 -c 20000 -q 4096 -p "$W/pen.pid" \
        "127.0.0.1:$tp" 127.0.0.1:19081 127.0.0.1:19082 2>>"$W/pen.err" &
      pid=$!
      up=
      ;;
    direct)
      tp=19081 up=19091
      ;;
  esac
  wait_port "$tp"
  if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
    echo "compare.sh: $name exited at start" >&2
    exit 1
  fi
  main_pid[$name]=$pid tport[$name]=$tp uport[$name]=$up
}
# start_nth NAME I: start the I-th proxy on its ports.
start_nth() {
  pidx[$1]=$2
  start_proxy "$1" $((19100 + 10 * $2)) $((19101 + 10 * $2))
}
# restart_proxy NAME: a fresh process on the same ports (for the RSS test:
# a process that held connections before keeps that memory for the next).
restart_proxy() {
  local pid=${main_pid[$1]}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/${tport[$1]}") 2>/dev/null || break
    sleep 0.025
  done
  start_nth "$1" "${pidx[$1]}"
}
# use_proxy NAME: the proxy the workload functions measure next.
use_proxy() {
  proxy=$1 proxy_main=${main_pid[$1]} tcp_port=${tport[$1]} udp_port=${uport[$1]}
}
# PIDs whose CPU and memory count: the proxy and its worker processes.
proxy_pids() {
  [ -n "$proxy_main" ] || return 0
  echo "$proxy_main"
  pgrep -P "$proxy_main" || true
}
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
  local t=0 p
  for p in $(proxy_pids); do
    [ -r "/proc/$p/stat" ] || continue
    # Fields after the ")" of comm: utime is the 12th, stime the 13th.
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
# Context switches of the proxy's threads (voluntary + involuntary): how
# often it sleeps or is preempted, the main cost when it shares a CPU.
ctx_switches() {
  local v=0 n=0 p f
  for p in $(proxy_pids); do
    for f in /proc/"$p"/task/*/status; do
      [ -r "$f" ] || continue
      read -r a b < <(awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v, n}' "$f")
      v=$((v + a)); n=$((n + b))
    done
  done
  echo "$v $n"
}

# PERF=1: record a CPU profile of rvsd during each throughput workload
# (perf-WORKLOAD.data in the work dir; implies KEEP=1).
[ "${PERF:-0}" = 1 ] && KEEP=1
perf_start() {
  perf_pid=
  if [ "${PERF:-0}" = 1 ] && [ "$proxy" = rvs ]; then
    perf record -q -e cpu-clock -F 1999 -g -p "$proxy_main" -o "$W/perf-$1.data" -- sleep "$2" 2>/dev/null &
    perf_pid=$!
  fi
}
perf_stop() { [ -z "$perf_pid" ] || wait "$perf_pid" 2>/dev/null || true; }

record() { echo "$round $proxy $1 $2" >> "$RESULTS"; }
# wrk_run CONNS SECS PATH [wrk args...]: prints "requests bytes secs p50 p99 errors"
wrk_run() {
  local c=$1 d=$2 path=$3
  shift 3
  on_load_cpu wrk -t1 -c"$c" -d"${d}s" --timeout 5s -s bench/compare/report.lua "$@" \
    "http://127.0.0.1:$tcp_port$path" | awk '/^RESULT/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      print v["requests"], v["bytes"], v["duration_us"] / 1e6, v["p50_us"], v["p99_us"], v["errors"] }'
}

# One function per workload; each measures the proxy running now.
# keep-alive requests/s and latency under load
w_ka() {
  local t0 t1 out req bytes secs p50 p99 err v0 n0 v1 n1
  perf_start ka "$DUR"
  read -r v0 n0 < <(ctx_switches)
  t0=$(cpu_ticks); out=$(wrk_run "$CONNS" "$DUR" /); t1=$(cpu_ticks)
  read -r v1 n1 < <(ctx_switches)
  perf_stop
  read -r req bytes secs p50 p99 err <<<"$out"
  if [ -n "$proxy_main" ]; then
    record vcsw_per_kreq "$(awk -v d=$((v1 - v0)) -v r="$req" 'BEGIN{print d*1000/r}')"
    record icsw_per_kreq "$(awk -v d=$((n1 - n0)) -v r="$req" 'BEGIN{print d*1000/r}')"
  fi
  record ka_rps "$(awk -v r="$req" -v s="$secs" 'BEGIN{print r/s}')"
  record load_p50_us "$p50"; record load_p99_us "$p99"
  [ -n "$proxy_main" ] && record cpu_us_per_req "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v r="$req" 'BEGIN{print t/h*1e6/r}')"
  [ "$err" = 0 ] || echo "  $proxy keep-alive: $err errors" >&2
  return 0
}
# new connections/s: every request on its own connection
w_close() {
  local t0 t1 out req bytes secs p50 p99 err
  perf_start close "$DUR"
  t0=$(cpu_ticks); out=$(wrk_run "$CONNS" "$DUR" / -H "Connection: close"); t1=$(cpu_ticks)
  perf_stop
  read -r req bytes secs p50 p99 err <<<"$out"
  record close_cps "$(awk -v r="$req" -v s="$secs" 'BEGIN{print r/s}')"
  [ -n "$proxy_main" ] && record cpu_us_per_conn "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v r="$req" 'BEGIN{print t/h*1e6/r}')"
  [ "$err" = 0 ] || echo "  $proxy close: $err errors" >&2
  return 0
}
# bulk: pull /big repeatedly
w_bulk() {
  local t0 t1 out req bytes secs p50 p99 err
  perf_start bulk "$DUR"
  t0=$(cpu_ticks); out=$(wrk_run "$BULK_CONNS" "$DUR" /big); t1=$(cpu_ticks)
  perf_stop
  read -r req bytes secs p50 p99 err <<<"$out"
  record bulk_gbps "$(awk -v b="$bytes" -v s="$secs" 'BEGIN{print b*8/s/1e9}')"
  [ -n "$proxy_main" ] && record cpu_s_per_gib "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v b="$bytes" 'BEGIN{print t/h/(b/2^30)}')"
  [ "$err" = 0 ] || echo "  $proxy bulk: $err errors" >&2
  [ "$bytes" -ge $((1 << 30)) ] || echo "  $proxy bulk: only $bytes bytes (< 1 GiB): raise DUR" >&2
  return 0
}
# latency at one connection
w_lat1() {
  local out req bytes secs p50 p99 err
  out=$(wrk_run 1 "$LAT_DUR" /)
  read -r req bytes secs p50 p99 err <<<"$out"
  record lat1_p50_us "$p50"; record lat1_p99_us "$p99"
}
# RSS per idle connection
w_idle() {
  local out
  if [ -n "$proxy_main" ]; then
    out=$(on_load_cpu python3 bench/compare/idle.py "127.0.0.1:$tcp_port" "$IDLE_CONNS" "$(proxy_pids | paste -sd,)" |
      awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "kib_per_conn") print kv[2] } }') || true
    [ -n "$out" ] && record rss_kib_per_conn "$out" || echo "  $proxy idle: failed" >&2
  fi
  return 0
}
# UDP datagrams/s
w_udp() {
  local t0 t1 out req secs
  if [ -n "$udp_port" ]; then
    perf_start udp "$UDP_DUR"
    t0=$(cpu_ticks)
    out=$(on_load_cpu "$W/udpbench" client "127.0.0.1:$udp_port" "$UDP_FLOWS" "$UDP_WINDOW" "$UDP_DUR" "$UDP_SIZE" |
      awk '/^RESULT/ { split($2, a, "="); split($3, b, "="); print a[2], b[2] }')
    t1=$(cpu_ticks)
    perf_stop
    read -r req secs <<<"$out"
    record udp_dps "$(awk -v r="$req" -v s="$secs" 'BEGIN{print r/s}')"
    [ -n "$proxy_main" ] && [ "$req" -gt 0 ] && record cpu_us_per_dgram "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v r="$req" 'BEGIN{print t/h*1e6/r}')"
  fi
  return 0
}

# --- facts -------------------------------------------------------------------
echo "== machine"
echo "kernel $(uname -r); $(nproc) CPUs: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/2^20}' /proc/meminfo)"
echo "load generator on CPU $LOAD_CPU; proxy and back ends on CPU $PROXY_CPU; loopback"
echo "== versions"
echo "rvs: $("$RVSD" --version) ($(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)), $(rustc --version)"
echo "haproxy: $(haproxy -v | head -1)"
echo "nginx: $(nginx -v 2>&1)"
echo "pen: $(dpkg-query -W -f '${Version}' pen 2>/dev/null || echo '?')"
echo "wrk: $(wrk -v 2>&1 | head -1)"
echo "== parameters"
echo "ROUNDS=$ROUNDS DUR=${DUR}s LAT_DUR=${LAT_DUR}s UDP_DUR=${UDP_DUR}s CONNS=$CONNS BULK_CONNS=$BULK_CONNS IDLE_CONNS=$IDLE_CONNS UDP_FLOWS=$UDP_FLOWS UDP_WINDOW=$UDP_WINDOW UDP_SIZE=$UDP_SIZE"
echo "proxies: $PROXIES"
echo "workloads: $WORKLOADS"
echo

read -r -a plist <<<"$PROXIES"
i=0
for p in "${plist[@]}"; do
  start_nth "$p" "$i"
  i=$((i + 1))
done
echo "== started: $(for p in "${plist[@]}"; do printf '%s (pid %s, tcp %s) ' "$p" "${main_pid[$p]:--}" "${tport[$p]}"; done)"
sleep 0.5
start=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
  n=${#plist[@]}
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${plist[$(((i + round - 1) % n))]}"); done
  echo "== round $round/$ROUNDS: ${order[*]}"
  # Workload by workload, every proxy in turn, runs back to back: the
  # samples of one workload in a round lie within half a minute.
  for w in $WORKLOADS; do
    [ "$w" = idle ] && [ "$round" -gt "$IDLE_ROUNDS" ] && continue
    s=$(date +%s)
    for p in "${order[@]}"; do
      # (No UDP in HAProxy and pen; nothing holds idle connections direct.)
      case $w:$p in udp:haproxy-* | udp:pen | idle:direct) continue ;; esac
      [ "$w" = idle ] && restart_proxy "$p"
      use_proxy "$p"
      "w_$w"
      sleep 0.2
    done
    echo "  $w done in $(($(date +%s) - s)) s"
  done
done
echo "== total $(($(date +%s) - start)) s"
echo
python3 bench/compare/summarize.py "$RESULTS"
