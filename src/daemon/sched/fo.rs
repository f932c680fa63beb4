//! fo — Weighted Failover, following the kernel's `ip_vs_fo.c`.
//!
//! Choose the server that is not blocked (OVERLOAD widened) with the highest
//! weight; the weight must be > 0. Ties keep the first in list order (the
//! kernel replaces only on a strictly higher weight).

use super::{Dest, PickCtx, Scheduler};

#[derive(Debug)]
pub(crate) struct Fo;

impl Scheduler for Fo {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let mut hw = 0;
        let mut best = None;
        for (i, d) in dests.iter().enumerate() {
            if !ctx.blocked(dests, i) && d.weight > hw {
                best = Some(i);
                hw = d.weight;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{ctx, dests, down, load};

    #[test]
    fn highest_weight_then_failover_in_order() {
        let d = dests(&[2, 5, 3, 5]);
        load(&d[1], 100, 100); // load is irrelevant
        let s = build("fo", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(3));
        down(&d[3], true);
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(2));
        assert_eq!(s.pick(&d, &ctx(&[1, 2])), Some(0));
        assert_eq!(s.pick(&d, &ctx(&[0, 1, 2])), None);
    }

    #[test]
    fn weight_zero_is_never_chosen() {
        let d = dests(&[0, 0]);
        assert_eq!(build("fo", 0, &d).unwrap().pick(&d, &ctx(&[])), None);
    }
}
