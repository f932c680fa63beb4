//! Live state of one real server inside one service.
//!
//! A `ServerState` lives as long as its real server stays in its service; the
//! table task carries it across snapshot swaps by (service, server) key, so
//! editing a weight keeps counts and counters.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::ctl::proto::{RealServerSpec, ServiceSpec};

use super::counters::{Counters, Estimator};

/// The weight in effect: the configured one, ramped linearly over the
/// slow-start period after the server came up (or appeared).
pub(crate) fn effective_weight(
    svc: &ServiceSpec,
    srv: &RealServerSpec,
    state: &ServerState,
) -> u32 {
    let ramp = srv.slow_start.or(svc.slow_start).unwrap_or(0);
    if ramp == 0 || srv.weight == 0 {
        return srv.weight;
    }
    let up = state.health.lock().expect("health lock").up_since.elapsed();
    let ramp = Duration::from_secs(ramp as u64);
    if up >= ramp {
        return srv.weight;
    }
    let w = (srv.weight as u128 * up.as_millis() / ramp.as_millis().max(1)) as u32;
    w.clamp(1, srv.weight)
}

/// Live state of one real server inside one service.
#[derive(Debug)]
pub(crate) struct ServerState {
    /// Connections in an active state (TCP established and handshaking).
    pub(crate) active: AtomicU32,
    /// Connections in an inactive state (TCP closing, every UDP flow).
    pub(crate) inactive: AtomicU32,
    /// Persistence templates pointing at this server.
    pub(crate) persist: AtomicU32,
    /// Upper threshold reached (kernel OVERLOAD flag): schedulers skip it.
    pub(crate) overloaded: AtomicBool,
    /// Marked failed (connect failures, later health checks): schedulers skip it.
    pub(crate) down: AtomicBool,
    pub(crate) counters: Counters,
    /// Consecutive failed connects (passive health): reset by a success.
    pub(crate) connect_failures: AtomicU32,
    /// Consecutive connections the server failed (reset) after the client
    /// had spoken and before it answered (passive health): reset by a
    /// connection that ends cleanly.
    pub(crate) unanswered: AtomicU32,
    pub(crate) est: Estimator,
    /// An active health check runs for this server (so passive marking
    /// leaves recovery to it).
    pub(crate) checked: AtomicBool,
    /// Health details for listings; locked only on probes and state changes.
    pub(crate) health: Mutex<HealthInfo>,
}

/// What the health machinery knows of a server beyond the `down` flag.
#[derive(Debug)]
pub(crate) struct HealthInfo {
    /// When `down` last changed (or the server appeared).
    pub(crate) since: std::time::Instant,
    /// When the server last came up: the start of its slow-start ramp.
    pub(crate) up_since: std::time::Instant,
    pub(crate) last_ok: Option<bool>,
    pub(crate) latency_us: Option<u64>,
    pub(crate) reason: String,
    /// The effective check in words, e.g. "tcp" or "http GET /".
    pub(crate) check: String,
    /// How many times the server was marked down: an active check that
    /// sees this change under it knows the server was taken out by
    /// something else (passive checks) and counts `rise` afresh.
    pub(crate) takedowns: u64,
}

impl Default for HealthInfo {
    fn default() -> Self {
        let now = std::time::Instant::now();
        HealthInfo {
            since: now,
            up_since: now,
            last_ok: None,
            latency_us: None,
            reason: String::new(),
            check: "none".to_string(),
            takedowns: 0,
        }
    }
}

impl ServerState {
    /// A server's state, its counters in one part per data-plane thread.
    pub(crate) fn new(threads: usize) -> ServerState {
        ServerState {
            active: Default::default(),
            inactive: Default::default(),
            persist: Default::default(),
            overloaded: Default::default(),
            down: Default::default(),
            counters: Counters::new(threads),
            connect_failures: Default::default(),
            unanswered: Default::default(),
            est: Default::default(),
            checked: Default::default(),
            health: Default::default(),
        }
    }
    pub(crate) fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }
    pub(crate) fn inactive(&self) -> u32 {
        self.inactive.load(Relaxed)
    }
    /// The kernel's load measure: `active * 256 + inactive`.
    pub(crate) fn overhead(&self) -> u64 {
        ((self.active() as u64) << 8) + self.inactive() as u64
    }
    pub(crate) fn is_overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Relaxed)
    }
}
