//! ipvsadm-exact renderings of listings (`-L` and its variants, `-L -c`,
//! `--timeout`, `-S`) and the `--json` schema. Pure functions: data in, text out.
//!
//! The text formats reproduce ipvsadm 1.31 byte for byte (see
//! `reference/ipvsadm.md` §2), including its sort order quirks, column
//! truncation, number abbreviation and trailing spaces.
//!
//! # JSON schema (`--json`, an rvs extension)
//!
//! Stable: fields are only ever added, never renamed, removed or retyped. Every
//! field is always present (`null` where documented). Numbers are plain
//! unabbreviated JSON integers (64-bit counters in full), addresses are always
//! numeric (`inet_ntop` form, IPv6 without brackets), and `--json` ignores
//! `--stats`, `--rate`, `--exact`, `-n` etc.: everything is always included.
//! The output is pretty-printed and ends with a newline.
//!
//! ## `rvsadm -L --json`
//!
//! ```text
//! {
//!   "version": "1.2.1",            IPVS version rvs emulates (string)
//!   "services": [                  sorted like `-L` (daemon order with --nosort)
//!     {
//!       "protocol": "TCP",         "TCP" | "UDP"
//!       "address": "10.0.0.1",     virtual address
//!       "port": 80,                virtual port
//!       "scheduler": "wlc",        scheduler name
//!       "persistent": 360,         persistence timeout in seconds, null = not persistent
//!       "netmask": "255.255.255.255",  persistence granularity as `-M` takes it:
//!                                  dotted quad (IPv4) or prefix length in decimal (IPv6, "128")
//!       "sched_flags": ["sh-fallback"],  set scheduler flags by name: "sh-fallback",
//!                                  "sh-port" (sh), "mh-fallback", "mh-port" (mh),
//!                                  otherwise "flag-1", "flag-2"; "flag-3" for any scheduler
//!       "ops": false,              one-packet scheduling (-o)
//!       "pe": null,                persistence engine name or null
//!       "health_check": {          health-check defaults as configured; every field
//!         "kind": "Http",          may be null (= rvs default): kind "None" | "Tcp" |
//!         "interval_ms": 2000,     "Http" | "Exec" | "Udp", interval_ms, timeout_ms,
//!         ...                      rise, fall, jitter_ms, addr, port, initial_up,
//!       },                         http_path, http_host, http_status [lo, hi],
//!                                  http_body, exec, udp_send, udp_expect
//!       "slow_start": null,        slow-start seconds or null
//!       "sorry_server": null,      "addr:port" or null
//!       "sorry_active": false,     true while no real server is available
//!       "stats": {                 cumulative counters since the last -Z
//!         "conns": 0, "inpkts": 0, "outpkts": 0, "inbytes": 0, "outbytes": 0
//!       },
//!       "rates": {                 estimated per-second rates (bytes, not bits)
//!         "cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0
//!       },
//!       "servers": [               sorted like `-L` (most recently added first with --nosort)
//!         {
//!           "address": "192.168.10.2",  real server address
//!           "port": 80,
//!           "forward": "Masq",     "Masq" | "Local" | "Tunnel" | "Route" (as listed)
//!           "weight": 1,
//!           "u_threshold": 0,      upper connection threshold, 0 = none
//!           "l_threshold": 0,      lower connection threshold, 0 = none
//!           "active_conns": 0,
//!           "inactive_conns": 0,
//!           "persist_conns": 0,    persistence templates bound to the server
//!           "health_check": {...}, per-server overrides, same fields as the service's
//!           "slow_start": null,
//!           "health": {            live health
//!             "state": "UP",       "UP" | "DOWN" | "DRAIN" (weight 0)
//!             "since_secs": 12,    seconds in this state
//!             "check": "tcp",      the effective check in words
//!             "last_ok": true,     last probe result, null before the first
//!             "latency_us": 180,   last probe duration, or null
//!             "reason": "connected",  last verdict in words ("HTTP 503", ...)
//!             "effective_weight": null  weight in effect during slow start
//!           },
//!           "stats": { ... },      as for the service (full 64-bit, no modulo 2^32)
//!           "rates": { ... }
//!         }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! ## `rvsadm -L -c --json`
//!
//! ```text
//! {
//!   "connections": [               daemon order
//!     {
//!       "protocol": "TCP",         "TCP" | "UDP"
//!       "client": {"address": "192.168.1.100", "port": 54321},
//!       "virtual": {"address": "10.0.0.1", "port": 80},
//!       "destination": {"address": "192.168.10.2", "port": 80},
//!       "state": "ESTABLISHED",    state name as `-L -c` prints it
//!       "expires": 897,            seconds until the entry expires
//!       "template": false          true for a persistence template
//!     }
//!   ]
//! }
//! ```
//!
//! ## `rvsadm -L --timeout --json`
//!
//! ```text
//! {"tcp": 900, "tcpfin": 120, "udp": 300}     idle timeouts in seconds
//! ```

