#!/usr/bin/env python3
"""Health-check benchmark (loopback only).

1. Detection time: a service with two real servers; one back-end process is
   killed (SIGKILL, by PID), once with no traffic (active checks alone) and
   once while a client keeps connecting (passive checks too); we time how long
   until `rvsadm -L -n --json` shows it DOWN, and count client errors in that
   window. Median of 5, with the default check settings (TCP connect every
   2 s, timeout 1 s, fall 3) and with --check-interval 200ms.
2. CPU cost: 1,000 real servers checked every second (TCP connect to one
   listener on 127.0.0.1 reached through 1,000 loopback addresses); rvsd's
   user+system CPU seconds over 20 s.

Usage: bench/health.py   (builds the release binaries first)
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RVSD = os.path.join(ROOT, "target/release/rvsd")
RVSADM = os.path.join(ROOT, "target/release/rvsadm")
BACKEND = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.sendall(b"hi\n"); c.close()
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Daemon:
    def __init__(self, work):
        self.sock = os.path.join(work, "rvsd.sock")
        self.proc = subprocess.Popen(
            [RVSD, "--socket", self.sock, "--state-dir", os.path.join(work, "state"), "--log-level", "warn"],
            stderr=open(os.path.join(work, "rvsd.log"), "w"),
        )
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            time.sleep(0.02)
        raise SystemExit("rvsd did not start")

    def adm(self, *args, stdin=None):
        r = subprocess.run([RVSADM, "--socket", self.sock, *args], input=stdin, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"rvsadm {args}: {r.stderr}")
        return r.stdout

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=40)


def state_of(d, port):
    data = json.loads(d.adm("-L", "-n", "--json"))
    for svc in data["services"]:
        for s in svc["servers"]:
            if s["port"] == port:
                return s["health"]["state"]
    return None


def detection_round(d, vip, options, traffic):
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-c", BACKEND, str(p)]) for p in ports]
    time.sleep(0.3)
    d.adm("-A", "-t", vip, "-s", "rr", *options)
    for p in ports:
        d.adm("-a", "-t", vip, "-r", f"127.0.0.1:{p}")
    deadline = time.time() + 10
    while state_of(d, ports[1]) != "UP" and time.time() < deadline:
        time.sleep(0.05)
    errors, done, stop = [0], [0], threading.Event()
    host, port = vip.rsplit(":", 1)

    def client():
        while not stop.is_set():
            try:
                c = socket.create_connection((host, int(port)), timeout=5)
                if not c.recv(16):
                    errors[0] += 1
                c.close()
            except OSError:
                errors[0] += 1
            done[0] += 1
            time.sleep(0.005)

    t = threading.Thread(target=client)
    if traffic:
        t.start()
    time.sleep(0.5)
    killed = time.time()
    procs[1].kill()
    while state_of(d, ports[1]) != "DOWN" and time.time() - killed < 30:
        time.sleep(0.01)
    took = time.time() - killed
    stop.set()
    if traffic:
        t.join()
    for p in procs:
        p.kill()
        p.wait()
    d.adm("-D", "-t", vip)
    return took, errors[0], done[0]


def detection(d, label, options, traffic):
    rows = []
    for i in range(5):
        vip = f"127.0.0.1:{free_port()}"
        rows.append(detection_round(d, vip, options, traffic))
    label += ", with client traffic (passive + active)" if traffic else ", no traffic (active checks only)"
    times = [r[0] for r in rows]
    print(f"detection, {label}: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}); "
          f"client errors {sum(r[1] for r in rows)} of {sum(r[2] for r in rows)} connections")


def cpu_cost(d):
    port = free_port()
    listener = subprocess.Popen([sys.executable, "-c", BACKEND.replace('"127.0.0.1"', '"0.0.0.0"'), str(port)])
    time.sleep(0.3)
    vip = f"127.0.0.1:{free_port()}"
    rules = [f"-A -t {vip} -s rr --check-interval 1s"]
    for i in range(1000):
        rules.append(f"-a -t {vip} -r 127.2.{i // 250}.{i % 250 + 1}:{port}")
    d.adm("-R", stdin="\n".join(rules) + "\n")
    time.sleep(3)
    before = d.cpu_seconds()
    time.sleep(20)
    used = d.cpu_seconds() - before
    data = json.loads(d.adm("-L", "-n", "--json"))
    up = sum(1 for s in data["services"][0]["servers"] if s["health"]["state"] == "UP")
    print(f"CPU for 1,000 real servers checked every 1 s: {used:.2f} s over 20 s "
          f"({used / 20 * 100:.1f}% of one core); {up} of 1000 UP")
    listener.kill()
    listener.wait()


def main():
    subprocess.run(["cargo", "build", "--release", "--bins", "-q"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="rvs-health-bench-") as work:
        d = Daemon(work)
        try:
            for traffic in (False, True):
                detection(d, "defaults (tcp, interval 2 s, timeout 1 s, fall 3)", [], traffic)
                detection(d, "interval 200 ms", ["--check-interval", "200ms"], traffic)
            cpu_cost(d)
        finally:
            d.stop()


if __name__ == "__main__":
    main()
