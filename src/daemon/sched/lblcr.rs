//! lblcr — Locality-Based Least Connection with Replication, following the
//! kernel's `ip_vs_lblcr.c`.
//!
//! The table (see [`super::lblc::Cache`], same lazy expiry) maps the
//! destination IP (`ctx.vip`) to a *set* of servers; new members go to the
//! front and the set remembers when it was last modified.
//! * Entry exists: refresh its last use; `dest` = least loaded member by the
//!   wlc rule among members still in the service, not blocked, weight > 0
//!   (first such member, then later non-blocked members that beat it). If
//!   the set has more than one member and was not modified for
//!   `lblcr_expiration` (24 h), the *most* loaded member (largest
//!   overhead/weight among members with weight > 0) is removed. If `dest`
//!   exists and is not "overloaded" (lblc definition) it is used; otherwise
//!   wlc over the whole service picks, and that server joins the set.
//! * No entry: wlc over the whole service; a new entry holds that server.
//!
//! Members are kept by address, so the table survives rebuilds; a member no
//! longer in the service is ignored (the kernel keeps such a deleted server
//! in the set, unusable, until removed; we cannot read its weight for the
//! "most loaded" test, so it is only dropped with the whole entry).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::lblc::{find, Cache, EXPIRATION};
use super::util::{beats, lblc_overloaded, wlc_walk};
use super::{Carry, CarryInner, Dest, PickCtx, Scheduler};

/// A destination set: members (front = most recently added) and the time
/// of the last insertion or removal.
#[derive(Debug)]
pub(crate) struct DestSet {
    members: Vec<SocketAddr>,
    lastmod: Instant,
}

impl DestSet {
    /// `ip_vs_dest_set_insert(set, dest, check = true)`.
    fn insert(&mut self, addr: SocketAddr, now: Instant) {
        if !self.members.contains(&addr) {
            self.members.insert(0, addr);
            self.lastmod = now;
        }
    }
}

/// The lblcr table: destination IP → server set.
pub(crate) type Table = Cache<DestSet>;

#[derive(Debug)]
pub(crate) struct Lblcr {
    index: HashMap<SocketAddr, usize>,
    table: Arc<Mutex<Table>>,
}

impl Lblcr {
    pub(crate) fn new(dests: &[Dest], table: Option<Arc<Mutex<Table>>>) -> Lblcr {
        Lblcr {
            index: dests.iter().enumerate().map(|(i, d)| (d.addr, i)).collect(),
            table: table.unwrap_or_else(|| Arc::new(Mutex::new(Cache::new()))),
        }
    }

    /// Members still in the service, as indices, in set order.
    fn present<'a>(
        &'a self,
        set: &'a DestSet,
        dests: &'a [Dest],
    ) -> impl Iterator<Item = usize> + 'a {
        set.members
            .iter()
            .filter_map(move |&a| find(&self.index, dests, a))
    }

    /// `ip_vs_dest_set_min`.
    fn set_min(&self, set: &DestSet, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for i in self.present(set, dests) {
            if ctx.blocked(dests, i) {
                continue;
            }
            let doh = dests[i].overhead();
            match least {
                None if dests[i].weight > 0 => least = Some((i, doh)),
                None => {}
                Some((l, loh)) if beats(loh, dests[l].weight, doh, dests[i].weight) => {
                    least = Some((i, doh));
                }
                Some(_) => {}
            }
        }
        least.map(|(i, _)| i)
    }

    /// `ip_vs_dest_set_max`: most loaded member with weight > 0.
    fn set_max(&self, set: &DestSet, dests: &[Dest]) -> Option<usize> {
        let mut most: Option<(usize, u64)> = None;
        for i in self.present(set, dests) {
            let (dw, doh) = (dests[i].weight, dests[i].overhead());
            if dw == 0 {
                continue;
            }
            // moh/mw < doh/dw  ⇔  moh*dw < doh*mw
            if most.is_none_or(|(m, moh)| beats(doh, dw, moh, dests[m].weight)) {
                most = Some((i, doh));
            }
        }
        most.map(|(i, _)| i)
    }
}

