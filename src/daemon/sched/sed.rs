//! sed — Shortest Expected Delay, following the kernel's `ip_vs_sed.c`.
//!
//! The wlc rule with the overhead replaced by `active + 1` (inactive
//! connections ignored): first non-blocked server with weight > 0 is the
//! initial best, a later non-blocked server replaces it when
//! `(active(b)+1)*w(d) > (active(d)+1)*w(b)`; ties keep the earlier one.

use super::util::wlc_walk;
use super::{Dest, PickCtx, Scheduler};

/// `ip_vs_sed_dest_overhead`: expected delay numerator.
pub(crate) fn sed_overhead(d: &Dest) -> u64 {
    d.state.active() as u64 + 1
}

#[derive(Debug)]
pub(crate) struct Sed;

impl Scheduler for Sed {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        wlc_walk(dests, ctx, sed_overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{ctx, dests, load, overload};

    #[test]
    fn active_plus_one_over_weight() {
        let d = dests(&[1, 3]);
        let s = build("sed", 0, &d).unwrap();
        // Idle: 1/1 vs 1/3 → the heavier server.
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        // (0+1)/1 = 1 vs (2+1)/3 = 1: tie → earlier.
        load(&d[1], 2, 0);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        // Inactive connections do not count.
        load(&d[1], 1, 1000);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
    }

    #[test]
    fn weight_zero_blocked_and_skip() {
        let d = dests(&[0, 2, 1]);
        let s = build("sed", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(2));
        overload(&d[2], true);
        assert_eq!(s.pick(&d, &ctx(&[1])), None);
    }
}
