//! Wire types of the control protocol: plain data with serde derives, no runtime.
//!
//! Evolution rules (bincode encodes enum variants and struct fields by position):
//! - only **append** enum variants and never reorder or remove one;
//! - never change a field's type or order; a new field means a new
//!   [`PROTOCOL_VERSION`];
//! - every change to the encoding bumps [`PROTOCOL_VERSION`] and adds golden
//!   bytes to `tests/ctl_wire.rs`.
//!
//! The same types are stored in the daemon's state file (see
//! `daemon::store`), which carries its own format version.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Version of the control protocol spoken on the Unix socket.
pub const PROTOCOL_VERSION: u32 = 2;

/// Version string of this build (CLI and daemon alike).
pub const RVS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Default persistence timeout when `-p` is given without a value (ipvsadm: 360 s).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;

/// Largest persistence timeout / `--set` value ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: u32 = 2_678_400;

/// Scheduler flag bits (ipvsadm `-b`).
pub const SCHED_FLAG_1: u32 = 0x0008;
pub const SCHED_FLAG_2: u32 = 0x0010;
pub const SCHED_FLAG_3: u32 = 0x0020;

/// Every scheduler name rvsd implements, in the order `rvsadm -h` lists them.
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// Transport protocol of a virtual service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// IANA protocol number (used for ipvsadm's sort order: TCP 6 < UDP 17).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
    /// Upper-case name as listings print it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
    /// Lower-case name for /etc/services look-ups.
    pub fn service_proto(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Identity of a virtual service: protocol + virtual address + port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub proto: Protocol,
    pub addr: SocketAddr,
}

/// Persistence granularity: an IPv4 netmask or an IPv6 prefix length.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Netmask {
    V4(Ipv4Addr),
    V6(u8),
}

impl Netmask {
    /// The "no grouping" mask for an address family (/32 or /128).
    pub fn host(addr: &IpAddr) -> Netmask {
        match addr {
            IpAddr::V4(_) => Netmask::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(_) => Netmask::V6(128),
        }
    }
    /// True when the mask groups nothing (the default, not printed by ipvsadm).
    pub fn is_host(&self) -> bool {
        matches!(self, Netmask::V4(m) if *m == Ipv4Addr::BROADCAST)
            || matches!(self, Netmask::V6(128))
    }
}

/// Forwarding method of a real server. rvs forwards in userspace, so only
/// `Masq` is accepted in requests; `Local` is derived when listing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forward {
    Masq,
    Local,
    Tunnel,
    Route,
}

impl Forward {
    /// Name as the default listing prints it.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel => "Tunnel",
            Forward::Route => "Route",
        }
    }
}

/// Everything `-A`/`-E` set on a virtual service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    /// Scheduler name (`wlc` when `-s` is omitted).
    pub scheduler: String,
    /// Persistence timeout in seconds; `None` = not persistent.
    pub persistent: Option<u32>,
    /// Persistence granularity (only meaningful when persistent).
    pub netmask: Netmask,
    /// `SCHED_FLAG_*` bits from `-b`.
    pub sched_flags: u32,
    /// One-packet scheduling (`-o`, UDP only).
    pub ops: bool,
    /// Persistence engine (`--pe`); rvs supports none yet, so always `None`.
    pub pe: Option<String>,
    /// Health-check defaults for every real server of the service.
    pub health: HealthCheck,
    /// Used only while no real server is available (`--sorry-server`).
    pub sorry_server: Option<SocketAddr>,
    /// Default slow-start ramp in seconds for recovered or new servers (`--slow-start`).
    pub slow_start: Option<u32>,
}

impl ServiceSpec {
    /// A service with ipvsadm's defaults (`wlc`, not persistent, no flags).
    pub fn new(key: ServiceKey) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: "wlc".to_string(),
            persistent: None,
            netmask: Netmask::host(&key.addr.ip()),
            sched_flags: 0,
            ops: false,
            pe: None,
            health: HealthCheck::default(),
            sorry_server: None,
            slow_start: None,
        }
    }
}

/// Everything `-a`/`-e` set on a real server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RealServerSpec {
    pub addr: SocketAddr,
    pub forward: Forward,
    /// 0 ..= i32::MAX; 0 quiesces the server.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
    /// Per-server overrides of the service's health-check settings.
    pub health: HealthCheck,
    /// Slow-start ramp override in seconds.
    pub slow_start: Option<u32>,
}

impl RealServerSpec {
    pub fn new(addr: SocketAddr) -> RealServerSpec {
        RealServerSpec {
            addr,
            forward: Forward::Masq,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            health: HealthCheck::default(),
            slow_start: None,
        }
    }
}

