//! lc — Least Connection, following the kernel's `ip_vs_lc.c`.
//!
//! Among servers that are not blocked (OVERLOAD widened) and have weight
//! ≠ 0, choose the smallest overhead `active*256 + inactive`; weights are
//! otherwise ignored. Ties keep the earlier server in list order (the
//! kernel replaces the best only on a strictly smaller overhead).

use super::{Dest, PickCtx, Scheduler};

#[derive(Debug)]
pub(crate) struct Lc;

impl Scheduler for Lc {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if ctx.blocked(dests, i) || d.weight == 0 {
                continue;
            }
            let doh = d.overhead();
            if least.is_none_or(|(_, loh)| doh < loh) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{ctx, dests, load, overload};

    #[test]
    fn least_overhead_wins_weights_ignored() {
        let d = dests(&[1, 100, 1]);
        load(&d[0], 2, 0); // 512
        load(&d[1], 1, 10); // 266
        load(&d[2], 1, 5); // 261
        let s = build("lc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
        // Inactive counts matter, one active = 256 inactive.
        load(&d[2], 0, 300); // 300
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
    }

    #[test]
    fn ties_go_to_the_earlier_server() {
        let d = dests(&[1, 3, 1]);
        load(&d[0], 1, 0);
        load(&d[1], 0, 4);
        load(&d[2], 0, 4);
        let s = build("lc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
    }

    #[test]
    fn weight_zero_blocked_and_skip_are_ignored() {
        let d = dests(&[0, 1, 1, 1]);
        load(&d[1], 5, 0);
        load(&d[2], 3, 0);
        load(&d[3], 4, 0);
        let s = build("lc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
        assert_eq!(s.pick(&d, &ctx(&[2])), Some(3));
        overload(&d[3], true);
        assert_eq!(s.pick(&d, &ctx(&[2])), Some(1));
        assert_eq!(s.pick(&d, &ctx(&[1, 2])), None);
    }
}