impl Scheduler for Lblcr {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let key = ctx.vip.ip().to_canonical();
        let now = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.maintain(now);
        if let Some(slot) = t.map.get_mut(&key) {
            slot.lastuse = now;
            let set = &mut slot.val;
            let dest = self.set_min(set, dests, ctx);
            if set.members.len() > 1 && now.duration_since(set.lastmod) > EXPIRATION {
                if let Some(m) = self.set_max(set, dests) {
                    let addr = dests[m].addr;
                    set.members.retain(|&a| a != addr);
                    set.lastmod = now;
                }
            }
            if let Some(i) = dest.filter(|&i| !lblc_overloaded(dests, i)) {
                return Some(i);
            }
            let i = wlc_walk(dests, ctx, Dest::overhead)?;
            set.insert(dests[i].addr, now);
            return Some(i);
        }
        let i = wlc_walk(dests, ctx, Dest::overhead)?;
        let set = DestSet {
            members: vec![dests[i].addr],
            lastmod: now,
        };
        t.insert(key, now, set);
        Some(i)
    }

    fn carry(&self) -> Option<Carry> {
        Some(Carry(CarryInner::Lblcr(self.table.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::testing::{ctx, dests, load, overload};
    use super::super::{build, rebuild};
    use super::*;

    fn members(s: &Lblcr) -> Vec<SocketAddr> {
        let t = s.table.lock().unwrap();
        t.map
            .values()
            .next()
            .map(|s| s.val.members.clone())
            .unwrap_or_default()
    }

    #[test]
    fn grows_the_set_when_the_best_member_is_overloaded() {
        let d = dests(&[2, 2, 2]);
        let s = Lblcr::new(&d, None);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        assert_eq!(members(&s), [d[0].addr]);
        load(&d[0], 3, 0); // active > weight and d[1]/d[2] idle → overloaded
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        assert_eq!(members(&s), [d[1].addr, d[0].addr]);
        // Now the least loaded member (d[1], idle) is used.
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        load(&d[1], 1, 0);
        load(&d[0], 2, 0);
        // Members: d[1] 256/2 beats d[0] 512/2; d[2] (idle) is not a member.
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
    }

    #[test]
    fn blocked_members_are_passed_over() {
        let d = dests(&[1, 1, 1]);
        let s = Lblcr::new(&d, None);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        overload(&d[0], true);
        // No usable member → wlc over the service, joins the set.
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        assert_eq!(s.pick(&d, &ctx(&[1])), Some(2));
        assert_eq!(members(&s), [d[2].addr, d[1].addr, d[0].addr]);
        overload(&d[0], false);
        load(&d[2], 1, 0);
        load(&d[1], 1, 0);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        assert_eq!(s.pick(&d, &ctx(&[0, 1, 2])), None);
    }

    #[test]
    fn stale_sets_lose_their_most_loaded_member() {
        let d = dests(&[1, 1]);
        let s = Lblcr::new(&d, None);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        assert_eq!(s.pick(&d, &ctx(&[0])), Some(1));
        {
            let mut t = s.table.lock().unwrap();
            let slot = t.map.values_mut().next().unwrap();
            slot.val.lastmod = Instant::now() - EXPIRATION - std::time::Duration::from_secs(1);
        }
        load(&d[1], 2, 0);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        assert_eq!(members(&s), [d[0].addr]);
    }

    #[test]
    fn table_survives_rebuild() {
        let d = dests(&[1, 1]);
        let s = build("lblcr", 0, &d).unwrap();
        load(&d[0], 1, 0);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1));
        let d2: Vec<Dest> = d.iter().rev().cloned().collect();
        let s2 = rebuild(&*s, "lblcr", 0, &d2).unwrap();
        assert_eq!(s2.pick(&d2, &ctx(&[])), Some(0));
        let w0 = dests(&[0, 0]);
        assert_eq!(
            rebuild(&*s2, "lblcr", 0, &w0).unwrap().pick(&w0, &ctx(&[])),
            None
        );
    }
}
