//! `rvsd --demo`: two small HTTP back ends on loopback and a round-robin
//! service in front of them, so a newcomer can curl a working balancer.

use std::path::{Path, PathBuf};

use rvs::ctl::proto::{Protocol, RealServerSpec, Request, ServiceKey, ServiceSpec};
use rvs::daemon::store::Store;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const VIP: &str = "127.0.0.1:8080";
pub const BACKENDS: [&str; 2] = ["127.0.0.1:8081", "127.0.0.1:8082"];

/// The demo's state directory: removed at exit unless the user gave one.
pub struct DemoDir {
    path: PathBuf,
    temporary: bool,
}

impl DemoDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Start the back ends and write the demo table; print what to try.
pub async fn prepare(state_dir: Option<PathBuf>, socket: &Path) -> Result<DemoDir, String> {
    let dir = match state_dir {
        Some(p) => DemoDir {
            path: p,
            temporary: false,
        },
        None => DemoDir {
            path: std::env::temp_dir().join(format!("rvs-demo-{}", std::process::id())),
            temporary: true,
        },
    };
    let hits: &'static [AtomicU64; 2] = Box::leak(Box::new([AtomicU64::new(0), AtomicU64::new(0)]));
    for (i, addr) in BACKENDS.iter().enumerate() {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot start demo back end on {addr}: {e}"))?;
        tokio::spawn(backend(listener, i + 1, addr, &hits[i]));
    }
    tokio::spawn(show_spread(hits));
    let mut store = Store::new(dir.path());
    let (mut table, _) = store.load().map_err(|e| e.to_string())?;
    let key = ServiceKey {
        proto: Protocol::Tcp,
        addr: VIP.parse().expect("valid"),
    };
    if table.service(&key).is_none() {
        let mut reqs = vec![Request::AddService(ServiceSpec {
            scheduler: "rr".into(),
            ..ServiceSpec::new(key)
        })];
        for b in BACKENDS {
            reqs.push(Request::AddServer {
                service: key,
                server: RealServerSpec::new(b.parse().expect("valid")),
            });
        }
        table.apply_batch(&reqs).map_err(|(_, e)| e.to_string())?;
        store.compact(&table).map_err(|e| e.to_string())?;
    }
    let sock = socket.display();
    println!(
        "rvs demo: balancing tcp {VIP} round-robin over {} and {}",
        BACKENDS[0], BACKENDS[1]
    );
    println!("  try:   for i in 1 2 3 4; do curl -s http://{VIP}/; done");
    println!("  list:  cargo run --release --bin rvsadm -- --socket {sock} -L -n --stats");
    println!("  stop:  Ctrl-C");
    Ok(dir)
}

/// Print how the requests spread over the back ends whenever it changes.
async fn show_spread(hits: &'static [AtomicU64; 2]) {
    let mut last = [0, 0];
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = [hits[0].load(Relaxed), hits[1].load(Relaxed)];
        if now != last {
            println!(
                "rvs demo: requests so far: back end 1 ({}) {}, back end 2 ({}) {}",
                BACKENDS[0], now[0], BACKENDS[1], now[1]
            );
            last = now;
        }
    }
}

async fn backend(
    listener: tokio::net::TcpListener,
    n: usize,
    addr: &'static str,
    hits: &'static AtomicU64,
) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 65536 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => seen.extend_from_slice(&buf[..k]),
                }
            }
            if seen.is_empty() {
                return; // a health check: connected and closed
            }
            hits.fetch_add(1, Relaxed);
            let body = format!("Hello from back end {n} ({addr})\n");
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}
