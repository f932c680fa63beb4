//! ovf — Weighted Overflow, following the kernel's `ip_vs_ovf.c`.
//!
//! Among servers that are not blocked (OVERLOAD widened), have weight ≠ 0
//! and `active <= weight`, choose the highest weight (ties → first in list
//! order). A server whose active count exceeds its weight overflows to the
//! next; inactive connections are ignored.

use super::{Dest, PickCtx, Scheduler};

#[derive(Debug)]
pub(crate) struct Ovf;

impl Scheduler for Ovf {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let mut h: Option<usize> = None;
        for (i, d) in dests.iter().enumerate() {
            let w = d.weight;
            if ctx.blocked(dests, i) || d.state.active() > w || w == 0 {
                continue;
            }
            if h.is_none_or(|h| w > dests[h].weight) {
                h = Some(i);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{ctx, dests, load, overload};

    #[test]
    fn overflows_by_active_count() {
        let d = dests(&[1, 3, 3, 0]);
        let s = build("ovf", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        load(&d[1], 3, 0); // active == weight: still fine
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        load(&d[1], 4, 0); // overflows to the next with the same weight
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
        load(&d[2], 4, 999);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        load(&d[0], 2, 0);
        assert_eq!(s.pick(&d, &ctx(&[])), None);
    }

    #[test]
    fn blocked_and_skip() {
        let d = dests(&[1, 3]);
        let s = build("ovf", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(0));
        overload(&d[0], true);
        assert_eq!(s.pick(&d, &ctx(&[1])), None);
    }
}
