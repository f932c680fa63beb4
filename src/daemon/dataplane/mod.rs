//! The data plane: the reconciler that turns table changes into listeners
//! ([`reconcile`]), the threads they run on ([`workers`]), TCP and UDP
//! forwarding ([`tcp`], [`udp`]) and the few system calls std lacks
//! ([`sys`]).

pub mod reconcile;
pub mod sys;
pub mod tcp;
pub mod udp;
pub mod workers;

pub use reconcile::{BindError, DataPlane, PrepareError, Prepared};