/// Kind of active health check.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// No active check: only passive (connect failures) and recovery probes.
    None,
    /// A TCP connect.
    Tcp,
    /// An HTTP/1.1 GET.
    Http,
    /// A command; exit status 0 = up.
    Exec,
    /// A UDP datagram and its expected reply.
    Udp,
}

impl CheckKind {
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::None => "none",
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Exec => "exec",
            CheckKind::Udp => "udp",
        }
    }
    pub fn parse(s: &str) -> Option<CheckKind> {
        Some(match s {
            "none" => CheckKind::None,
            "tcp" => CheckKind::Tcp,
            "http" => CheckKind::Http,
            "exec" => CheckKind::Exec,
            "udp" => CheckKind::Udp,
            _ => return None,
        })
    }
}

/// Health-check settings. On a service these are the defaults; on a real
/// server each set field overrides the service's. Unset everywhere:
/// TCP services get a TCP connect every 2 s, timeout 1 s, fall 3, rise 2;
/// UDP services get no active check unless one is configured.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: Option<CheckKind>,
    pub interval_ms: Option<u32>,
    pub timeout_ms: Option<u32>,
    /// Consecutive successes that bring a down server up.
    pub rise: Option<u32>,
    /// Consecutive failures that take an up server down.
    pub fall: Option<u32>,
    /// Random extra delay before each probe, up to this many ms.
    pub jitter_ms: Option<u32>,
    /// Probe this address instead of the real server's.
    pub addr: Option<IpAddr>,
    /// Probe this port instead of the real server's.
    pub port: Option<u16>,
    /// State before the first verdict: up (default) or down until proven.
    pub initial_up: Option<bool>,
    pub http_path: Option<String>,
    pub http_host: Option<String>,
    /// Accepted status range, inclusive (default 200-399).
    pub http_status: Option<(u16, u16)>,
    /// A substring the body must contain.
    pub http_body: Option<String>,
    /// Command run by `sh -c`, with RVS_SERVER_ADDR/RVS_SERVER_PORT set.
    pub exec: Option<String>,
    pub udp_send: Option<String>,
    pub udp_expect: Option<String>,
}

impl HealthCheck {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == HealthCheck::default()
    }

    /// `self` (a server's overrides) on top of `base` (the service's defaults).
    pub fn over(&self, base: &HealthCheck) -> HealthCheck {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            a.clone().or_else(|| b.clone())
        }
        HealthCheck {
            kind: pick(&self.kind, &base.kind),
            interval_ms: pick(&self.interval_ms, &base.interval_ms),
            timeout_ms: pick(&self.timeout_ms, &base.timeout_ms),
            rise: pick(&self.rise, &base.rise),
            fall: pick(&self.fall, &base.fall),
            jitter_ms: pick(&self.jitter_ms, &base.jitter_ms),
            addr: pick(&self.addr, &base.addr),
            port: pick(&self.port, &base.port),
            initial_up: pick(&self.initial_up, &base.initial_up),
            http_path: pick(&self.http_path, &base.http_path),
            http_host: pick(&self.http_host, &base.http_host),
            http_status: pick(&self.http_status, &base.http_status),
            http_body: pick(&self.http_body, &base.http_body),
            exec: pick(&self.exec, &base.exec),
            udp_send: pick(&self.udp_send, &base.udp_send),
            udp_expect: pick(&self.udp_expect, &base.udp_expect),
        }
    }
}

/// Health of a real server as listed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// In rotation.
    Up,
    /// Failed its checks (or connects): no new connections.
    Down,
    /// Weight 0 (quiesced): running connections finish, no new ones.
    Drain,
}

impl HealthState {
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Up => "UP",
            HealthState::Down => "DOWN",
            HealthState::Drain => "DRAIN",
        }
    }
}

/// What `--health` shows of a real server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HealthView {
    pub state: HealthState,
    /// Seconds since the state last changed.
    pub since_secs: u64,
    /// The effective check, e.g. "tcp", "http GET /health", "none".
    pub check: String,
    /// Result of the last probe: `None` before the first one.
    pub last_ok: Option<bool>,
    /// Duration of the last probe in microseconds.
    pub latency_us: Option<u64>,
    /// The last verdict in words ("connection refused", "HTTP 503", "timeout after 1 s").
    pub reason: String,
    /// Slow-start: the weight in effect now when it differs from the configured one.
    pub effective_weight: Option<u32>,
}

/// A real server changed state (pushed to subscribers).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub service: ServiceKey,
    pub server: SocketAddr,
    pub state: HealthState,
    pub reason: String,
}

/// Idle timeouts set by `--set tcp tcpfin udp` (seconds).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        }
    }
}

