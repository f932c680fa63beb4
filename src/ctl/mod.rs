//! The control protocol shared by `rvsd`, `rvsadm` and `rvstop`.
//!
//! Never imports `daemon`. Framing: every message is a 4-byte big-endian
//! length followed by a bincode body ([`codec`]); the first request on a
//! connection is [`proto::Request::Hello`], answered by
//! [`proto::Response::Hello`] carrying the daemon's protocol version. A
//! mismatch ends the conversation with a clear error on both sides. The
//! positions of `Request::Hello`, `Response::Hello` and `Response::Error` are
//! frozen forever so that any two versions can at least say that they differ.
//! See `doc/protocol.md`.

pub mod client;
pub mod codec;
pub mod error;
pub mod names;
pub mod proto;

pub use client::Client;
pub use error::CtlError;

use std::path::PathBuf;

/// Default control socket: `/run/rvs/rvsd.sock` as root, else
/// `$XDG_RUNTIME_DIR/rvs/rvsd.sock`, else `/tmp/rvs-$UID/rvsd.sock`.
pub fn default_socket_path() -> PathBuf {
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        return PathBuf::from("/run/rvs/rvsd.sock");
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("rvs/rvsd.sock");
    }
    PathBuf::from(format!("/tmp/rvs-{}/rvsd.sock", uid.as_raw()))
}
