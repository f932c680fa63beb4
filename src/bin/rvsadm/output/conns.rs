//! `-L -c`: the connection table as ipvsadm prints it.

use super::names::{addrport, resolver, Resolver};
use rvs::ctl::proto::ConnEntry;

/// `-L -c` output.
pub fn render_connections(conns: &[ConnEntry], numeric: bool, persistent_conn: bool) -> String {
    render_connections_with(conns, persistent_conn, resolver(numeric))
}

fn render_connections_with(conns: &[ConnEntry], persistent_conn: bool, r: &dyn Resolver) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if persistent_conn {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} {}\n",
            "state", "source", "virtual", "destination", "pe name", "pe_data"
        ));
    } else {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        ));
    }
    for c in conns {
        out.push_str(&connection_line(c, r));
    }
    out
}

/// One `-L -c` line (rvs entries carry no persistence-engine data).
fn connection_line(c: &ConnEntry, r: &dyn Resolver) -> String {
    let expire = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
    format!(
        "{:<3} {:<6} {:<11} {:<18} {:<18} {}\n",
        c.proto.name(),
        expire,
        c.state,
        addrport(c.client, c.proto, r),
        addrport(c.virt, c.proto, r),
        addrport(c.dest, c.proto, r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::*;
    use crate::output::names::ServicesOnly;
    use rvs::ctl::proto::Protocol;

    #[test]
    fn connections_numeric() {
        let want = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:57  ESTABLISHED 192.168.1.100:54321 10.0.0.1:80        192.168.10.2:80
TCP 01:05  TIME_WAIT   192.168.1.100:54322 10.0.0.1:80        192.168.10.3:8080
UDP 04:59  UDP         192.168.1.101:35372 10.0.0.1:53        192.168.10.2:53
TCP 29:59  NONE        192.168.1.0:0      10.0.0.1:80        192.168.10.2:80
UDP 02:59  NONE        192.168.1.102:5060 10.0.0.1:5060      192.168.10.4:5060
TCP 00:59  SYN_RECV    [2001:db8::64]:54321 [2001:db8::10]:80  [2001:db8::2]:80
";
        assert_eq!(render_connections(&sample_conns(), true, false), want);
    }

    #[test]
    fn connections_persistent_conn_header_and_uncapped_minutes() {
        let conns = vec![conn(
            Protocol::Tcp,
            "1.2.3.4:1000",
            "10.0.0.1:80",
            "10.0.0.2:80",
            "ESTABLISHED",
            7200,
        )];
        let want = "\
IPVS connection entries
pro expire state       source             virtual            destination        pe name          pe_data
TCP 120:00 ESTABLISHED 1.2.3.4:1000       10.0.0.1:80        10.0.0.2:80
";
        assert_eq!(render_connections(&conns, true, true), want);
        assert_eq!(render_connections(&[], true, false).lines().count(), 2);
    }

    #[test]
    fn connections_with_service_names() {
        let conns = vec![conn(
            Protocol::Udp,
            "192.168.1.101:35372",
            "10.0.0.1:53",
            "192.168.10.2:53",
            "UDP",
            299,
        )];
        if std::path::Path::new("/etc/services").exists() {
            let out = render_connections_with(&conns, false, &ServicesOnly);
            assert!(out.ends_with("UDP 04:59  UDP         192.168.1.101:35372 10.0.0.1:domain    192.168.10.2:domain\n"));
        }
    }
}
