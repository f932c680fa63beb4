//! rr — Round Robin, following the kernel's `ip_vs_rr.c` (reference §3.1).
//!
//! State is a cursor on the last chosen server (initially the list head). A
//! pick walks forward from the server after the cursor, wrapping around, up
//! to and including the cursor's server, and takes the first one that is not
//! blocked (OVERLOAD widened) and has weight > 0; the pick becomes the
//! cursor. From the head (no cursor) a single pass over the list is made.
//!
//! The cursor is kept as the server's list index *and* address: within one
//! build the index is used; across a rebuild ([`super::rebuild`]) it is
//! re-found by address, and if that server is gone the walk starts from the
//! head (the kernel instead steps back to the deleted server's predecessor).

use std::net::SocketAddr;
use std::sync::Mutex;

use super::{Carry, CarryInner, Dest, PickCtx, Scheduler};

#[derive(Debug)]
pub struct Rr {
    /// Last picked server: (index in `dests`, its address); `None` = head.
    cursor: Mutex<Option<(usize, SocketAddr)>>,
}

impl Rr {
    pub fn new(cursor: Option<SocketAddr>) -> Rr {
        // The index is resolved lazily on the first pick (usize::MAX never
        // matches, so the address is looked up).
        Rr {
            cursor: Mutex::new(cursor.map(|a| (usize::MAX, a))),
        }
    }
}

/// Where the cursor currently is in `dests`, if that server is still there.
fn resolve(dests: &[Dest], cursor: Option<(usize, SocketAddr)>) -> Option<usize> {
    let (i, addr) = cursor?;
    match dests.get(i) {
        Some(d) if d.addr == addr => Some(i),
        _ => dests.iter().position(|d| d.addr == addr),
    }
}

impl Scheduler for Rr {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let n = dests.len();
        let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let start = resolve(dests, *cursor).map_or(0, |c| c + 1);
        // From the element after the cursor to the end, then from the head
        // up to (and including) the cursor itself; from the head: one pass.
        let picked = (start..n)
            .chain(0..start.min(n))
            .find(|&i| !ctx.blocked(dests, i) && dests[i].weight > 0)?;
        *cursor = Some((picked, dests[picked].addr));
        Some(picked)
    }

    fn carry(&self) -> Option<Carry> {
        let cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        Some(Carry(CarryInner::Rr(cursor.map(|(_, a)| a))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::testing::{ctx, dests, down, overload};
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
