//! The daemon: control plane (table owner, socket server, state file) and
//! data plane (listeners, TCP/UDP forwarding, schedulers, counters); see
//! the crate's overview for the rooms and the arrows between them.
//!
//! ```text
//! rvsadm/rvstop ──unix socket──▶ control ──mpsc──▶ table task ──▶ store (fsync)
//!                                   │ reads            │ prepare/commit
//!                                   ▼                  ▼
//!                              Snapshot (ArcSwap) ◀── dataplane ──▶ listeners
//!                                                        per service: tcp / udp
//!                                                        ArcSwap<ServiceRt> slot
//! ```

pub mod control;
pub mod dataplane;
pub mod error;
pub mod health;
pub mod host;
pub(crate) mod metrics;
pub(crate) mod sched;
pub(crate) mod service;
pub(crate) mod state;
pub mod store;
pub mod table;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use dataplane::DataPlane;
use state::shared::{Shared, SharedTimeouts};
use store::Store;

pub use error::DaemonError;

/// Settings from rvsd's flags.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub socket: PathBuf,
    pub socket_mode: u32,
    pub socket_group: Option<String>,
    pub state_dir: PathBuf,
    /// Grace period for running connections at shutdown.
    pub drain_timeout: Duration,
    /// Cap on concurrent proxied TCP connections (lowered to what
    /// RLIMIT_NOFILE allows, see `state::budget::Budget`).
    pub max_connections: usize,
    /// Cap on concurrent UDP flows (`None`: half the host's ephemeral
    /// ports), likewise lowered.
    pub max_udp_flows: Option<usize>,
    /// Idle limit of a UDP flow the real server has not answered (at most
    /// the `udp` timeout).
    pub udp_unreplied_timeout: Duration,
    /// Consecutive failed connects that mark a real server failed.
    pub fail_after: u32,
    /// Where to serve Prometheus `/metrics` (off when `None`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Active check of TCP services that configure none (`tcp`, or `none`).
    pub default_check: crate::ctl::proto::CheckKind,
    /// Threads that run the data plane (listeners and connections).
    pub worker_threads: usize,
}

