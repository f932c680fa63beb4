//! Test harness: the real `rvsd` on a temporary socket, the real `rvsadm`,
//! and small back ends on loopback that say who they are.
//!
//! - `daemon.rs`: [`Daemon`], one rvsd process and the ways to drive it.
//! - `backends.rs`: TCP and UDP back ends ([`Backend`], [`UdpBackend`]).
//! - `net.rs`: loopback addresses, client connections, `/metrics` scrapes.
//!
//! ## Loopback address plan
//!
//! Test binaries run in parallel, so each file that binds fixed or
//! well-known addresses takes its own /16 of 127.0.0.0/8 (ports always come
//! from [`free_port`], except the golden files' fixed ports below 32768,
//! outside the ephemeral range). A new test file takes the next free /16
//! and adds a line here.
//!
//! | range          | user                                                  |
//! |----------------|-------------------------------------------------------|
//! | 127.0.0.1      | everyone: back ends, and VIPs on free ports           |
//! | 127.10-11/16   | rvsadm.rs                                             |
//! | 127.20/16      | control.rs                                            |
//! | 127.30/16      | durability.rs                                         |
//! | 127.40/16      | hardening_ctl.rs                                      |
//! | 127.41/16      | hardening_metrics.rs (and bench/metrics_scrape.sh)    |
//! | 127.42/16      | hardening_fds.rs                                      |
//! | 127.43/16      | hardening_passive.rs                                  |
//! | 127.44/16      | hardening_store.rs                                    |
//! | 127.45/16      | hardening_text.rs                                     |
//! | 127.46/16      | bench/soak.py                                         |
//! | 127.50/16      | house_flows.rs                                        |
//! | 127.51/16      | upgrades.rs (the golden state files in tests/data/)   |
//! | ::1            | IPv6 cases on free ports; upgrades.rs: fixed ports    |

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

mod backends;
mod daemon;
mod net;

#[allow(unused_imports)]
pub use backends::*;
#[allow(unused_imports)]
pub use daemon::*;
#[allow(unused_imports)]
pub use net::*;

pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// rvsd flags for tests whose real servers are documentation addresses
/// (198.51.100.0/24, listed as `Masq` rather than `Local`): no default
/// health check, so nothing is ever sent to them. Such tests send no traffic
/// through those services either.
pub const NO_CHECKS: &[&str] = &["--default-check", "none"];
pub const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rvs-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn rvsadm_at(socket: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(RVSADM)
        .args(args)
        .env("RVS_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rvsadm");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_string();
    let writer = thread::spawn(move || {
        let _ = input.write_all(data.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status of a finished rvsadm (-1 when killed by a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Poll `cond` for up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Raise this process's open-file limit to the hard limit (tests holding
/// hundreds of sockets on both ends).
pub fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
