#!/usr/bin/env python3
"""Paired A/B runs of rvs builds or options (and peers) on a noisy machine.

bench/compare.sh runs each proxy for a whole block of workloads, so a slow
minute on a shared host lands on one proxy only. This script starts every
variant at once (each on its own port, all idle but the one measured), and
alternates short runs of one workload between them, round after round, so
that each variant sees the same noise. It prints medians, min/max and the
ratio of each variant to the first, plus CPU time (all, and user space
alone: "user us"), syscalls and context switches per request of the
proxy's threads (sleeps = voluntary, preempted = involuntary), and TCP
segments sent on the host per request (client, proxy and back ends
together). CPU times come from /proc in clock ticks: compare medians of
several rounds.

  sudo bench/ab.py [--workload ka|close|udp] [--rounds N] [--secs S] VARIANT...

VARIANT is NAME=SPEC, SPEC one of:
  rvs[:ARGS]            target/release/rvsd with extra rvsd ARGS (two
                        data-plane threads unless ARGS set --worker-threads)
  rvs@PATH[:ARGS]       another rvsd binary (a build from another commit)
  haproxy-Nt, nginx-Nw, pen
e.g. bench/ab.py base=rvs new=rvs@/tmp/rvsd-new h=haproxy-1t

Needs what bench/compare.sh installs (run it once, or QUICK=1). Loopback
only; every run is bounded in time; stops only the processes it started.
"""
import argparse, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOAD_CPU, PROXY_CPU = os.environ.get("LOAD_CPU", "0"), os.environ.get("PROXY_CPU", "1")
BACKENDS = [19081, 19082]
UDP_BACKENDS = [19091, 19092]

procs = []


def start(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    procs.append(p)
    return p


def wait_port(port, udp=False):
    if udp:
        time.sleep(0.2)
        return
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.025)
    sys.exit(f"ab.py: nothing listens on port {port}")


def subst(path, work, port="", n="", udp="", name=""):
    text = open(path).read()
    for k, v in {"@DIR@": work, "@PORT@": port, "@THREADS@": n, "@WORKERS@": n, "@UDP_PORT@": udp, "@NAME@": name}.items():
        text = text.replace(k, str(v))
    return text


def pids_of(p):
    """The process and its children (nginx workers)."""
    out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    return [p.pid] + [int(x) for x in out]


