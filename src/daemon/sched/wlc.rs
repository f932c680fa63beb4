//! wlc — Weighted Least Connection (the default), following the kernel's
//! `ip_vs_wlc.c`.
//!
//! The first server in list order that is not blocked (OVERLOAD widened) and
//! has weight > 0 is the initial best; every later non-blocked server `d`
//! replaces the best `b` when `overhead(b)*w(d) > overhead(d)*w(b)`
//! (overhead = `active*256 + inactive`), i.e. a strictly smaller
//! overhead/weight. Weight-0 servers can never win; ties keep the earlier one.

use super::util::wlc_walk;
use super::{Dest, PickCtx, Scheduler};

#[derive(Debug)]
pub(crate) struct Wlc;

impl Scheduler for Wlc {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        wlc_walk(dests, ctx, Dest::overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{ctx, dests, down, load, overload};

    #[test]
    fn weighted_least_overhead() {
        let d = dests(&[1, 3, 2]);
        load(&d[0], 1, 0); // 256/1
        load(&d[1], 2, 0); // 512/3 ≈ 170.7
        load(&d[2], 1, 100); // 356/2 = 178
        let s = build("wlc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        load(&d[2], 1, 50); // 306/2 = 153
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
    }

    #[test]
    fn ties_keep_the_earlier_server() {
        let d = dests(&[2, 1, 4]);
        load(&d[0], 2, 0); // 256
        load(&d[1], 1, 0); // 256
        load(&d[2], 4, 0); // 256
        let s = build("wlc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        // All idle: the first eligible.
        let d = dests(&[0, 5, 1]);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
    }

    #[test]
    fn weight_zero_never_wins_and_blocked_are_skipped() {
        let d = dests(&[0, 1, 1]);
        load(&d[1], 9, 0);
        load(&d[2], 8, 0);
        let s = build("wlc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
        assert_eq!(s.pick(&d, &ctx(&[2])), Some(1));
        down(&d[1], true);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
        overload(&d[2], true);
        assert_eq!(s.pick(&d, &ctx(&[])), None);
    }
}
