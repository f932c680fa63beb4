#!/usr/bin/env python3
"""Soak test of rvsd (loopback only; not part of CI).

For SOAK_SECS (default 600) seconds, against a release rvsd:
- a keep-alive HTTP client, a new-connection HTTP client and a UDP client
  send through a TCP service (two real servers, rr) and a UDP service;
- a control change every second (a real server's weight, a spare service
  added and deleted);
- a real server killed (SIGKILL, by PID) and restored every minute (down for
  20 s of it);
- a client that sends garbage frames on the control socket every second
  (among them the 15-byte frame that claims a 2^44-byte string);
- rvsd's RSS and open descriptors sampled every 10 s.

Prints the samples, their first and last values, and the client errors,
split by whether every real server was up at the time. Every loop is
bounded by the deadline; only processes this script started are stopped.

Usage: bench/soak.sh   (builds the release binaries, then runs this)
"""
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RVSD = os.path.join(ROOT, "target/release/rvsd")
RVSADM = os.path.join(ROOT, "target/release/rvsadm")
SECS = int(os.environ.get("SOAK_SECS", "600"))
NET = "127.46.0."

HTTP_BACKEND = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello from %s\n" % sys.argv[3]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""

UDP_BACKEND = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
"""


def free_port(ip):
    s = socket.socket()
    s.bind((ip, 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.err_all_up = {}
        self.err_degraded = {}
        self.last_err = {}

    def add(self, kind, ok, all_up, why=None):
        with self.lock:
            if ok:
                self.ok[kind] = self.ok.get(kind, 0) + 1
            elif all_up:
                self.err_all_up[kind] = self.err_all_up.get(kind, 0) + 1
                self.last_err[kind] = why
            else:
                self.err_degraded[kind] = self.err_degraded.get(kind, 0) + 1


def main():
    # Stopped early (SIGTERM, or SIGINT where a background shell ignores
    # it): clean up and report as at the end.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if not os.path.exists(RVSD):
        sys.exit("build first: cargo build --release (bench/soak.sh does)")
    work = tempfile.mkdtemp(prefix="rvs-soak-")
    sock = os.path.join(work, "rvsd.sock")
    procs = []
    deadline = time.monotonic() + SECS
    stop = threading.Event()
    stats = Stats()
    state = {"all_up": True}

    def spawn_http(ip, port, name):
        p = subprocess.Popen([sys.executable, "-c", HTTP_BACKEND, ip, str(port), name])
        return p

    def adm(*args, check=True):
        r = subprocess.run([RVSADM, "--socket", sock, *args], capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError(f"rvsadm {' '.join(args)}: {r.stderr.strip()}")
        return r

    rs = [(NET + "2", free_port(NET + "2")), (NET + "3", free_port(NET + "3"))]
    backends = [spawn_http(ip, port, f"rs{i + 1}") for i, (ip, port) in enumerate(rs)]
    udp_rs = (NET + "4", free_port(NET + "4"))
    udp_be = subprocess.Popen([sys.executable, "-c", UDP_BACKEND, udp_rs[0], str(udp_rs[1])])
    procs += [udp_be]
    log = open(os.path.join(work, "rvsd.log"), "w")
    rvsd = subprocess.Popen(
        [RVSD, "--socket", sock, "--state-dir", os.path.join(work, "state"), "--log-level", "info"],
        stderr=log,
    )
    for _ in range(250):
        if os.path.exists(sock):
            break
        time.sleep(0.02)
    else:
        sys.exit("rvsd did not start")
    vip = (NET + "1", free_port(NET + "1"))
    uvip = (NET + "1", free_port(NET + "1"))
    spare = (NET + "1", free_port(NET + "1"))
    adm("-A", "-t", f"{vip[0]}:{vip[1]}", "-s", "rr", "--check-interval", "500ms")
    for ip, port in rs:
        adm("-a", "-t", f"{vip[0]}:{vip[1]}", "-r", f"{ip}:{port}")
    adm("-A", "-u", f"{uvip[0]}:{uvip[1]}", "-s", "rr")
    adm("-a", "-u", f"{uvip[0]}:{uvip[1]}", "-r", f"{udp_rs[0]}:{udp_rs[1]}")
    time.sleep(1)

    def http_get(conn_sock, f):
        conn_sock.sendall(b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n")
        status = f.readline()
        length = 0
        while True:
            line = f.readline()
            if not line:
                raise ConnectionError("EOF in headers")
            if line in (b"\r\n", b"\n"):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = f.read(length)
        if not status.startswith(b"HTTP/1.1 200") or not body.startswith(b"hello"):
            raise ConnectionError(f"bad answer {status!r}")

    def keepalive():
        s = f = None
        while not stop.is_set():
            up = state["all_up"]
            try:
                if s is None:
                    s = socket.create_connection(vip, timeout=5)
                    f = s.makefile("rb")
                http_get(s, f)
                stats.add("keep-alive", True, up)
            except Exception as e:  # noqa: BLE001 - every failure is counted
                stats.add("keep-alive", False, up and state["all_up"], repr(e))
                if s:
                    s.close()
                s = f = None
                time.sleep(0.01)
        if s:
            s.close()

    def newconn():
        while not stop.is_set():
            up = state["all_up"]
            try:
                with socket.create_connection(vip, timeout=5) as s:
                    http_get(s, s.makefile("rb"))
                stats.add("new-conn", True, up)
            except Exception as e:  # noqa: BLE001
                stats.add("new-conn", False, up and state["all_up"], repr(e))
                time.sleep(0.01)

    def udp():
        # 64 clients (source ports) in turn: as many flows, each refreshed
        # well within the udp timeout, so the flow count stays level.
        socks = []
        for _ in range(64):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.bind((NET + "9", 0))
            socks.append(s)
        i = 0
        while not stop.is_set():
            s = socks[i % len(socks)]
            i += 1
            payload = os.urandom(32)
            try:
                s.sendto(payload, uvip)
                while True:
                    d, _ = s.recvfrom(2048)
                    # A late echo of an earlier datagram is not an error.
                    if d == payload:
                        break
                stats.add("udp", True, True)
            except Exception as e:  # noqa: BLE001
                stats.add("udp", False, True, repr(e))
        for s in socks:
            s.close()

    def control():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                w = 1 + n % 3
                adm("-e", "-t", f"{vip[0]}:{vip[1]}", "-r", f"{rs[0][0]}:{rs[0][1]}", "-w", str(w))
                if n % 2:
                    adm("-A", "-t", f"{spare[0]}:{spare[1]}", "-s", "wlc")
                    adm("-a", "-t", f"{spare[0]}:{spare[1]}", "-r", f"{rs[1][0]}:{rs[1][1]}")
                else:
                    adm("-D", "-t", f"{spare[0]}:{spare[1]}")
                stats.add("control", True, True)
            except Exception as e:  # noqa: BLE001
                stats.add("control", False, True, repr(e))
            stop.wait(1)

    def garbage():
        frames = [
            b"\0\2\xfd" + struct.pack("<Q", 1 << 44),
            b"\0\2\xfd" + struct.pack("<Q", 1 << 63),
        ]
        while not stop.is_set():
            body = random.choice(frames + [os.urandom(random.randint(1, 64))])
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(2)
                    s.connect(sock)
                    s.sendall(struct.pack(">I", len(body)) + body)
                    try:
                        s.recv(4096)
                    except OSError:
                        pass
                stats.add("garbage-sent", True, True)
            except Exception as e:  # noqa: BLE001
                stats.add("garbage-sent", False, True, repr(e))
            stop.wait(1)

    def chaos():
        # Every minute: kill real server 2 at +20 s, restore it at +40 s.
        start = time.monotonic()
        while not stop.is_set():
            t = (time.monotonic() - start) % 60
            if 20 <= t < 40 and backends[1] is not None:
                state["all_up"] = False
                backends[1].send_signal(signal.SIGKILL)
                backends[1].wait()
                backends[1] = None
            elif t >= 40 and backends[1] is None:
                backends[1] = spawn_http(rs[1][0], rs[1][1], "rs2")
                # Up again once the checks (interval 500 ms, rise 2) say so.
                for _ in range(100):
                    if stop.is_set():
                        break
                    out = adm("-L", "-n", "--health", check=False).stdout
                    if out.count("UP") >= 2:
                        break
                    time.sleep(0.1)
                time.sleep(0.5)
                state["all_up"] = True
            stop.wait(0.2)

    threads = [threading.Thread(target=f, daemon=True) for f in (keepalive, newconn, udp, control, garbage, chaos)]
    for t in threads:
        t.start()
    samples = []
    t0 = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if rvsd.poll() is not None:
                print(f"rvsd DIED with status {rvsd.returncode}")
                break
            rss = 0
            with open(f"/proc/{rvsd.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
            fds = len(os.listdir(f"/proc/{rvsd.pid}/fd"))
            samples.append((time.monotonic() - t0, rss, fds))
            print(f"t={samples[-1][0]:6.0f}s  rss={rss:7d} KiB  fds={fds:5d}", flush=True)
            time.sleep(min(10, max(0, deadline - time.monotonic())))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        alive = rvsd.poll() is None
        if alive:
            rvsd.send_signal(signal.SIGTERM)
            rvsd.wait(timeout=60)
        for p in backends + procs:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    print()
    print(f"duration {SECS} s; rvsd alive at the end: {alive}")
    if samples:
        (_, r0, f0), (_, r1, f1) = samples[0], samples[-1]
        rmax = max(s[1] for s in samples)
        fmax = max(s[2] for s in samples)
        print(f"RSS KiB: start {r0}, end {r1}, max {rmax}")
        print(f"open fds: start {f0}, end {f1}, max {fmax}")
    print(f"ok: {stats.ok}")
    print(f"errors while every real server was up: {stats.err_all_up or 0}")
    print(f"errors while a real server was down: {stats.err_degraded or 0}")
    for k, v in stats.last_err.items():
        print(f"  last {k} error: {v}")
    print(f"rvsd log: {os.path.join(work, 'rvsd.log')}")
    sys.exit(0 if alive else 1)


if __name__ == "__main__":
    main()
