#!/usr/bin/env python3
"""Summarize bench/compare.sh results: median (min-max) per proxy and metric,
the ratio rvs / best peer, and whether each goal is met.

Two verdicts per goal: "goal" compares medians (rvs's median against the
best peer's median, as the issue asks); "paired" takes, for every peer, the
ratio rvs / peer within each round (the samples of one workload in a round
lie a minute or two apart, so the machine's drift cancels) and compares the
median of those ratios with 1 for the peer that does best against rvs.
usage: summarize.py RESULTS   (lines: ROUND PROXY METRIC VALUE)"""
import statistics, sys
from collections import defaultdict

PEERS = ["haproxy-1t", "haproxy-2t", "nginx-1w", "nginx-2w", "pen"]
ORDER = ["rvs", "rvs-1t"] + PEERS + ["direct"]
# metric: (label, higher_is_better, peers the goal compares with or None, format)
METRICS = [
    ("ka_rps", "keep-alive req/s (c64)", True, PEERS, "{:.0f}"),
    ("close_cps", "new conn/s (c64, close)", True, PEERS, "{:.0f}"),
    ("bulk_gbps", "bulk Gbit/s (/big)", True, PEERS, "{:.2f}"),
    # The "per-hop latency at one connection".
    ("lat1_p50_us", "latency p50 c1 (us)", False, PEERS, "{:.0f}"),
    ("lat1_p99_us", "latency p99 c1 (us)", False, None, "{:.0f}"),
    ("load_p50_us", "latency p50 c64 (us)", False, None, "{:.0f}"),
    ("load_p99_us", "latency p99 c64 (us)", False, PEERS, "{:.0f}"),
    ("cpu_us_per_req", "CPU us / keep-alive req", False, PEERS, "{:.2f}"),
    ("vcsw_per_kreq", "sleeps / 1k keep-alive req", False, None, "{:.0f}"),
    ("icsw_per_kreq", "preempted / 1k ka req", False, None, "{:.0f}"),
    ("cpu_us_per_conn", "CPU us / new conn", False, PEERS, "{:.1f}"),
    ("cpu_s_per_gib", "CPU s / GiB bulk", False, PEERS, "{:.3f}"),
    ("rss_kib_per_conn", "RSS KiB / idle conn", False, ["haproxy-1t", "haproxy-2t"], "{:.2f}"),
    ("udp_dps", "UDP datagrams/s", True, ["nginx-1w", "nginx-2w"], "{:.0f}"),
    ("cpu_us_per_dgram", "CPU us / UDP datagram", False, None, "{:.2f}"),
]

def main():
    data = defaultdict(list)
    by_round = defaultdict(dict)
    for line in open(sys.argv[1]):
        parts = line.split()
        if len(parts) != 4:
            continue
        rnd, proxy, metric, value = parts
        data[(proxy, metric)].append(float(value))
        by_round[(proxy, metric)][rnd] = float(value)
    proxies = [p for p in ORDER if any(k[0] == p for k in data)]
    med = {k: statistics.median(v) for k, v in data.items()}
    w = 12
    head = f"{'metric':<26}" + "".join(f"{p:>{w}}" for p in proxies) + f"{'rvs/best':>{w}}{'best peer':>{w}}  {'goal':<6}  {'paired':>7} {'vs':<10} goal"
    print(head)
    print("-" * len(head))
    results = []
    for key, label, higher, goal_peers, fmt in METRICS:
        row = f"{label:<26}"
        for p in proxies:
            v = med.get((p, key))
            row += f"{(fmt.format(v) if v is not None else '-'):>{w}}"
        peers = [p for p in (goal_peers or PEERS) if (p, key) in med]
        rvs = med.get(("rvs", key))
        if peers and rvs is not None:
            pick = max if higher else min
            best = pick(peers, key=lambda p: med[(p, key)])
            bv = med[(best, key)]
            ratio = rvs / bv if bv else float("inf")
            row += f"{ratio:>{w}.2f}{best:>{w}}"
            if goal_peers:
                ok = rvs >= bv if higher else rvs <= bv
                row += "  " + ("met   " if ok else "MISSED")
                # Paired: median over rounds of rvs / peer, per peer; the
                # peer that does best against rvs decides.
                paired = {}
                for q in peers:
                    a, b = by_round[("rvs", key)], by_round[(q, key)]
                    rs = [a[r] / b[r] for r in a if r in b and b[r]]
                    if rs:
                        paired[q] = statistics.median(rs)
                pok = None
                if paired:
                    q = (min if higher else max)(paired, key=paired.get)
                    pok = paired[q] >= 1 if higher else paired[q] <= 1
                    row += f"  {paired[q]:>7.2f} {q:<10} " + ("met" if pok else "MISSED")
                results.append((label, ok, pok))
        print(row)
    print()
    print("min / median / max per cell:")
    for key, label, _, _, fmt in METRICS:
        cells = []
        for p in proxies:
            v = data.get((p, key))
            if v:
                cells.append(f"{p}: " + "/".join(fmt.format(x) for x in (min(v), statistics.median(v), max(v))))
        if cells:
            print(f"  {label}: " + "; ".join(cells))
    missed = [l for l, ok, _ in results if not ok]
    print()
    print(f"goals met: {len(results) - len(missed)}/{len(results)}" + (f"; missed: {', '.join(missed)}" if missed else ""))
    pmissed = [l for l, _, ok in results if ok is False]
    pn = sum(1 for _, _, ok in results if ok is not None)
    print(f"goals met, paired by round: {pn - len(pmissed)}/{pn}" + (f"; missed: {', '.join(pmissed)}" if pmissed else ""))

main()
