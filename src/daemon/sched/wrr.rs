//! wrr — Weighted Round Robin, following the kernel's `ip_vs_wrr.c`.
//!
//! State (the kernel's "mark"): cursor `cl` (initially the list head), `di` =
//! gcd of the weights > 0 (1 if none), `mw` = max weight − (di − 1) and `cw`,
//! the current weight threshold. A pick walks on from the cursor and takes
//! the first server that is not blocked with `weight >= cw`; every time the
//! walk passes the list end `cw -= di`, and when `cw <= 0` it restarts at
//! `mw`. Passes therefore run cw = mw, mw−di, …, 1 and each pass emits, in
//! list order, the servers whose weight reaches `cw`. The kernel's fail-safe
//! (stop after one full round for `weight >= 1` found nothing) is kept.
//!
//! `build` is the kernel's init (`cw = mw`); [`super::rebuild`] is its
//! add/del/update hook: cursor back to the head, `di`/`mw` recomputed, then
//! `cw = mw` if `cw > mw || cw == 0`, else if `di > 1`,
//! `cw = (cw / di) * di + 1`.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::util::gcd;
use super::{Carry, CarryInner, Dest, PickCtx, Scheduler};

#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Last picked list index; `None` = the list head.
    cl: Option<usize>,
    cw: i64,
}

impl Mark {
    /// In one word: `cl + 1` (0 for the head) above, `cw` below (weights,
    /// and so `cw`, are at most `i32::MAX`).
    fn pack(self) -> u64 {
        (self.cl.map_or(0, |c| c as u64 + 1) << 32) | (self.cw as i32 as u32 as u64)
    }

    fn unpack(v: u64) -> Mark {
        Mark {
            cl: (v >> 32).checked_sub(1).map(|c| c as usize),
            cw: (v as u32) as i32 as i64,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Wrr {
    di: i64,
    mw: i64,
    /// The packed [`Mark`], moved by compare-and-swap: picks on different
    /// threads take no lock, and each continues from the one before it.
    mark: AtomicU64,
}

impl Wrr {
    /// `prev_cw`: the previous scheduler's `cw` when rebuilding.
    pub(crate) fn new(dests: &[Dest], prev_cw: Option<i64>) -> Wrr {
        let g = dests.iter().fold(0, |g, d| gcd(g, d.weight));
        let di = if g == 0 { 1 } else { g as i64 };
        let max = dests.iter().map(|d| d.weight as i64).max().unwrap_or(0);
        let mw = max - (di - 1);
        let cw = match prev_cw {
            None => mw,
            Some(cw) if cw > mw || cw == 0 => mw,
            Some(cw) if di > 1 => (cw / di) * di + 1,
            Some(cw) => cw,
        };
        Wrr {
            di,
            mw,
            mark: AtomicU64::new(Mark { cl: None, cw }.pack()),
        }
    }
}

impl Wrr {
    /// One pick from mark `m`, moving it on.
    fn walk(&self, dests: &[Dest], ctx: &PickCtx<'_>, m: &mut Mark) -> Option<usize> {
        let n = dests.len();
        let last = m.cl.filter(|&c| c < n);
        let mut start = last.map_or(0, |c| c + 1);
        let mut stop: Option<usize> = None;
        let (mut last_pass, mut restarted) = (false, false);
        loop {
            for i in start..n {
                if !ctx.blocked(dests, i) && dests[i].weight as i64 >= m.cw {
                    m.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    return None;
                }
            }
            start = 0;
            m.cw -= self.di;
            if m.cw <= 0 {
                m.cw = self.mw;
                // Already did the weight >= 1 pass over everything, or the
                // walk started at the head (its only pass was complete).
                if last_pass || last.is_none() {
                    return None;
                }
                restarted = true;
            }
            last_pass = m.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first weight >= 1 traversal covered only the servers
                // after `last`; now cover those up to `last`.
                stop = last;
            }
        }
    }
}

impl Scheduler for Wrr {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let mut cur = self.mark.load(Relaxed);
        loop {
            let mut m = Mark::unpack(cur);
            let picked = self.walk(dests, ctx, &mut m);
            let next = m.pack();
            if next == cur {
                return picked;
            }
            match self.mark.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => return picked,
                // Another thread picked meanwhile: walk on from its mark.
                Err(now) => cur = now,
            }
        }
    }

