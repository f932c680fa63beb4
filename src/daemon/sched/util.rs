//! Helpers shared by the schedulers: the kernel's weighted comparison, the
//! wlc walk (also used by lblc/lblcr), `hash_32`, address folding, the
//! 64-bit-kernel `hsiphash` (SipHash-1-3 truncated to 32 bits) and gcd.

use std::net::IpAddr;

use super::{Dest, PickCtx};

/// Kernel `hash_32(v, bits)`: multiplicative hash with `GOLDEN_RATIO_32`.
pub(crate) fn hash_32(v: u32, bits: u32) -> u32 {
    v.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// An address as the kernel hashes it: IPv4 as a host-order u32, IPv6 as the
/// XOR of its four 32-bit words (each taken host order; XOR commutes with the
/// byte swap, so this equals `ntohl(w0 ^ w1 ^ w2 ^ w3)`). IPv4-mapped IPv6
/// addresses count as IPv4.
pub(crate) fn fold_ip(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4),
        // A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d; the
        // kernel would see (and hash) the IPv4 address.
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => fold_ip(ip.to_canonical()),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (0..4).fold(0u32, |acc, w| {
                acc ^ u32::from_be_bytes([o[4 * w], o[4 * w + 1], o[4 * w + 2], o[4 * w + 3]])
            })
        }
    }
}

/// `true` when a server with load `d_oh` and weight `d_w` beats the current
/// best (`best_oh`, `best_w`): `overhead(best)*w(d) > overhead(d)*w(best)`.
/// The kernel does this in signed 64-bit; 128-bit gives the same answer
/// wherever the kernel's product does not overflow.
pub(crate) fn beats(best_oh: u64, best_w: u32, d_oh: u64, d_w: u32) -> bool {
    (best_oh as u128) * (d_w as u128) > (d_oh as u128) * (best_w as u128)
}

/// The wlc walk (`ip_vs_wlc.c`, `__ip_vs_lblc_schedule`, `ip_vs_sed.c`):
/// the first non-blocked server with weight > 0 is the initial best, then
/// every later non-blocked server that [`beats`] it replaces it (weight-0
/// servers cannot win). `oh` is the load measure (overhead, or active+1).
pub(crate) fn wlc_walk(
    dests: &[Dest],
    ctx: &PickCtx<'_>,
    oh: impl Fn(&Dest) -> u64,
) -> Option<usize> {
    let first = (0..dests.len()).find(|&i| !ctx.blocked(dests, i) && dests[i].weight > 0)?;
    let (mut best, mut loh) = (first, oh(&dests[first]));
    for i in first + 1..dests.len() {
        if ctx.blocked(dests, i) {
            continue;
        }
        let doh = oh(&dests[i]);
        if beats(loh, dests[best].weight, doh, dests[i].weight) {
            best = i;
            loh = doh;
        }
    }
    Some(best)
}

/// lblc/lblcr "overloaded": `active(d) > weight(d)` while some server of the
/// service has `active*2 < weight` (i.e. there is a clearly better place).
pub(crate) fn lblc_overloaded(dests: &[Dest], i: usize) -> bool {
    let d = &dests[i];
    d.state.active() as u64 > d.weight as u64
        && dests
            .iter()
            .any(|s| (s.state.active() as u64) * 2 < s.weight as u64)
}

/// dh/sh/mh "unavailable": weight 0 or blocked (OVERLOAD widened).
pub(crate) fn unavailable(dests: &[Dest], ctx: &PickCtx<'_>, i: usize) -> bool {
    dests[i].weight == 0 || ctx.blocked(dests, i)
}

/// Greatest common divisor (`gcd(0, x) = x`).
pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

const SIP0: u64 = 0x736f_6d65_7073_6575;
const SIP1: u64 = 0x646f_7261_6e64_6f6d;
const SIP2: u64 = 0x6c79_6765_6e65_7261;
const SIP3: u64 = 0x7465_6462_7974_6573;

