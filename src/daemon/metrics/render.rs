//! The exposition text of `/metrics`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::ListenerStats;
use crate::daemon::service::Snapshot;
use crate::daemon::state::shared::Shared;
use crate::daemon::state::threads::Loads;

/// The listener's own series, after the table's.
pub(super) fn render_listener(out: &mut String, stats: &ListenerStats) {
    let mut f = Family { out };
    f.head(
        "rvs_metrics_connections",
        "gauge",
        "Connections to this metrics listener open now.",
    );
    let _ = writeln!(
        f.out,
        "rvs_metrics_connections {}",
        stats.open.load(Relaxed)
    );
    f.head(
        "rvs_metrics_connections_refused_total",
        "counter",
        "Connections to this metrics listener closed at once because the cap was reached.",
    );
    let _ = writeln!(
        f.out,
        "rvs_metrics_connections_refused_total {}",
        stats.refused.load(Relaxed)
    );
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }
}

fn svc_labels(proto: &str, addr: &SocketAddr) -> String {
    format!(
        "protocol=\"{proto}\",address=\"{}\",port=\"{}\"",
        addr.ip(),
        addr.port()
    )
}

/// The descriptor budget's caps and the events it counted.
pub(super) fn render_budget(out: &mut String, shared: &Shared) {
    let caps = shared.budget.caps();
    let mut f = Family { out };
    f.head(
        "rvs_connection_cap",
        "gauge",
        "Concurrent TCP connections and UDP flows allowed (derived from RLIMIT_NOFILE and the flags).",
    );
    let _ = writeln!(f.out, "rvs_connection_cap{{protocol=\"tcp\"}} {}", caps.tcp);
    let _ = writeln!(f.out, "rvs_connection_cap{{protocol=\"udp\"}} {}", caps.udp);
    let events: [(&str, &str, &crate::daemon::state::budget::RateLog); 4] = [
        (
            "rvs_tcp_cap_reached_total",
            "Times an accept found the TCP connection cap reached.",
            &shared.tcp_at_cap,
        ),
        (
            "rvs_accept_failures_total",
            "Accepts that failed (EMFILE, ENFILE, ENOBUFS...).",
            &shared.accept_failed,
        ),
        (
            "rvs_udp_flows_refused_total",
            "Datagrams of new UDP clients dropped at the UDP flow cap.",
            &shared.udp_refused,
        ),
        (
            "rvs_udp_upstream_open_failures_total",
            "Upstream UDP sockets that could not be opened.",
            &shared.udp_open_failed,
        ),
    ];
    for (name, help, log) in events {
        f.head(name, "counter", help);
        let _ = writeln!(f.out, "{name} {}", log.total.load(Relaxed));
    }
    f.head(
        "rvs_local_resource_errors_total",
        "counter",
        "Connects and health probes that failed for want of a resource of this host (descriptors, memory, buffers, local ports); never counted against a real server.",
    );
    let _ = writeln!(
        f.out,
        "rvs_local_resource_errors_total {}",
        crate::daemon::health::local_errors()
    );
}

