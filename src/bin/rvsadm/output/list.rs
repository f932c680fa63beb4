//! `-L` and its variants (`--stats`, `--rate`, `--thresholds`,
//! `--persistent-conn`, `--tun-info`) and `-L --timeout`, byte for byte as
//! ipvsadm 1.31 prints them.

use super::names::{addrport, resolver, Resolver};
use super::{any_sched_flag, health, mask_text, sched_flag_names, sort, ListOpts};
use rvs::ctl::proto::{
    Forward, Protocol, Rates, ServerView, ServiceView, Stats, TableView, Timeouts,
};
use std::net::SocketAddr;

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";
const TITLE_DEFAULT: &str =
    "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
const TITLE_TUN_INFO: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";
const SUBTITLE: &str = "  -> RemoteAddress:Port\n";

/// The listing variant, by ipvsadm's precedence when list flags are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Stats,
    Rate,
    Thresholds,
    PersistConn,
    TunInfo,
    Default,
}

impl View {
    fn of(o: &ListOpts) -> View {
        if o.stats {
            View::Stats
        } else if o.rate {
            View::Rate
        } else if o.thresholds {
            View::Thresholds
        } else if o.persistent_conn {
            View::PersistConn
        } else if o.tun_info {
            View::TunInfo
        } else {
            View::Default
        }
    }
}

/// `-L` output. `single` = a service was named (no version header).
pub fn render_list(table: &TableView, single: bool, opts: &ListOpts) -> String {
    render_list_with(table, single, opts, resolver(opts.numeric))
}

fn render_list_with(table: &TableView, single: bool, opts: &ListOpts, r: &dyn Resolver) -> String {
    if opts.health {
        return health::render(table, opts.nosort, r);
    }
    let view = View::of(opts);
    let mut out = String::new();
    if !single {
        out.push_str(HEADER);
    }
    out.push_str(&list_title(view));
    for svc in sort::services(&table.services, opts.nosort) {
        let proto = svc.spec.key.proto;
        out.push_str(&service_line(
            view,
            svc,
            &service_column(svc, r),
            opts.exact,
        ));
        for srv in sort::servers(svc, opts.nosort) {
            let dest = server_column(srv.spec.addr, proto, r);
            out.push_str(&server_line(view, srv, &dest, opts.exact));
        }
    }
    out
}

