//! The reconciler between the table and the data plane. Owned by the table
//! task: for every table change it binds the sockets of new services first
//! ([`DataPlane::prepare`], so a bind failure rejects the command before
//! anything changes), then swaps in the new runtimes and starts or stops
//! listeners ([`DataPlane::commit`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{watch, Semaphore};

use crate::ctl::proto::{CheckKind, ErrorKind, Protocol, RealServerSpec, ServiceKey, ServiceSpec};

use super::health::{self, Check, EventLog};
use super::runtime::{self, ServiceRt, ServiceState, SharedTimeouts, Snapshot};
use super::stats::ServerState;
use super::table::{Table, TableError};
use super::workers::Workers;
use super::{tcp, udp};

/// Settings and shared objects every listener and connection uses.
#[derive(Debug)]
pub struct Shared {
    pub timeouts: SharedTimeouts,
    /// Caps of concurrent TCP connections and UDP flows, derived from
    /// RLIMIT_NOFILE and the flags.
    pub budget: Budget,
    /// Idle limit of a UDP flow the real server never answered (ms): at
    /// most the `udp` timeout.
    pub udp_unreplied_ms: u64,
    /// Datagrams from new clients dropped because the UDP flow cap was
    /// reached (logged at most every few seconds).
    pub udp_refused: RateLog,
    /// Upstream UDP sockets that could not be opened (no descriptor, no
    /// ephemeral port).
    pub udp_open_failed: RateLog,
    /// Failed accepts (EMFILE, ENFILE, ENOBUFS...).
    pub accept_failed: RateLog,
    /// Times an accept loop found the TCP cap reached (new connections
    /// then wait in the listen backlog).
    pub tcp_at_cap: RateLog,
    /// Flows one UDP service may hold: the UDP cap, or three quarters of
    /// it when there are other UDP services (a flood of one leaves the
    /// others room). Set by the table task on every change.
    pub udp_per_service: AtomicUsize,
    /// Live connections and flows across all services (for draining).
    pub live: AtomicUsize,
    /// Live TCP connections per data-plane thread (where accepts put them).
    pub loads: super::workers::Loads,
    /// Consecutive connect failures that mark a real server failed.
    pub fail_after: u32,
    /// Health state changes, for subscribers.
    pub events: Arc<EventLog>,
    /// Active check of TCP services that configure none (`--default-check`).
    pub default_check: CheckKind,
}

/// The bound sockets of one service, one per data-plane thread, waiting
/// to be started.
enum Bound {
    Tcp(Vec<std::net::TcpListener>),
    Udp(Vec<std::net::UdpSocket>),
}

/// Sockets bound by `prepare`, handed to `commit`.
#[derive(Default)]
pub struct Prepared {
    bound: HashMap<ServiceKey, Bound>,
}

struct Live {
    slot: Arc<ArcSwap<ServiceRt>>,
    servers: HashMap<SocketAddr, Arc<ServerState>>,
    stop: watch::Sender<bool>,
    /// Running health checks; dropping a sender stops its task.
    checks: HashMap<SocketAddr, (Check, watch::Sender<bool>)>,
    /// A TCP service's listening sockets (one per data-plane thread),
    /// shared with their accept tasks (not duplicated: a service costs one
    /// descriptor per thread), to stop listening synchronously when the
    /// service goes (see [`Live::stop`]).
    listeners: Vec<Arc<std::net::TcpListener>>,
}
impl Live {
    /// Stop the listener. For TCP also shut the listening socket down right
    /// here: the accept task drops the socket only when it next runs, and
    /// until then the port stays in LISTEN, so re-adding the same virtual
    /// service at once (`-D` then `-A`) failed with EADDRINUSE.
    fn stop(&mut self) {
        let _ = self.stop.send(true);
        for l in self.listeners.drain(..) {
            let _ = nix::sys::socket::shutdown(
                std::os::fd::AsRawFd::as_raw_fd(&*l),
                nix::sys::socket::Shutdown::Both,
            );
        }
    }
}

