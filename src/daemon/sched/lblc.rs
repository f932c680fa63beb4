//! lblc — Locality-Based Least Connection, following the kernel's
//! `ip_vs_lblc.c`. Also home of the [`Cache`] that lblcr
//! shares.
//!
//! A per-service table maps the packet's *destination* IP (here the VIP of
//! the connection, `ctx.vip`) to a server. If an entry exists its last-use
//! time is refreshed and its server is used when it is still in the service,
//! has weight > 0 and is not "overloaded" (`active > weight` while some
//! server of the service has `active*2 < weight`). Like the kernel, the
//! cached server is *not* tested for OVERLOAD; it is still refused when
//! marked down or excluded for this pick. Otherwise the wlc rule picks over
//! the whole service and the entry is created/replaced.
//!
//! The kernel hashes the key into 1024 buckets (IPv6 folded by XOR) but
//! compares full addresses; a `HashMap` keyed by the full IP is equivalent.
//! Its timer-driven GC is simplified: entries live in a bounded `HashMap`
//! and are dropped lazily, from the pick path, when idle for more than
//! `lblc_expiration` (24 h; full scan at most every 30 min); above 16384
//! entries those idle for more than 6 min are dropped (scan at most every
//! 60 s, at most `min((n−16384)*4/3, 8192)` per scan); at the hard cap no
//! new entry is made (the picked server is still used, as when the kernel
//! fails to allocate an entry). The table survives rebuilds
//! ([`super::rebuild`]) since entries name servers by address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::util::{lblc_overloaded, wlc_walk};
use super::{Carry, CarryInner, Dest, PickCtx, Scheduler};

/// `lblc_expiration` / `lblcr_expiration` default.
pub(crate) const EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);
const FULL_GC_EVERY: Duration = Duration::from_secs(30 * 60);
const OVERFLOW_GC_EVERY: Duration = Duration::from_secs(60);
const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// `IP_VS_LBLC_TAB_SIZE * 16`.
const MAX_ENTRIES: usize = 1024 * 16;
const HARD_CAP: usize = MAX_ENTRIES * 8;

/// One table entry: last use and the value (a server, or a server set).
#[derive(Debug)]
pub(crate) struct Slot<V> {
    pub(crate) lastuse: Instant,
    pub(crate) val: V,
}

/// Destination IP → `V`, with the lazy expiry described above.
#[derive(Debug)]
pub(crate) struct Cache<V> {
    pub(crate) map: HashMap<IpAddr, Slot<V>>,
    next_full_gc: Instant,
    next_overflow_gc: Instant,
}

impl<V> Cache<V> {
    pub(crate) fn new() -> Cache<V> {
        let now = Instant::now();
        Cache {
            map: HashMap::new(),
            next_full_gc: now + FULL_GC_EVERY,
            next_overflow_gc: now + OVERFLOW_GC_EVERY,
        }
    }

    /// Run whichever expiry pass is due.
    pub(crate) fn maintain(&mut self, now: Instant) {
        if now >= self.next_full_gc {
            self.map
                .retain(|_, s| now.duration_since(s.lastuse) <= EXPIRATION);
            self.next_full_gc = now + FULL_GC_EVERY;
        }
        if now >= self.next_overflow_gc {
            self.next_overflow_gc = now + OVERFLOW_GC_EVERY;
            let n = self.map.len();
            if n > MAX_ENTRIES {
                let mut goal = ((n - MAX_ENTRIES) * 4 / 3).min(8192);
                self.map.retain(|_, s| {
                    if goal > 0 && now.duration_since(s.lastuse) > ENTRY_TIMEOUT {
                        goal -= 1;
                        false
                    } else {
                        true
                    }
                });
            }
        }
    }

    /// Create or replace the entry for `key` (unless the table is full).
    pub(crate) fn insert(&mut self, key: IpAddr, now: Instant, val: V) {
        if self.map.len() < HARD_CAP || self.map.contains_key(&key) {
            self.map.insert(key, Slot { lastuse: now, val });
        }
    }
}

/// The lblc table: destination IP → server address.
pub(crate) type Table = Cache<SocketAddr>;

/// Index of `addr` in `dests` (the kernel's AVAILABLE test), using the
/// index map made at build time.
pub(crate) fn find(
    index: &HashMap<SocketAddr, usize>,
    dests: &[Dest],
    addr: SocketAddr,
) -> Option<usize> {
    index
        .get(&addr)
        .copied()
        .filter(|&i| dests.get(i).is_some_and(|d| d.addr == addr))
}

