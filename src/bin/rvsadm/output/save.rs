//! `-S`: the table as the commands `-R` reads back, as ipvsadm-save writes it
//! (plus the rvs health options).

use super::names::{addrport, resolver, Resolver};
use super::{any_sched_flag, health, mask_text, sched_flag_names, sort};
use rvs::ctl::proto::{Forward, Protocol, ServerView, ServiceView, TableView};

/// `-S` output (`numeric` = `-n`).
pub fn render_save(table: &TableView, numeric: bool) -> String {
    render_save_with(table, resolver(numeric))
}

pub(super) fn render_save_with(table: &TableView, r: &dyn Resolver) -> String {
    let mut out = String::new();
    for svc in sort::services(&table.services, false) {
        let key = svc.spec.key;
        let flag = match key.proto {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        };
        let name = format!("{flag} {}", addrport(key.addr, key.proto, r));
        out.push_str(&save_service_line(svc, &name));
        for srv in sort::servers(svc, false) {
            out.push_str(&save_server_line(
                srv,
                &name,
                &addrport(srv.spec.addr, key.proto, r),
            ));
        }
    }
    out
}

/// `-A <svc> -s <sched>[ -p T[ -M mask]][ --pe x][ -o][ -b flags]`.
fn save_service_line(svc: &ServiceView, name: &str) -> String {
    let spec = &svc.spec;
    let mut s = format!("-A {name} -s {}", spec.scheduler);
    if let Some(timeout) = spec.persistent {
        s.push_str(&format!(" -p {timeout}"));
        if let Some(m) = mask_text(&spec.netmask) {
            s.push_str(&format!(" -M {m}"));
        }
    }
    if let Some(pe) = &spec.pe {
        s.push_str(&format!(" --pe {pe}"));
    }
    if spec.ops {
        s.push_str(" -o");
    }
    if any_sched_flag(spec.sched_flags) {
        s.push_str(&format!(
            " -b {}",
            sched_flag_names(&spec.scheduler, spec.sched_flags).join(",")
        ));
    }
    s.push_str(&health::save_options(
        &spec.health,
        spec.slow_start,
        spec.sorry_server,
    ));
    s.push('\n');
    s
}

/// `-a <svc> -r <addrport> -m|-g|-i -w W[ --tun-type ipip]` (thresholds are not saved).
/// The switch comes from the configured method, not the listed one: rvs lists
/// a masqueraded server on a local address as `Local`, and `-R` must get `-m`
/// back for it.
fn save_server_line(srv: &ServerView, name: &str, dest: &str) -> String {
    let (switch, tunnel) = match srv.spec.forward {
        Forward::Masq => ("-m", ""),
        Forward::Tunnel => ("-i", " --tun-type ipip"),
        Forward::Route | Forward::Local => ("-g", ""),
    };
    format!(
        "-a {name} -r {dest} {switch} -w {}{tunnel}{}\n",
        srv.spec.weight,
        health::save_options(&srv.spec.health, srv.spec.slow_start, None)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::*;
    use crate::output::names::{Numeric, ServicesOnly};
    use rvs::ctl::proto::Netmask;
    use std::net::Ipv4Addr;

    #[test]
    fn save_uses_the_configured_method_not_local() {
        let mut srv = server("127.0.0.1:8080", Forward::Masq, 1, 0, 0);
        srv.shown_forward = Forward::Local;
        let line = save_server_line(&srv, "-t 127.0.0.1:80", "127.0.0.1:8080");
        assert_eq!(line, "-a -t 127.0.0.1:80 -r 127.0.0.1:8080 -m -w 1\n");
    }

    #[test]
    fn save_numeric() {
        let want = "\
-A -t 192.168.100.10:80 -s wlc
-a -t 192.168.100.10:80 -r 10.0.0.1:80 -g -w 1
-a -t 192.168.100.10:80 -r 10.0.0.2:80 -g -w 2
-a -t 192.168.100.10:80 -r 10.0.0.3:80 -g -w 1
-A -t 192.168.100.10:443 -s sh -p 1800 -M 255.255.255.0 -b sh-fallback
-a -t 192.168.100.10:443 -r 10.0.0.1:443 -g -w 1
-A -u 192.168.100.10:53 -s rr -o
-a -u 192.168.100.10:53 -r 10.0.0.5:53 -m -w 1
-A -t [2001:db8::10]:80 -s wlc -p 300 -M 64 --pe sip
-a -t [2001:db8::10]:80 -r [2001:db8::1]:8080 -m -w 1
-a -t [2001:db8::10]:80 -r [2001:db8::2]:80 -m -w 1
";
        assert_eq!(render_save(&sample(), true), want);
        assert_eq!(render_save_with(&sample(), &Numeric), want);
    }

    #[test]
    fn save_with_service_names() {
        let want = "\
-A -t 192.168.100.10:http -s wlc
-a -t 192.168.100.10:http -r 10.0.0.1:http -g -w 1
-a -t 192.168.100.10:http -r 10.0.0.2:http -g -w 2
-a -t 192.168.100.10:http -r 10.0.0.3:http -g -w 1
-A -t 192.168.100.10:https -s sh -p 1800 -M 255.255.255.0 -b sh-fallback
-a -t 192.168.100.10:https -r 10.0.0.1:https -g -w 1
-A -u 192.168.100.10:domain -s rr -o
-a -u 192.168.100.10:domain -r 10.0.0.5:domain -m -w 1
-A -t [2001:db8::10]:http -s wlc -p 300 -M 64 --pe sip
-a -t [2001:db8::10]:http -r [2001:db8::1]:http-alt -m -w 1
-a -t [2001:db8::10]:http -r [2001:db8::2]:http -m -w 1
";
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(render_save_with(&sample(), &ServicesOnly), want);
        }
    }

    #[test]
    fn save_reference_binary_sample() {
        // ipvsadm's “`-S` / `--save` (rule format)” real-binary sample without its FWM service; daemon order scrambled.
        let mut web = service(
            Protocol::Tcp,
            "192.168.100.10:80",
            "wlc",
            vec![
                server("10.0.0.2:80", Forward::Route, 1, 0, 0),
                server("10.0.0.1:80", Forward::Tunnel, 2, 0, 0),
                server("192.168.1.1:80", Forward::Local, 3, 0, 0),
            ],
        );
        web.servers[0].spec.u_threshold = 10;
        let mut dns = service(
            Protocol::Udp,
            "192.168.100.10:53",
            "rr",
            vec![server("10.0.0.5:53", Forward::Masq, 1, 0, 0)],
        );
        dns.spec.persistent = Some(600);
        dns.spec.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
        dns.spec.ops = true;
        let want = "\
-A -t 192.168.100.10:80 -s wlc
-a -t 192.168.100.10:80 -r 192.168.1.1:80 -g -w 3
-a -t 192.168.100.10:80 -r 10.0.0.1:80 -i -w 2 --tun-type ipip
-a -t 192.168.100.10:80 -r 10.0.0.2:80 -g -w 1
-A -u 192.168.100.10:53 -s rr -p 600 -M 255.255.255.0 -o
-a -u 192.168.100.10:53 -r 10.0.0.5:53 -m -w 1
";
        assert_eq!(
            render_save(
                &TableView {
                    services: vec![dns, web]
                },
                true
            ),
            want
        );
    }
}
