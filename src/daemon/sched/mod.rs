//! Schedulers: the kernel IPVS algorithms (see ../shared/reference/ipvsadm.md §3).
//!
//! A scheduler is built when the service's real-server list changes
//! ([`build`]) — expensive state such as wrr steps or Maglev tables is made
//! there — and asked per new connection ([`Scheduler::pick`]). `dests` is
//! always in table order: most recently added first, as the kernel's list.
//! Picking takes at most a per-service lock, never a global one.

use std::net::SocketAddr;
use std::sync::Arc;

use super::stats::ServerState;

/// What a scheduler sees of one real server.
#[derive(Debug, Clone)]
pub struct Dest {
    pub addr: SocketAddr,
    /// Configured weight (0 = quiesced).
    pub weight: u32,
    /// Last non-zero weight (used by mh so that quiescing keeps the table).
    pub last_weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub state: Arc<ServerState>,
}

impl Dest {
    pub fn new(addr: SocketAddr, weight: u32) -> Dest {
        Dest {
            addr,
            weight,
            last_weight: weight,
            u_threshold: 0,
            l_threshold: 0,
            state: Arc::new(ServerState::default()),
        }
    }
    /// `active * 256 + inactive`.
    pub fn overhead(&self) -> u64 {
        self.state.overhead()
    }
}

/// Per-pick context: who connects, to which virtual address, and which
/// servers must not be chosen this time (they just failed a connect).
#[derive(Debug, Clone, Copy)]
pub struct PickCtx<'a> {
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub skip: &'a [usize],
}

impl PickCtx<'_> {
    /// The kernel's OVERLOAD test, widened: overloaded, marked down, or
    /// excluded for this pick. Every scheduler treats these as unavailable.
    pub fn blocked(&self, dests: &[Dest], i: usize) -> bool {
        let d = &dests[i];
        d.state.is_overloaded() || d.state.is_down() || self.skip.contains(&i)
    }
}

/// A built scheduler for one service.
pub trait Scheduler: Send + Sync + std::fmt::Debug {
    /// Choose a real server (index into `dests`) for a new connection, or
    /// `None` when no server is available.
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize>;
}

/// True when `name` is a scheduler rvsd implements.
pub fn exists(name: &str) -> bool {
    crate::ctl::proto::SCHEDULERS.contains(&name)
}

/// Build the scheduler `name` for `dests` with `-b` flags `flags`.
/// Returns `None` for an unknown name.
pub fn build(name: &str, flags: u32, dests: &[Dest]) -> Option<Box<dyn Scheduler>> {
    let _ = (flags, dests);
    match name {
        _ => None,
    }
}
