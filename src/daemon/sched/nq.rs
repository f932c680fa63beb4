//! nq — Never Queue, following the kernel's `ip_vs_nq.c`.
//!
//! Walk the list skipping blocked (OVERLOAD widened) and weight-0 servers;
//! the first one with no active connection is taken at once. Otherwise the
//! sed rule decides: overhead `active + 1`, `b` replaced by `d` when
//! `(active(b)+1)*w(d) > (active(d)+1)*w(b)`, ties keep the earlier one.

use super::sed::sed_overhead;
use super::util::beats;
use super::{Dest, PickCtx, Scheduler};

#[derive(Debug)]
pub(crate) struct Nq;

impl Scheduler for Nq {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if ctx.blocked(dests, i) || d.weight == 0 {
                continue;
            }
            if d.state.active() == 0 {
                return Some(i);
            }
            let doh = sed_overhead(d);
            if least.is_none_or(|(b, loh)| beats(loh, dests[b].weight, doh, d.weight)) {
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
    fn first_idle_server_wins() {
        let d = dests(&[1, 1, 10]);
        load(&d[0], 3, 0);
        load(&d[1], 0, 50);
        let s = build("nq", 0, &d).unwrap();
        // d[1] is idle (inactive ignored) and comes before the idle d[2].
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(2));
    }

    #[test]
    fn otherwise_sed_rule_with_ties_to_earlier() {
        let d = dests(&[1, 2, 3]);
        load(&d[0], 1, 0); // 2/1
        load(&d[1], 3, 0); // 4/2
        load(&d[2], 6, 0); // 7/3
        let s = build("nq", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        load(&d[2], 4, 0); // 5/3
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
    }

    #[test]
    fn weight_zero_and_blocked_are_skipped() {
        let d = dests(&[0, 1, 1]);
        load(&d[2], 1, 0);
        let s = build("nq", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        overload(&d[1], true);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
        assert_eq!(s.pick(&d, &ctx(&[2])), None);
    }
}