/// The whole exposition text for one snapshot.
pub(crate) fn render(snap: &Snapshot, loads: &Loads, started: Instant) -> String {
    let mut out = String::with_capacity(4096 + snap.services.len() * 2048);
    let mut f = Family { out: &mut out };
    f.head("rvs_build_info", "gauge", "Version of this rvsd.");
    let _ = writeln!(
        f.out,
        "rvs_build_info{{version=\"{}\"}} 1",
        crate::ctl::proto::RVS_VERSION
    );
    f.head("rvs_uptime_seconds", "gauge", "Seconds since rvsd started.");
    let _ = writeln!(
        f.out,
        "rvs_uptime_seconds {:.3}",
        started.elapsed().as_secs_f64()
    );
    f.head(
        "rvs_virtual_services",
        "gauge",
        "Virtual services in the table.",
    );
    let _ = writeln!(f.out, "rvs_virtual_services {}", snap.services.len());
    f.head("rvs_real_servers", "gauge", "Real servers in the table.");
    let servers: usize = snap.services.iter().map(|s| s.dests.len()).sum();
    let _ = writeln!(f.out, "rvs_real_servers {servers}");
    f.head(
        "rvs_open_connections",
        "gauge",
        "Proxied TCP connections and UDP flows open now.",
    );
    let live: usize = snap
        .services
        .iter()
        .map(|s| s.state.live.load(Relaxed))
        .sum();
    let _ = writeln!(f.out, "rvs_open_connections {live}");
    f.head(
        "rvs_thread_connections",
        "gauge",
        "Proxied TCP connections open now per data-plane thread.",
    );
    for t in 0..loads.threads() {
        let _ = writeln!(
            f.out,
            "rvs_thread_connections{{thread=\"{t}\"}} {}",
            loads.get(t)
        );
    }

    type Get = fn(&crate::ctl::proto::Stats) -> u64;
    let counters: [(&str, &str, Get); 5] = [
        (
            "connections_total",
            "Connections (UDP: flows) scheduled.",
            |s| s.conns,
        ),
        (
            "in_packets_total",
            "Packets from clients (TCP segments, UDP datagrams).",
            |s| s.inpkts,
        ),
        ("out_packets_total", "Packets from real servers.", |s| {
            s.outpkts
        }),
        ("in_bytes_total", "Payload bytes from clients.", |s| {
            s.inbytes
        }),
        ("out_bytes_total", "Payload bytes from real servers.", |s| {
            s.outbytes
        }),
    ];
    for (suffix, help, get) in counters {
        let name = format!("rvs_service_{suffix}");
        f.head(&name, "counter", help);
        for svc in &snap.services {
            let l = svc_labels(svc.spec.key.proto.service_proto(), &svc.spec.key.addr);
            let _ = writeln!(
                f.out,
                "{name}{{{l}}} {}",
                get(&svc.state.counters.snapshot())
            );
        }
        let name = format!("rvs_real_server_{suffix}");
        f.head(&name, "counter", help);
        for svc in &snap.services {
            let l = svc_labels(svc.spec.key.proto.service_proto(), &svc.spec.key.addr);
            for d in &svc.dests {
                let _ = writeln!(
                    f.out,
                    "{name}{{{l},server_address=\"{}\",server_port=\"{}\"}} {}",
                    d.addr.ip(),
                    d.addr.port(),
                    get(&d.state.counters.snapshot())
                );
            }
        }
    }
    type Gauge = fn(&crate::daemon::sched::Dest) -> u64;
    let gauges: [(&str, &str, Gauge); 5] = [
        (
            "active_connections",
            "Connections in an active state (ActiveConn).",
            |d| d.state.active() as u64,
        ),
        (
            "inactive_connections",
            "Connections closing and UDP flows (InActConn).",
            |d| d.state.inactive() as u64,
        ),
        (
            "persistent_connections",
            "Persistence templates (PersistConn).",
            |d| d.state.persist.load(Relaxed) as u64,
        ),
        ("weight", "Configured weight (0 = quiesced).", |d| {
            d.weight as u64
        }),
        (
            "up",
            "1 when the real server is healthy, 0 when its checks or connects failed.",
            |d| u64::from(!d.state.is_down()),
        ),
    ];
    for (suffix, help, get) in gauges {
        let name = format!("rvs_real_server_{suffix}");
        f.head(&name, "gauge", help);
        for svc in &snap.services {
            let l = svc_labels(svc.spec.key.proto.service_proto(), &svc.spec.key.addr);
            for d in &svc.dests {
                let _ = writeln!(
                    f.out,
                    "{name}{{{l},server_address=\"{}\",server_port=\"{}\"}} {}",
                    d.addr.ip(),
                    d.addr.port(),
                    get(d)
                );
            }
        }
    }
    let name = "rvs_real_server_check_latency_seconds";
    f.head(
        name,
        "gauge",
        "Duration of the last active health check (absent before the first).",
    );
    for svc in &snap.services {
        let l = svc_labels(svc.spec.key.proto.service_proto(), &svc.spec.key.addr);
        for d in &svc.dests {
            let Some(us) = d.state.health.lock().expect("health lock").latency_us else {
                continue;
            };
            let _ = writeln!(
                f.out,
                "{name}{{{l},server_address=\"{}\",server_port=\"{}\"}} {:.6}",
                d.addr.ip(),
                d.addr.port(),
                us as f64 / 1e6
            );
        }
    }
    out
}
