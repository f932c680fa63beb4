//! sh — Source Hashing, following the kernel's `ip_vs_sh.c`, with the `sh-fallback` and `sh-port` flags.
//!
//! A table of 256 buckets rebuilt with the server list and weights: walking
//! the list in order, each server gets `weight` consecutive buckets (a
//! weight-0 server still gets one), cycling through the list until all 256
//! are filled. The bucket is `H = hash_32(port + saddr_fold, 8)` where
//! `saddr_fold` is the client address (IPv4 host order, IPv6 XOR of its four
//! words) and `port` is the client port with `sh-port`, else 0. A server is
//! unavailable when its weight is 0 or it is blocked (OVERLOAD widened).
//! * Without `sh-fallback`: bucket `H`, unavailable → none.
//! * With `sh-fallback`: bucket `H` if available, else the first available
//!   among buckets `(2H + k) mod 256`, k = 0…255 (the kernel adds its
//!   offset, which starts at H, to the hash again).

use super::util::{fold_ip, hash_32, unavailable};
use super::{Dest, PickCtx, Scheduler};

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug)]
pub(crate) struct Sh {
    /// Bucket → index in `dests`; empty when there are no servers.
    buckets: Vec<u32>,
    fallback: bool,
    port: bool,
}

impl Sh {
    pub(crate) fn new(dests: &[Dest], fallback: bool, port: bool) -> Sh {
        let mut buckets = Vec::new();
        if !dests.is_empty() {
            buckets.reserve(TAB_SIZE);
            let (mut p, mut count) = (0, 0u32);
            for _ in 0..TAB_SIZE {
                buckets.push(p as u32);
                count += 1;
                if count >= dests[p].weight {
                    p = (p + 1) % dests.len();
                    count = 0;
                }
            }
        }
        Sh {
            buckets,
            fallback,
            port,
        }
    }

    /// `H`, the client's bucket.
    fn hash(&self, ctx: &PickCtx<'_>) -> usize {
        let port = if self.port {
            ctx.client.port() as u32
        } else {
            0
        };
        hash_32(port.wrapping_add(fold_ip(ctx.client.ip())), TAB_BITS) as usize
    }
}

impl Scheduler for Sh {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let usable = |b: usize| {
            let i = self.buckets[b] as usize;
            (i < dests.len() && !unavailable(dests, ctx, i)).then_some(i)
        };
        let h = self.hash(ctx);
        if let Some(i) = usable(h) {
            return Some(i);
        }
        if !self.fallback {
            return None;
        }
        (0..TAB_SIZE).find_map(|k| usable((2 * h + k) % TAB_SIZE))
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{client, ctx, dests, down, overload};
    use super::*;
    use crate::ctl::proto::{SCHED_FLAG_1, SCHED_FLAG_2};

    #[test]
    fn table_gives_weight_consecutive_buckets() {
        let d = dests(&[3, 0, 2]);
        let s = Sh::new(&d, false, false);
        assert_eq!(&s.buckets[..8], &[0, 0, 0, 1, 2, 2, 0, 0]);
        assert_eq!(s.buckets.len(), 256);
        // Bucket counts: cycles of 6 buckets (3 + 1 + 2).
        let n0 = s.buckets.iter().filter(|&&b| b == 0).count();
        assert_eq!(n0, 42 * 3 + 3);
    }

    #[test]
    fn bucket_of_a_client_is_the_kernel_hash() {
        let d = dests(&[1, 1, 1, 1]);
        let s = build("sh", 0, &d).unwrap();
        for n in 0..100 {
            let mut c = ctx(&[]);
            c.client = client(n);
            let h = hash_32(fold_ip(c.client.ip()), 8) as usize;
            assert_eq!(s.pick(&d, &c), Some(h % 4));
            // Sticky, and the port does not matter without sh-port.
            c.client.set_port(c.client.port() + 1);
            assert_eq!(s.pick(&d, &c), Some(h % 4));
        }
    }

    #[test]
    fn sh_port_adds_the_client_port() {
        let d = dests(&[1, 1, 1, 1]);
        let s = build("sh", SCHED_FLAG_2, &d).unwrap();
        let mut c = ctx(&[]);
        let mut seen = [false; 4];
        for port in 1000..1100u16 {
            c.client.set_port(port);
            let v = (port as u32).wrapping_add(fold_ip(c.client.ip()));
            let want = hash_32(v, 8) as usize % 4;
            assert_eq!(s.pick(&d, &c), Some(want));
            seen[want] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn distribution_follows_weights() {
        let d = dests(&[1, 3]);
        let s = build("sh", 0, &d).unwrap();
        let mut count = [0u32; 2];
        for n in 0..4000 {
            let mut c = ctx(&[]);
            c.client = client(n);
            count[s.pick(&d, &c).unwrap()] += 1;
        }
        assert!((700..1300).contains(&count[0]), "{count:?}");
    }

    #[test]
    fn fallback_moves_only_the_blocked_servers_clients() {
        let d = dests(&[1, 1, 1]);
        let plain = build("sh", 0, &d).unwrap();
        let fb = build("sh", SCHED_FLAG_1, &d).unwrap();
        let before: Vec<_> = (0..300).map(|n| pick_for(&*plain, &d, n, &[])).collect();
        down(&d[1], true);
        for n in 0..300u32 {
            let was = before[n as usize].unwrap();
            let p = pick_for(&*plain, &d, n, &[]);
            let f = pick_for(&*fb, &d, n, &[]);
            if was == 1 {
                assert_eq!(p, None);
                // First available of buckets 2H, 2H+1, … (table is 0,1,2,0,…).
                let h = hash_32(fold_ip(client(n).ip()), 8) as usize;
                let want = (0..256).map(|k| (2 * h + k) % 256 % 3).find(|&i| i != 1);
                assert_eq!(f, want);
            } else {
                assert_eq!((p, f), (Some(was), Some(was)));
                // skip is honoured too: with fallback another server.
                let f2 = pick_for(&*fb, &d, n, &[was]);
                assert!(f2.is_some() && f2 != Some(was) && f2 != Some(1));
                assert_eq!(pick_for(&*plain, &d, n, &[was]), None);
            }
        }
        overload(&d[0], true);
        overload(&d[2], true);
        assert_eq!(pick_for(&*fb, &d, 7, &[]), None);
    }

    fn pick_for(s: &dyn Scheduler, d: &[Dest], n: u32, skip: &[usize]) -> Option<usize> {
        let mut c = ctx(skip);
        c.client = client(n);
        s.pick(d, &c)
    }
}