/// Run the daemon until `shutdown` resolves, then drain and return.
pub async fn run(
    cfg: DaemonConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let group = cfg
        .socket_group
        .as_deref()
        .map(|g| control::group_gid(g).map(|gid| (g.to_string(), gid)))
        .transpose()
        .map_err(DaemonError::Startup)?;
    // Refuse early when another rvsd owns the socket, or the path is not a
    // socket, or its directory is unsafe (before touching ports).
    control::check_socket_path(&cfg.socket, cfg.socket_mode).map_err(DaemonError::Startup)?;
    // One rvsd per state directory, held until this function returns.
    let _state_lock = store::lock(&cfg.state_dir).map_err(DaemonError::Startup)?;
    let metrics = match cfg.metrics_listen {
        Some(addr) => Some(metrics::bind(addr).await.map_err(DaemonError::Startup)?),
        None => None,
    };
    let mut store = Store::new(&cfg.state_dir);
    let (table, loaded) = store.load().map_err(DaemonError::Store)?;
    let workers =
        dataplane::workers::Workers::start(cfg.worker_threads).map_err(DaemonError::Threads)?;
    let budget = fd_budget(&cfg);
    let shared = Arc::new(Shared {
        timeouts: SharedTimeouts::new(table.timeouts()),
        budget,
        udp_unreplied_ms: (cfg.udp_unreplied_timeout.as_millis() as u64).max(1),
        udp_refused: Default::default(),
        udp_open_failed: Default::default(),
        accept_failed: Default::default(),
        tcp_at_cap: Default::default(),
        udp_per_service: AtomicUsize::new(usize::MAX),
        live: AtomicUsize::new(0),
        // One count per thread that runs.
        loads: state::threads::Loads::new(workers.threads()),
        fail_after: cfg.fail_after.max(1),
        events: Arc::new(state::events::EventLog::default()),
        default_check: cfg.default_check,
    });
    let mut dp = DataPlane::new(shared.clone(), workers);
    let prepared = dp.prepare(&table).map_err(|source| DaemonError::Restore {
        path: store.path().to_path_buf(),
        source,
    })?;
    dp.commit(&table, prepared);
    tracing::info!(services = table.services().len(), state = %store.path().display(), journal_records = loaded.replayed, "table restored");
    let caps = shared.budget.caps();
    tracing::info!(
        "connection cap {} (RLIMIT_NOFILE {}, reserve {}, {} listening sockets), UDP flow cap {}",
        caps.tcp,
        shared.budget.limit,
        shared.budget.reserve,
        caps.listeners,
        caps.udp
    );
    if caps.tcp < shared.budget.max_tcp || caps.udp < shared.budget.max_udp {
        tracing::warn!(
            "RLIMIT_NOFILE {} lowers the caps from --max-connections {} / --max-udp-flows {}: \
             raise it (LimitNOFILE= in the systemd unit, or ulimit -n) for more",
            shared.budget.limit,
            shared.budget.max_tcp,
            shared.budget.max_udp
        );
    }
    // One fresh snapshot of what is live (folds the journal in, upgrades an
    // older format). If it cannot be written, the files on disk still hold
    // the table and the first change tries again.
    if let Err(e) = store.compact(&table) {
        tracing::warn!(error = %e, "could not rewrite the state file at start");
    }

    let listener = control::bind_socket(&cfg.socket, cfg.socket_mode, group.as_ref().map(|g| g.1))
        .map_err(DaemonError::Socket)?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .map_err(|e| DaemonError::Socket(format!("control socket: {e}")))?;
    let published = dp.published();
    let (tx, rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let auth = Arc::new(control::Auth {
        daemon_uid: nix::unistd::getuid().as_raw(),
        group,
    });
    let meta = Arc::new(control::Meta {
        started: Instant::now(),
    });
    let server = control::Server {
        tx,
        published: published.clone(),
        auth,
        meta: meta.clone(),
        events: shared.events.clone(),
    };
    let server = tokio::spawn(control::serve(server, listener, stop_rx.clone()));
    let table_task = tokio::spawn(control::table_task(table, store, dp, rx));
    if let Some(l) = metrics {
        tracing::info!(listen = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /metrics");
        metrics::start(
            l,
            published.clone(),
            shared.clone(),
            meta.started,
            stop_rx.clone(),
        )
        .map_err(DaemonError::Startup)?;
    }
    let tick = tokio::spawn(tick(published, stop_rx));
    tracing::info!(socket = %cfg.socket.display(), "rvsd ready");

    shutdown.await;
    tracing::info!("shutting down: no new connections");
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = std::fs::remove_file(&cfg.socket);
    let _ = tick.await;
    // The control server held the only sender: the table task ends now.
    let mut dp = table_task
        .await
        .map_err(|e| DaemonError::TableTask(e.to_string()))?;
    dp.stop_all();
    drain(&dp, cfg.drain_timeout).await;
    Ok(())
}

/// The descriptor budget from the open-files limit in force (rvsd raised
/// the soft limit to the hard one at start), the descriptors already open
/// (stdio, log, the event loops) and the flags.
fn fd_budget(cfg: &DaemonConfig) -> state::budget::Budget {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => usize::try_from(soft).unwrap_or(usize::MAX),
        // Unlimited, or unknown: the kernel's own ceiling (fs.nr_open).
        _ => std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20),
    };
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |d| d.count());
    let reserve = state::budget::reserve(limit, open);
    let max_udp = cfg.max_udp_flows.unwrap_or_else(|| {
        // Each flow binds an ephemeral port of its own: keep half of the
        // range for the rest of the host (its resolver, for one).
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|v| v.parse::<usize>().ok());
                Some((it.next()??, it.next()??))
            })
            .map_or(28_232, |(lo, hi)| hi.saturating_sub(lo) + 1);
        (range / 2).max(1)
    });
    state::budget::Budget::new(limit, reserve, cfg.max_connections, max_udp)
}

async fn drain(dp: &DataPlane, grace: Duration) {
    let deadline = Instant::now() + grace;
    loop {
        let live = dp.live_connections();
        if live == 0 {
            tracing::info!("all connections finished");
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                open = live,
                grace_secs = grace.as_secs(),
                "drain timeout: closing the remaining connections"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every 2 s: sample the rate estimators and expire persistence templates.
async fn tick(
    published: Arc<arc_swap::ArcSwap<service::Snapshot>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = every.tick() => {}
        }
        let snap = published.load();
        for svc in &snap.services {
            svc.state.est.sample(svc.state.counters.snapshot());
            for d in &svc.dests {
                d.state.est.sample(d.state.counters.snapshot());
            }
            if svc.spec.persistent.is_some() {
                svc.expire_templates();
            }
        }
    }
}
