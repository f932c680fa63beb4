//! Address and port rendering (ipvsadm's `addrport_to_anyname`): numeric
//! forms byte-identical to glibc `inet_ntop`, or names from reverse DNS and
//! `/etc/services`.

use rvs::ctl::proto::Protocol;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, OnceLock};

use super::rdns;

/// Source of host and port names. `None` means "print the number".
pub(crate) trait Resolver {
    fn host(&self, ip: IpAddr) -> Option<String>;
    fn service(&self, port: u16, proto: Protocol) -> Option<String>;
}

/// `-n`: everything numeric.
pub(crate) struct Numeric;

impl Resolver for Numeric {
    fn host(&self, _ip: IpAddr) -> Option<String> {
        None
    }
    fn service(&self, _port: u16, _proto: Protocol) -> Option<String> {
        None
    }
}

/// Default: reverse DNS (cached per address) and `/etc/services`.
pub(crate) struct System;

impl Resolver for System {
    fn host(&self, ip: IpAddr) -> Option<String> {
        static CACHE: OnceLock<Mutex<HashMap<IpAddr, Option<String>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&ip).cloned()) {
            return hit;
        }
        let name = rdns::reverse_name(ip);
        if let Ok(mut c) = cache.lock() {
            c.insert(ip, name.clone());
        }
        name
    }
    fn service(&self, port: u16, proto: Protocol) -> Option<String> {
        services_name(port, proto)
    }
}

/// Port names only (no reverse DNS): used by tests.
#[cfg(test)]
pub(crate) struct ServicesOnly;

#[cfg(test)]
impl Resolver for ServicesOnly {
    fn host(&self, _ip: IpAddr) -> Option<String> {
        None
    }
    fn service(&self, port: u16, proto: Protocol) -> Option<String> {
        services_name(port, proto)
    }
}

/// The resolver for a listing: numeric (`-n`) or system names.
pub(crate) fn resolver(numeric: bool) -> &'static dyn Resolver {
    if numeric {
        &Numeric
    } else {
        &System
    }
}

/// `host:port` (`[host]:port` for IPv6) as ipvsadm prints it; `proto` names the port.
pub(crate) fn addrport(addr: SocketAddr, proto: Protocol, r: &dyn Resolver) -> String {
    let host = r.host(addr.ip()).unwrap_or_else(|| ntop(addr.ip()));
    let port = match addr.port() {
        0 => "0".to_string(),
        p => r.service(p, proto).unwrap_or_else(|| p.to_string()),
    };
    match addr {
        SocketAddr::V4(_) => format!("{host}:{port}"),
        SocketAddr::V6(_) => format!("[{host}]:{port}"),
    }
}

/// Numeric address exactly as glibc `inet_ntop` prints it.
pub(crate) fn ntop(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ntop6(&v6),
    }
}

/// The longest run (first on ties) of at least two zero words, as (base, len).
fn longest_zero_run(w: &[u16; 8]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < 8 {
        if w[i] != 0 {
            i += 1;
            continue;
        }
        let base = i;
        while i < 8 && w[i] == 0 {
            i += 1;
        }
        let len = i - base;
        if best.is_none_or(|(_, l)| len > l) {
            best = Some((base, len));
        }
    }
    best.filter(|&(_, len)| len >= 2)
}

/// glibc `inet_ntop6`: `::` for the longest zero run, dotted tail for
/// IPv4-compatible (`::a.b.c.d`) and IPv4-mapped (`::ffff:a.b.c.d`) addresses.
fn ntop6(v6: &Ipv6Addr) -> String {
    let w = v6.segments();
    let best = longest_zero_run(&w);
    let mut out = String::new();
    for i in 0..8 {
        if let Some((base, len)) = best {
            if i >= base && i < base + len {
                if i == base {
                    out.push(':');
                }
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        let embedded =
            matches!(best, Some((0, 6))) || (matches!(best, Some((0, 5))) && w[5] == 0xffff);
        if i == 6 && embedded {
            let o = v6.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            return out;
        }
        out.push_str(&format!("{:x}", w[i]));
    }
    if matches!(best, Some((base, len)) if base + len == 8) {
        out.push(':');
    }
    out
}

/// Parse `/etc/services` text into `(port, proto) -> name`, first entry wins
/// (as `getservbyport` does).
pub(crate) fn parse_services(text: &str) -> HashMap<(u16, String), String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        map.entry((port, proto.to_string()))
            .or_insert_with(|| name.to_string());
    }
    map
}

/// Service name of `port` for `proto` from `/etc/services` (read once).
fn services_name(port: u16, proto: Protocol) -> Option<String> {
    static SERVICES: OnceLock<HashMap<(u16, String), String>> = OnceLock::new();
    let map = SERVICES.get_or_init(|| {
        std::fs::read_to_string("/etc/services")
            .map(|t| parse_services(&t))
            .unwrap_or_default()
    });
    map.get(&(port, proto.service_proto().to_string())).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntop6_matches_glibc() {
        let cases = [
            ("2001:db8::1", "2001:db8::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("::a00:1", "::10.0.0.1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("fe80::", "fe80::"),
        ];
        for (input, want) in cases {
            let ip: Ipv6Addr = input.parse().unwrap();
            assert_eq!(ntop6(&ip), want, "{input}");
        }
    }

    #[test]
    fn services_parser_first_entry_wins() {
        let text = "# comment\nhttp 80/tcp www # web\nhttp 80/udp\nwww-alt 80/tcp\n\
                    domain\t53/tcp\ndomain 53/udp\nbad x/tcp\nhttps 443/tcp\n";
        let m = parse_services(text);
        assert_eq!(m[&(80, "tcp".to_string())], "http");
        assert_eq!(m[&(53, "udp".to_string())], "domain");
        assert_eq!(m[&(443, "tcp".to_string())], "https");
        assert!(!m.contains_key(&(443, "udp".to_string())));
    }

    #[test]
    fn addrport_numeric_and_named_ports() {
        let v4: SocketAddr = "192.168.100.10:80".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:8080".parse().unwrap();
        let zero: SocketAddr = "10.0.0.1:0".parse().unwrap();
        assert_eq!(addrport(v4, Protocol::Tcp, &Numeric), "192.168.100.10:80");
        assert_eq!(addrport(v6, Protocol::Tcp, &Numeric), "[2001:db8::1]:8080");
        assert_eq!(addrport(zero, Protocol::Tcp, &ServicesOnly), "10.0.0.1:0");
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(
                addrport(v4, Protocol::Tcp, &ServicesOnly),
                "192.168.100.10:http"
            );
            let dns: SocketAddr = "10.0.0.5:53".parse().unwrap();
            assert_eq!(
                addrport(dns, Protocol::Udp, &ServicesOnly),
                "10.0.0.5:domain"
            );
            let tls: SocketAddr = "[2001:db8::10]:443".parse().unwrap();
            assert_eq!(
                addrport(tls, Protocol::Tcp, &ServicesOnly),
                "[2001:db8::10]:https"
            );
            let odd: SocketAddr = "10.0.0.5:54321".parse().unwrap();
            assert_eq!(
                addrport(odd, Protocol::Udp, &ServicesOnly),
                "10.0.0.5:54321"
            );
        }
    }
}