/// Start, restart or stop the health-check tasks of one service so that
/// they match its servers' effective checks.
fn reconcile_checks(
    live: &mut Live,
    spec: &ServiceSpec,
    servers: &[RealServerSpec],
    shared: &Shared,
) {
    live.checks
        .retain(|a, _| servers.iter().any(|s| s.addr == *a));
    for srv in servers {
        let check = health::resolve(spec, srv, shared.default_check);
        if live.checks.get(&srv.addr).is_some_and(|(c, _)| *c == check) {
            continue;
        }
        live.checks.remove(&srv.addr);
        let state = live.servers.entry(srv.addr).or_default().clone();
        if check.kind == CheckKind::None {
            state.checked.store(false, Relaxed);
            state.health.lock().expect("health lock").check = "none".to_string();
            continue;
        }
        let (tx, rx) = watch::channel(false);
        tokio::spawn(health::run(
            check.clone(),
            spec.key,
            srv.addr,
            state,
            shared.events.clone(),
            rx,
        ));
        live.checks.insert(srv.addr, (check, tx));
    }
}

/// True when a server's weight in effect no longer matches its slow-start ramp.
fn needs_reweigh(rt: &ServiceRt) -> bool {
    rt.servers.iter().zip(&rt.dests).any(|(s, d)| {
        (s.slow_start.is_some() || rt.spec.slow_start.is_some())
            && runtime::effective_weight(&rt.spec, s, &d.state) != d.weight
    })
}

/// The data plane as seen by the table task.
pub struct DataPlane {
    live: HashMap<ServiceKey, Live>,
    published: Arc<ArcSwap<Snapshot>>,
    pub shared: Arc<Shared>,
    /// The threads that run listeners and connections.
    workers: Workers,
}

impl DataPlane {
    pub fn new(shared: Arc<Shared>, workers: Workers) -> DataPlane {
        DataPlane {
            live: HashMap::new(),
            published: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            shared,
            workers,
        }
    }

    /// The snapshot readers load (listings, the tick).
    pub fn published(&self) -> Arc<ArcSwap<Snapshot>> {
        self.published.clone()
    }

    /// Bind the sockets of services that `next` adds. Nothing is started.
    pub fn prepare(&self, next: &Table) -> Result<Prepared, TableError> {
        self.prepare_some(next, next.services().iter().map(|s| &s.spec.key))
    }