fn list_title(view: View) -> String {
    let first = "Prot LocalAddress:Port";
    match view {
        View::Stats => {
            format!(
                "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{SUBTITLE}",
                "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            )
        }
        View::Rate => format!(
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{SUBTITLE}",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        View::Thresholds => {
            format!(
                "{first:<33} {:<10} {:<10} {:<10} {:<10}\n{SUBTITLE}",
                "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            )
        }
        View::PersistConn => {
            format!(
                "{first:<33} {:<9} {:<11} {:<10} {:<10}\n{SUBTITLE}",
                "Weight", "PersistConn", "ActiveConn", "InActConn"
            )
        }
        View::TunInfo => TITLE_TUN_INFO.to_string(),
        View::Default => TITLE_DEFAULT.to_string(),
    }
}

/// Cut `s` to at most `n` bytes (ipvsadm writes a NUL into its buffer).
fn cut(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `"%-4s %s"` of protocol and address, IPv4 cut to 33 characters.
fn service_column(svc: &ServiceView, r: &dyn Resolver) -> String {
    let key = svc.spec.key;
    let s = format!(
        "{:<4} {}",
        key.proto.name(),
        addrport(key.addr, key.proto, r)
    );
    if key.addr.is_ipv4() {
        cut(s, 33)
    } else {
        s
    }
}

/// Real-server address, IPv4 cut to 28 characters.
fn server_column(addr: SocketAddr, proto: Protocol, r: &dyn Resolver) -> String {
    let s = addrport(addr, proto, r);
    if addr.is_ipv4() {
        cut(s, 28)
    } else {
        s
    }
}

fn service_line(view: View, svc: &ServiceView, name: &str, exact: bool) -> String {
    match view {
        View::Stats => format!("{name:<33}{}\n", stats_columns(&svc.stats, exact)),
        View::Rate => format!("{name:<33}{}\n", rates_columns(&svc.rates, exact)),
        _ => format!("{name} {}{}\n", svc.spec.scheduler, service_flags(svc)),
    }
}

/// ` (flags)`, ` persistent T[ mask M][ pe P]`, ` ops` (ipvsadm's “Default listing (`-L`, `-L -n`)”).
fn service_flags(svc: &ServiceView) -> String {
    let spec = &svc.spec;
    let mut s = String::new();
    if any_sched_flag(spec.sched_flags) {
        s.push_str(&format!(
            " ({})",
            sched_flag_names(&spec.scheduler, spec.sched_flags).join(",")
        ));
    }
    if let Some(timeout) = spec.persistent {
        s.push_str(&format!(" persistent {timeout}"));
        if let Some(m) = mask_text(&spec.netmask) {
            s.push_str(&format!(" mask {m}"));
        }
        if let Some(pe) = &spec.pe {
            s.push_str(&format!(" pe {pe}"));
        }
    }
    if spec.ops {
        s.push_str(" ops");
    }
    s
}

fn server_line(view: View, srv: &ServerView, dest: &str, exact: bool) -> String {
    match view {
        View::Stats => format!(
            "  -> {dest:<28}{}\n",
            stats_columns(&server_stats(&srv.stats), exact)
        ),
        View::Rate => server_rate_line(srv, dest, exact),
        View::Thresholds => format!(
            "  -> {dest:<28} {:<10} {:<10} {:<10} {:<10}\n",
            srv.spec.u_threshold, srv.spec.l_threshold, srv.active_conns, srv.inactive_conns
        ),
        View::PersistConn => format!(
            "  -> {dest:<28} {:<9} {:<11} {:<10} {:<10}\n",
            srv.spec.weight, srv.persist_conns, srv.active_conns, srv.inactive_conns
        ),
        View::TunInfo => format!(
            "  -> {dest:<28} {:<7} {:<13} {:<6} {:<10} {:<10}\n",
            srv.shown_forward.name(),
            tunnel_info(srv.shown_forward),
            srv.spec.weight,
            srv.active_conns,
            srv.inactive_conns
        ),
        View::Default => format!(
            "  -> {dest:<28} {:<7} {:<6} {:<10} {:<10}\n",
            srv.shown_forward.name(),
            srv.spec.weight,
            srv.active_conns,
            srv.inactive_conns
        ),
    }
}

/// `--tun-info` column: rvs tunnels (if ever) are plain IPIP.
fn tunnel_info(fwd: Forward) -> &'static str {
    match fwd {
        Forward::Tunnel => "ipip",
        _ => "n/a",
    }
}

/// Real-server rate line: CPS/InPPS/OutPPS unabbreviated `%8llu` (quirk).
fn server_rate_line(srv: &ServerView, dest: &str, exact: bool) -> String {
    let r = server_rates(&srv.rates);
    format!(
        "  -> {dest:<28} {:>8} {:>8} {:>8}{}{}\n",
        r.cps,
        r.inpps,
        r.outpps,
        largenum(r.inbps, exact),
        largenum(r.outbps, exact)
    )
}

/// ipvsadm 1.31 reads real-server counters (except bytes) with a 32-bit getter.
fn server_stats(s: &Stats) -> Stats {
    Stats {
        conns: low32(s.conns),
        inpkts: low32(s.inpkts),
        outpkts: low32(s.outpkts),
        ..*s
    }
}

/// As [`server_stats`]: every real-server rate is shown modulo 2^32.
fn server_rates(r: &Rates) -> Rates {
    Rates {
        cps: low32(r.cps),
        inpps: low32(r.inpps),
        outpps: low32(r.outpps),
        inbps: low32(r.inbps),
        outbps: low32(r.outbps),
    }
}

fn low32(v: u64) -> u64 {
    v & 0xffff_ffff
}

fn stats_columns(s: &Stats, exact: bool) -> String {
    [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
        .iter()
        .map(|&v| largenum(v, exact))
        .collect()
}

fn rates_columns(r: &Rates, exact: bool) -> String {
    [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
        .iter()
        .map(|&v| largenum(v, exact))
        .collect()
}

/// ipvsadm's `print_largenum`: one field including its leading padding (ipvsadm's “Large-number formatting (`print_largenum`) and `--exact`”).
fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let digits = i.to_string().len();
        let width = if digits <= 8 { 9 } else { digits + 1 };
        return format!("{i:>width$}");
    }
    match i {
        0..100_000_000 => format!("{i:>9}"),
        100_000_000..1_000_000_000 => format!("{:>8}K", i / 1_000),
        1_000_000_000..100_000_000_000 => format!("{:>8}M", i / 1_000_000),
        100_000_000_000..100_000_000_000_000 => format!("{:>8}G", i / 1_000_000_000),
        _ => format!("{:>8}T", i / 1_000_000_000_000),
    }
}

/// `-L --timeout` output.
pub fn render_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::*;
    use crate::output::json_timeouts;
    use crate::output::names::ServicesOnly;
    use crate::output::save::render_save_with;
    use rvs::ctl::proto::Timeouts;

    const DEFAULT_N: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.100.10:80 wlc
  -> 10.0.0.1:80                  Route   1      5          20        
  -> 10.0.0.2:80                  Route   2      12         34        
  -> 10.0.0.3:80                  Route   1      0          0         
TCP  192.168.100.10:443 sh (sh-fallback) persistent 1800 mask 255.255.255.0
  -> 10.0.0.1:443                 Route   1      3          1         
UDP  192.168.100.10:53 rr ops
  -> 10.0.0.5:53                  Masq    1      0          88        
TCP  [2001:db8::10]:80 wlc persistent 300 mask 64 pe sip
  -> [2001:db8::1]:8080           Masq    1      0          0         
  -> [2001:db8::2]:80             Masq    1      0          0         
";

    #[test]
    fn default_listing_numeric() {
        assert_eq!(render_list(&sample(), false, &numeric()), DEFAULT_N);
    }

    #[test]
    fn default_listing_with_service_names() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.100.10:http wlc
  -> 10.0.0.1:http                Route   1      5          20        
  -> 10.0.0.2:http                Route   2      12         34        
  -> 10.0.0.3:http                Route   1      0          0         
TCP  192.168.100.10:https sh (sh-fallback) persistent 1800 mask 255.255.255.0
  -> 10.0.0.1:https               Route   1      3          1         
UDP  192.168.100.10:domain rr ops
  -> 10.0.0.5:domain              Masq    1      0          88        
TCP  [2001:db8::10]:http wlc persistent 300 mask 64 pe sip
  -> [2001:db8::1]:http-alt       Masq    1      0          0         
  -> [2001:db8::2]:http           Masq    1      0          0         
";
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(
                render_list_with(&sample(), false, &ListOpts::default(), &ServicesOnly),
                want
            );
        }
    }

    #[test]
    fn single_service_has_no_header() {
        let table = TableView {
            services: vec![sample().services.pop().unwrap()],
        };
        let want = "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.100.10:80 wlc
  -> 10.0.0.1:80                  Route   1      5          20        
  -> 10.0.0.2:80                  Route   2      12         34        
  -> 10.0.0.3:80                  Route   1      0          0         
";
        assert_eq!(render_list(&table, true, &numeric()), want);
    }

    #[test]
    fn empty_table_prints_header_and_titles() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
