//! What can stop [`super::run`]: each failure keeps its cause, and its
//! message (what rvsd prints) says what was wrong and how to fix it.

use std::path::PathBuf;

use super::dataplane::PrepareError;
use super::store::StoreError;

/// Why rvsd could not start, or could not shut down cleanly.
#[derive(Debug)]
pub enum DaemonError {
    /// A check before anything was bound: the socket's group, its path
    /// and directory, the state directory's lock, the metrics listener.
    Startup(String),
    /// The saved table could not be read.
    Store(StoreError),
    /// The data-plane threads could not be started.
    Threads(std::io::Error),
    /// The saved table could not be made live (a socket that cannot be
    /// bound, or the descriptor budget).
    Restore { path: PathBuf, source: PrepareError },
    /// The control socket could not be bound or registered.
    Socket(String),
    /// The table task ended abnormally.
    TableTask(String),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Startup(m) | DaemonError::Socket(m) => f.write_str(m),
            DaemonError::Store(e) => e.fmt(f),
            DaemonError::Threads(e) => write!(f, "cannot start the data-plane threads: {e}"),
            DaemonError::Restore { path, source } => {
                let hint = if matches!(source, PrepareError::Bind(_)) {
                    "; free the address, or remove that service from the saved table"
                } else {
                    ""
                };
                write!(
                    f,
                    "cannot restore the table from {}: {source}{hint}",
                    path.display()
                )
            }
            DaemonError::TableTask(m) => write!(f, "table task: {m}"),
        }
    }
}

impl std::error::Error for DaemonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DaemonError::Store(e) => Some(e),
            DaemonError::Threads(e) => Some(e),
            DaemonError::Restore { source, .. } => Some(source),
            _ => None,
        }
    }
}
