//! The reconciler between the table and the data plane. Owned by the table
//! task: for every table change it binds the sockets of new services first
//! ([`DataPlane::prepare`], so a bind failure rejects the command before
//! anything changes), then swaps in the new runtimes and starts or stops
//! listeners ([`DataPlane::commit`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::ctl::proto::{CheckKind, Protocol, RealServerSpec, ServiceKey, ServiceSpec};

use super::error::{BindError, PrepareError};
use super::workers::Workers;
use super::{tcp, udp};
use crate::daemon::health::{self, Check};
use crate::daemon::service::{ServiceRt, Snapshot};
use crate::daemon::state::budget::per_service;
use crate::daemon::state::conns::ServiceState;
use crate::daemon::state::server::ServerState;
use crate::daemon::state::shared::Shared;
use crate::daemon::table::Table;

/// The bound sockets of one service, one per data-plane thread, waiting
/// to be started.
enum Bound {
    Tcp(Vec<std::net::TcpListener>),
    Udp(Vec<std::net::UdpSocket>),
}

/// Sockets bound by `prepare`, handed to `commit`.
#[derive(Default)]
pub(crate) struct Prepared {
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
    /// until then the port would stay in LISTEN, so that re-adding the same
    /// virtual service at once (`-D` then `-A`) would meet EADDRINUSE.
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
        let state = live
            .servers
            .entry(srv.addr)
            .or_insert_with(|| Arc::new(ServerState::new(shared.loads.threads())))
            .clone();
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
            && crate::daemon::state::server::effective_weight(&rt.spec, s, &d.state) != d.weight
    })
}

/// The data plane as seen by the table task.
pub(crate) struct DataPlane {
    live: HashMap<ServiceKey, Live>,
    published: Arc<ArcSwap<Snapshot>>,
    pub(crate) shared: Arc<Shared>,
    /// The threads that run listeners and connections.
    workers: Workers,
}

impl DataPlane {
    pub(crate) fn new(shared: Arc<Shared>, workers: Workers) -> DataPlane {
        DataPlane {
            live: HashMap::new(),
            published: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            shared,
            workers,
        }
    }

    /// The snapshot readers load (listings, the tick).
    pub(crate) fn published(&self) -> Arc<ArcSwap<Snapshot>> {
        self.published.clone()
    }

    /// Bind the sockets of services that `next` adds. Nothing is started.
    pub(crate) fn prepare(&self, next: &Table) -> Result<Prepared, PrepareError> {
        self.prepare_some(next, next.services().iter().map(|s| &s.spec.key))
    }

    /// [`DataPlane::prepare`] for a change that can only have added the
    /// services `candidates` (those not in `next` are skipped): costs the
    /// change, not the table.
    pub(crate) fn prepare_some<'a>(
        &self,
        next: &Table,
        candidates: impl IntoIterator<Item = &'a ServiceKey>,
    ) -> Result<Prepared, PrepareError> {
        let mut prepared = Prepared::default();
        if next.services().len() > self.live.len() {
            self.shared
                .budget
                .check(next.services().len(), self.workers.threads())
                .map_err(PrepareError::Budget)?;
        }
        for &key in candidates {
            if self.live.contains_key(&key)
                || prepared.bound.contains_key(&key)
                || next.service(&key).is_none()
            {
                continue;
            }
            let bound = bind(&key, self.workers.threads())
                .map_err(|source| PrepareError::Bind(BindError { key, source }))?;
            prepared.bound.insert(key, bound);
        }
        Ok(prepared)
    }

    /// Make `next` live: start new listeners, swap changed runtimes, stop
    /// removed listeners (their running connections finish on their own).
    pub(crate) fn commit(&mut self, next: &Table, mut prepared: Prepared) {
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
    pub(crate) fn commit_some(
        &mut self,
        next: &Table,
        mut prepared: Prepared,
        touched: &[ServiceKey],
    ) {
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
        svc: &crate::daemon::table::Service,
        prepared: &mut Prepared,
        ramp: bool,
    ) -> (Arc<ServiceRt>, bool) {
        let key = svc.spec.key;
        let threads = self.workers.threads();
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
                    |a| {
                        servers
                            .entry(*a)
                            .or_insert_with(|| Arc::new(ServerState::new(threads)))
                            .clone()
                    },
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
                    Arc::new(ServiceState::new(threads)),
                    |a| {
                        servers
                            .entry(*a)
                            .or_insert_with(|| Arc::new(ServerState::new(threads)))
                            .clone()
                    },
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
    pub(crate) fn stop_all(&mut self) {
        for live in self.live.values_mut() {
            live.stop();
        }
    }

    /// Zero counters and rates of one service (and its servers) or all.
    pub(crate) fn zero(&self, key: Option<ServiceKey>) {
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
    pub(crate) fn live_connections(&self) -> usize {
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
