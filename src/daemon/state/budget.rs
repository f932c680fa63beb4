//! The descriptor budget and the rate-limited logs of the events that hit it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::now_ms;

/// Pipes that may be open at once (the descriptor budget's leftover, see
/// [`Budget`]), and how many are.
pub(crate) static PIPES_MAX: AtomicUsize = AtomicUsize::new(usize::MAX);
pub(crate) static PIPES: AtomicUsize = AtomicUsize::new(0);

/// How many splice pipes may be open at once.
fn set_pipe_budget(n: usize) {
    PIPES_MAX.store(n, Relaxed);
}

/// The descriptor budget (RLIMIT_NOFILE): what the limit leaves, after a
/// reserve and the listening sockets, for proxied TCP connections (two
/// descriptors each: client and server) and UDP flows (one: the upstream
/// socket), each protocol under a cap of its own, so that a flood of one
/// cannot starve the other. The caps follow the table: every change that
/// adds or removes services resizes them ([`Budget::resize`]), and a change
/// whose listeners would eat into the reserve is refused
/// ([`Budget::check`]).
#[derive(Debug)]
pub(crate) struct Budget {
    /// The soft RLIMIT_NOFILE rvsd runs under.
    pub(crate) limit: usize,
    /// Descriptors kept for everything but proxied traffic: what was open
    /// at start (stdio, log, event loops) plus control clients, the state
    /// file, health checks and metrics ([`reserve`]).
    pub(crate) reserve: usize,
    /// `--max-connections` and `--max-udp-flows`: the caps when descriptors
    /// are plenty.
    pub(crate) max_tcp: usize,
    pub(crate) max_udp: usize,
    /// Permits of concurrent TCP connections and of UDP flows.
    pub(crate) tcp: Arc<Semaphore>,
    pub(crate) udp: Arc<Semaphore>,
    caps: std::sync::Mutex<Caps>,
}

/// The caps in force, for one count of listening sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub(crate) listeners: usize,
    pub(crate) tcp: usize,
    pub(crate) udp: usize,
    /// Descriptors left for splice pipes (two a pipe), an optimisation
    /// that falls back to copying when none are left.
    pub(crate) pipes: usize,
}

/// The descriptors kept out of the connection budget: those open at
/// start (`open`), plus 5 % of the limit, at least 64, for control clients,
/// the state file (and its temporary copy), health checks and metrics.
pub(crate) fn reserve(limit: usize, open: usize) -> usize {
    open + (limit / 20).max(64)
}

/// The least room for connections a table may leave: a tenth of the
/// limit, at least 128 descriptors (or what the flags ask, if less).
fn min_room(limit: usize, need: usize) -> usize {
    (limit / 10).max(128).min(need)
}

impl Budget {
    /// A budget for `limit` descriptors of which `reserve` are kept, with
    /// no listeners yet.
    pub(crate) fn new(limit: usize, reserve: usize, max_tcp: usize, max_udp: usize) -> Budget {
        // (Well below the semaphore's ceiling, so 2 × TCP + UDP adds up.)
        let most = Semaphore::MAX_PERMITS / 4;
        let (max_tcp, max_udp) = (max_tcp.clamp(1, most), max_udp.clamp(1, most));
        let caps = fit(limit, reserve, 0, max_tcp, max_udp);
        Budget {
            limit,
            reserve,
            max_tcp,
            max_udp,
            tcp: Arc::new(Semaphore::new(caps.tcp)),
            udp: Arc::new(Semaphore::new(caps.udp)),
            caps: std::sync::Mutex::new(caps),
        }
        .with_pipes(caps)
    }

    fn with_pipes(self, caps: Caps) -> Budget {
        set_pipe_budget(caps.pipes / 2);
        self
    }

    /// The caps in force.
    pub(crate) fn caps(&self) -> Caps {
        *self.caps.lock().expect("budget lock")
    }

    /// Refuse a table of `services` services on `threads` data-plane
    /// threads whose listening sockets would eat into the reserve or leave
    /// too little for connections. The message says what to change.
    pub(crate) fn check(&self, services: usize, threads: usize) -> Result<(), String> {
        let listeners = services.saturating_mul(threads);
        let need = 2 * self.max_tcp + self.max_udp;
        let room = self
            .limit
            .saturating_sub(self.reserve)
            .saturating_sub(listeners);
        let least = min_room(self.limit, need);
        if room >= least {
            return Ok(());
        }
        Err(format!(
            "not enough file descriptors: {services} services on {threads} data-plane thread(s) need {listeners} listening sockets, \
             which leaves {room} of RLIMIT_NOFILE {} (after a reserve of {} for the control socket, state file and health checks) \
             for connections, and at least {least} are kept for them; nothing was changed. \
             Raise the limit (LimitNOFILE= in rvsd's systemd unit, or ulimit -n before starting rvsd), \
             run rvsd with fewer --worker-threads, or use fewer services",
            self.limit, self.reserve
        ))
    }

    /// Set the caps for `listeners` listening sockets: permits are added,
    /// or taken back as connections end (running ones are never cut).
    /// True when the caps changed.
    pub(crate) fn resize(&self, listeners: usize) -> bool {
        let mut cur = self.caps.lock().expect("budget lock");
        if cur.listeners == listeners {
            return false;
        }
        let next = fit(
            self.limit,
            self.reserve,
            listeners,
            self.max_tcp,
            self.max_udp,
        );
        adjust(&self.tcp, cur.tcp, next.tcp);
        adjust(&self.udp, cur.udp, next.udp);
        set_pipe_budget(next.pipes / 2);
        let changed = (cur.tcp, cur.udp) != (next.tcp, next.udp);
        *cur = next;
        changed
    }
}

