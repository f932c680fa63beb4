#!/usr/bin/env python3
"""Open N keep-alive connections through a proxy, make one small request on
each, hold them idle, and report how much the proxy's RSS grew.

usage: idle.py HOST:PORT N PID[,PID...]
prints: RESULT conns=N rss_before_kib=A rss_after_kib=B kib_per_conn=X
Bounded: gives up after 60 s; closes everything before exiting."""
import socket, sys, time

def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total

def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2])
    pids = [int(p) for p in sys.argv[3].split(",") if p]
    deadline = time.monotonic() + 60
    req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    time.sleep(0.5)
    before = rss_kib(pids)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((host, int(port)), timeout=5)
            socks.append(s)
        for s in socks:
            s.sendall(req)
        for s in socks:
            got = b""
            while not got.endswith(b"hello\n"):
                if time.monotonic() > deadline:
                    raise TimeoutError("idle.py: out of time")
                chunk = s.recv(4096)
                if not chunk:
                    raise ConnectionError("idle.py: proxy closed a connection")
                got += chunk
        time.sleep(1.0)
        after = rss_kib(pids)
        print(f"RESULT conns={len(socks)} rss_before_kib={before} rss_after_kib={after} "
              f"kib_per_conn={(after - before) / len(socks):.2f}", flush=True)
    finally:
        for s in socks:
            s.close()

main()
