//! mh — Maglev Hashing, following the kernel's `ip_vs_mh.c`, with the `mh-fallback` and `mh-port` flags.
//!
//! Lookup table of M = 4093 slots (kernel default `CONFIG_IP_VS_MH_TAB_INDEX`
//! 12), built with the server list: per server (list order) with
//! `v = port + addr_fold`, `offset = h(v, key1) mod M` and
//! `skip = h(v, key2) mod (M−1) + 1`, where `h` is the 64-bit kernel
//! `hsiphash` (SipHash-1-3) of the u32 `v` with `k0 = k1 = 2654435761`
//! (key1) or `2654446892` (key2). Weights are the *last non-zero* weights:
//! `g` = their gcd (none → empty table), `rshift = max(0, fls(maxw/g) − 6)`,
//! `turns = (lastw/g) >> rshift`, or 1 if that is 0 but `lastw ≠ 0`.
//! Population cycles over the servers; each with turns ≥ 1 claims, `turns`
//! times in a row, the next free slot of its permutation, until all M are
//! filled. Quiescing (weight 0) thus keeps the table; it only makes the
//! server unavailable (weight 0 or blocked) at lookup.
//!
//! Lookup: `i = h(port + saddr_fold, key1) mod M` (client port with
//! `mh-port`, else 0). Unavailable → none, or with `mh-fallback` the first
//! available of `h(((k + i) mod M) + port + saddr_fold, key1) mod M`,
//! k = 0…M−1. More than M servers (the kernel's EINVAL) → an empty table.

use super::util::{fold_ip, gcd, hsiphash_u32, unavailable};
use super::{Dest, PickCtx, Scheduler};

/// Table size M.
pub(crate) const M: usize = 4093;
/// `IP_VS_MH_TAB_BITS` (`CONFIG_IP_VS_MH_TAB_INDEX / 2`).
const TAB_BITS: u32 = 6;
pub(crate) const KEY1: u64 = 2_654_435_761;
pub(crate) const KEY2: u64 = 2_654_446_892;
const EMPTY: u16 = u16::MAX;

#[derive(Debug)]
pub(crate) struct Mh {
    /// Slot → index in `dests` (`EMPTY` only when the table is empty).
    lookup: Vec<u16>,
    fallback: bool,
    port: bool,
}

/// Highest set bit, 1-based (`fls`), 0 for 0.
fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

impl Mh {
    pub(crate) fn new(dests: &[Dest], fallback: bool, port: bool) -> Mh {
        Mh {
            lookup: populate(dests),
            fallback,
            port,
        }
    }

    fn slot_of(&self, v: u32) -> usize {
        hsiphash_u32(v, KEY1) as usize % M
    }
}

/// `ip_vs_mh_permutate` + `ip_vs_mh_populate`.
fn populate(dests: &[Dest]) -> Vec<u16> {
    let g = dests.iter().fold(0, |g, d| gcd(g, d.last_weight));
    if g == 0 || dests.len() > M {
        return Vec::new();
    }
    let maxw = dests.iter().map(|d| d.last_weight).max().unwrap_or(0);
    let rshift = fls(maxw / g).saturating_sub(TAB_BITS);
    // (skip, perm, turns) per server.
    let mut ds: Vec<(usize, usize, u32)> = dests
        .iter()
        .map(|d| {
            let v = (d.addr.port() as u32).wrapping_add(fold_ip(d.addr.ip()));
            let offset = hsiphash_u32(v, KEY1) as usize % M;
            let skip = hsiphash_u32(v, KEY2) as usize % (M - 1) + 1;
            let lw = d.last_weight;
            let turns = match (lw / g) >> rshift {
                0 => u32::from(lw != 0),
                t => t,
            };
            (skip, offset, turns)
        })
        .collect();
    let mut lookup = vec![EMPTY; M];
    let mut n = 0;
    let mut dt_count = 0;
    while n < M {
        let mut j = 0;
        while j < ds.len() {
            let (skip, mut c, turns) = ds[j];
            if turns < 1 {
                j += 1;
                continue;
            }
            while lookup[c] != EMPTY {
                c += skip;
                if c >= M {
                    c -= M;
                }
            }
            ds[j].1 = c;
            lookup[c] = j as u16;
            n += 1;
            if n == M {
                return lookup;
            }
            dt_count += 1;
            if dt_count >= turns {
                dt_count = 0;
                j += 1;
            }
        }
    }
    lookup
}