/// Cumulative counters since the last `-Z`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// Estimated rates (kernel estimator): conns/s, packets/s, bytes/s.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A real server as listed: its spec plus live state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServerView {
    pub spec: RealServerSpec,
    /// Method to print: `Local` when the address is on this host.
    pub shown_forward: Forward,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persist_conns: u32,
    pub stats: Stats,
    pub rates: Rates,
    pub health: HealthView,
}

/// A virtual service as listed, real servers in table order (most recently added first).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub spec: ServiceSpec,
    pub stats: Stats,
    pub rates: Rates,
    pub servers: Vec<ServerView>,
    /// True while no real server is available and the sorry server takes the traffic.
    pub sorry_active: bool,
}

/// The whole table as listed, services in creation order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct TableView {
    pub services: Vec<ServiceView>,
}

/// One entry of the connection table (`-L -c`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConnEntry {
    pub proto: Protocol,
    pub client: SocketAddr,
    pub virt: SocketAddr,
    pub dest: SocketAddr,
    /// State name as ipvsadm prints it (`ESTABLISHED`, `FIN_WAIT`, `UDP`, `NONE`, `ASSURED`).
    pub state: String,
    /// Seconds until the entry expires.
    pub expires: u32,
    /// True for a persistence template.
    pub template: bool,
}

/// Daemon identity, answered to [`Request::Hello`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DaemonInfo {
    pub protocol: u32,
    pub version: String,
    pub pid: u32,
    pub uptime_secs: u64,
}

/// A request from a client. Append-only (see the module doc).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Must be the first request on every connection.
    Hello {
        protocol: u32,
        client: String,
    },
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DeleteService(ServiceKey),
    Clear,
    AddServer {
        service: ServiceKey,
        server: RealServerSpec,
    },
    EditServer {
        service: ServiceKey,
        server: RealServerSpec,
    },
    DeleteServer {
        service: ServiceKey,
        server: SocketAddr,
    },
    /// Zero counters and rates of one service, or of everything.
    Zero(Option<ServiceKey>),
    /// `--set`: 0 in a field keeps the current value.
    SetTimeouts(Timeouts),
    /// List the table, or one service (`No such service` if absent).
    List(Option<ServiceKey>),
    ListConnections,
    GetTimeouts,
    /// Apply a batch of mutations atomically (`-R`): all or nothing.
    Batch(Vec<Request>),
    /// Turn this connection into a stream: the daemon answers with
    /// [`Response::Update`] now and then every `interval_ms` (clamped to
    /// 100..=60000) until the client goes away. No further requests are read.
    Subscribe {
        interval_ms: u32,
    },
}

impl Request {
    /// True when the request changes the table (needs mutation permission).
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            Request::Hello { .. }
                | Request::List(_)
                | Request::ListConnections
                | Request::GetTimeouts
                | Request::Subscribe { .. }
        )
    }
}

/// Why a request failed. The message carries ipvsadm's text where one exists.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `-A` on an existing service (ipvsadm: `Service already exists`).
    ServiceExists,
    /// `-E -D -Z -L` on a missing service (`No such service`).
    NoSuchService,
    /// `-a -e -d` on a missing service (`Service not defined`).
    ServiceNotDefined,
    /// `-a` on an existing real server (`Destination already exists`).
    DestinationExists,
    /// `-e -d` on a missing real server (`No such destination`).
    NoSuchDestination,
    /// Unknown scheduler (`Scheduler or persistence engine not found`).
    SchedulerNotFound,
    /// Out-of-range value, e.g. l_threshold > u_threshold (`Numerical result out of range`).
    OutOfRange,
    /// Invalid request (`Invalid operation. ...`).
    Invalid,
    /// The peer may not mutate the table.
    PermissionDenied,
    /// A feature ipvsadm has that rvs does not support yet.
    NotSupported,
    /// The daemon could not bind a virtual service's address.
    Bind,
    /// The daemon could not persist the table; nothing changed.
    Storage,
    /// Protocol violation (bad frame, missing hello, version mismatch).
    Protocol,
}

/// A reply to one request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Hello(DaemonInfo),
    Ok,
    Table(TableView),
    Connections(Vec<ConnEntry>),
    Timeouts(Timeouts),
    /// `index` names the failing request inside a [`Request::Batch`].
    Error {
        kind: ErrorKind,
        message: String,
        index: Option<u32>,
    },
    /// One push of a subscription.
    Update(Update),
}

/// What a subscription pushes: the daemon's identity and the whole table
/// with live counters and rates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub daemon: DaemonInfo,
    pub table: TableView,
    /// Live proxied connections and UDP flows across the daemon.
    pub live_connections: u64,
    /// Health state changes since the previous push (the first push: the
    /// most recent ones the daemon remembers).
    pub events: Vec<HealthEvent>,
}

impl Response {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error {
            kind,
            message: message.into(),
            index: None,
        }
    }
}
