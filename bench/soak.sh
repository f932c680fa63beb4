#!/usr/bin/env bash
# Soak test (not CI): 10 minutes of mixed load against a release rvsd on
# loopback, with control changes, a real server killed and restored every
# minute and garbage on the control socket; prints RSS and descriptor
# samples and the client errors. SOAK_SECS=N for another duration.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin rvsd --bin rvsadm
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 bench/soak.py