    fn carry(&self) -> Option<Carry> {
        Some(Carry(CarryInner::Wrr(
            Mark::unpack(self.mark.load(Relaxed)).cw,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::testing::{ctx, dests, overload, picked_concurrently};
    use super::super::{build, rebuild};
    use super::*;

    fn seq(s: &dyn Scheduler, d: &[Dest], k: usize) -> Vec<usize> {
        (0..k).map(|_| s.pick(d, &ctx(&[])).unwrap()).collect()
    }

    #[test]
    fn concurrent_picks_keep_the_weights() {
        // Four threads pick at once; each pick continues from the one
        // before it, so whole rounds (3 + 2 + 1 picks) come out exactly.
        let d = dests(&[3, 2, 1]);
        let s = build("wrr", 0, &d).unwrap();
        let counts = picked_concurrently(&*s, &d);
        assert_eq!(counts, [60_000, 40_000, 20_000]);
    }

    #[test]
    fn reference_example_sequence() {
        // A(w4), B(w3), C(w2) added in that order → list order C, B, A.
        let d = dests(&[2, 3, 4]);
        let (c, b, a) = (0, 1, 2);
        let s = build("wrr", 0, &d).unwrap();
        let one_cycle = [a, b, a, c, b, a, c, b, a];
        let want: Vec<usize> = one_cycle.iter().chain(one_cycle.iter()).copied().collect();
        assert_eq!(seq(&*s, &d, 18), want);
    }

    #[test]
    fn gcd_example_sequence() {
        // Weights 4 and 2: di 2, mw 3 → cw=3: the 4-server, cw=1: both.
        let d = dests(&[4, 2]);
        let s = build("wrr", 0, &d).unwrap();
        assert_eq!(seq(&*s, &d, 6), [0, 0, 1, 0, 0, 1]);
        let d = dests(&[2, 4]);
        let s = build("wrr", 0, &d).unwrap();
        assert_eq!(seq(&*s, &d, 6), [1, 0, 1, 1, 0, 1]);
    }

    #[test]
    fn weight_zero_blocked_and_skip() {
        let d = dests(&[0, 1, 1]);
        let s = build("wrr", 0, &d).unwrap();
        assert_eq!(seq(&*s, &d, 4), [1, 2, 1, 2]);
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(2));
        overload(&d[2], true);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        assert_eq!(s.pick(&d, &ctx(&[1])), None);
        let z = dests(&[0, 0]);
        assert_eq!(build("wrr", 0, &z).unwrap().pick(&z, &ctx(&[])), None);
    }

    #[test]
    fn rebuild_resets_cursor_and_adjusts_cw() {
        let d = dests(&[2, 3, 4]);
        let s = build("wrr", 0, &d).unwrap();
        // cw=4: A; cw=3: B, A → cw is now 3 with the cursor on A.
        assert_eq!(seq(&*s, &d, 3), [2, 1, 2]);
        // Rebuild (same weights): cursor to head, cw (3) kept → C skipped
        // (w2 < 3), so B then A; then cw=2: C, B, A.
        let s2 = rebuild(&*s, "wrr", 0, &d).unwrap();
        assert_eq!(seq(&*s2, &d, 5), [1, 2, 0, 1, 2]);
        // cw is 2 now; new weights 4, 2 (di 2, mw 3): cw = (2/2)*2+1 = 3 →
        // the 4-server alone, then cw=1: both.
        let d2 = dests(&[4, 2]);
        let s3 = rebuild(&*s2, "wrr", 0, &d2).unwrap();
        assert_eq!(seq(&*s3, &d2, 3), [0, 0, 1]);
    }
}
