//! This host's own addresses (the `Local` method in listings, loop checks).

use std::net::IpAddr;

/// Addresses of this host, for the `Local` method in listings.
pub fn local_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(addr) = a.address {
                if let Some(v4) = addr.as_sockaddr_in() {
                    out.push(IpAddr::V4(v4.ip()));
                } else if let Some(v6) = addr.as_sockaddr_in6() {
                    out.push(IpAddr::V6(v6.ip()));
                }
            }
        }
    }
    out
}

/// True when `ip` belongs to this host.
pub(crate) fn is_local(ip: &IpAddr, addrs: &[IpAddr]) -> bool {
    ip.is_loopback() || addrs.contains(ip)
}