/// Kernel `hsiphash(&v, 4, {k, k})` on a 64-bit kernel: SipHash-1-3 of the
/// 4-byte little-endian `v` with key words `k0 = k1 = k`, truncated to 32 bits.
pub(crate) fn hsiphash_u32(v: u32, k: u64) -> u32 {
    let mut s = [SIP0 ^ k, SIP1 ^ k, SIP2 ^ k, SIP3 ^ k];
    let b = (4u64 << 56) | v as u64;
    s[3] ^= b;
    sipround(&mut s);
    s[0] ^= b;
    s[2] ^= 0xff;
    for _ in 0..3 {
        sipround(&mut s);
    }
    ((s[0] ^ s[1]) ^ (s[2] ^ s[3])) as u32
}

/// The standard SipRound.
fn sipround(s: &mut [u64; 4]) {
    s[0] = s[0].wrapping_add(s[1]);
    s[1] = s[1].rotate_left(13) ^ s[0];
    s[0] = s[0].rotate_left(32);
    s[2] = s[2].wrapping_add(s[3]);
    s[3] = s[3].rotate_left(16) ^ s[2];
    s[0] = s[0].wrapping_add(s[3]);
    s[3] = s[3].rotate_left(21) ^ s[0];
    s[2] = s[2].wrapping_add(s[1]);
    s[1] = s[1].rotate_left(17) ^ s[2];
    s[2] = s[2].rotate_left(32);
}