mod health;
mod names;

pub use health::{save_warnings, visible};
mod rdns;
mod sort;

use names::{addrport, ntop, resolver, Resolver};
use rvs::ctl::proto::{
    ConnEntry, Forward, HealthCheck, Netmask, Protocol, Rates, ServerView, ServiceView, Stats,
    TableView, Timeouts, SCHED_FLAG_1, SCHED_FLAG_2, SCHED_FLAG_3,
};
use serde::Serialize;
use std::net::SocketAddr;

/// Which listing variant `-L` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListOpts {
    pub numeric: bool,
    pub exact: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub tun_info: bool,
    pub nosort: bool,
    /// `--health` (rvs extension): the health view instead of ipvsadm's.
    pub health: bool,
}

/// IPVS version and connection-table size rvs reports, as ipvsadm prints them.
const IPVS_VERSION: &str = "1.2.1";
const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";
const TITLE_DEFAULT: &str =
    "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
const TITLE_TUN_INFO: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";
const SUBTITLE: &str = "  -> RemoteAddress:Port\n";

/// The listing variant, by ipvsadm's precedence (§2.11).
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

// Scheduler flag words as ipvsadm prints them (`-L` and `-b`), shared with rvstop.
use rvs::ctl::names::sched_flag_names;

fn any_sched_flag(flags: u32) -> bool {
    flags & (SCHED_FLAG_1 | SCHED_FLAG_2 | SCHED_FLAG_3) != 0
}

/// `-M`/`mask` text when the mask groups anything, else `None`.
fn mask_text(mask: &Netmask) -> Option<String> {
    if mask.is_host() {
        return None;
    }
    Some(match mask {
        Netmask::V4(m) => m.to_string(),
        Netmask::V6(p) => p.to_string(),
    })
}

/// ` (flags)`, ` persistent T[ mask M][ pe P]`, ` ops` (§2.4).
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

/// ipvsadm's `print_largenum`: one field including its leading padding (§2.5).
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

/// `-S` output (`numeric` = `-n`).
pub fn render_save(table: &TableView, numeric: bool) -> String {
    render_save_with(table, resolver(numeric))
}

fn render_save_with(table: &TableView, r: &dyn Resolver) -> String {
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

/// `-L --timeout` output.
pub fn render_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}

#[derive(Serialize)]
struct JsonList {
    version: &'static str,
    services: Vec<JsonService>,
}

#[derive(Serialize)]
struct JsonService {
    protocol: &'static str,
    address: String,
    port: u16,
    scheduler: String,
    persistent: Option<u32>,
    netmask: String,
    sched_flags: Vec<&'static str>,
    ops: bool,
    pe: Option<String>,
    /// rvs: health-check defaults as configured (unset fields are null).
    health_check: HealthCheck,
    slow_start: Option<u32>,
    sorry_server: Option<String>,
    sorry_active: bool,
    stats: JsonStats,
    rates: JsonRates,
    servers: Vec<JsonServer>,
}

#[derive(Serialize)]
struct JsonServer {
    address: String,
    port: u16,
    forward: &'static str,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    active_conns: u32,
    inactive_conns: u32,
    persist_conns: u32,
    /// rvs: per-server health-check overrides as configured.
    health_check: HealthCheck,
    slow_start: Option<u32>,
    health: JsonHealth,
    stats: JsonStats,
    rates: JsonRates,
}

