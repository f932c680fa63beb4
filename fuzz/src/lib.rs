//! Shared helpers of the rvs fuzz targets (see `../README.md`).
//!
//! Also compiles the `rvsadm` modules straight from `src/bin/rvsadm/` (they
//! live in the binary crate, not the library), so the targets fuzz the very
//! code `rvsadm` runs without moving it. `crate::request`, `crate::output`,
//! ... inside those files resolve through the re-exports below.

#[path = "../../src/bin/rvsadm"]
#[allow(dead_code, unused_imports, clippy::all)]
pub mod rvsadm {
    pub mod addr;
    pub mod options;
    pub mod output;
    pub mod popt;
    pub mod request;
    pub mod restore;
}
pub use rvsadm::{addr, options, output, popt, request, restore};

use rvs::ctl::proto::{
    Forward, HealthState, HealthView, Rates, ServerView, ServiceView, Stats, TableView,
};
use rvs::daemon::table::Table;

/// Separates the files of one `state_file` input: part *i* is written to
/// [`STORE_FILES`]`[i]`; a part that is absent means that file is absent.
pub const FILE_SEP: &[u8] = b"\n--rvs-fuzz-next-file--\n";

/// The files of a `--state-dir`, in the order their parts appear in an input:
/// the snapshot and the journal. (A store without a journal ignores the
/// second file; names are literal so the target builds against both.)
pub const STORE_FILES: &[&str] = &["table.state", "table.journal"];

/// Split a `state_file` input into the contents of [`STORE_FILES`].
pub fn split_files(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < STORE_FILES.len() {
        match find(rest, FILE_SEP) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + FILE_SEP.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

/// Join file contents into one `state_file` input (inverse of [`split_files`]).
pub fn join_files(files: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(FILE_SEP);
        }
        out.extend_from_slice(f);
    }
    out
}

/// The state file's checksum (FNV-1a 64 of the body, as `daemon::store`).
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An `rvsadm_cli` input is argv[1..] with each word ended by a NUL byte.
pub fn argv_from_bytes(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut argv = vec!["rvsadm".to_string()];
    argv.extend(text.split_terminator('\0').map(str::to_string));
    argv
}

/// Inverse of [`argv_from_bytes`] (without argv[0]).
pub fn argv_to_bytes(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

/// Define, in the fuzz target itself, a `getaddrinfo` that answers every
/// name with "not found". rvsadm resolves host names the way ipvsadm does
/// (`gethostbyname`); fuzzed names must never become DNS queries (this
/// machine's resolver is not on loopback), and a look-up per input would be
/// slow anyway. The definition in the executable takes precedence over
/// libc's for every caller, std's `ToSocketAddrs` included. `freeaddrinfo`
/// is never called for a failed look-up, so libc's stays correct.
#[macro_export]
macro_rules! no_name_lookups {
    () => {
        #[no_mangle]
        pub extern "C" fn getaddrinfo(
            _node: *const ::libc::c_char,
            _service: *const ::libc::c_char,
            _hints: *const ::libc::addrinfo,
            _res: *mut *mut ::libc::addrinfo,
        ) -> ::libc::c_int {
            ::libc::EAI_NONAME
        }
    };
}

/// Made-up counters.
fn stats(n: u64) -> Stats {
    Stats {
        conns: n,
        inpkts: n * 10,
        outpkts: n * 9,
        inbytes: n * 1000,
        outbytes: n * 20000,
    }
}

/// Made-up rates.
fn rates(n: u64) -> Rates {
    Rates {
        cps: n,
        inpps: n * 3,
        outpps: n * 2,
        inbps: n * 300,
        outbps: n * 9000,
    }
}

/// A listing of `table` with made-up counters and health, as rvsd would
/// answer `-L` (what `-S` renders from).
pub fn view_of(table: &Table) -> TableView {
    let services = table
        .services()
        .iter()
        .enumerate()
        .map(|(i, s)| ServiceView {
            spec: s.spec.clone(),
            stats: stats(i as u64 * 7),
            rates: rates(i as u64),
            sorry_active: i == 4,
            servers: s
                .servers
                .iter()
                .enumerate()
                .map(|(j, srv)| ServerView {
                    spec: srv.clone(),
                    shown_forward: if srv.addr.ip().is_loopback() {
                        Forward::Local
                    } else {
                        srv.forward
                    },
                    active_conns: j as u32 * 3,
                    inactive_conns: j as u32,
                    persist_conns: 0,
                    stats: stats(j as u64 + 1),
                    rates: rates(j as u64),
                    health: HealthView {
                        state: if j % 2 == 0 {
                            HealthState::Up
                        } else {
                            HealthState::Down
                        },
                        since_secs: 42,
                        check: "http GET /healthz".into(),
                        last_ok: Some(j % 2 == 0),
                        latency_us: Some(812),
                        reason: if j % 2 == 0 {
                            "HTTP 200".into()
                        } else {
                            "connection refused".into()
                        },
                        effective_weight: None,
                    },
                })
                .collect(),
        })
        .collect();
    TableView { services }
}
