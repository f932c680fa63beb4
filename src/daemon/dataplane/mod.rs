//! The data plane: the reconciler that turns table changes into listeners
//! (`reconcile`), the threads they run on (`workers`), TCP and UDP
//! forwarding (`tcp`, `udp`) and the few system calls std lacks
//! (`sys`).

mod error;
pub(crate) mod reconcile;
pub mod sys;
pub(crate) mod tcp;
pub(crate) mod udp;
pub(crate) mod workers;

pub use error::{BindError, PrepareError};
pub(crate) use reconcile::{DataPlane, Prepared};
