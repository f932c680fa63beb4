//! rr — Round Robin, following the kernel's `ip_vs_rr.c`.
//!
//! State is a cursor on the last chosen server (initially the list head). A
//! pick walks forward from the server after the cursor, wrapping around, up
//! to and including the cursor's server, and takes the first one that is not
//! blocked (OVERLOAD widened) and has weight > 0; the pick becomes the
//! cursor. From the head (no cursor) a single pass over the list is made.
//!
//! The cursor is the server's list index; across a rebuild
//! ([`super::rebuild`]) it is carried by address and re-found in the new
//! list, and if that server is gone the walk starts from the head (the
//! kernel instead steps back to the deleted server's predecessor). Picks
//! take no lock: the cursor moves by compare-and-swap.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use super::{Carry, CarryInner, Dest, PickCtx, Scheduler};

/// The cursor at the list head (nothing picked yet).
const HEAD: usize = usize::MAX;

#[derive(Debug)]
pub(crate) struct Rr {
    /// Index in `dests` of the last picked server, or [`HEAD`]. Moved by
    /// compare-and-swap: picks on different threads take no lock, and each
    /// one continues from the pick before it, as under the kernel's lock.
    cursor: AtomicUsize,
    /// The servers' addresses, for carrying the cursor across a rebuild.
    addrs: Vec<SocketAddr>,
}

impl Rr {
    /// For `dests`, continuing after `cursor` (the previous build's last
    /// pick) if that server is still in the list, else from the head.
    pub(crate) fn new(dests: &[Dest], cursor: Option<SocketAddr>) -> Rr {
        let at = cursor.and_then(|a| dests.iter().position(|d| d.addr == a));
        Rr {
            cursor: AtomicUsize::new(at.unwrap_or(HEAD)),
            addrs: dests.iter().map(|d| d.addr).collect(),
        }
    }
}

impl Scheduler for Rr {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let n = dests.len();
        let mut cursor = self.cursor.load(Relaxed);
        loop {
            let start = if cursor < n { cursor + 1 } else { 0 };
            // From the element after the cursor to the end, then from the
            // head up to (and including) the cursor itself; from the head:
            // one pass.
            let picked = (start..n)
                .chain(0..start.min(n))
                .find(|&i| !ctx.blocked(dests, i) && dests[i].weight > 0)?;
            match self
                .cursor
                .compare_exchange_weak(cursor, picked, Relaxed, Relaxed)
            {
                Ok(_) => return Some(picked),
                // Another thread picked meanwhile: walk on from its pick.
                Err(now) => cursor = now,
            }
        }
    }

    fn carry(&self) -> Option<Carry> {
        let cursor = self.addrs.get(self.cursor.load(Relaxed)).copied();
        Some(Carry(CarryInner::Rr(cursor)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::testing::{ctx, dests, down, overload, picked_concurrently};
    use super::super::{build, rebuild};
    use super::*;

    fn seq(s: &dyn Scheduler, d: &[Dest], skip: &[usize], k: usize) -> Vec<Option<usize>> {
        (0..k).map(|_| s.pick(d, &ctx(skip))).collect()
    }

    #[test]
    fn alternates_in_list_order() {
        let d = dests(&[1, 5, 2]);
        let s = build("rr", 0, &d).unwrap();
        let got = seq(&*s, &d, &[], 7);
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0].map(Some));
    }

    #[test]
    fn skips_weight_zero_and_blocked() {
        let d = dests(&[1, 0, 1, 1]);
        overload(&d[3], true);
        let s = build("rr", 0, &d).unwrap();
        assert_eq!(seq(&*s, &d, &[], 4), [0, 2, 0, 2].map(Some));
        down(&d[2], true);
        assert_eq!(seq(&*s, &d, &[], 2), [Some(0), Some(0)]);
        // Excluded this pick only.
        assert_eq!(s.pick(&d, &ctx(&[0])), None);
        overload(&d[3], false);
        assert_eq!(seq(&*s, &d, &[], 3), [3, 0, 3].map(Some));
    }

    #[test]
    fn skip_moves_on_to_the_next() {
        let d = dests(&[1, 1, 1]);
        let s = build("rr", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(2));
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
    }

    #[test]
    fn concurrent_picks_keep_the_rotation() {
        // Four threads pick at once: every pick still continues from the
        // one before it, so the servers come out exactly evenly.
        let d = dests(&[1, 1, 1]);
        let s = build("rr", 0, &d).unwrap();
        let counts = picked_concurrently(&*s, &d);
        assert_eq!(counts, [40_000; 3]);
    }

    #[test]
    fn none_when_nothing_eligible() {
        let d = dests(&[0, 0]);
        let s = build("rr", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), None);
        assert_eq!(build("rr", 0, &[]).unwrap().pick(&[], &ctx(&[])), None);
    }

    #[test]
    fn cursor_survives_rebuild_by_address() {
        let d = dests(&[1, 1, 1]);
        let s = build("rr", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        // A new server is inserted at the head: reached only after wrapping.
        let mut d2 = dests(&[1, 1, 1, 1]);
        d2.rotate_right(1); // 10.0.0.4 first, then .1 .2 .3
        let s2 = rebuild(&*s, "rr", 0, &d2).unwrap();
        assert_eq!(seq(&*s2, &d2, &[], 3), [3, 0, 1].map(Some));
        // The cursor's server (.1, index 1) is deleted: start from the head.
        let d3: Vec<Dest> = d2
            .iter()
            .filter(|x| x.addr != d2[1].addr)
            .cloned()
            .collect();
        let s3 = rebuild(&*s2, "rr", 0, &d3).unwrap();
        assert_eq!(s3.pick(&d3, &ctx(&[])), Some(0));
    }
}
