//! Schedulers: the kernel IPVS algorithms (the kernel's `net/netfilter/ipvs/ip_vs_*.c`).
//!
//! A scheduler is built when the service's real-server list changes
//! ([`build`]) — expensive state such as wrr steps or Maglev tables is made
//! there — and asked per new connection ([`Scheduler::pick`]). `dests` is
//! always in table order: most recently added first, as the kernel's list.
//! Picking takes at most a per-service lock, never a global one.
//!
//! One algorithm per file, each following its kernel `ip_vs_<name>.c`;
//! shared helpers (weighted comparison, wlc walk, `hash_32`, address
//! folding, `hsiphash`) are in [`util`]. Throughout, the kernel's OVERLOAD
//! test is [`PickCtx::blocked`]. To keep the state the kernel keeps across
//! server-list changes (rr cursor, wrr `cw`, lblc/lblcr tables), build the
//! replacement with [`rebuild`] from the previous scheduler; [`build`]
//! starts afresh.

use std::net::SocketAddr;
use std::sync::Arc;

use super::state::server::ServerState;
use crate::ctl::proto::{SCHED_FLAG_1, SCHED_FLAG_2};

mod dh;
mod fo;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
pub(crate) mod util;
mod wlc;
mod wrr;

/// What a scheduler sees of one real server.
#[derive(Debug, Clone)]
pub(crate) struct Dest {
    pub(crate) addr: SocketAddr,
    /// Configured weight (0 = quiesced).
    pub(crate) weight: u32,
    /// Last non-zero weight (used by mh so that quiescing keeps the table).
    pub(crate) last_weight: u32,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    pub(crate) state: Arc<ServerState>,
}

impl Dest {
    /// A real server with state of its own (counters in one part).
    #[cfg(test)]
    pub(crate) fn new(addr: SocketAddr, weight: u32) -> Dest {
        Dest::with_state(addr, weight, Arc::new(ServerState::new(1)))
    }

    /// A real server with the given state.
    pub(crate) fn with_state(addr: SocketAddr, weight: u32, state: Arc<ServerState>) -> Dest {
        Dest {
            addr,
            weight,
            last_weight: weight,
            u_threshold: 0,
            l_threshold: 0,
            state,
        }
    }
    /// `active * 256 + inactive`.
    pub(crate) fn overhead(&self) -> u64 {
        self.state.overhead()
    }
}

/// Per-pick context: who connects, to which virtual address, and which
/// servers must not be chosen this time (they just failed a connect).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PickCtx<'a> {
    pub(crate) client: SocketAddr,
    pub(crate) vip: SocketAddr,
    pub(crate) skip: &'a [usize],
}

impl PickCtx<'_> {
    /// The kernel's OVERLOAD test, widened: overloaded, marked down, or
    /// excluded for this pick. Every scheduler treats these as unavailable.
    pub(crate) fn blocked(&self, dests: &[Dest], i: usize) -> bool {
        dests[i].state.is_overloaded() || self.excluded(dests, i)
    }

    /// Marked down or excluded for this pick (the part of [`blocked`] that
    /// applies even where the kernel does not test OVERLOAD, e.g. lblc's
    /// cached server).
    ///
    /// [`blocked`]: PickCtx::blocked
    pub(crate) fn excluded(&self, dests: &[Dest], i: usize) -> bool {
        dests[i].state.is_down() || self.skip.contains(&i)
    }
}

