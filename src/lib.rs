//! rvs: a userspace L4 load balancer. This library holds everything the
//! three binaries share: `rvsd` (the daemon), `rvsadm` (ipvsadm's grammar
//! and output) and `rvstop` (the dashboard).
//!
//! # The planes
//!
//! - The **control plane** ([`daemon::control`]) owns the table: one task
//!   applies mutations in order ([`daemon::table`] checks them), binds
//!   their sockets, writes the state file ([`daemon::store`]) and only then
//!   publishes them. Health checks ([`daemon::health`]) and `/metrics`
//!   (`daemon::metrics`) run beside it.
//! - The **data plane** ([`daemon::dataplane`]) runs listeners and
//!   connections on threads of its own: accept → schedule
//!   (`daemon::sched`) → connect → relay, for TCP and UDP. It reads the
//!   published runtime of each service without taking any lock of the
//!   control plane.
//! - [`ctl`] is the wire protocol both sides speak (types, codec, client);
//!   it never imports the daemon.
//!
//! # The arrows
//!
//! Imports inside the daemon go one way, with no circle:
//!
//! ```text
//! ctl ← daemon::state ← daemon::sched ← daemon::service
//!     ← {health ← dataplane ← control, metrics} ← daemon::run
//! ```
//!
//! `daemon::state` (counters, server and service state, the connection
//! registry, the shared settings, the descriptor budget) imports nothing
//! else of the daemon; `daemon::service` builds a service's runtime
//! (`ServiceRt`: servers, scheduler, persistence templates) and the
//! published `Snapshot` from it.
//!
//! # Where to start reading
//!
//! [`daemon::run`] (start-up and shutdown), then
//! `daemon::control::table_task` (how a change becomes live),
//! `daemon::dataplane::reconcile` (what a change does to listeners) and
//! `daemon::dataplane::tcp` (one connection's life; see also
//! `doc/lifecycle.md`).

pub mod ctl;
pub mod daemon;
pub mod docgen;
