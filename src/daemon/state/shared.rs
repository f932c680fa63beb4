//! Settings and shared objects every listener and connection uses.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crate::ctl::proto::{CheckKind, Timeouts};

use super::budget::{Budget, RateLog};
use super::events::EventLog;

/// Idle timeouts shared by every connection; `--set` updates them in place.
#[derive(Debug)]
pub(crate) struct SharedTimeouts {
    tcp: AtomicU64,
    tcpfin: AtomicU64,
    udp: AtomicU64,
}

impl SharedTimeouts {
    pub(crate) fn new(t: Timeouts) -> SharedTimeouts {
        let s = SharedTimeouts {
            tcp: AtomicU64::new(0),
            tcpfin: AtomicU64::new(0),
            udp: AtomicU64::new(0),
        };
        s.set(t);
        s
    }
    pub(crate) fn set(&self, t: Timeouts) {
        self.tcp.store(t.tcp as u64 * 1000, Relaxed);
        self.tcpfin.store(t.tcpfin as u64 * 1000, Relaxed);
        self.udp.store(t.udp as u64 * 1000, Relaxed);
    }
    pub(crate) fn tcp_ms(&self) -> u64 {
        self.tcp.load(Relaxed)
    }
    pub(crate) fn tcpfin_ms(&self) -> u64 {
        self.tcpfin.load(Relaxed)
    }
    pub(crate) fn udp_ms(&self) -> u64 {
        self.udp.load(Relaxed)
    }
}

/// Settings and shared objects every listener and connection uses.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) timeouts: SharedTimeouts,
    /// Caps of concurrent TCP connections and UDP flows, derived from
    /// RLIMIT_NOFILE and the flags.
    pub(crate) budget: Budget,
    /// Idle limit of a UDP flow the real server never answered (ms): at
    /// most the `udp` timeout.
    pub(crate) udp_unreplied_ms: u64,
    /// Datagrams from new clients dropped because the UDP flow cap was
    /// reached (logged at most every few seconds).
    pub(crate) udp_refused: RateLog,
    /// Upstream UDP sockets that could not be opened (no descriptor, no
    /// ephemeral port).
    pub(crate) udp_open_failed: RateLog,
    /// Failed accepts (EMFILE, ENFILE, ENOBUFS...).
    pub(crate) accept_failed: RateLog,
    /// Times an accept loop found the TCP cap reached (new connections
    /// then wait in the listen backlog).
    pub(crate) tcp_at_cap: RateLog,
    /// Flows one UDP service may hold: the UDP cap, or three quarters of
    /// it when there are other UDP services (a flood of one leaves the
    /// others room). Set by the table task on every change.
    pub(crate) udp_per_service: AtomicUsize,
    /// Live connections and flows across all services (for draining).
    pub(crate) live: AtomicUsize,
    /// Live TCP connections per data-plane thread (where accepts put them).
    pub(crate) loads: super::threads::Loads,
    /// Consecutive connect failures that mark a real server failed.
    pub(crate) fail_after: u32,
    /// Health state changes, for subscribers.
    pub(crate) events: Arc<EventLog>,
    /// Active check of TCP services that configure none (`--default-check`).
    pub(crate) default_check: CheckKind,
}
