//! What both planes read and write: per-server and per-service state
//! (counts, counters, health flags), the registry of live connections, the
//! settings every connection shares, and the descriptor budget. Nothing in
//! here knows of sockets, schedulers or the table.

pub(crate) mod budget;
pub(crate) mod conns;
pub(crate) mod counters;
pub(crate) mod events;
pub(crate) mod server;
pub(crate) mod shared;
pub(crate) mod threads;

/// Milliseconds since the daemon started: a cheap monotonic clock for
/// activity stamps (vDSO, no syscall).
///
/// From the kernel's coarse monotonic clock (its resolution is a tick, a
/// few milliseconds): every limit it serves is in seconds, and it is read
/// for every relayed chunk, where it costs a fraction of `Instant::now`.
pub(crate) fn now_ms() -> u64 {
    fn coarse_ms() -> u64 {
        use nix::time::{clock_gettime, ClockId};
        // The precise clock, in the same units, if this kernel lacks it.
        clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE)
            .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
            .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
            .unwrap_or(0)
    }
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    coarse_ms().saturating_sub(*START.get_or_init(coarse_ms))
}
