//! The daemon: control plane (table owner, socket server, state file) and
//! data plane (listeners, TCP/UDP forwarding, schedulers, counters).

pub mod sched;
pub mod stats;