/// rvs: live health of a real server.
#[derive(Serialize)]
struct JsonHealth {
    /// "UP", "DOWN" or "DRAIN".
    state: &'static str,
    since_secs: u64,
    check: String,
    last_ok: Option<bool>,
    latency_us: Option<u64>,
    reason: String,
    effective_weight: Option<u32>,
}

#[derive(Serialize)]
struct JsonStats {
    conns: u64,
    inpkts: u64,
    outpkts: u64,
    inbytes: u64,
    outbytes: u64,
}

#[derive(Serialize)]
struct JsonRates {
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
}

#[derive(Serialize)]
struct JsonConnections {
    connections: Vec<JsonConnection>,
}

#[derive(Serialize)]
struct JsonConnection {
    protocol: &'static str,
    client: JsonEndpoint,
    #[serde(rename = "virtual")]
    virt: JsonEndpoint,
    destination: JsonEndpoint,
    state: String,
    expires: u32,
    template: bool,
}

#[derive(Serialize)]
struct JsonEndpoint {
    address: String,
    port: u16,
}

#[derive(Serialize)]
struct JsonTimeouts {
    tcp: u32,
    tcpfin: u32,
    udp: u32,
}

impl From<&Stats> for JsonStats {
    fn from(s: &Stats) -> Self {
        JsonStats {
            conns: s.conns,
            inpkts: s.inpkts,
            outpkts: s.outpkts,
            inbytes: s.inbytes,
            outbytes: s.outbytes,
        }
    }
}

impl From<&Rates> for JsonRates {
    fn from(r: &Rates) -> Self {
        JsonRates {
            cps: r.cps,
            inpps: r.inpps,
            outpps: r.outpps,
            inbps: r.inbps,
            outbps: r.outbps,
        }
    }
}

impl From<SocketAddr> for JsonEndpoint {
    fn from(a: SocketAddr) -> Self {
        JsonEndpoint {
            address: ntop(a.ip()),
            port: a.port(),
        }
    }
}

/// Every set scheduler flag by name: the listing's words, plus `flag-3` for sh/mh.
fn json_sched_flags(sched: &str, flags: u32) -> Vec<&'static str> {
    let mut names = sched_flag_names(sched, flags);
    if flags & SCHED_FLAG_3 != 0 && !names.contains(&"flag-3") {
        names.push("flag-3");
    }
    names
}

fn json_service(svc: &ServiceView, nosort: bool) -> JsonService {
    let spec = &svc.spec;
    JsonService {
        protocol: spec.key.proto.name(),
        address: ntop(spec.key.addr.ip()),
        port: spec.key.addr.port(),
        scheduler: spec.scheduler.clone(),
        persistent: spec.persistent,
        netmask: match spec.netmask {
            Netmask::V4(m) => m.to_string(),
            Netmask::V6(p) => p.to_string(),
        },
        sched_flags: json_sched_flags(&spec.scheduler, spec.sched_flags),
        ops: spec.ops,
        pe: spec.pe.clone(),
        health_check: spec.health.clone(),
        slow_start: spec.slow_start,
        sorry_server: spec
            .sorry_server
            .map(|a| SocketAddr::new(a.ip(), a.port()).to_string()),
        sorry_active: svc.sorry_active,
        stats: (&svc.stats).into(),
        rates: (&svc.rates).into(),
        servers: sort::servers(svc, nosort)
            .into_iter()
            .map(json_server)
            .collect(),
    }
}

