//! Errors a control-protocol client can see.

use super::proto::ErrorKind;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum CtlError {
    /// The socket could not be opened.
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    Io(std::io::Error),
    /// A frame announced more than `MAX_FRAME` bytes.
    FrameTooLarge(u64),
    /// A message could not be encoded.
    Encode(String),
    /// A message could not be decoded.
    Decode(String),
    /// Client and daemon speak different protocol versions.
    VersionMismatch {
        /// The client's name and version as its hello says them
        /// ("rvstop 0.1.0"), the same words rvsd logs.
        client: String,
        client_proto: u32,
        daemon: String,
        daemon_proto: u32,
    },
    /// The daemon answered with an error.
    Remote {
        kind: ErrorKind,
        message: String,
        index: Option<u32>,
    },
    /// The daemon answered with a response that does not fit the request.
    Unexpected(String),
    /// The daemon did not answer within the request timeout.
    Timeout { path: PathBuf, secs: f64 },
    /// The client's own settings are wrong (e.g. `RVS_TIMEOUT`).
    Config(String),
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Connect { path, source } => write!(
                f,
                "could not connect to rvsd at {}: {source}; is rvsd running? (start it with `rvsd`, or point --socket / RVS_SOCKET at its socket)",
                path.display()
            ),
            CtlError::Io(e) => write!(f, "control socket error: {e}"),
            CtlError::FrameTooLarge(n) => {
                write!(f, "control frame of {n} bytes exceeds the limit of {} bytes", super::codec::MAX_FRAME)
            }
            CtlError::Encode(e) => write!(f, "could not encode control message: {e}"),
            CtlError::Decode(e) => write!(f, "could not decode control message: {e}"),
            CtlError::VersionMismatch { client, client_proto, daemon, daemon_proto } => write!(
                f,
                "{client} (protocol {client_proto}) cannot talk to rvsd {daemon} (protocol {daemon_proto}): install matching versions"
            ),
            CtlError::Remote { message, .. } => f.write_str(message),
            CtlError::Unexpected(what) => write!(f, "unexpected reply from rvsd: {what}"),
            CtlError::Timeout { path, secs } => write!(
                f,
                "rvsd on {} did not answer within {secs} s; it may be stuck or overloaded (check its log; set {}=SECS to wait longer, 0 waits forever)",
                path.display(),
                super::client::TIMEOUT_ENV
            ),
            CtlError::Config(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for CtlError {}
