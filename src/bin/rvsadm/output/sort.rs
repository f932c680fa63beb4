//! ipvsadm's listing order: glibc 2.36 `qsort` (a stable top-down merge sort)
//! with libipvs' comparators, including their wrapping-subtraction quirk.

use rvs::ctl::proto::{ServerView, ServiceView};
use std::net::{IpAddr, SocketAddr};

/// glibc `msort_with_tmp`: split at n/2, sort both halves, merge taking the
/// left element when `cmp(left, right) <= 0`. `cmp` returns a C-style sign.
pub(crate) fn glibc_msort<T: Clone>(v: &mut [T], cmp: &mut impl FnMut(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i].clone());
            i += 1;
        } else {
            merged.push(v[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..]);
    v.clone_from_slice(&merged);
}

/// The address as the four 32-bit host-order words of `union nf_inet_addr`.
fn words(ip: IpAddr) -> [u32; 4] {
    match ip {
        IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            std::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// `(int)(a - b)` on unsigned 32-bit values: the sign of a wrapping subtraction.
fn wrap_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// libipvs address comparison: four words when the left side is IPv6, else one.
fn cmp_addr(a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let n = if a.is_ipv6() { 4 } else { 1 };
    (0..n)
        .map(|i| wrap_diff(wa[i], wb[i]))
        .find(|&r| r != 0)
        .unwrap_or(0)
}

fn af_number(addr: &SocketAddr) -> i32 {
    if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// `ipvs_cmp_services` (fwmark is always 0 in rvs).
pub(crate) fn cmp_services(a: &ServiceView, b: &ServiceView) -> i32 {
    let (ka, kb) = (&a.spec.key, &b.spec.key);
    let r = af_number(&ka.addr) - af_number(&kb.addr);
    if r != 0 {
        return r;
    }
    let r = i32::from(ka.proto.number()) - i32::from(kb.proto.number());
    if r != 0 {
        return r;
    }
    let r = cmp_addr(ka.addr.ip(), kb.addr.ip());
    if r != 0 {
        return r;
    }
    i32::from(ka.addr.port()) - i32::from(kb.addr.port())
}

/// `ipvs_cmp_dests`.
pub(crate) fn cmp_servers(a: &ServerView, b: &ServerView) -> i32 {
    let (x, y) = (a.spec.addr, b.spec.addr);
    let r = cmp_addr(x.ip(), y.ip());
    if r != 0 {
        return r;
    }
    i32::from(x.port()) - i32::from(y.port())
}

/// Services in listing order (daemon order with `nosort`).
pub(crate) fn services(list: &[ServiceView], nosort: bool) -> Vec<&ServiceView> {
    let mut v: Vec<&ServiceView> = list.iter().collect();
    if !nosort {
        glibc_msort(&mut v, &mut |a, b| cmp_services(a, b));
    }
    v
}

/// A service's real servers in listing order (kernel order with `nosort`).
pub(crate) fn servers(svc: &ServiceView, nosort: bool) -> Vec<&ServerView> {
    let mut v: Vec<&ServerView> = svc.servers.iter().collect();
    if !nosort {
        glibc_msort(&mut v, &mut |a, b| cmp_servers(a, b));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(input: &[&str]) -> Vec<String> {
        let mut v: Vec<IpAddr> = input.iter().map(|s| s.parse().unwrap()).collect();
        glibc_msort(&mut v, &mut |a, b| cmp_addr(*a, *b));
        v.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn reference_quirk_orders() {
        // ipvsadm's “Sorting (default) and `--nosort`”, verified against the real binary / a build.
        assert_eq!(
            sorted(&["10.0.0.2", "10.0.0.1", "192.168.1.1"]),
            ["192.168.1.1", "10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            sorted(&[
                "192.168.1.1",
                "10.0.0.1",
                "172.16.0.1",
                "200.0.0.1",
                "10.0.0.2"
            ]),
            [
                "172.16.0.1",
                "192.168.1.1",
                "200.0.0.1",
                "10.0.0.1",
                "10.0.0.2"
            ]
        );
    }

    #[test]
    fn ordinary_addresses_sort_ascending_and_stably() {
        assert_eq!(
            sorted(&["10.0.0.3", "10.0.0.1", "10.0.0.2"]),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
        assert_eq!(
            sorted(&["2001:db8::2", "2001:db8::1"]),
            ["2001:db8::1", "2001:db8::2"]
        );
        let mut pairs = vec![(1, 'a'), (0, 'b'), (1, 'c'), (0, 'd')];
        glibc_msort(&mut pairs, &mut |x, y| x.0 - y.0);
        assert_eq!(pairs, [(0, 'b'), (0, 'd'), (1, 'a'), (1, 'c')]);
    }

    #[test]
    fn wrapping_difference_inverts_far_apart_addresses() {
        let a: IpAddr = "192.168.0.100".parse().unwrap();
        let b: IpAddr = "10.0.0.100".parse().unwrap();
        assert!(cmp_addr(a, b) < 0);
        assert!(cmp_addr(b, a) > 0);
    }
}