fn json_server(srv: &ServerView) -> JsonServer {
    JsonServer {
        address: ntop(srv.spec.addr.ip()),
        port: srv.spec.addr.port(),
        forward: srv.shown_forward.name(),
        weight: srv.spec.weight,
        u_threshold: srv.spec.u_threshold,
        l_threshold: srv.spec.l_threshold,
        active_conns: srv.active_conns,
        inactive_conns: srv.inactive_conns,
        persist_conns: srv.persist_conns,
        health_check: srv.spec.health.clone(),
        slow_start: srv.spec.slow_start,
        health: JsonHealth {
            state: srv.health.state.name(),
            since_secs: srv.health.since_secs,
            check: srv.health.check.clone(),
            last_ok: srv.health.last_ok,
            latency_us: srv.health.latency_us,
            reason: srv.health.reason.clone(),
            effective_weight: srv.health.effective_weight,
        },
        stats: (&srv.stats).into(),
        rates: (&srv.rates).into(),
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(value).expect("JSON serialization of plain data cannot fail");
    s.push('\n');
    s
}

/// `--json` for `-L` (and its variants): the documented stable schema.
pub fn json_list(table: &TableView, opts: &ListOpts) -> String {
    let services = sort::services(&table.services, opts.nosort)
        .into_iter()
        .map(|s| json_service(s, opts.nosort))
        .collect();
    to_json(&JsonList {
        version: IPVS_VERSION,
        services,
    })
}

/// `--json` for `-L -c`.
pub fn json_connections(conns: &[ConnEntry]) -> String {
    let connections = conns
        .iter()
        .map(|c| JsonConnection {
            protocol: c.proto.name(),
            client: c.client.into(),
            virt: c.virt.into(),
            destination: c.dest.into(),
            state: c.state.clone(),
            expires: c.expires,
            template: c.template,
        })
        .collect();
    to_json(&JsonConnections { connections })
}

/// `--json` for `-L --timeout`.
pub fn json_timeouts(t: &Timeouts) -> String {
    to_json(&JsonTimeouts {
        tcp: t.tcp,
        tcpfin: t.tcpfin,
        udp: t.udp,
    })
}

#[cfg(test)]
mod tests {
    use super::names::{Numeric, ServicesOnly};

    #[test]
    fn save_uses_the_configured_method_not_local() {
        let mut srv = server("127.0.0.1:8080", Forward::Masq, 1, 0, 0);
        srv.shown_forward = Forward::Local;
        let line = save_server_line(&srv, "-t 127.0.0.1:80", "127.0.0.1:8080");
        assert_eq!(line, "-a -t 127.0.0.1:80 -r 127.0.0.1:8080 -m -w 1\n");
    }

    use super::*;
    use rvs::ctl::proto::{RealServerSpec, ServiceKey, ServiceSpec};
    use std::net::Ipv4Addr;

    fn server(addr: &str, fwd: Forward, weight: u32, active: u32, inactive: u32) -> ServerView {
        let mut spec = RealServerSpec::new(addr.parse().unwrap());
        spec.weight = weight;
        spec.forward = fwd;
        ServerView {
            spec,
            shown_forward: fwd,
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: 0,
            stats: Stats::default(),
            rates: Rates::default(),
            health: rvs::ctl::proto::HealthView {
                state: rvs::ctl::proto::HealthState::Up,
                since_secs: 75,
                check: "tcp".into(),
                last_ok: Some(true),
                latency_us: Some(180),
                reason: "connected".into(),
                effective_weight: None,
            },
        }
    }

    fn service(proto: Protocol, addr: &str, sched: &str, servers: Vec<ServerView>) -> ServiceView {
        let mut spec = ServiceSpec::new(ServiceKey {
            proto,
            addr: addr.parse().unwrap(),
        });
        spec.scheduler = sched.to_string();
        ServiceView {
            spec,
            stats: Stats::default(),
            rates: Rates::default(),
            servers,
            sorry_active: false,
        }
    }

    fn stats(v: [u64; 5]) -> Stats {
        Stats {
            conns: v[0],
            inpkts: v[1],
            outpkts: v[2],
            inbytes: v[3],
            outbytes: v[4],
        }
    }

    fn rates(v: [u64; 5]) -> Rates {
        Rates {
            cps: v[0],
            inpps: v[1],
            outpps: v[2],
            inbps: v[3],
            outbps: v[4],
        }
    }

    /// The reference's sample table (§2.4–2.14) without its FWM services, in
    /// daemon order: services not in listing order, servers most recent first.
    fn sample() -> TableView {
        let mut web = service(
            Protocol::Tcp,
            "192.168.100.10:80",
            "wlc",
            vec![
                server("10.0.0.3:80", Forward::Route, 1, 0, 0),
                server("10.0.0.2:80", Forward::Route, 2, 12, 34),
                server("10.0.0.1:80", Forward::Route, 1, 5, 20),
            ],
        );
        web.stats = stats([1234, 56789, 45678, 12345678, 987654321]);
        web.rates = rates([3, 40, 35, 5200, 48000]);
        web.servers[2].stats = stats([534, 26789, 20678, 6345678, 487654321]);
        web.servers[2].rates = rates([1, 15, 15, 2200, 18000]);
        web.servers[1].stats = stats([700, 30000, 25000, 6000000, 500000000]);
        web.servers[1].rates = rates([2, 25, 20, 3000, 30000]);

        let mut tls = service(
            Protocol::Tcp,
            "192.168.100.10:443",
            "sh",
            vec![server("10.0.0.1:443", Forward::Route, 1, 3, 1)],
        );
        tls.spec.sched_flags = SCHED_FLAG_1;
        tls.spec.persistent = Some(1800);
        tls.spec.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
        tls.stats = stats([
            100_000_000_000,
            99_999_999_999_999,
            100_000_000_000_000,
            u64::MAX,
            0,
        ]);
        tls.servers[0].persist_conns = 7;

        let mut dns = service(
            Protocol::Udp,
            "192.168.100.10:53",
            "rr",
            vec![server("10.0.0.5:53", Forward::Masq, 1, 0, 88)],
        );
        dns.spec.ops = true;
        dns.stats = stats([
            99_999_999,
            100_000_000,
            999_999_999,
            1_000_000_000,
            99_999_999_999,
        ]);
        dns.rates = rates([
            123_456_789,
            100_000_000,
            999_999_999,
            1_000_000_000,
            4_294_967_295,
        ]);
        dns.servers[0].stats = dns.stats;
        dns.servers[0].rates = dns.rates;
        dns.servers[0].spec.u_threshold = 1000;
        dns.servers[0].spec.l_threshold = 750;

        let mut v6 = service(
            Protocol::Tcp,
            "[2001:db8::10]:80",
            "wlc",
            vec![
                server("[2001:db8::2]:80", Forward::Masq, 1, 0, 0),
                server("[2001:db8::1]:8080", Forward::Masq, 1, 0, 0),
            ],
        );
        v6.spec.persistent = Some(300);
        v6.spec.netmask = Netmask::V6(64);
        v6.spec.pe = Some("sip".to_string());

        TableView {
            services: vec![v6, dns, tls, web],
        }
    }

    fn numeric() -> ListOpts {
        ListOpts {
            numeric: true,
            ..ListOpts::default()
        }
    }

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
    fn sched_flags_words() {
        assert_eq!(
            sched_flag_names("sh", SCHED_FLAG_1 | SCHED_FLAG_2),
            ["sh-fallback", "sh-port"]
        );
        assert_eq!(sched_flag_names("mh", SCHED_FLAG_2), ["mh-port"]);
        assert_eq!(
            sched_flag_names("wlc", SCHED_FLAG_1 | SCHED_FLAG_3),
            ["flag-1", "flag-3"]
        );
        assert_eq!(json_sched_flags("sh", SCHED_FLAG_3), ["flag-3"]);
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
        // §2.14 real-binary sample without its FWM service; daemon order scrambled.
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

    fn conn(proto: Protocol, c: &str, v: &str, d: &str, state: &str, expires: u32) -> ConnEntry {
        ConnEntry {
            proto,
            client: c.parse().unwrap(),
            virt: v.parse().unwrap(),
            dest: d.parse().unwrap(),
            state: state.to_string(),
            expires,
            template: false,
        }
    }

    fn sample_conns() -> Vec<ConnEntry> {
        let mut template = conn(
            Protocol::Tcp,
            "192.168.1.0:0",
            "10.0.0.1:80",
            "192.168.10.2:80",
            "NONE",
            1799,
        );
        template.template = true;
        vec![
            conn(
                Protocol::Tcp,
                "192.168.1.100:54321",
                "10.0.0.1:80",
                "192.168.10.2:80",
                "ESTABLISHED",
                897,
            ),
            conn(
                Protocol::Tcp,
                "192.168.1.100:54322",
                "10.0.0.1:80",
                "192.168.10.3:8080",
                "TIME_WAIT",
                65,
            ),
            conn(
                Protocol::Udp,
                "192.168.1.101:35372",
                "10.0.0.1:53",
                "192.168.10.2:53",
                "UDP",
                299,
            ),
            template,
            conn(
                Protocol::Udp,
                "192.168.1.102:5060",
                "10.0.0.1:5060",
                "192.168.10.4:5060",
                "NONE",
                179,
            ),
            conn(
                Protocol::Tcp,
                "[2001:db8::64]:54321",
                "[2001:db8::10]:80",
                "[2001:db8::2]:80",
                "SYN_RECV",
                59,
            ),
        ]
    }

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

    #[test]
    fn json_list_schema() {
        let hc = serde_json::json!({"kind": null, "interval_ms": null, "timeout_ms": null, "rise": null, "fall": null,
                          "jitter_ms": null, "addr": null, "port": null, "initial_up": null,
                          "http_path": null, "http_host": null, "http_status": null, "http_body": null,
                          "exec": null, "udp_send": null, "udp_expect": null});
        let v: serde_json::Value =
            serde_json::from_str(&json_list(&sample(), &ListOpts::default())).unwrap();
        assert_eq!(v["version"], "1.2.1");
        let services = v["services"].as_array().unwrap();
        assert_eq!(services.len(), 4);
        let tls = &services[1];
        assert_eq!(
            *tls,
            serde_json::json!({
                "protocol": "TCP", "address": "192.168.100.10", "port": 443, "scheduler": "sh",
                "persistent": 1800, "netmask": "255.255.255.0", "sched_flags": ["sh-fallback"],
                "ops": false, "pe": null,
                "health_check": hc.clone(), "slow_start": null, "sorry_server": null, "sorry_active": false,
                "stats": {"conns": 100_000_000_000u64, "inpkts": 99_999_999_999_999u64,
                          "outpkts": 100_000_000_000_000u64, "inbytes": u64::MAX, "outbytes": 0},
                "rates": {"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0},
                "servers": [{
                    "address": "10.0.0.1", "port": 443, "forward": "Route", "weight": 1,
                    "u_threshold": 0, "l_threshold": 0, "active_conns": 3, "inactive_conns": 1,
                    "persist_conns": 7,
                    "health_check": hc.clone(), "slow_start": null,
                    "health": {"state": "UP", "since_secs": 75, "check": "tcp", "last_ok": true,
                               "latency_us": 180, "reason": "connected", "effective_weight": null},
                    "stats": {"conns": 0, "inpkts": 0, "outpkts": 0, "inbytes": 0, "outbytes": 0},
                    "rates": {"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0}
                }]
            })
        );
        assert_eq!(services[0]["servers"][0]["address"], "10.0.0.1");
        assert_eq!(services[0]["persistent"], serde_json::Value::Null);
        assert_eq!(services[0]["netmask"], "255.255.255.255");
        assert_eq!(services[2]["protocol"], "UDP");
        assert_eq!(services[3]["address"], "2001:db8::10");
        assert_eq!(services[3]["netmask"], "64");
        assert_eq!(services[3]["pe"], "sip");
        let unsorted: serde_json::Value = serde_json::from_str(&json_list(
            &sample(),
            &ListOpts {
                nosort: true,
                ..ListOpts::default()
            },
        ))
        .unwrap();
        assert_eq!(
            unsorted["services"][0]["servers"][0]["address"],
            "2001:db8::2"
        );
    }

    #[test]
    fn json_connections_schema() {
        let v: serde_json::Value =
            serde_json::from_str(&json_connections(&sample_conns())).unwrap();
        assert_eq!(
            v["connections"][3],
            serde_json::json!({
                "protocol": "TCP",
                "client": {"address": "192.168.1.0", "port": 0},
                "virtual": {"address": "10.0.0.1", "port": 80},
                "destination": {"address": "192.168.10.2", "port": 80},
                "state": "NONE", "expires": 1799, "template": true
            })
        );
        assert_eq!(v["connections"][5]["client"]["address"], "2001:db8::64");
        assert!(json_connections(&[]).contains("\"connections\": []"));
    }
}
