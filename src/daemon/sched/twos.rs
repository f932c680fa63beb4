//! twos — Power of Two Choices, following the kernel's `ip_vs_twos.c`.
//!
//! Consider the servers that are not blocked (OVERLOAD widened) with a
//! positive weight; none → no server. With `T` their weight sum, draw `r1`, `r2`
//! uniformly in `[0, T]` (T + 1 values). Walking the list and subtracting
//! each eligible weight from both, the first server where `r1 <= 0` is
//! choice 1 and where `r2 <= 0` choice 2. Choice 2 wins if
//! `w2 * overhead1 > w1 * overhead2`, else choice 1 (overhead as wlc). The
//! kernel multiplies in 32-bit ints; we use 128-bit (same result barring
//! overflow).
//!
//! Randomness: a per-scheduler splitmix64 stream (an atomic counter, so
//! picks never lock) seeded from the clock, the servers' addresses and a
//! process-wide counter. `r mod (T+1)` has a negligible bias.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use super::util::{beats, fold_ip};
use super::{Dest, PickCtx, Scheduler};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Debug)]
pub(crate) struct Twos {
    state: AtomicU64,
}

/// The splitmix64 output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Twos {
    pub(crate) fn new(dests: &[Dest]) -> Twos {
        static INSTANCE: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let addrs = dests.iter().fold(0u64, |h, d| {
            mix(h ^ ((fold_ip(d.addr.ip()) as u64) << 16 | d.addr.port() as u64))
        });
        let seed = mix(nanos ^ addrs ^ mix(INSTANCE.fetch_add(GAMMA, Relaxed)));
        Twos::with_seed(seed)
    }

    pub(crate) fn with_seed(seed: u64) -> Twos {
        Twos {
            state: AtomicU64::new(seed),
        }
    }

    fn next(&self) -> u64 {
        mix(self.state.fetch_add(GAMMA, Relaxed).wrapping_add(GAMMA))
    }
}

impl Scheduler for Twos {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let eligible = |i: usize| !ctx.blocked(dests, i) && dests[i].weight > 0;
        let total: u64 = (0..dests.len())
            .filter(|&i| eligible(i))
            .map(|i| dests[i].weight as u64)
            .sum();
        if total == 0 {
            return None;
        }
        let mut r1 = (self.next() % (total + 1)) as i64;
        let mut r2 = (self.next() % (total + 1)) as i64;
        let (mut c1, mut c2): (Option<usize>, Option<usize>) = (None, None);
        for i in (0..dests.len()).filter(|&i| eligible(i)) {
            let w = dests[i].weight as i64;
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && c1.is_none() {
                c1 = Some(i);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(i);
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let (c1, c2) = (c1?, c2?);
        let (d1, d2) = (&dests[c1], &dests[c2]);
        // w2 * overhead1 > w1 * overhead2  →  choice 2.
        if beats(d1.overhead(), d1.weight, d2.overhead(), d2.weight) {
            Some(c2)
        } else {
            Some(c1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{ctx, dests, down, load, overload};
    use super::*;

    #[test]
    fn never_picks_blocked_or_weight_zero() {
        let d = dests(&[0, 3, 1, 2, 5]);
        overload(&d[1], true);
        down(&d[4], true);
        let s = build("twos", 0, &d).unwrap();
        let mut seen = [0u32; 5];
        for _ in 0..2000 {
            seen[s.pick(&d, &ctx(&[])).unwrap()] += 1;
            let skipped = s.pick(&d, &ctx(&[3])).unwrap();
            assert_eq!(skipped, 2);
        }
        assert_eq!((seen[0], seen[1], seen[4]), (0, 0, 0));
        assert!(seen[2] > 0 && seen[3] > 0, "{seen:?}");
        assert_eq!(s.pick(&d, &ctx(&[2, 3])), None);
    }

    #[test]
    fn prefers_the_less_loaded_of_two() {
        let d = dests(&[1, 1]);
        load(&d[0], 10, 0);
        let s = Twos::with_seed(42);
        let mut count = [0u32; 2];
        for _ in 0..2000 {
            count[s.pick(&d, &ctx(&[])).unwrap()] += 1;
        }
        // d[0] only when both draws land on it (r1, r2 in {0, 1} of 3).
        assert!(count[0] < 1100 && count[1] > 900, "{count:?}");
        // Idle servers: choice 1 wins, so by the draw over [0, T]: with
        // weights 1, 3 (T = 4) r ∈ {0, 1} → d[0], r ∈ {2, 3, 4} → d[1].
        let d = dests(&[1, 3]);
        let mut count = [0u32; 2];
        for _ in 0..4000 {
            count[s.pick(&d, &ctx(&[])).unwrap()] += 1;
        }
        assert!((2200..2600).contains(&count[1]), "{count:?}");
    }

    #[test]
    fn concurrent_picks_share_one_stream() {
        let d = dests(&[1, 1, 1]);
        let s = std::sync::Arc::new(Twos::new(&d));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (s, d) = (s.clone(), d.clone());
                std::thread::spawn(move || (0..500).all(|_| s.pick(&d, &ctx(&[])).is_some()))
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
    }
}