    /// [`DataPlane::prepare`] for a change that can only have added the
    /// services `candidates` (those not in `next` are skipped): costs the
    /// change, not the table.
    pub fn prepare_some<'a>(
        &self,
        next: &Table,
        candidates: impl IntoIterator<Item = &'a ServiceKey>,
    ) -> Result<Prepared, TableError> {
        let mut prepared = Prepared::default();
        if next.services().len() > self.live.len() {
            self.shared
                .budget
                .check(next.services().len(), self.workers.threads())
                .map_err(|message| TableError {
                    kind: ErrorKind::OutOfRange,
                    message,
                })?;
        }
        for &key in candidates {
            if self.live.contains_key(&key)
                || prepared.bound.contains_key(&key)
                || next.service(&key).is_none()
            {
                continue;
            }
            let bound = bind(&key, self.workers.threads()).map_err(|e| TableError {
                kind: ErrorKind::Bind,
                message: format!("cannot bind {} {}: {e}", key.proto.name(), key.addr),
            })?;
            prepared.bound.insert(key, bound);
        }
        Ok(prepared)
    }

    /// Make `next` live: start new listeners, swap changed runtimes, stop
    /// removed listeners (their running connections finish on their own).
    pub fn commit(&mut self, next: &Table, mut prepared: Prepared) {
        self.shared.timeouts.set(next.timeouts());
        let mut changed = self.live.len() != next.services().len();
        let mut seen = HashSet::with_capacity(next.services().len());
        let mut services = Vec::with_capacity(next.services().len());
        for svc in next.services() {
            seen.insert(svc.spec.key);
            let (rt, rebuilt) = self.reconcile(svc, &mut prepared, true);
            changed |= rebuilt;
            services.push(rt);
        }
        if !changed && self.published.load().timeouts == next.timeouts() {
            return;
        }
        self.live.retain(|key, live| {
            let keep = seen.contains(key);
            if !keep {
                live.stop();
            }
            keep
        });
        self.follow_budget();
        self.publish(services, next);
    }

    /// [`DataPlane::commit`] for a change that touched only the services
    /// `touched` (added, changed or removed): costs the change, plus one
    /// copy of the published list of runtime pointers.
    pub fn commit_some(&mut self, next: &Table, mut prepared: Prepared, touched: &[ServiceKey]) {
        self.shared.timeouts.set(next.timeouts());
        let old = self.published.load_full();
        let mut services = old.services.clone();
        let mut by_key = old.by_key.clone();
        let mut reorder = false;
        let mut changed = false;
        for key in touched {
            match next.service(key) {
                Some(svc) => {
                    let (rt, rebuilt) = self.reconcile(svc, &mut prepared, false);
                    if !rebuilt {
                        continue;
                    }
                    changed = true;
                    match by_key.get(key) {
                        Some(&i) => services[i] = rt,
                        None => {
                            by_key.insert(*key, services.len());
                            services.push(rt);
                            reorder = true;
                        }
                    }
                }
                None => {
                    if let Some(mut live) = self.live.remove(key) {
                        live.stop();
                        changed = true;
                        reorder = true;
                    }
                }
            }
        }
        // A service removed and added again moves to the end of the table.
        reorder |= services.len() != next.services().len()
            || touched.iter().any(|k| {
                by_key
                    .get(k)
                    .is_some_and(|&i| next.services().get(i).map(|s| s.spec.key) != Some(*k))
            });
        if !changed && !reorder && old.timeouts == next.timeouts() {
            return;
        }
        if reorder {
            // Services came or went: the caps follow the listeners.
            self.follow_budget();
            // Removed or re-added services: take the table's order.
            services = next
                .services()
                .iter()
                .map(|s| self.live[&s.spec.key].slot.load_full())
                .collect();
            by_key = services
                .iter()
                .enumerate()
                .map(|(i, s)| (s.spec.key, i))
                .collect();
        }
        self.published.store(Arc::new(Snapshot {
            services,
            by_key,
            timeouts: next.timeouts(),
        }));
    }

    /// Bring one service's runtime in line with `svc`: start it if new,
    /// rebuild it if its spec or servers changed (or, with `ramp`, its
    /// slow-start weights are due). Returns the runtime and whether it is
    /// a new one.
    fn reconcile(
        &mut self,
        svc: &super::table::Service,
        prepared: &mut Prepared,
        ramp: bool,
    ) -> (Arc<ServiceRt>, bool) {
        let key = svc.spec.key;
        match self.live.get_mut(&key) {
            Some(live) => {
                let cur = live.slot.load_full();
                if cur.spec == svc.spec
                    && cur.servers == svc.servers
                    && !(ramp && needs_reweigh(&cur))
                {
                    return (cur, false);
                }
                live.servers
                    .retain(|a, _| svc.servers.iter().any(|s| s.addr == *a));
                let servers = &mut live.servers;
                let rt = Arc::new(ServiceRt::build(
                    svc.spec.clone(),
                    svc.servers.clone(),
                    cur.state.clone(),
                    |a| servers.entry(*a).or_default().clone(),
                    Some(&cur),
                ));
                live.slot.store(rt.clone());
                reconcile_checks(live, &svc.spec, &svc.servers, &self.shared);
                (rt, true)
            }
            None => {
                let mut servers: HashMap<SocketAddr, Arc<ServerState>> = HashMap::new();
                let rt = Arc::new(ServiceRt::build(
                    svc.spec.clone(),
                    svc.servers.clone(),
                    Arc::new(ServiceState::default()),
                    |a| servers.entry(*a).or_default().clone(),
                    None,
                ));
                let slot = Arc::new(ArcSwap::new(rt.clone()));
                let (stop, stop_rx) = watch::channel(false);
                let bound = prepared
                    .bound
                    .remove(&key)
                    .expect("prepared binds every new service");
                let listeners = self.start(bound, slot.clone(), stop_rx);
                let mut live = Live {
                    slot,
                    servers,
                    stop,
                    checks: HashMap::new(),
                    listeners,
                };
                reconcile_checks(&mut live, &svc.spec, &svc.servers, &self.shared);
                self.live.insert(key, live);
                (rt, true)
            }
        }
    }

    /// Resize the connection caps to the listeners now live, and set the
    /// share of the UDP cap one UDP service may hold.
    fn follow_budget(&self) {
        let listeners = self.live.len() * self.workers.threads();
        let resized = self.shared.budget.resize(listeners);
        let caps = self.shared.budget.caps();
        if resized {
            tracing::debug!(
                listeners,
                tcp = caps.tcp,
                udp = caps.udp,
                "connection caps follow the table"
            );
        }
        let udp_services = self
            .live
            .keys()
            .filter(|k| k.proto == Protocol::Udp)
            .count();
        self.shared
            .udp_per_service
            .store(per_service(caps.udp, udp_services), Relaxed);
    }

    fn publish(&self, services: Vec<Arc<ServiceRt>>, next: &Table) {
        let by_key = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.spec.key, i))
            .collect();
        self.published.store(Arc::new(Snapshot {
            services,
            by_key,
            timeouts: next.timeouts(),
        }));
    }

    /// Start one listener task per data-plane thread, each on its own
    /// socket; for TCP returns the listening sockets, shared with their
    /// tasks (for [`Live::stop`]).
    fn start(
        &self,
        bound: Bound,
        slot: Arc<ArcSwap<ServiceRt>>,
        stop: watch::Receiver<bool>,
    ) -> Vec<Arc<std::net::TcpListener>> {
        let workers = self.workers.handles();
        let inboxes = self.workers.inboxes();
        let (slot, shared, stop) = (&slot, &self.shared, &stop);
        match bound {
            Bound::Tcp(ls) => ls
                .into_iter()
                .zip(workers.iter())
                .map(|(l, w)| {
                    let l = Arc::new(l);
                    w.spawn(tcp::run_listener(
                        l.clone(),
                        slot.clone(),
                        shared.clone(),
                        inboxes.clone(),
                        stop.clone(),
                    ));
                    l
                })
                .collect(),
            Bound::Udp(ss) => {
                for (s, w) in ss.into_iter().zip(workers.iter()) {
                    w.spawn(udp::run_listener(
                        s,
                        slot.clone(),
                        shared.clone(),
                        stop.clone(),
                    ));
                }
                Vec::new()
            }
        }
    }

    /// Stop every listener (shutdown): running connections continue.
    pub fn stop_all(&mut self) {
        for live in self.live.values_mut() {
            live.stop();
        }
    }

    /// Zero counters and rates of one service (and its servers) or all.
    pub fn zero(&self, key: Option<ServiceKey>) {
        let snap = self.published.load();
        for svc in snap
            .services
            .iter()
            .filter(|s| key.is_none_or(|k| s.spec.key == k))
        {
            svc.state.est.zero(svc.state.counters.snapshot());
            for d in &svc.dests {
                d.state.est.zero(d.state.counters.snapshot());
            }
        }
    }

    /// Live connections and flows across the daemon.
    pub fn live_connections(&self) -> usize {
        self.shared.live.load(Relaxed)
    }
}