/// Fixtures for the schedulers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::atomic::Ordering::Relaxed;

    use super::super::{Dest, PickCtx, Scheduler};

    /// How often each server was picked when four threads make 30,000
    /// picks each at once.
    pub(crate) fn picked_concurrently(s: &dyn Scheduler, d: &[Dest]) -> Vec<usize> {
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    sc.spawn(|| {
                        let mut c = vec![0usize; d.len()];
                        for _ in 0..30_000 {
                            c[s.pick(d, &ctx(&[])).unwrap()] += 1;
                        }
                        c
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .fold(vec![0; d.len()], |a, c| {
                    a.iter().zip(c).map(|(x, y)| x + y).collect()
                })
        })
    }

    /// Servers `10.0.0.1:80`, `10.0.0.2:80`, … with the given weights, in
    /// list order (index 0 = list head).
    pub(crate) fn dests(weights: &[u32]) -> Vec<Dest> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Dest::new(SocketAddr::from(([10, 0, 0, i as u8 + 1], 80)), w))
            .collect()
    }

    /// Client number `n` (distinct IPv4 addresses, fixed port).
    pub(crate) fn client(n: u32) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(0xC000_0000u32.wrapping_add(n * 7919)), 40000))
    }

    /// A context for client 0 towards `198.51.100.1:80` excluding `skip`.
    pub(crate) fn ctx(skip: &[usize]) -> PickCtx<'_> {
        PickCtx {
            client: client(0),
            vip: SocketAddr::from(([198, 51, 100, 1], 80)),
            skip,
        }
    }

    pub(crate) fn load(d: &Dest, active: u32, inactive: u32) {
        d.state.active.store(active, Relaxed);
        d.state.inactive.store(inactive, Relaxed);
    }

    pub(crate) fn overload(d: &Dest, on: bool) {
        d.state.overloaded.store(on, Relaxed);
    }

    pub(crate) fn down(d: &Dest, on: bool) {
        d.state.down.store(on, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::mh::{KEY1, KEY2};
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn hash_32_matches_kernel_formula() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(2, 8), 0xC3);
        assert_eq!(hash_32(0xFFFF_FFFF, 32), 0x9E37_79B9);
    }

    #[test]
    fn fold_ipv4_and_ipv6() {
        assert_eq!(fold_ip(Ipv4Addr::new(10, 0, 0, 1).into()), 0x0A00_0001);
        let v6: Ipv6Addr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            fold_ip(v6.into()),
            0x2001_0db8 ^ 0x0001_0002 ^ 0x0003_0004 ^ 0x0005_0006
        );
    }

    #[test]
    fn gcd_and_beats() {
        assert_eq!(gcd(0, 6), 6);
        assert_eq!(gcd(4, 6), 2);
        assert_eq!(gcd(7, 5), 1);
        // 10/1 vs 15/2: 7.5 < 10 → beats.
        assert!(beats(10, 1, 15, 2));
        // Equal ratios never beat (ties keep the earlier server).
        assert!(!beats(10, 1, 20, 2));
        // A weight-0 challenger never beats.
        assert!(!beats(10, 1, 0, 0));
    }

    /// Textbook SipHash-c-d over a byte string (independent of the
    /// production code): 8-byte little-endian blocks, last block carries the
    /// length in its top byte.
    fn siphash_ref(c: usize, d: usize, k0: u64, k1: u64, msg: &[u8]) -> u64 {
        let mut v = [
            0x736f6d6570736575 ^ k0,
            0x646f72616e646f6d ^ k1,
            0x6c7967656e657261 ^ k0,
            0x7465646279746573 ^ k1,
        ];
        fn round(v: &mut [u64; 4]) {
            v[0] = v[0].wrapping_add(v[1]);
            v[2] = v[2].wrapping_add(v[3]);
            v[1] = v[1].rotate_left(13);
            v[3] = v[3].rotate_left(16);
            v[1] ^= v[0];
            v[3] ^= v[2];
            v[0] = v[0].rotate_left(32);
            v[2] = v[2].wrapping_add(v[1]);
            v[0] = v[0].wrapping_add(v[3]);
            v[1] = v[1].rotate_left(17);
            v[3] = v[3].rotate_left(21);
            v[1] ^= v[2];
            v[3] ^= v[0];
            v[2] = v[2].rotate_left(32);
        }
        let mut padded = msg.to_vec();
        while padded.len() % 8 != 7 {
            padded.push(0);
        }
        padded.push(msg.len() as u8);
        for block in padded.chunks(8) {
            let m = u64::from_le_bytes(block.try_into().unwrap());
            v[3] ^= m;
            (0..c).for_each(|_| round(&mut v));
            v[0] ^= m;
        }
        v[2] ^= 0xff;
        (0..d).for_each(|_| round(&mut v));
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }

    #[test]
    #[allow(deprecated)]
    fn reference_siphash_matches_std_siphash24() {
        use std::hash::{Hasher, SipHasher};
        for msg in [
            &b""[..],
            b"a",
            b"0123456",
            b"01234567",
            b"maglev hashing!!!",
        ] {
            let mut h = SipHasher::new_with_keys(KEY1, KEY2);
            h.write(msg);
            assert_eq!(siphash_ref(2, 4, KEY1, KEY2, msg), h.finish());
        }
    }

    #[test]
    fn hsiphash_matches_reference_siphash13() {
        for v in [0u32, 1, 80, 0x0A00_0001, 0x0A00_0051, 0xFFFF_FFFF] {
            for k in [KEY1, KEY2] {
                let want = siphash_ref(1, 3, k, k, &v.to_le_bytes()) as u32;
                assert_eq!(hsiphash_u32(v, k), want, "v={v:#x} k={k}");
            }
        }
        // Pinned: values printed by siphash_ref (10.0.0.1:80 → v = 0x0A000051).
        let ref13 = |v: u32, k| siphash_ref(1, 3, k, k, &v.to_le_bytes()) as u32;
        assert_eq!(
            (ref13(0, KEY1), hsiphash_u32(0, KEY1)),
            (492_468_162, 492_468_162)
        );
        let v = 0x0A00_0051;
        assert_eq!(
            (ref13(v, KEY2), hsiphash_u32(v, KEY2)),
            (2_545_146_951, 2_545_146_951)
        );
    }
}
