//! Why the data plane refused a table change: a socket that cannot be
//! bound (with the service it belongs to), or the descriptor budget.

use crate::ctl::proto::{ErrorKind, ServiceKey};
use crate::daemon::table::TableError;

/// Why the data plane's `prepare` refused a table.
#[derive(Debug)]
pub enum PrepareError {
    /// The listening sockets of one service could not be bound.
    Bind(BindError),
    /// The new services' listeners would eat into the descriptor reserve.
    Budget(String),
}

/// A service whose listening sockets could not be bound.
#[derive(Debug)]
pub struct BindError {
    pub key: ServiceKey,
    pub source: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot bind {} {}: {}",
            self.key.proto.name(),
            self.key.addr,
            self.source
        )
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepareError::Bind(e) => e.fmt(f),
            PrepareError::Budget(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PrepareError {}

impl From<PrepareError> for TableError {
    fn from(e: PrepareError) -> TableError {
        let kind = match e {
            PrepareError::Bind(_) => ErrorKind::Bind,
            PrepareError::Budget(_) => ErrorKind::OutOfRange,
        };
        TableError {
            kind,
            message: e.to_string(),
        }
    }
}
