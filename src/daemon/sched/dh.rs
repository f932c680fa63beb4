//! dh — Destination Hashing, following the kernel's `ip_vs_dh.c`.
//!
//! A static table of 256 buckets, rebuilt with the server list: bucket `i`
//! holds the `(i mod n)`-th server in list order (round robin, weights
//! ignored). The bucket is `hash_32(daddr_fold, 8)` where `daddr_fold` is the
//! connection's destination address (`ctx.vip`: IPv4 host order, IPv6 XOR of
//! its four words). The bucket's server is used only if it has weight > 0
//! and is not blocked (OVERLOAD widened) — there is no fallback.

use super::util::{fold_ip, hash_32, unavailable};
use super::{Dest, PickCtx, Scheduler};

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug)]
pub(crate) struct Dh {
    /// Bucket → index in `dests`; empty when there are no servers.
    buckets: Vec<u32>,
}

impl Dh {
    pub(crate) fn new(dests: &[Dest]) -> Dh {
        let n = dests.len();
        let buckets = if n == 0 {
            Vec::new()
        } else {
            (0..TAB_SIZE).map(|i| (i % n) as u32).collect()
        };
        Dh { buckets }
    }
}

impl Scheduler for Dh {
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize> {
        let b = hash_32(fold_ip(ctx.vip.ip()), TAB_BITS) as usize;
        let i = *self.buckets.get(b)? as usize;
        (i < dests.len() && !unavailable(dests, ctx, i)).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::util::testing::{ctx, dests, overload};
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn vip(n: u32) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(0xC633_6400 + n), 80))
    }

    #[test]
    fn bucket_is_hash_of_destination_mod_n() {
        let d = dests(&[1, 7, 3]);
        let s = build("dh", 0, &d).unwrap();
        for n in 0..200 {
            let mut c = ctx(&[]);
            c.vip = vip(n);
            let want = hash_32(0xC633_6400 + n, 8) as usize % 3;
            assert_eq!(s.pick(&d, &c), Some(want));
            // Sticky, and independent of the client.
            c.client = "203.0.113.9:1234".parse().unwrap();
            assert_eq!(s.pick(&d, &c), Some(want));
        }
    }

    #[test]
    fn weights_are_ignored_for_distribution() {
        let d = dests(&[1, 100]);
        let s = build("dh", 0, &d).unwrap();
        let mut count = [0; 2];
        for n in 0..1000 {
            let mut c = ctx(&[]);
            c.vip = vip(n * 13);
            count[s.pick(&d, &c).unwrap()] += 1;
        }
        assert!(count[0] > 350 && count[1] > 350, "{count:?}");
    }

    #[test]
    fn unavailable_bucket_fails_without_fallback() {
        let d = dests(&[1, 0, 1]);
        let s = build("dh", 0, &d).unwrap();
        let mut seen = [false; 3];
        for n in 0..300 {
            let mut c = ctx(&[]);
            c.vip = vip(n);
            let b = hash_32(0xC633_6400 + n, 8) as usize % 3;
            let got = s.pick(&d, &c);
            assert_eq!(got, (b != 1).then_some(b));
            if b == 0 {
                overload(&d[0], true);
                assert_eq!(s.pick(&d, &c), None);
                overload(&d[0], false);
            }
            if b == 2 {
                let skip = [2];
                c.skip = &skip;
                assert_eq!(s.pick(&d, &c), None);
            }
            seen[b] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(build("dh", 0, &[]).unwrap().pick(&[], &ctx(&[])), None);
    }
}
