//! ipvsadm's number, address, port and service-name parsing (C library
//! semantics: `strtol`, `inet_aton`, `inet_pton`, `gethostbyname`,
//! `getservbyname` via `/etc/services`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// Where service names are looked up (`getservbyname`).
pub const SERVICES_FILE: &str = "/etc/services";

fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// `strtol(s, &end, 10)` where the whole string must be consumed: leading
/// blanks and a sign are accepted; overflow of `long` is an error.
pub fn strtol(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(is_c_space);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// ipvsadm's `string_to_number(s, min, max)`.
pub fn number_in(s: &str, min: i64, max: i64) -> Option<i64> {
    strtol(s).filter(|n| (min..=max).contains(n))
}

/// C `strtoul(s, &end, 0)` for one `inet_aton` part: hex, octal or decimal.
fn aton_part(s: &str) -> Option<u64> {
    if !s.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() {
        // "0x" alone is 0 with end after "0" in C; inet_aton then rejects the "x".
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|v| *v <= u64::from(u32::MAX))
}

/// glibc `inet_aton`: `a.b.c.d`, `a.b.c` (c is 16 bits), `a.b` (b is 24
/// bits), `a` (32 bits); each part decimal, octal or hex. Anything after the
/// first blank is ignored.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let s = match s.find(is_c_space) {
        Some(i) => &s[..i],
        None => s,
    };
    let parts: Vec<u64> = s.split('.').map(aton_part).collect::<Option<_>>()?;
    let v = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a <= 0xff && *b <= 0xff_ffff => (a << 24) | b,
        [a, b, c] if *a <= 0xff && *b <= 0xff && *c <= 0xffff => (a << 24) | (b << 16) | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x <= 0xff) => {
            (a << 24) | (b << 16) | (c << 8) | d
        }
        _ => return None,
    };
    Some(Ipv4Addr::from(v as u32))
}

/// `gethostbyname` equivalent: first IPv4 address of `host`.
pub fn resolve_v4(host: &str) -> Option<Ipv4Addr> {
    if host.is_empty() {
        return None;
    }
    (host, 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
}

/// Look `name` up for `proto` ("tcp", "udp", "sctp") in services-file text.
pub fn lookup_service_in(text: &str, name: &str, proto: &str) -> Option<u16> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(official), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, p)) = port_proto.split_once('/') else {
            continue;
        };
        if p != proto || (official != name && !words.any(|alias| alias == name)) {
            continue;
        }
        if let Ok(port) = port.parse::<u16>() {
            return Some(port);
        }
    }
    None
}

/// `getservbyname(name, proto)` using [`SERVICES_FILE`].
pub fn service_port(name: &str, proto: &str) -> Option<u16> {
    let text = std::fs::read_to_string(SERVICES_FILE).ok()?;
    lookup_service_in(&text, name, proto)
}

/// Result of ipvsadm's `parse_service`: an address and, if one was written, a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedAddr {
    pub addr: IpAddr,
    /// `None` when no port was given (`host` or the `[1.2.3.4]:80` quirk).
    pub port: Option<u16>,
}

/// ipvsadm's `parse_service`; `proto` is the service protocol as parsed so
/// far ("tcp"/"udp"/"sctp"), `None` disables service names. `None` = invalid.
pub fn parse_service(buf: &str, proto: Option<&str>) -> Option<ParsedAddr> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, bracket_port) = match buf.strip_prefix('[') {
        Some(inner) => {
            let (host, after) = inner.split_once(']')?;
            (host, Some(after.strip_prefix(':')?))
        }
        None => (buf, None),
    };
    let (addr, port_text) = if let Ok(v6) = host.parse::<Ipv6Addr>() {
        (IpAddr::V6(v6), bracket_port)
    } else {
        // Non-IPv6: split at the last ':' of the (bracket-stripped) host.
        let (h, p) = match host.rfind(':') {
            Some(i) => (&host[..i], Some(&host[i + 1..])),
            None => (host, None),
        };
        let v4 = inet_aton(h).or_else(|| resolve_v4(h))?;
        (IpAddr::V4(v4), p)
    };
    let port = match port_text {
        None => None,
        Some(p) => Some(match number_in(p, 0, 65535) {
            Some(n) => n as u16,
            None => service_port(p, proto?)?,
        }),
    };
    Some(ParsedAddr { addr, port })
}

/// ipvsadm's `parse_netmask` for IPv4: `inet_aton` or a host name.
pub fn parse_netmask_v4(buf: &str) -> Option<Ipv4Addr> {
    inet_aton(buf).or_else(|| resolve_v4(buf))
}

/// C `atoi`: leading blanks, sign, digits; stops at the first non-digit.
pub fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches(is_c_space);
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in rest.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_rules() {
        assert_eq!(strtol(" 3"), Some(3));
        assert_eq!(strtol("+3"), Some(3));
        assert_eq!(strtol("-1"), Some(-1));
        assert_eq!(strtol("3x"), None);
        assert_eq!(strtol("0x50"), None);
        assert_eq!(strtol(""), None);
        assert_eq!(strtol("3 "), None);
        assert_eq!(strtol("99999999999999999999"), None);
        assert_eq!(number_in("65536", 0, 65535), None);
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton("1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("1.2.3"), Some(Ipv4Addr::new(1, 2, 0, 3)));
        assert_eq!(inet_aton("16909063"), Some(Ipv4Addr::new(1, 2, 3, 7)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton("a.b"), None);
    }

    #[test]
    fn services_file() {
        let text = "# comment\nhttp\t80/tcp\twww # web\nhttp 80/udp\ndomain 53/udp\nfoo 99/tcp alias1 alias2\n";
        assert_eq!(lookup_service_in(text, "http", "tcp"), Some(80));
        assert_eq!(lookup_service_in(text, "www", "tcp"), Some(80));
        assert_eq!(lookup_service_in(text, "www", "udp"), None);
        assert_eq!(lookup_service_in(text, "domain", "tcp"), None);
        assert_eq!(lookup_service_in(text, "alias2", "tcp"), Some(99));
        assert_eq!(lookup_service_in(text, "comment", "tcp"), None);
    }

    #[test]
    fn service_addresses() {
        let p = |s| parse_service(s, Some("tcp"));
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        assert_eq!(
            p("1.2.3.4:80"),
            Some(ParsedAddr {
                addr: v4(1, 2, 3, 4),
                port: Some(80)
            })
        );
        assert_eq!(
            p("1.2.3.4"),
            Some(ParsedAddr {
                addr: v4(1, 2, 3, 4),
                port: None
            })
        );
        assert_eq!(
            p("[1.2.3.4]:80"),
            Some(ParsedAddr {
                addr: v4(1, 2, 3, 4),
                port: None
            })
        );
        assert_eq!(p("1234"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("1.2.3.4:65536"), None);
        assert_eq!(p("1.2.3.4:"), None);
        let six: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            p("[2001:db8::1]:80"),
            Some(ParsedAddr {
                addr: six,
                port: Some(80)
            })
        );
        assert_eq!(
            p("2001:db8::1"),
            Some(ParsedAddr {
                addr: six,
                port: None
            })
        );
        assert_eq!(p("[::1]"), None);
        assert_eq!(p("[::1]80"), None);
        assert_eq!(p("[::1]:"), None);
        assert_eq!(
            parse_service("1.2.3.4:http", None),
            None,
            "no names before the protocol is known"
        );
    }

    #[test]
    fn atoi_rules() {
        assert_eq!(atoi("64abc"), 64);
        assert_eq!(atoi("255.255.255.0"), 255);
        assert_eq!(atoi("x"), 0);
    }
}