";
        assert_eq!(render_list(&TableView::default(), false, &numeric()), want);
    }

    #[test]
    fn nosort_keeps_daemon_order() {
        let opts = ListOpts {
            nosort: true,
            ..numeric()
        };
        let out = render_list(&sample(), false, &opts);
        let lines: Vec<&str> = out.lines().skip(3).collect();
        assert_eq!(
            lines[0],
            "TCP  [2001:db8::10]:80 wlc persistent 300 mask 64 pe sip"
        );
        assert_eq!(
            lines[1],
            "  -> [2001:db8::2]:80             Masq    1      0          0         "
        );
        assert_eq!(lines[3], "UDP  192.168.100.10:53 rr ops");
        assert_eq!(lines[7], "TCP  192.168.100.10:80 wlc");
        assert_eq!(
            lines[8],
            "  -> 10.0.0.3:80                  Route   1      0          0         "
        );
    }

    #[test]
    fn stats_listing() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.168.100.10:80                1234    56789    45678 12345678  987654K
  -> 10.0.0.1:80                       534    26789    20678  6345678  487654K
  -> 10.0.0.2:80                       700    30000    25000  6000000  500000K
  -> 10.0.0.3:80                         0        0        0        0        0
TCP  192.168.100.10:443               100G   99999G     100T18446744T        0
  -> 10.0.0.1:443                        0        0        0        0        0
