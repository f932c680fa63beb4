//! Sample tables and keys for the tests of `app` and `ui`.

use super::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rvs::ctl::proto::{
    DaemonInfo, Forward, Protocol, RealServerSpec, ServiceSpec, Stats, PROTOCOL_VERSION,
};

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

pub fn server(addr: &str, weight: u32, active: u32, cps: u64, bps: u64) -> ServerView {
    let mut spec = RealServerSpec::new(addr.parse().unwrap());
    spec.weight = weight;
    spec.u_threshold = 7;
    ServerView {
        spec,
        shown_forward: Forward::Masq,
        active_conns: active,
        inactive_conns: active / 2,
        persist_conns: 0,
        stats: Stats::default(),
        rates: Rates {
            cps,
            inpps: 0,
            outpps: 0,
            inbps: bps,
            outbps: bps * 3,
        },
        health: rvs::ctl::proto::HealthView {
            state: if weight == 0 {
                rvs::ctl::proto::HealthState::Drain
            } else {
                rvs::ctl::proto::HealthState::Up
            },
            since_secs: 60,
            check: "tcp".into(),
            last_ok: Some(true),
            latency_us: Some(150),
            reason: "connected".into(),
            effective_weight: None,
        },
    }
}

pub fn service(addr: &str, proto: Protocol, servers: Vec<ServerView>) -> ServiceView {
    let key = ServiceKey {
        proto,
        addr: addr.parse().unwrap(),
    };
    let mut rates = Rates::default();
    for r in &servers {
        rates.cps += r.rates.cps;
        rates.inbps += r.rates.inbps;
        rates.outbps += r.rates.outbps;
    }
    ServiceView {
        spec: ServiceSpec::new(key),
        stats: Stats::default(),
        rates,
        servers,
        sorry_active: false,
    }
}

/// Two services: a web VIP with three servers and a DNS VIP with one.
pub fn sample_update() -> Update {
    Update {
        daemon: DaemonInfo {
            protocol: PROTOCOL_VERSION,
            version: "0.1.0".to_string(),
            pid: 4242,
            uptime_secs: 3_725,
        },
        table: TableView {
            services: vec![
                service(
                    "10.0.0.1:80",
                    Protocol::Tcp,
                    vec![
                        server("192.168.1.12:8080", 2, 120, 30, 2048),
                        server("192.168.1.11:8080", 1, 80, 12, 1_500_000),
                        server("192.168.1.13:8080", 0, 3, 0, 0),
                    ],
                ),
                service(
                    "10.0.0.2:53",
                    Protocol::Udp,
                    vec![server("192.168.2.1:53", 5, 1500, 450, 90)],
                ),
            ],
        },
        live_connections: 1703,
        events: Vec::new(),
    }
}

pub fn sample_app() -> App {
    let now = Instant::now();
    let mut app = App::new("/tmp/rvsd.sock", 1000, now);
    app.ingest(sample_update(), now);
    app
}

pub fn skey(s: &str, proto: Protocol) -> ServiceKey {
    ServiceKey {
        proto,
        addr: s.parse().unwrap(),
    }
}

pub fn web() -> ServiceKey {
    skey("10.0.0.1:80", Protocol::Tcp)
}
