//! The registry of live connections and UDP flows (`-L -c`), and the
//! long-lived state of one virtual service that holds it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::counters::{Counters, Estimator};
use super::now_ms;
use super::server::ServerState;
use super::shared::{Shared, SharedTimeouts};
use super::threads;

/// Connection state as `-L -c` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ConnState {
    Established = 0,
    /// The server closed its side first.
    FinWait = 1,
    /// The client closed its side first.
    CloseWait = 2,
    Udp = 3,
}

impl ConnState {
    fn from_u8(v: u8) -> ConnState {
        match v {
            0 => ConnState::Established,
            1 => ConnState::FinWait,
            2 => ConnState::CloseWait,
            _ => ConnState::Udp,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            ConnState::Established => "ESTABLISHED",
            ConnState::FinWait => "FIN_WAIT",
            ConnState::CloseWait => "CLOSE_WAIT",
            ConnState::Udp => "UDP",
        }
    }
}

/// One live connection or UDP flow, registered for `-L -c`.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) client: SocketAddr,
    pub(crate) dest: SocketAddr,
    pub(crate) state: AtomicU8,
    /// `now_ms()` of the last byte seen in either direction.
    pub(crate) last: AtomicU64,
}

impl ConnInfo {
    pub(crate) fn new(client: SocketAddr, dest: SocketAddr, state: ConnState) -> ConnInfo {
        ConnInfo {
            client,
            dest,
            state: AtomicU8::new(state as u8),
            last: AtomicU64::new(now_ms()),
        }
    }
    pub(crate) fn state(&self) -> ConnState {
        ConnState::from_u8(self.state.load(Relaxed))
    }
    pub(crate) fn touch(&self) {
        self.last.store(now_ms(), Relaxed);
    }
    /// The idle limit that applies in the current state.
    pub(crate) fn idle_limit_ms(&self, t: &SharedTimeouts) -> u64 {
        match self.state() {
            ConnState::Established => t.tcp_ms(),
            ConnState::FinWait | ConnState::CloseWait => t.tcpfin_ms(),
            ConnState::Udp => t.udp_ms(),
        }
    }
}

/// A persistence template: a client network pinned to a real server.
#[derive(Debug)]
pub(crate) struct Template {
    /// Tells this template from a later one for the same client network.
    pub(crate) id: u64,
    pub(crate) dest: SocketAddr,
    pub(crate) server: Arc<ServerState>,
    pub(crate) expires_ms: u64,
    /// Connections currently attached (the template outlives its timeout while > 0).
    pub(crate) refs: u32,
    pub(crate) assured: bool,
}

impl Drop for Template {
    fn drop(&mut self) {
        self.server.persist.fetch_sub(1, Relaxed);
    }
}

/// Parts of a service's connection registry (a power of two).
const SHARDS: usize = 16;

/// State of one virtual service that survives edits of its definition.
#[derive(Debug)]
pub(crate) struct ServiceState {
    pub(crate) counters: Counters,
    pub(crate) est: Estimator,
    pub(crate) next_conn: AtomicU64,
    /// Live connections for `-L -c`, in one part per data-plane thread
    /// (modulo [`SHARDS`]): a connection's thread is the only one that
    /// adds or removes it, so the lock is not contended (only a listing
    /// takes it from elsewhere).
    pub(crate) conns: [Mutex<HashMap<u64, Arc<ConnInfo>>>; SHARDS],
    pub(crate) templates: Mutex<HashMap<IpAddr, Template>>,
    /// Live connections and flows of this service (for draining).
    pub(crate) live: AtomicUsize,
}

impl ServiceState {
    /// A service's state, its counters in one part per data-plane thread.
    pub(crate) fn new(threads: usize) -> ServiceState {
        ServiceState {
            counters: Counters::new(threads),
            est: Default::default(),
            next_conn: Default::default(),
            conns: Default::default(),
            templates: Default::default(),
            live: Default::default(),
        }
    }

    /// Register a connection for `-L -c`; the guard unregisters it.
    pub(crate) fn register(self: &Arc<Self>, info: Arc<ConnInfo>) -> ConnRegistration {
        // The low bits of the id name the part.
        let shard = threads::this_thread() % SHARDS;
        let id = (self.next_conn.fetch_add(1, Relaxed) << SHARDS.trailing_zeros()) | shard as u64;
        self.conns[shard]
            .lock()
            .expect("conns lock")
            .insert(id, info);
        ConnRegistration {
            svc: self.clone(),
            id,
        }
    }
}

/// Removes a connection from its service's registry when dropped.
#[derive(Debug)]
pub(crate) struct ConnRegistration {
    svc: Arc<ServiceState>,
    id: u64,
}

impl Drop for ConnRegistration {
    fn drop(&mut self) {
        let shard = (self.id % SHARDS as u64) as usize;
        self.svc.conns[shard]
            .lock()
            .expect("conns lock")
            .remove(&self.id);
    }
}

/// One live TCP connection or UDP flow, counted in its service's live
/// count (`rvs_open_connections`, the live total of subscription updates,
/// the UDP per-service share) and in the daemon's (draining) from `new`
/// until dropped. Both protocols count through this one type.
#[derive(Debug)]
pub(crate) struct FlowGuard {
    shared: Arc<Shared>,
    service: Arc<ServiceState>,
}

impl FlowGuard {
    pub(crate) fn new(shared: &Arc<Shared>, service: &Arc<ServiceState>) -> FlowGuard {
        shared.live.fetch_add(1, Relaxed);
        service.live.fetch_add(1, Relaxed);
        FlowGuard {
            shared: shared.clone(),
            service: service.clone(),
        }
    }
}

impl Drop for FlowGuard {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Relaxed);
        self.service.live.fetch_sub(1, Relaxed);
    }
}
