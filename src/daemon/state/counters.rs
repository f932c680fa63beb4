//! Live per-real-server and per-service state shared by the data plane:
//! connection counts, the overload/down flags and cumulative counters, all
//! atomics so that the data path never takes a lock to account.
//!
//! A `ServerState` lives as long as its real server stays in its service; the
//! table task carries it across snapshot swaps by (service, server) key, so
//! editing a weight keeps counts and counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::ctl::proto::{Rates, Stats};

use super::threads;

/// Cumulative traffic counters (never reset; `-Z` moves a zero point), in
/// one part per data-plane thread, as the kernel keeps its per CPU: a
/// thread adds only to its own part, on a cache line of its own, and a
/// read sums the parts.
#[derive(Debug)]
pub(crate) struct Counters {
    parts: Box<[Part]>,
}

#[derive(Debug, Default)]
#[repr(align(128))] // a line pair: neighbouring parts never share one
struct Part {
    conns: AtomicU64,
    inpkts: AtomicU64,
    outpkts: AtomicU64,
    inbytes: AtomicU64,
    outbytes: AtomicU64,
}

/// Add `n` unless it is 0 (callers pass 0 for what they do not count).
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Relaxed);
    }
}

impl Counters {
    /// Counters with one part for each of `threads` data-plane threads
    /// (at least one).
    pub(crate) fn new(threads: usize) -> Counters {
        Counters {
            parts: (0..threads.max(1)).map(|_| Part::default()).collect(),
        }
    }

    /// How many parts (data-plane threads) these counters have.
    pub(crate) fn threads(&self) -> usize {
        self.parts.len()
    }

    /// This thread's part (a thread outside the data plane shares the
    /// first).
    #[inline]
    fn mine(&self) -> &Part {
        self.parts
            .get(threads::this_thread())
            .unwrap_or(&self.parts[0])
    }

    /// A connection (or UDP flow) was bound.
    #[inline]
    pub(crate) fn add_conn(&self) {
        self.mine().conns.fetch_add(1, Relaxed);
    }

    /// Packets and bytes from the client.
    #[inline]
    pub(crate) fn add_in(&self, pkts: u64, bytes: u64) {
        let p = self.mine();
        bump(&p.inpkts, pkts);
        bump(&p.inbytes, bytes);
    }

    /// Packets and bytes to the client.
    #[inline]
    pub(crate) fn add_out(&self, pkts: u64, bytes: u64) {
        let p = self.mine();
        bump(&p.outpkts, pkts);
        bump(&p.outbytes, bytes);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut s = Stats::default();
        for p in self.parts.iter() {
            s.conns += p.conns.load(Relaxed);
            s.inpkts += p.inpkts.load(Relaxed);
            s.outpkts += p.outpkts.load(Relaxed);
            s.inbytes += p.inbytes.load(Relaxed);
            s.outbytes += p.outbytes.load(Relaxed);
        }
        s
    }
}

/// The kernel's rate estimator (ipvsadm's “Rate estimator (`ip_vs_est.c`)”): 2-second samples smoothed
/// with an EWMA of weight 1/4, plus the zero point that `-Z` moves.
/// Only the estimator tick and `-Z` touch it, never the data path.
#[derive(Debug, Default)]
pub(crate) struct Estimator {
    inner: Mutex<EstInner>,
}

#[derive(Debug, Default)]
struct EstInner {
    last: Stats,
    zero: Stats,
    /// cps, inpps, outpps scaled by 2^10; inbps, outbps scaled by 2^5.
    avg: [i64; 5],
}

fn fields(s: &Stats) -> [u64; 5] {
    [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
}

impl Estimator {
    /// Take one 2-second sample of the cumulative counters.
    pub(crate) fn sample(&self, now: Stats) {
        let mut e = self.inner.lock().expect("estimator lock");
        let (cur, last) = (fields(&now), fields(&e.last));
        for i in 0..5 {
            let delta = cur[i].wrapping_sub(last[i]) as i64;
            let rate = if i < 3 { delta << 9 } else { delta << 4 };
            e.avg[i] += (rate - e.avg[i]) >> 2;
        }
        e.last = now;
    }

    /// Current rates as `--rate` shows them (rounded as the kernel does).
    pub(crate) fn rates(&self) -> Rates {
        let e = self.inner.lock().expect("estimator lock");
        let r = |i: usize| {
            let v = e.avg[i].max(0) as u64;
            if i < 3 {
                (v + 0x1FF) >> 10
            } else {
                (v + 0xF) >> 5
            }
        };
        Rates {
            cps: r(0),
            inpps: r(1),
            outpps: r(2),
            inbps: r(3),
            outbps: r(4),
        }
    }

    /// Counters since the last zeroing.
    pub(crate) fn since_zero(&self, now: Stats) -> Stats {
        let e = self.inner.lock().expect("estimator lock");
        Stats {
            conns: now.conns.wrapping_sub(e.zero.conns),
            inpkts: now.inpkts.wrapping_sub(e.zero.inpkts),
            outpkts: now.outpkts.wrapping_sub(e.zero.outpkts),
            inbytes: now.inbytes.wrapping_sub(e.zero.inbytes),
            outbytes: now.outbytes.wrapping_sub(e.zero.outbytes),
        }
    }

    /// `-Z`: counters restart at 0 and rates drop to 0.
    pub(crate) fn zero(&self, now: Stats) {
        let mut e = self.inner.lock().expect("estimator lock");
        e.zero = now;
        e.last = now;
        e.avg = [0; 5];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimator_converges_like_the_kernel() {
        let est = Estimator::default();
        let mut s = Stats::default();
        for _ in 0..100 {
            s.conns += 200; // 100 conns/s over 2 s
            s.inbytes += 2_000_000; // 1 MB/s
            est.sample(s);
        }
        let r = est.rates();
        assert_eq!(r.cps, 100);
        assert_eq!(r.inbps, 1_000_000);
        est.zero(s);
        assert_eq!(est.rates(), Rates::default());
        assert_eq!(est.since_zero(s), Stats::default());
    }
}