/// Bind one socket of the service per data-plane thread. With more than
/// one, they share the port through `SO_REUSEPORT`; since any socket of the
/// same user could join such a group, the address is first bound once
/// without it, so that a port held by anyone else (another rvsd included)
/// is refused exactly as with a single socket.
fn bind(key: &ServiceKey, threads: usize) -> std::io::Result<Bound> {
    if threads > 1 {
        drop(bind_one(key, false, false)?);
    }
    let reuse_port = threads > 1;
    match key.proto {
        Protocol::Tcp => (0..threads.max(1))
            .map(|_| bind_one(key, reuse_port, true).map(std::net::TcpListener::from))
            .collect::<std::io::Result<_>>()
            .map(Bound::Tcp),
        Protocol::Udp => (0..threads.max(1))
            .map(|_| bind_one(key, reuse_port, false).map(std::net::UdpSocket::from))
            .collect::<std::io::Result<_>>()
            .map(Bound::Udp),
    }
}

/// One socket bound to the service's address (and listening, for TCP with
/// `listen`).
fn bind_one(
    key: &ServiceKey,
    reuse_port: bool,
    listen: bool,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        self as ns, setsockopt, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    let v6 = key.addr.is_ipv6();
    let domain = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let ty = match key.proto {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let fd = ns::socket(
        domain,
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    if v6 {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    let addr: SockaddrStorage = key.addr.into();
    ns::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    if listen {
        // Accepted connections inherit TCP_NODELAY: one setsockopt per
        // service instead of one per connection.
        setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
        // listen(2) now so that the port is taken before the reply.
        ns::listen(&fd, ns::Backlog::new(4096).unwrap_or(ns::Backlog::MAXCONN))?;
    }
    Ok(fd)
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
pub struct Budget {
    /// The soft RLIMIT_NOFILE rvsd runs under.
    pub limit: usize,
    /// Descriptors kept for everything but proxied traffic: what was open
    /// at start (stdio, log, event loops) plus control clients, the state
    /// file, health checks and metrics ([`reserve`]).
    pub reserve: usize,
    /// `--max-connections` and `--max-udp-flows`: the caps when descriptors
    /// are plenty.
    pub max_tcp: usize,
    pub max_udp: usize,
    /// Permits of concurrent TCP connections and of UDP flows.
    pub tcp: Arc<Semaphore>,
    pub udp: Arc<Semaphore>,
    caps: std::sync::Mutex<Caps>,
}

/// The caps in force, for one count of listening sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub listeners: usize,
    pub tcp: usize,
    pub udp: usize,
    /// Descriptors left for splice pipes (two a pipe), an optimisation
    /// that falls back to copying when none are left.
    pub pipes: usize,
}

/// The descriptors kept out of the connection budget: those open at
/// start (`open`), plus 5 % of the limit, at least 64, for control clients,
/// the state file (and its temporary copy), health checks and metrics.
pub fn reserve(limit: usize, open: usize) -> usize {
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
    pub fn new(limit: usize, reserve: usize, max_tcp: usize, max_udp: usize) -> Budget {
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
        super::sys::set_pipe_budget(caps.pipes / 2);
        self
    }

    /// The caps in force.
    pub fn caps(&self) -> Caps {
        *self.caps.lock().expect("budget lock")
    }

    /// Refuse a table of `services` services on `threads` data-plane
    /// threads whose listening sockets would eat into the reserve or leave
    /// too little for connections. The message says what to change.
    pub fn check(&self, services: usize, threads: usize) -> Result<(), String> {
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
    pub fn resize(&self, listeners: usize) -> bool {
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
        super::sys::set_pipe_budget(next.pipes / 2);
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
pub fn per_service(cap: usize, services: usize) -> usize {
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
pub struct RateLog {
    next_ms: AtomicU64,
    since: AtomicU64,
    /// Events since start.
    pub total: AtomicU64,
}

impl RateLog {
    pub const EVERY_MS: u64 = 5000;

    /// Count one event. `Some(n)` when a line is due now: `n` events since
    /// the last line (this one included).
    pub fn hit(&self) -> Option<u64> {
        self.total.fetch_add(1, Relaxed);
        self.since.fetch_add(1, Relaxed);
        let now = runtime::now_ms();
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
