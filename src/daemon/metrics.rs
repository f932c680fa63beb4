//! Prometheus exposition: `rvsd --metrics-listen ADDR:PORT` serves
//! `GET /metrics` (text format 0.0.4) over hyper.
//!
//! Series are labelled by what identifies them in the table — protocol,
//! virtual address and port, real-server address and port — never by
//! generated names. Counters are cumulative since the service or server
//! appeared (`-Z` does not reset them: Prometheus counters only go up).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::sync::watch;

use super::runtime::Snapshot;
use super::workers::Loads;

/// Bind the metrics listener (so a bad address fails at start).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))
}

/// Serve `/metrics` until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    published: Arc<ArcSwap<Snapshot>>,
    shared: Arc<super::dataplane::Shared>,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (published, shared) = (published.clone(), shared.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (published, shared) = (published.clone(), shared.clone());
                async move {
                    Ok::<_, Infallible>(respond(&req, &published.load(), &shared.loads, started))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

fn respond(
    req: &Request<Incoming>,
    snap: &Snapshot,
    loads: &Loads,
    started: Instant,
) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render(snap, loads, started),
        ),
        (&hyper::Method::GET, "/") => (
            StatusCode::OK,
            "text/plain",
            "rvsd metrics: see /metrics\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try GET /metrics\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
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

/// The whole exposition text for one snapshot.
pub fn render(snap: &Snapshot, loads: &Loads, started: Instant) -> String {
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
    type Gauge = fn(&super::sched::Dest) -> u64;
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