/// A built scheduler for one service.
pub(crate) trait Scheduler: Send + Sync + std::fmt::Debug {
    /// Choose a real server (index into `dests`) for a new connection, or
    /// `None` when no server is available.
    fn pick(&self, dests: &[Dest], ctx: &PickCtx<'_>) -> Option<usize>;

    /// State worth handing to the scheduler built after the next change of
    /// the server list ([`rebuild`]): the rr cursor, wrr's current weight,
    /// the lblc/lblcr tables. Stateless schedulers return `None`.
    fn carry(&self) -> Option<Carry> {
        None
    }
}

/// Opaque scheduler state carried across a rebuild (see [`Scheduler::carry`]).
#[derive(Debug)]
pub(crate) struct Carry(CarryInner);

#[derive(Debug)]
enum CarryInner {
    /// rr: address of the last picked server.
    Rr(Option<SocketAddr>),
    /// wrr: the current weight `cw` (cursor, `di`, `mw` are recomputed).
    Wrr(i64),
    Lblc(Arc<std::sync::Mutex<lblc::Table>>),
    Lblcr(Arc<std::sync::Mutex<lblcr::Table>>),
}

/// True when `name` is a scheduler rvsd implements.
pub(crate) fn exists(name: &str) -> bool {
    crate::ctl::proto::SCHEDULERS.contains(&name)
}

/// Build the scheduler `name` for `dests` with `-b` flags `flags`.
/// Returns `None` for an unknown name.
pub(crate) fn build(name: &str, flags: u32, dests: &[Dest]) -> Option<Box<dyn Scheduler>> {
    build_with(name, flags, dests, None)
}

/// Like [`build`], but continue from `prev`, the scheduler built for the
/// previous server list of the same service, as the kernel's add/del/update
/// hooks do: rr keeps its cursor (by address; head if that server is gone),
/// wrr resets its cursor and recomputes `di`/`mw` but adjusts the old `cw`, lblc/lblcr keep their tables. State of a different scheduler
/// kind is ignored.
pub(crate) fn rebuild(
    prev: &dyn Scheduler,
    name: &str,
    flags: u32,
    dests: &[Dest],
) -> Option<Box<dyn Scheduler>> {
    build_with(name, flags, dests, prev.carry().map(|c| c.0))
}

fn build_with(
    name: &str,
    flags: u32,
    dests: &[Dest],
    carry: Option<CarryInner>,
) -> Option<Box<dyn Scheduler>> {
    let fallback = flags & SCHED_FLAG_1 != 0;
    let port = flags & SCHED_FLAG_2 != 0;
    Some(match (name, carry) {
        ("rr", Some(CarryInner::Rr(cursor))) => Box::new(rr::Rr::new(dests, cursor)),
        ("rr", _) => Box::new(rr::Rr::new(dests, None)),
        ("wrr", Some(CarryInner::Wrr(cw))) => Box::new(wrr::Wrr::new(dests, Some(cw))),
        ("wrr", _) => Box::new(wrr::Wrr::new(dests, None)),
        ("lc", _) => Box::new(lc::Lc),
        ("wlc", _) => Box::new(wlc::Wlc),
        ("lblc", Some(CarryInner::Lblc(t))) => Box::new(lblc::Lblc::new(dests, Some(t))),
        ("lblc", _) => Box::new(lblc::Lblc::new(dests, None)),
        ("lblcr", Some(CarryInner::Lblcr(t))) => Box::new(lblcr::Lblcr::new(dests, Some(t))),
        ("lblcr", _) => Box::new(lblcr::Lblcr::new(dests, None)),
        ("dh", _) => Box::new(dh::Dh::new(dests)),
        ("sh", _) => Box::new(sh::Sh::new(dests, fallback, port)),
        ("sed", _) => Box::new(sed::Sed),
        ("nq", _) => Box::new(nq::Nq),
        ("fo", _) => Box::new(fo::Fo),
        ("ovf", _) => Box::new(ovf::Ovf),
        ("mh", _) => Box::new(mh::Mh::new(dests, fallback, port)),
        ("twos", _) => Box::new(twos::Twos::new(dests)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::util::testing::{client, ctx, dests, load};
    use super::*;
    use crate::ctl::proto::SCHEDULERS;

    #[test]
    fn every_listed_scheduler_builds() {
        for name in SCHEDULERS {
            for flags in [0, SCHED_FLAG_1, SCHED_FLAG_2, SCHED_FLAG_1 | SCHED_FLAG_2] {
                assert!(build(name, flags, &dests(&[1, 2])).is_some(), "{name}");
            }
            // No servers: nothing to pick.
            assert_eq!(
                build(name, 0, &[]).unwrap().pick(&[], &ctx(&[])),
                None,
                "{name}"
            );
        }
        assert!(build("none", 0, &[]).is_none());
        assert!(build("WRR", 0, &[]).is_none());
    }

    #[test]
    fn skip_is_honoured_by_every_scheduler() {
        let d = dests(&[3, 1, 2, 1]);
        load(&d[1], 0, 3);
        for name in SCHEDULERS {
            let flags = if matches!(*name, "sh" | "mh") {
                SCHED_FLAG_1
            } else {
                0
            };
            let s = build(name, flags, &d).unwrap();
            for n in 0..50 {
                let mut c = ctx(&[]);
                c.client = client(n);
                let first = s.pick(&d, &c).unwrap_or_else(|| panic!("{name}"));
                let skip = [first];
                c.skip = &skip;
                let again = s.pick(&d, &c);
                assert_ne!(again, Some(first), "{name}");
                if *name != "dh" {
                    assert!(again.is_some(), "{name}");
                }
                let all = [0, 1, 2, 3];
                c.skip = &all;
                assert_eq!(s.pick(&d, &c), None, "{name}");
            }
        }
    }

    #[test]
    fn rebuild_ignores_state_of_another_kind() {
        let d = dests(&[1, 1]);
        let rr = build("rr", 0, &d).unwrap();
        let wrr = rebuild(&*rr, "wrr", 0, &d).unwrap();
        assert_eq!(wrr.pick(&d, &ctx(&[])), Some(0));
        let lc = rebuild(&*wrr, "lc", 0, &d).unwrap();
        assert!(lc.carry().is_none());
        assert!(rebuild(&*lc, "nope", 0, &d).is_none());
    }
}