/// The caps for `listeners` listening sockets: the flags' caps if they
/// fit in the room left with a sixteenth of it to spare for splice pipes;
/// else UDP flows get at most a sixteenth of the room, pipes a sixteenth,
/// and TCP connections the rest (TCP first: it is most of the traffic,
/// and a UDP flood must not take its descriptors).
fn fit(limit: usize, reserve: usize, listeners: usize, max_tcp: usize, max_udp: usize) -> Caps {
    let room = limit.saturating_sub(reserve).saturating_sub(listeners);
    let spare = room / 16;
    let (tcp, udp) = if 2 * max_tcp + max_udp + spare <= room {
        (max_tcp, max_udp)
    } else {
        let udp = max_udp.min(room / 16);
        (max_tcp.min((room - spare - udp) / 2), udp)
    };
    let (tcp, udp) = (tcp.max(1), udp.max(1));
    Caps {
        listeners,
        tcp,
        udp,
        pipes: room.saturating_sub(2 * tcp + udp),
    }
}

/// Flows one UDP service may hold when there are `services` of them.
pub(crate) fn per_service(cap: usize, services: usize) -> usize {
    if services > 1 {
        (cap - cap / 4).max(1)
    } else {
        cap
    }
}

/// Move a semaphore from `from` to `to` permits. Permits in use when the
/// cap shrinks are taken back as they are released (by a task that waits
/// for them ahead of new connections and forgets them).
fn adjust(sem: &Arc<Semaphore>, from: usize, to: usize) {
    if to >= from {
        sem.add_permits(to - from);
        return;
    }
    let want = from - to;
    let left = want - sem.forget_permits(want);
    if left > 0 {
        let sem = sem.clone();
        tokio::spawn(async move {
            if let Ok(p) = sem.acquire_many_owned(left as u32).await {
                p.forget();
            }
        });
    }
}

/// A log line at most every [`RateLog::EVERY_MS`] for one kind of event
/// (refused flows, failed accepts...), saying how many happened since the
/// last line; every event is counted.
#[derive(Debug, Default)]
pub(crate) struct RateLog {
    next_ms: AtomicU64,
    since: AtomicU64,
    /// Events since start.
    pub(crate) total: AtomicU64,
}

impl RateLog {
    pub(crate) const EVERY_MS: u64 = 5000;

    /// Count one event. `Some(n)` when a line is due now: `n` events since
    /// the last line (this one included).
    pub(crate) fn hit(&self) -> Option<u64> {
        self.total.fetch_add(1, Relaxed);
        self.since.fetch_add(1, Relaxed);
        let now = now_ms();
        let next = self.next_ms.load(Relaxed);
        if now < next
            || self
                .next_ms
                .compare_exchange(next, now + Self::EVERY_MS, Relaxed, Relaxed)
                .is_err()
        {
            return None;
        }
        Some(self.since.swap(0, Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::{fit, per_service, reserve, Budget, RateLog};

    #[test]
    fn one_udp_service_of_several_holds_three_quarters_of_the_cap() {
        assert_eq!(per_service(40, 1), 40);
        assert_eq!(per_service(40, 2), 30);
        assert_eq!(per_service(1, 3), 1);
    }

    #[test]
    fn plenty_of_descriptors_keep_the_flags_caps() {
        let c = fit(1 << 20, reserve(1 << 20, 20), 100, 100_000, 14_116);
        assert_eq!((c.tcp, c.udp), (100_000, 14_116));
        assert!(c.pipes > 100_000);
    }

    #[test]
    fn few_descriptors_go_to_tcp_first() {
        // 20,000 (a common hard limit): reserve 1,020, and TCP keeps room
        // for 8,000 idle connections.
        let r = reserve(20_000, 20);
        assert_eq!(r, 1_020);
        let c = fit(20_000, r, 10, 100_000, 14_116);
        assert!(c.tcp >= 8_000, "{c:?}");
        assert_eq!(c.udp, (20_000 - r - 10) / 16);
        assert!(2 * c.tcp + c.udp + c.pipes + r + 10 <= 20_000, "{c:?}");
        assert!(c.pipes >= (20_000 - r - 10) / 16, "{c:?}");
    }

    #[test]
    fn listeners_that_eat_the_reserve_are_refused() {
        let b = Budget::new(20_000, reserve(20_000, 20), 100_000, 14_116);
        // 10,000 services on one thread fit (the 10,000 x 10 table).
        assert!(b.check(10_000, 1).is_ok());
        let e = b.check(10_000, 2).unwrap_err();
        assert!(e.contains("RLIMIT_NOFILE 20000"), "{e}");
        assert!(e.contains("20000 listening sockets"), "{e}");
        // The line: at least a tenth of the limit left for connections.
        assert!(b.check(16_980, 1).is_ok());
        assert!(b.check(16_981, 1).is_err());
    }

    #[test]
    fn a_rate_log_counts_every_event_and_speaks_once_per_interval() {
        let l = RateLog::default();
        let said: Vec<Option<u64>> = (0..1000).map(|_| l.hit()).collect();
        assert_eq!(said[0], Some(1));
        assert_eq!(said.iter().filter(|s| s.is_some()).count(), 1);
        assert_eq!(l.total.load(std::sync::atomic::Ordering::Relaxed), 1000);
    }
}