def out_segs():
    """TCP segments sent on this host (all sockets: clients, proxy, back ends)."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])


def usage(pids):
    """CPU ticks, user-space ticks and (voluntary, involuntary) switches
    over all threads."""
    ticks = user = vol = inv = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            user += int(fields[11])
            for t in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches"):
                            vol += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches"):
                            inv += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ticks, user, vol, inv


class Variant:
    def __init__(self, name, spec, index, work):
        self.name, self.spec = name, spec
        self.tcp = 19180 + 10 * index
        self.udp = self.tcp + 1
        self.proc = None
        self.work = work

    def launch(self):
        w, spec = self.work, self.spec
        tp = ["taskset", "-c", PROXY_CPU]
        m = re.fullmatch(r"rvs(?:@([^:]+))?(?::(.*))?", spec)
        if m:
            binary = m.group(1) or os.path.join(ROOT, "target/release/rvsd")
            rvsadm = os.path.join(ROOT, "target/release/rvsadm")
            sock = f"{w}/{self.name}.sock"
            env = dict(os.environ)
            args = (m.group(2) or "").split()
            if not any(a.startswith("--worker-threads") for a in args):
                # As bench/compare.sh's "rvs": rvsd's default is one thread
                # per CPU it may use, and taskset leaves it one.
                args = ["--worker-threads", "2"] + args
            self.proc = start(tp + [binary] + args + [
                "--socket", sock, "--state-dir", f"{w}/{self.name}-state", "--log-level", "warn",
                "--drain-timeout", "1"], stderr=open(f"{w}/{self.name}.err", "w"), env=env)
            for _ in range(400):
                if os.path.exists(sock):
                    break
                time.sleep(0.025)
            a = [rvsadm, "--socket", sock]
            vip, uvip = f"127.0.0.1:{self.tcp}", f"127.0.0.1:{self.udp}"
            cmds = [["-A", "-t", vip, "-s", "rr"]] + [["-a", "-t", vip, "-r", f"127.0.0.1:{b}", "-m"] for b in BACKENDS]
            cmds += [["-A", "-u", uvip, "-s", "rr"]] + [["-a", "-u", uvip, "-r", f"127.0.0.1:{b}", "-m"] for b in UDP_BACKENDS]
            for c in cmds:
                subprocess.run(a + c, check=True)
        elif spec.startswith("haproxy-"):
            cfg = subst(f"{HERE}/compare/haproxy.cfg", w, self.tcp, spec[8:-1], name=self.name)
            open(f"{w}/{self.name}.cfg", "w").write(cfg)
            self.proc = start(tp + ["haproxy", "-db", "-f", f"{w}/{self.name}.cfg"], stderr=subprocess.DEVNULL)
            self.udp = None
        elif spec.startswith("nginx-"):
            cfg = subst(f"{HERE}/compare/nginx-stream.conf", w, self.tcp, spec[6:-1], self.udp, self.name)
            open(f"{w}/{self.name}.conf", "w").write(cfg)
            self.proc = start(tp + ["nginx", "-e", f"{w}/{self.name}.err", "-p", w, "-c", f"{w}/{self.name}.conf"])
        elif spec == "pen":
            self.proc = start(tp + ["pen", "-f", "-r", "-x", "10000", "-c", "20000", "-q", "4096", "-p",
                                    f"{w}/{self.name}.pid", f"127.0.0.1:{self.tcp}"] + [f"127.0.0.1:{b}" for b in BACKENDS],
                              stderr=subprocess.DEVNULL)
            self.udp = None
        else:
            sys.exit(f"ab.py: unknown variant spec {spec!r}")
        wait_port(self.tcp)


def wrk(port, secs, conns, close):
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "5s",
           "-s", f"{HERE}/compare/report.lua"]
    if close:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
    m = re.search(r"RESULT (.*)", out)
    kv = dict(x.split("=") for x in m.group(1).split())
    return int(kv["requests"]), int(kv["duration_us"]) / 1e6, int(kv["p99_us"])


def udp(binary, port, secs):
    out = subprocess.run(["taskset", "-c", LOAD_CPU, binary, "client", f"127.0.0.1:{port}", "16", "16", str(secs), "64"],
                         capture_output=True, text=True).stdout
    m = re.search(r"RESULT replies=(\d+) secs=([\d.]+)", out)
    return int(m.group(1)), float(m.group(2)), 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="ka", choices=["ka", "close", "udp"])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--secs", type=int, default=2)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="rvs-ab.")
    os.chmod(work, 0o755)
    os.makedirs(f"{work}/www")
    os.makedirs(f"{work}/tmp")
    udpbin = f"{work}/udpbench"
    subprocess.run(["rustc", "-O", "-o", udpbin, f"{HERE}/compare/udp.rs"], check=True)
    try:
        for port in BACKENDS:
            open(f"{work}/backend-{port}.conf", "w").write(subst(f"{HERE}/compare/backend.conf", work, port))
            start(["taskset", "-c", PROXY_CPU, "nginx", "-e", f"{work}/backend-{port}.err", "-p", work, "-c",
                   f"{work}/backend-{port}.conf"])
        for port in UDP_BACKENDS:
            start(["taskset", "-c", PROXY_CPU, udpbin, "echo", f"127.0.0.1:{port}"])
        for port in BACKENDS:
            wait_port(port)
        variants = []
        for i, v in enumerate(args.variants):
            name, _, spec = v.partition("=")
            var = Variant(name, spec or name, i, work)
            var.launch()
            variants.append(var)
        time.sleep(0.5)
        res = {v.name: [] for v in variants}
        hz = os.sysconf("SC_CLK_TCK")
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for v in order:
                if args.workload == "udp" and v.udp is None:
                    continue
                pids = pids_of(v.proc)
                t0, u0, v0, i0 = usage(pids)
                s0 = out_segs()
                perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p",
                                         ",".join(map(str, pids))], stderr=subprocess.PIPE, text=True)
                prof = None
                if os.environ.get("PROFILE") and r == 0:
                    prof = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-g", "-p",
                                             ",".join(map(str, pids)), "-o", f"{os.environ['PROFILE']}/{v.name}.data"],
                                            stderr=subprocess.DEVNULL)
                if args.workload == "udp":
                    n, secs, p99 = udp(udpbin, v.udp, args.secs)
                else:
                    n, secs, p99 = wrk(v.tcp, args.secs, args.conns, args.workload == "close")
                t1, u1, v1, i1 = usage(pids)
                segs = out_segs() - s0
                perf.send_signal(signal.SIGINT)
                if prof:
                    prof.send_signal(signal.SIGINT)
                    prof.wait()
                sc = perf.communicate()[1]
                m = re.search(r"^([\d.]+),,raw_syscalls:sys_enter", sc, re.M)
                n = max(n, 1)
                calls = float(m.group(1)) / n if m else float("nan")
                res[v.name].append((n / secs, (t1 - t0) / hz * 1e6 / n, (v1 - v0) * 1000 / n, (i1 - i0) * 1000 / n, p99, calls, segs / n,
                                    (u1 - u0) / hz * 1e6 / n))
            print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{k} {x[-1][0]:.0f}" for k, x in res.items() if x), flush=True)
        print()
        base = None
        print(f"{'variant':<12}{'rate/s med':>12}{'min':>9}{'max':>9}{'ratio':>7}{'CPU us':>8}{'sleeps/1k':>10}{'preempt/1k':>11}{'p99 us':>8}{'syscalls':>9}{'segs':>6}{'user us':>8}")
        for v in variants:
            xs = res[v.name]
            if not xs:
                continue
            rates = [x[0] for x in xs]
            med = statistics.median(rates)
            base = base or med
            cols = [statistics.median([x[i] for x in xs]) for i in range(1, 8)]
            print(f"{v.name:<12}{med:>12.0f}{min(rates):>9.0f}{max(rates):>9.0f}{med / base:>7.3f}"
                  f"{cols[0]:>8.2f}{cols[1]:>10.0f}{cols[2]:>11.0f}{cols[3]:>8.0f}{cols[4]:>9.2f}{cols[5]:>6.1f}{cols[6]:>8.2f}")
        # Paired ratios against the first variant, round by round.
        first = variants[0].name
        for v in variants[1:]:
            pairs = [b[0] / a[0] for a, b in zip(res[first], res[v.name])]
            if pairs:
                print(f"paired {v.name}/{first}: median {statistics.median(pairs):.3f} (min {min(pairs):.3f}, max {max(pairs):.3f})", end="")
                p99s = [b[4] / a[4] for a, b in zip(res[first], res[v.name]) if a[4]]
                if p99s and args.workload != "udp":
                    print(f"; p99 {statistics.median(p99s):.3f} (min {min(p99s):.3f}, max {max(p99s):.3f})", end="")
                print()
    finally:
        for p in reversed(procs):
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