#[derive(Debug)]
pub(crate) struct Lblc {
    index: HashMap<SocketAddr, usize>,
    table: Arc<Mutex<Table>>,
}

impl Lblc {
    pub(crate) fn new(dests: &[Dest], table: Option<Arc<Mutex<Table>>>) -> Lblc {
        Lblc {
            index: dests.iter().enumerate().map(|(i, d)| (d.addr, i)).collect(),
            table: table.unwrap_or_else(|| Arc::new(Mutex::new(Cache::new()))),
        }
    }
}

impl Scheduler for Lblc {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let key = ctx.vip.ip().to_canonical();
        let now = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.maintain(now);
        if let Some(slot) = t.map.get_mut(&key) {
            slot.lastuse = now;
            if let Some(i) = find(&self.index, dests, slot.val) {
                if dests[i].weight > 0 && !ctx.excluded(dests, i) && !lblc_overloaded(dests, i) {
                    return Some(i);
                }
            }
        }
        let i = wlc_walk(dests, ctx, Dest::overhead)?;
        t.insert(key, now, dests[i].addr);
        Some(i)
    }

    fn carry(&self) -> Option<Carry> {
        Some(Carry(CarryInner::Lblc(self.table.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::testing::{ctx, dests, down, load, overload};
    use super::super::{build, rebuild};
    use super::*;

    #[test]
    fn sticks_to_the_cached_server() {
        let d = dests(&[1, 1, 1]);
        let s = build("lblc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        // Now the cached server is the most loaded, but not "overloaded"
        // (active 1 is not > weight 1): stay.
        load(&d[0], 1, 50);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        // A different destination IP gets its own wlc pick.
        let mut c = ctx(&[]);
        c.vip = "198.51.100.2:80".parse().unwrap();
        assert_eq!(s.pick(&d, &c), Some(1));
    }

    #[test]
    fn moves_when_overloaded_in_the_lblc_sense() {
        let d = dests(&[2, 2, 2]);
        let s = build("lblc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        load(&d[0], 3, 0); // active 3 > weight 2 ...
        load(&d[1], 1, 0); // ... but d[1] has 1*2 < 2? no;
        load(&d[2], 1, 0); // nobody has active*2 < weight → stay.
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        load(&d[2], 0, 0); // d[2]: 0 < 2 → d[0] is overloaded → wlc.
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
        // The entry was replaced.
        load(&d[0], 0, 0);
        load(&d[2], 1, 0);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(2));
    }

    #[test]
    fn weight_zero_down_and_skip_reschedule_but_overload_flag_does_not() {
        let d = dests(&[1, 1]);
        let s = build("lblc", 0, &d).unwrap();
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        overload(&d[0], true); // kernel: cached server not tested for OVERLOAD
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        overload(&d[0], false);
        assert_eq!(s.pick(&d, &ctx(&[0])), Some(1));
        down(&d[1], true);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(0));
        assert_eq!(s.pick(&d, &ctx(&[0])), None);
        let d0 = dests(&[0, 1]);
        let s0 = rebuild(&*s, "lblc", 0, &d0).unwrap();
        assert_eq!(s0.pick(&d0, &ctx(&[])), Some(1));
    }

    #[test]
    fn table_survives_rebuild_by_address() {
        let d = dests(&[1, 1]);
        let s = build("lblc", 0, &d).unwrap();
        load(&d[0], 1, 0);
        assert_eq!(s.pick(&d, &ctx(&[])), Some(1)); // 10.0.0.2
        let mut d2 = dests(&[1, 1, 1]);
        d2.rotate_right(1); // .3, .1, .2
        let s2 = rebuild(&*s, "lblc", 0, &d2).unwrap();
        assert_eq!(s2.pick(&d2, &ctx(&[])), Some(2));
        // Its server deleted → rescheduled.
        let d3 = dests(&[1]);
        load(&d3[0], 5, 0);
        let s3 = rebuild(&*s2, "lblc", 0, &d3).unwrap();
        assert_eq!(s3.pick(&d3, &ctx(&[])), Some(0));
    }

    #[test]
    fn expiry_drops_idle_entries() {
        let mut c: Cache<u8> = Cache::new();
        let t0 = Instant::now();
        let ip = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(n));
        c.insert(ip(1), t0, 1);
        c.insert(ip(2), t0 + EXPIRATION, 2);
        c.maintain(t0 + EXPIRATION + Duration::from_secs(1));
        assert!(!c.map.contains_key(&ip(1)));
        assert!(c.map.contains_key(&ip(2)));
    }
}