UDP  192.168.100.10:53            99999999  100000K  999999K    1000M   99999M
  -> 10.0.0.5:53                  99999999  100000K  999999K    1000M   99999M
TCP  [2001:db8::10]:80                   0        0        0        0        0
  -> [2001:db8::1]:8080                  0        0        0        0        0
  -> [2001:db8::2]:80                    0        0        0        0        0
";
        let opts = ListOpts {
            stats: true,
            rate: true,
            thresholds: true,
            ..numeric()
        };
        assert_eq!(render_list(&sample(), false, &opts), want);
    }

    #[test]
    fn stats_listing_exact() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.168.100.10:80                1234    56789    45678 12345678 987654321
  -> 10.0.0.1:80                       534    26789    20678  6345678 487654321
  -> 10.0.0.2:80                       700    30000    25000  6000000 500000000
  -> 10.0.0.3:80                         0        0        0        0        0
TCP  192.168.100.10:443           100000000000 99999999999999 100000000000000 18446744073709551615        0
  -> 10.0.0.1:443                        0        0        0        0        0
UDP  192.168.100.10:53            99999999 100000000 999999999 1000000000 99999999999
  -> 10.0.0.5:53                  99999999 100000000 999999999 1000000000 99999999999
TCP  [2001:db8::10]:80                   0        0        0        0        0
  -> [2001:db8::1]:8080                  0        0        0        0        0
  -> [2001:db8::2]:80                    0        0        0        0        0
";
        let opts = ListOpts {
            stats: true,
            exact: true,
            ..numeric()
        };
        assert_eq!(render_list(&sample(), false, &opts), want);
    }

    #[test]
    fn rate_listing() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  192.168.100.10:80                   3       40       35     5200    48000
  -> 10.0.0.1:80                         1       15       15     2200    18000
  -> 10.0.0.2:80                         2       25       20     3000    30000
  -> 10.0.0.3:80                         0        0        0        0        0
TCP  192.168.100.10:443                  0        0        0        0        0
  -> 10.0.0.1:443                        0        0        0        0        0
UDP  192.168.100.10:53             123456K  100000K  999999K    1000M    4294M
  -> 10.0.0.5:53                  123456789 100000000 999999999    1000M    4294M
TCP  [2001:db8::10]:80                   0        0        0        0        0
  -> [2001:db8::1]:8080                  0        0        0        0        0
  -> [2001:db8::2]:80                    0        0        0        0        0
";
        let opts = ListOpts {
            rate: true,
            thresholds: true,
            ..numeric()
        };
        assert_eq!(render_list(&sample(), false, &opts), want);
    }

    #[test]
    fn thresholds_listing() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.168.100.10:80 wlc
  -> 10.0.0.1:80                  0          0          5          20        
  -> 10.0.0.2:80                  0          0          12         34        
  -> 10.0.0.3:80                  0          0          0          0         
TCP  192.168.100.10:443 sh (sh-fallback) persistent 1800 mask 255.255.255.0
  -> 10.0.0.1:443                 0          0          3          1         
UDP  192.168.100.10:53 rr ops
  -> 10.0.0.5:53                  1000       750        0          88        
TCP  [2001:db8::10]:80 wlc persistent 300 mask 64 pe sip
  -> [2001:db8::1]:8080           0          0          0          0         
  -> [2001:db8::2]:80             0          0          0          0         
";
        let opts = ListOpts {
            thresholds: true,
            persistent_conn: true,
            tun_info: true,
            ..numeric()
        };
        assert_eq!(render_list(&sample(), false, &opts), want);
    }

    #[test]
    fn persistent_conn_listing() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.168.100.10:80 wlc
  -> 10.0.0.1:80                  1         0           5          20        
  -> 10.0.0.2:80                  2         0           12         34        
  -> 10.0.0.3:80                  1         0           0          0         
