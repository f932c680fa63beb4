//! The sample data of the output tests: the reference's table and
//! connection list, and builders for services and servers.

use super::ListOpts;
use rvs::ctl::proto::{
    ConnEntry, Forward, Netmask, Protocol, Rates, RealServerSpec, ServerView, ServiceKey,
    ServiceSpec, ServiceView, Stats, TableView, SCHED_FLAG_1,
};
use std::net::Ipv4Addr;

pub(super) fn server(
    addr: &str,
    fwd: Forward,
    weight: u32,
    active: u32,
    inactive: u32,
) -> ServerView {
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

pub(super) fn service(
    proto: Protocol,
    addr: &str,
    sched: &str,
    servers: Vec<ServerView>,
) -> ServiceView {
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

pub(super) fn stats(v: [u64; 5]) -> Stats {
    Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
    }
}

pub(super) fn rates(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        inpps: v[1],
        outpps: v[2],
        inbps: v[3],
        outbps: v[4],
    }
}

/// The reference's sample table (ipvsadm's “Default listing (`-L`, `-L -n`)” to “`-S` / `--save` (rule format)”) without its FWM services, in
/// daemon order: services not in listing order, servers most recent first.
pub(super) fn sample() -> TableView {
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

pub(super) fn numeric() -> ListOpts {
    ListOpts {
        numeric: true,
        ..ListOpts::default()
    }
}

pub(super) fn conn(
    proto: Protocol,
    c: &str,
    v: &str,
    d: &str,
    state: &str,
    expires: u32,
) -> ConnEntry {
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

pub(super) fn sample_conns() -> Vec<ConnEntry> {
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
