//! Live per-real-server and per-service state shared by the data plane:
//! connection counts, the overload/down flags and cumulative counters, all
//! atomics so that the data path never takes a lock to account.
//!
//! A `ServerState` lives as long as its real server stays in its service; the
//! table task carries it across snapshot swaps by (service, server) key, so
//! editing a weight keeps counts and counters.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::ctl::proto::Stats;

/// Cumulative traffic counters (never reset; `-Z` moves a zero point).
#[derive(Debug, Default)]
pub struct Counters {
    pub conns: AtomicU64,
    pub inpkts: AtomicU64,
    pub outpkts: AtomicU64,
    pub inbytes: AtomicU64,
    pub outbytes: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        Stats {
            conns: self.conns.load(Relaxed),
            inpkts: self.inpkts.load(Relaxed),
            outpkts: self.outpkts.load(Relaxed),
            inbytes: self.inbytes.load(Relaxed),
            outbytes: self.outbytes.load(Relaxed),
        }
    }
}

/// Live state of one real server inside one service.
#[derive(Debug, Default)]
pub struct ServerState {
    /// Connections in an active state (TCP established and handshaking).
    pub active: AtomicU32,
    /// Connections in an inactive state (TCP closing, every UDP flow).
    pub inactive: AtomicU32,
    /// Persistence templates pointing at this server.
    pub persist: AtomicU32,
    /// Upper threshold reached (kernel OVERLOAD flag): schedulers skip it.
    pub overloaded: AtomicBool,
    /// Marked failed (connect failures, later health checks): schedulers skip it.
    pub down: AtomicBool,
    pub counters: Counters,
}

impl ServerState {
    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Relaxed)
    }
    /// The kernel's load measure: `active * 256 + inactive`.
    pub fn overhead(&self) -> u64 {
        ((self.active() as u64) << 8) + self.inactive() as u64
    }
    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }
    pub fn is_down(&self) -> bool {
        self.down.load(Relaxed)
    }
}