impl Scheduler for Mh {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        if self.lookup.is_empty() {
            return None;
        }
        let port = if self.port {
            ctx.client.port() as u32
        } else {
            0
        };
        let base = port.wrapping_add(fold_ip(ctx.client.ip()));
        let usable = |slot: usize| {
            let i = self.lookup[slot] as usize;
            (i < dests.len() && !unavailable(dests, ctx, i)).then_some(i)
        };
        let ihash = self.slot_of(base);
        if let Some(i) = usable(ihash) {
            return Some(i);
        }
        if !self.fallback {
            return None;
        }
        (0..M).find_map(|k| usable(self.slot_of(base.wrapping_add(((k + ihash) % M) as u32))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{client, ctx, dests, down};
    use super::*;
    use crate::ctl::proto::{SCHED_FLAG_1, SCHED_FLAG_2};

    #[test]
    fn turns_follow_gcd_and_rshift() {
        // g = 1, maxw 1000 → fls 10, rshift 4: turns 62 and 1 → rounds of
        // 63 slots; 64 full rounds (4032) + 61: A 1 + B 60.
        let d = dests(&[1, 1000]);
        let s = Mh::new(&d, false, false);
        let a = s.lookup.iter().filter(|&&i| i == 0).count();
        assert_eq!((a, M - a), (65, 4028));
        // Weights 2, 4, 6 → g 2 → turns 1, 2, 3.
        let d = dests(&[2, 4, 6]);
        let s = Mh::new(&d, false, false);
        let count = |j| s.lookup.iter().filter(|&&i| i == j).count();
        assert_eq!(count(0) + count(1) + count(2), M);
        // 682 rounds of 6 (4092) + 1 slot for server 0.
        assert_eq!((count(0), count(1), count(2)), (683, 1364, 2046));
        assert!(Mh::new(&dests(&[0, 0]), false, false).lookup.is_empty());
    }

    #[test]
    fn sticky_and_proportional() {
        let d = dests(&[1, 2, 1]);
        let s = build("mh", 0, &d).unwrap();
        let table = Mh::new(&d, false, false).lookup;
        let mut count = [0u32; 3];
        for n in 0..4000 {
            let mut c = ctx(&[]);
            c.client = client(n);
            let i = s.pick(&d, &c).unwrap();
            let base = fold_ip(c.client.ip());
            assert_eq!(i, table[hsiphash_u32(base, KEY1) as usize % M] as usize);
            c.client.set_port(9);
            assert_eq!(s.pick(&d, &c), Some(i));
            count[i] += 1;
        }
        assert!((1700..2300).contains(&count[1]), "{count:?}");
        assert!((800..1200).contains(&count[0]), "{count:?}");
    }

    #[test]
    fn mh_port_uses_the_client_port() {
        let d = dests(&[1, 1, 1]);
        let s = build("mh", SCHED_FLAG_2, &d).unwrap();
        let table = Mh::new(&d, false, true);
        let mut c = ctx(&[]);
        let mut seen = [false; 3];
        for port in 2000..2100u16 {
            c.client.set_port(port);
            let v = (port as u32).wrapping_add(fold_ip(c.client.ip()));
            let want = table.lookup[hsiphash_u32(v, KEY1) as usize % M] as usize;
            assert_eq!(s.pick(&d, &c), Some(want));
            seen[want] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn quiesced_server_keeps_the_table_fallback_moves_its_clients() {
        let d = dests(&[1, 1, 1]);
        let before = Mh::new(&d, false, false).lookup;
        let mut q = d.clone();
        q[1].weight = 0; // last_weight stays 1
        let plain = build("mh", 0, &q).unwrap();
        let fb = build("mh", SCHED_FLAG_1, &q).unwrap();
        assert_eq!(Mh::new(&q, false, false).lookup, before);
        for n in 0..300 {
            let mut c = ctx(&[]);
            c.client = client(n);
            let base = fold_ip(c.client.ip());
            let ihash = hsiphash_u32(base, KEY1) as usize % M;
            let was = before[ihash] as usize;
            if was == 1 {
                assert_eq!(plain.pick(&q, &c), None);
                let want = (0..M)
                    .map(|k| {
                        before[hsiphash_u32(base + ((k + ihash) % M) as u32, KEY1) as usize % M]
                    })
                    .find(|&i| i != 1)
                    .map(usize::from);
                assert_eq!(fb.pick(&q, &c), want);
            } else {
                assert_eq!(plain.pick(&q, &c), Some(was));
                assert_eq!(fb.pick(&q, &c), Some(was));
                let skip = [was];
                c.skip = &skip;
                assert_eq!(plain.pick(&q, &c), None);
                let f = fb.pick(&q, &c);
                assert!(f.is_some() && f != Some(was) && f != Some(1));
            }
        }
        down(&q[0], true);
        down(&q[2], true);
        assert_eq!(fb.pick(&q, &ctx(&[])), None);
    }
}