TCP  192.168.100.10:443 sh (sh-fallback) persistent 1800 mask 255.255.255.0
  -> 10.0.0.1:443                 1         7           3          1         
UDP  192.168.100.10:53 rr ops
  -> 10.0.0.5:53                  1         0           0          88        
TCP  [2001:db8::10]:80 wlc persistent 300 mask 64 pe sip
  -> [2001:db8::1]:8080           1         0           0          0         
  -> [2001:db8::2]:80             1         0           0          0         
";
        let opts = ListOpts {
            persistent_conn: true,
            tun_info: true,
            ..numeric()
        };
        assert_eq!(render_list(&sample(), false, &opts), want);
    }

    #[test]
    fn tun_info_listing() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn
TCP  192.168.100.10:80 wlc
  -> 10.0.0.1:80                  Route   n/a           1      5          20        
  -> 10.0.0.2:80                  Route   n/a           2      12         34        
  -> 10.0.0.3:80                  Route   n/a           1      0          0         
TCP  192.168.100.10:443 sh (sh-fallback) persistent 1800 mask 255.255.255.0
  -> 10.0.0.1:443                 Route   n/a           1      3          1         
UDP  192.168.100.10:53 rr ops
  -> 10.0.0.5:53                  Masq    n/a           1      0          88        
TCP  [2001:db8::10]:80 wlc persistent 300 mask 64 pe sip
  -> [2001:db8::1]:8080           Masq    n/a           1      0          0         
  -> [2001:db8::2]:80             Masq    n/a           1      0          0         
";
        let opts = ListOpts {
            tun_info: true,
            ..numeric()
        };
        assert_eq!(render_list(&sample(), false, &opts), want);
    }

    #[test]
    fn real_server_counters_are_shown_modulo_2_32() {
        let mut table = TableView {
            services: vec![sample().services.remove(1)],
        };
        let big = (1u64 << 32) + 5;
        table.services[0].servers[0].stats = stats([big, big, big, big, big]);
        table.services[0].servers[0].rates = rates([big, big, big, big, big]);
        let out = render_list(
            &table,
            true,
            &ListOpts {
                stats: true,
                ..numeric()
            },
        );
        assert!(
            out.ends_with(
                "  -> 10.0.0.5:53                         5        5        5    4294M    4294M\n"
            ),
            "{out}"
        );
        let out = render_list(
            &table,
            true,
            &ListOpts {
                rate: true,
                ..numeric()
            },
        );
        assert!(
            out.ends_with(
                "  -> 10.0.0.5:53                         5        5        5        5        5\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn largenum_thresholds() {
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(100_000_000, false), "  100000K");
        assert_eq!(largenum(999_999_999_999, false), "     999G");
        assert_eq!(largenum(99_999_999_999, false), "   99999M");
        assert_eq!(largenum(0, true), "        0");
        assert_eq!(largenum(123_456_789, true), " 123456789");
    }

    #[test]
    fn truncation_of_long_ipv4_names() {
        struct LongNames;
        impl Resolver for LongNames {
            fn host(&self, _ip: std::net::IpAddr) -> Option<String> {
                Some("a-very-long-host-name.example.internal".to_string())
            }
            fn service(&self, _port: u16, _proto: Protocol) -> Option<String> {
                None
            }
        }
        let table = TableView {
            services: vec![sample().services.remove(1)],
        };
        let out = render_list_with(&table, true, &numeric(), &LongNames);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[2], "UDP  a-very-long-host-name.exampl rr ops");
        assert_eq!(
            lines[3],
            "  -> a-very-long-host-name.exampl Masq    1      0          88        "
        );
        assert_eq!(
            render_save_with(&table, &LongNames).lines().next().unwrap(),
            "-A -u a-very-long-host-name.example.internal:53 -s rr -o"
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(
            render_timeouts(&Timeouts::default()),
            "Timeout (tcp tcpfin udp): 900 120 300\n"
        );
        let v: serde_json::Value =
            serde_json::from_str(&json_timeouts(&Timeouts::default())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"tcp": 900, "tcpfin": 120, "udp": 300})
        );
    }
}
