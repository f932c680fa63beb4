//! The control socket: accepts clients, checks their credentials
//! (SO_PEERCRED), decodes frames, answers reads from the published snapshot
//! and sends mutations to the single table task, which applies them in
//! order, binds sockets, writes the state file and only then replies.
//!
//! Robustness: the frame length is checked before allocating (at most
//! [`codec::MAX_PRE_HELLO_FRAME`] before the hello, [`READER_MAX_FRAME`] from
//! a client that may only read), decoding is bounded by the body length, the
//! bodies being read or decoded share a budget of [`BYTES_IN_FLIGHT`], the
//! hello must arrive within [`HELLO_TIMEOUT`], a body within [`BODY_TIMEOUT`]
//! of its header, an idle client is dropped after [`IDLE_TIMEOUT`], a client
//! that does not read its answer within [`WRITE_TIMEOUT`] is dropped, and a
//! bad frame ends only that client's connection. [`RESERVED_CLIENTS`] slots
//! beyond [`MAX_CLIENTS`] are kept for root and rvsd's own uid, so that
//! others cannot lock the administrator out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::ctl::codec;
use crate::ctl::proto::{
    DaemonInfo, ErrorKind, Request, Response, TableView, PROTOCOL_VERSION, RVS_VERSION,
};

use super::dataplane::DataPlane;
use super::health::EventLog;
use super::runtime::{is_local, local_addrs, Snapshot};
use super::store::Store;
use super::table::{Change, Table, Undo};

pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Once a frame's header is in, its body must follow within this.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// An answer (or a pushed update) not taken by the client within this
/// drops the client.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Control connections served at once; more are closed at accept.
pub const MAX_CLIENTS: usize = 8192;
/// Extra slots only root and rvsd's own uid may use once the others are taken.
pub const RESERVED_CLIENTS: usize = 32;
/// Request bodies being read or decoded at once from clients other than
/// root and rvsd's uid, in bytes.
pub const BYTES_IN_FLIGHT: usize = 256 * 1024 * 1024;
/// Largest frame from a client that may only read (its requests are tiny).
pub const READER_MAX_FRAME: u32 = 64 * 1024;

/// The control server's limits: the constants above, except that tests may
/// shrink the client slots and the write timeout through the environment
/// (`RVS_TEST_CTL_MAX_CLIENTS`, `RVS_TEST_CTL_WRITE_TIMEOUT_MS`), which no
/// documentation mentions.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_clients: usize,
    pub reserved_clients: usize,
    pub write_timeout: Duration,
}

impl Limits {
    pub fn from_env() -> Limits {
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        Limits {
            max_clients: num("RVS_TEST_CTL_MAX_CLIENTS").map_or(MAX_CLIENTS, |n| n as usize),
            reserved_clients: RESERVED_CLIENTS,
            write_timeout: num("RVS_TEST_CTL_WRITE_TIMEOUT_MS")
                .map_or(WRITE_TIMEOUT, Duration::from_millis),
        }
    }
}

/// Who is on the other end of a control connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// Who may change the table: root, the daemon's own uid, members of `--socket-group`.
#[derive(Debug)]
pub struct Auth {
    pub daemon_uid: u32,
    pub group: Option<(String, u32)>,
}

impl Auth {
    /// Root or rvsd's own uid: may set exec checks, and may use the reserved
    /// client slots.
    pub fn is_admin(&self, peer: &Peer) -> bool {
        peer.uid == 0 || peer.uid == self.daemon_uid
    }

    pub fn may_mutate(&self, peer: &Peer) -> bool {
        if self.is_admin(peer) {
            return true;
        }
        let Some((_, gid)) = &self.group else {
            return false;
        };
        if peer.gid == *gid {
            return true;
        }
        member_of(peer.uid, *gid)
    }

    fn denied(&self, req: &Request) -> String {
        let who = match &self.group {
            Some((name, _)) => format!("root or group {name}"),
            None => "root (or start rvsd with --socket-group to delegate)".to_string(),
        };
        format!("permission denied: {} needs {who}", op_name(req))
    }

    /// Refusal of an exec check from a delegated (`--socket-group`) client.
    fn exec_denied(&self, req: &Request, peer: &Peer) -> String {
        format!(
            "permission denied: {} with an exec health check (--check exec / --check-exec): exec checks run their command as rvsd's user, so only root or rvsd's own uid ({}) may set them, not uid {}; use --check tcp, http or udp, or ask an administrator",
            op_name(req),
            self.daemon_uid,
            peer.uid
        )
    }
}

/// Does `hc` configure an exec check (kind exec, or a command)?
fn sets_exec(hc: &crate::ctl::proto::HealthCheck) -> bool {
    hc.kind == Some(crate::ctl::proto::CheckKind::Exec) || hc.exec.is_some()
}

/// Where `req` sets an exec check: `Some(None)` in the request itself,
/// `Some(Some(i))` in change `i` of a batch, `None` nowhere.
pub fn exec_check_in(req: &Request) -> Option<Option<u32>> {
    match req {
        Request::AddService(spec) | Request::EditService(spec) => {
            sets_exec(&spec.health).then_some(None)
        }
        Request::AddServer { server, .. } | Request::EditServer { server, .. } => {
            sets_exec(&server.health).then_some(None)
        }
        Request::Batch(reqs) => reqs
            .iter()
            .position(|r| exec_check_in(r).is_some())
            .map(|i| Some(i as u32)),
        _ => None,
    }
}

fn member_of(uid: u32, gid: u32) -> bool {
    use nix::unistd::{getgrouplist, Gid, Uid, User};
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    getgrouplist(&name, user.gid)
        .map(|gs| gs.contains(&Gid::from_raw(gid)))
        .unwrap_or(false)
}

/// The ipvsadm command a request stands for, for messages and the audit log.
pub fn op_name(req: &Request) -> &'static str {
    match req {
        Request::Hello { .. } => "hello",
        Request::AddService(_) => "add-service (-A)",
        Request::EditService(_) => "edit-service (-E)",
        Request::DeleteService(_) => "delete-service (-D)",
        Request::Clear => "flush (-C)",
        Request::AddServer { .. } => "add-server (-a)",
        Request::EditServer { .. } => "edit-server (-e)",
        Request::DeleteServer { .. } => "delete-server (-d)",
        Request::Zero(_) => "zero (-Z)",
        Request::SetTimeouts(_) => "set (--set)",
        Request::List(_) => "list (-L)",
        Request::ListConnections => "list connections (-L -c)",
        Request::GetTimeouts => "list timeouts (--timeout)",
        Request::Batch(_) => "restore (-R)",
        Request::Subscribe { .. } => "subscribe",
    }
}

fn summary(req: &Request) -> String {
    match req {
        Request::Batch(reqs) => format!("restore (-R) of {} changes", reqs.len()),
        other => format!("{other:?}"),
    }
}

/// A mutation on its way to the table task.
pub struct TableMsg {
    pub req: Request,
    pub peer: Peer,
    pub reply: oneshot::Sender<Response>,
}

/// Static facts about this daemon for the hello.
#[derive(Debug)]
pub struct Meta {
    pub started: Instant,
}

impl Meta {
    fn info(&self) -> DaemonInfo {
        DaemonInfo {
            protocol: PROTOCOL_VERSION,
            version: RVS_VERSION.to_string(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
        }
    }
}

/// The single owner of the table: applies mutations in arrival order, and
/// once a second re-weighs servers in a slow-start ramp.
pub async fn table_task(
    mut table: Table,
    mut store: Store,
    mut dp: DataPlane,
    mut rx: mpsc::Receiver<TableMsg>,
) -> DataPlane {
    let mut reweigh = tokio::time::interval(Duration::from_secs(1));
    reweigh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
            _ = reweigh.tick() => {
                dp.commit(&table, super::dataplane::Prepared::default());
                continue;
            }
        };
        let resp = apply(&mut table, &mut store, &mut dp, &msg.req);
        if matches!(msg.req, Request::Batch(_)) {
            super::sys::trim_heap();
        }
        let result = match &resp {
            Response::Ok => "ok".to_string(),
            Response::Error { message, index, .. } => match index {
                Some(i) => format!("error at change {}: {message}", i + 1),
                None => format!("error: {message}"),
            },
            _ => "?".to_string(),
        };
        tracing::info!(
            target: "rvsd::audit",
            uid = msg.peer.uid,
            pid = msg.peer.pid.unwrap_or(-1),
            request = %summary(&msg.req),
            result = %result,
            "mutation"
        );
        let _ = msg.reply.send(resp);
    }
    // Clean shutdown: fold the journal into one snapshot.
    if let Err(e) = store.compact_if_needed(&table) {
        tracing::warn!(error = %e, "could not fold the journal into the state file at shutdown (it is replayed at the next start)");
    }
    dp
}

/// Apply one mutation: in place on `table` (no copy of it), then bind what
/// it adds, journal it and make it live; a failure at any step takes the
/// change back and the reply says why.
fn apply(table: &mut Table, store: &mut Store, dp: &mut DataPlane, req: &Request) -> Response {
    let mut undo = Undo::default();
    let change = table.apply_undoable(req, &mut undo);
    match change {
        Err((index, e)) => Response::Error {
            kind: e.kind,
            message: e.message,
            index: index.map(|i| i as u32),
        },
        Ok(Change::Zero(key)) => {
            dp.zero(key);
            Response::Ok
        }
        Ok(Change::Table) => {
            let prepared = match dp.prepare_some(table, undo.added()) {
                Ok(p) => p,
                Err(e) => {
                    table.rollback(undo);
                    let index = match req {
                        Request::Batch(reqs) => bind_failure_index(reqs, &e.message),
                        _ => None,
                    };
                    return Response::Error {
                        kind: e.kind,
                        message: e.message,
                        index,
                    };
                }
            };
            if let Err(e) = store.record(table, &undo) {
                table.rollback(undo);
                tracing::error!(error = %e, "state file not written: change rejected");
                return Response::error(ErrorKind::Storage, format!("{e}; nothing was changed"));
            }
            match undo.touched() {
                Some(keys) => dp.commit_some(table, prepared, &keys),
                None => dp.commit(table, prepared),
            }
            // `-Z` lines inside a restore zero counters once the batch is in.
            if let Request::Batch(reqs) = req {
                for r in reqs {
                    if let Request::Zero(key) = r {
                        dp.zero(*key);
                    }
                }
            }
            Response::Ok
        }
    }
}

/// Which request of a batch added the service whose socket could not be
/// bound (`message` is the data plane's `cannot bind PROTO ADDR: reason`),
/// so that `rvsadm -R` can name the line. The last such `-A` wins: it is the
/// one whose service is in the table being prepared.
fn bind_failure_index(reqs: &[Request], message: &str) -> Option<u32> {
    reqs.iter()
        .rposition(|r| match r {
            Request::AddService(spec) => message.starts_with(&format!(
                "cannot bind {} {}: ",
                spec.key.proto.name(),
                spec.key.addr
            )),
            _ => false,
        })
        .map(|i| i as u32)
}

/// Check where the control socket goes, before rvsd touches any port:
/// prepare its directory ([`socket_dir`]) and refuse when a live rvsd
/// answers on it or when something other than a socket sits at the path.
pub fn check_socket_path(path: &Path, mode: u32) -> Result<(), String> {
    socket_dir(path, mode)?;
    stale_socket(path).map(|_| ())
}

/// Create the control socket: refuse when a live rvsd answers on it or the
/// path holds anything but a socket, replace a stale socket, mode `mode`,
/// group `--socket-group`.
pub fn bind_socket(
    path: &Path,
    mode: u32,
    group: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, String> {
    use std::os::unix::fs::PermissionsExt;
    socket_dir(path, mode)?;
    if stale_socket(path)? {
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
        tracing::info!(socket = %path.display(), "replaced a stale socket file");
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot bind control socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode of {}: {e}", path.display()))?;
    if let Some(gid) = group {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(|e| format!("cannot give {} to the socket group: {e}", path.display()))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("control socket: {e}"))?;
    Ok(listener)
}

/// What sits at the socket path: `Ok(false)` nothing, `Ok(true)` a stale
/// socket (safe to unlink), `Err` a live rvsd or anything that is not a
/// socket (a typo such as `--socket /var/lib/rvs/table.state` must never
/// delete the file).
fn stale_socket(path: &Path) -> Result<bool, String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    };
    let ft = meta.file_type();
    if !ft.is_socket() {
        let what = if ft.is_file() {
            format!("a regular file of {} bytes", meta.len())
        } else if ft.is_dir() {
            "a directory".to_string()
        } else if ft.is_symlink() {
            "a symbolic link".to_string()
        } else {
            "not a socket".to_string()
        };
        return Err(format!(
            "--socket {} is {what}, not a socket: refusing to replace it (point --socket at a new path, or remove the file yourself if it is not needed)",
            path.display()
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "another rvsd is already running on {} (stop it first, or start this one with --socket elsewhere)",
            path.display()
        ));
    }
    Ok(true)
}

/// Make sure the socket's directory exists and that nobody else can swap
/// the socket in it.
///
/// * A directory rvsd creates gets mode 0700, or 0711 when `--socket-mode`
///   lets group or others connect (they may traverse, not list or write).
/// * The default directories (`/run/rvs`, `$XDG_RUNTIME_DIR/rvs`,
///   `/tmp/rvs-$UID`) must be a real directory owned by rvsd's uid and not
///   writable by group or others (as ssh-agent and tmux insist): another
///   user could pre-create `/tmp/rvs-$UID` and receive our clients' commands.
/// * For an explicit `--socket` in an existing directory the operator chose,
///   a world-writable directory without the sticky bit is refused (anyone
///   could replace the socket); a sticky one such as `/tmp` is accepted.
fn socket_dir(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let dir_mode = if mode & 0o077 != 0 { 0o711 } else { 0o700 };
    let created = match std::fs::DirBuilder::new().mode(dir_mode).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(dir_mode)
                .recursive(true)
                .create(dir)
                .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
            true
        }
        Err(e) => {
            return Err(format!(
                "cannot create socket directory {}: {e}",
                dir.display()
            ))
        }
    };
    if created {
        tracing::info!(dir = %dir.display(), mode = format!("{dir_mode:o}"), "created the socket directory");
    }
    let is_default = path == crate::ctl::default_socket_path();
    let meta = if is_default {
        std::fs::symlink_metadata(dir)
    } else {
        std::fs::metadata(dir)
    }
    .map_err(|e| format!("cannot inspect socket directory {}: {e}", dir.display()))?;
    let fix = "remove it (or fix its owner and mode) or point --socket elsewhere";
    if !meta.is_dir() {
        return Err(format!(
            "socket directory {} is not a directory (a symbolic link?): {fix}",
            dir.display()
        ));
    }
    let bits = meta.mode() & 0o7777;
    if is_default {
        let uid = nix::unistd::geteuid().as_raw();
        if meta.uid() != uid {
            return Err(format!(
                "socket directory {} belongs to uid {}, not to rvsd's uid {uid}: another user may have created it to receive rvsadm's commands; {fix}",
                dir.display(),
                meta.uid()
            ));
        }
        if bits & 0o022 != 0 {
            return Err(format!(
                "socket directory {} is writable by group or others (mode {bits:04o}): anyone who can write there can replace the socket; {fix}",
                dir.display()
            ));
        }
    } else if bits & 0o002 != 0 && bits & 0o1000 == 0 {
        return Err(format!(
            "socket directory {} is writable by everyone and not sticky (mode {bits:04o}): anyone could replace the socket; {fix}",
            dir.display()
        ));
    }
    Ok(())
}

/// Accept control clients until `stop` fires.
pub async fn serve(
    listener: UnixListener,
    tx: mpsc::Sender<TableMsg>,
    published: Arc<ArcSwap<Snapshot>>,
    auth: Arc<Auth>,
    meta: Arc<Meta>,
    events: Arc<EventLog>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = Limits::from_env();
    let slots = Arc::new(Semaphore::new(limits.max_clients));
    let reserved = Arc::new(Semaphore::new(limits.reserved_clients));
    let budget = Arc::new(Semaphore::new(BYTES_IN_FLIGHT));
    let mut refused = RateLimitedWarn::default();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = match stream.peer_cred() {
            Ok(c) => Peer {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "control client without credentials: closed");
                continue;
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) if auth.is_admin(&peer) => match reserved.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    refused.warn(peer.uid, limits.max_clients + limits.reserved_clients);
                    continue;
                }
            },
            Err(_) => {
                refused.warn(peer.uid, limits.max_clients);
                continue;
            }
        };
        let conn = Conn {
            peer,
            tx: tx.clone(),
            published: published.clone(),
            auth: auth.clone(),
            meta: meta.clone(),
            events: events.clone(),
            budget: budget.clone(),
            limits,
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = client(stream, conn, stop).await {
                tracing::debug!(error = %e, "control client dropped");
            }
        });
    }
}

/// Logs refused connections at most once a second (a flood of them must
/// not flood the log).
#[derive(Default)]
struct RateLimitedWarn {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedWarn {
    fn warn(&mut self, uid: u32, slots: usize) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            uid,
            slots,
            more_refused = self.suppressed,
            "too many control clients: connection closed (root and rvsd's uid keep reserved slots)"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// What one control connection needs from the daemon.
struct Conn {
    peer: Peer,
    tx: mpsc::Sender<TableMsg>,
    published: Arc<ArcSwap<Snapshot>>,
    auth: Arc<Auth>,
    meta: Arc<Meta>,
    events: Arc<EventLog>,
    /// Bytes of request bodies being read or decoded (non-admin clients).
    budget: Arc<Semaphore>,
    limits: Limits,
}

/// Serve one control connection. Between requests it also watches `stop`:
/// at shutdown an idle or subscribed client is let go (a request already
/// being handled is still answered), so that its `tx` clone does not keep
/// the table task, and with it rvsd, alive until the idle timeout.
async fn client(
    mut stream: UnixStream,
    conn: Conn,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let Conn {
        peer,
        tx,
        published,
        auth,
        meta,
        events,
        budget,
        limits,
    } = conn;
    let wt = limits.write_timeout;
    let admin = auth.is_admin(&peer);
    let mut greeted = false;
    // Largest frame accepted now: tiny before the hello, small for a client
    // that may only read.
    let mut max_frame = codec::MAX_PRE_HELLO_FRAME;
    loop {
        let limit = if greeted { IDLE_TIMEOUT } else { HELLO_TIMEOUT };
        let reserve = (!admin).then_some(&budget);
        let read = tokio::select! {
            // Shutdown: idle clients must not hold the table task open.
            _ = stop.changed() => return Ok(()),
            r = read_body(&mut stream, limit, max_frame, reserve) => r,
        };
        let (body, permit) = match read {
            Err(ReadError::Idle) => return Err("timed out waiting for a request".into()),
            Err(ReadError::Closed) => return Ok(()),
            Err(ReadError::Bad(why)) => {
                let _ = send(
                    &mut stream,
                    &Response::error(ErrorKind::Protocol, why.clone()),
                    wt,
                )
                .await;
                return Err(why);
            }
            Ok(b) => b,
        };
        let decoded = codec::decode_body::<Request>(&body);
        drop(body);
        drop(permit);
        let req = match decoded {
            Ok(r) => r,
            Err(e) => {
                let why = format!("malformed request: {e}");
                let _ = send(
                    &mut stream,
                    &Response::error(ErrorKind::Protocol, why.clone()),
                    wt,
                )
                .await;
                return Err(why);
            }
        };
        let resp = match (&req, greeted) {
            (Request::Hello { protocol, client }, _) => {
                if *protocol != PROTOCOL_VERSION {
                    tracing::warn!(
                        "{client} (protocol {protocol}) cannot talk to rvsd {RVS_VERSION} (protocol {PROTOCOL_VERSION})"
                    );
                }
                greeted = true;
                max_frame = if auth.may_mutate(&peer) {
                    codec::MAX_FRAME
                } else {
                    READER_MAX_FRAME
                };
                Response::Hello(meta.info())
            }
            (Request::Subscribe { interval_ms }, true) => {
                let every = Duration::from_millis((*interval_ms).clamp(100, 60_000) as u64);
                return stream_updates(stream, every, &published, &meta, &events, stop, wt).await;
            }
            (_, false) => {
                let why = "the first request must be Hello".to_string();
                let _ = send(
                    &mut stream,
                    &Response::error(ErrorKind::Protocol, why.clone()),
                    wt,
                )
                .await;
                return Err(why);
            }
            (req, true) => dispatch(req, &peer, &tx, &published, &auth).await,
        };
        let big = matches!(&resp, Response::Table(t) if t.services.len() > 1000);
        if let Err(e) = send(&mut stream, &resp, wt).await {
            if e.kind() == std::io::ErrorKind::TimedOut {
                tracing::warn!(
                    uid = peer.uid,
                    pid = peer.pid.unwrap_or(-1),
                    "control client did not read its answer within {} ms: dropped",
                    wt.as_millis()
                );
            }
            return Err(format!("write: {e}"));
        }
        if big {
            drop(resp);
            super::sys::trim_heap();
        }
    }
}

async fn dispatch(
    req: &Request,
    peer: &Peer,
    tx: &mpsc::Sender<TableMsg>,
    published: &ArcSwap<Snapshot>,
    auth: &Auth,
) -> Response {
    match req {
        Request::List(key) => list(&published.load(), key.as_ref()),
        Request::ListConnections => {
            let snap = published.load();
            let mut out = Vec::new();
            for svc in &snap.services {
                svc.connections(
                    &super::runtime::SharedTimeouts::new(snap.timeouts),
                    &mut out,
                );
            }
            Response::Connections(out)
        }
        Request::GetTimeouts => Response::Timeouts(published.load().timeouts),
        req => {
            if !auth.may_mutate(peer) {
                tracing::warn!(target: "rvsd::audit", uid = peer.uid, pid = peer.pid.unwrap_or(-1), request = op_name(req), "mutation denied");
                return Response::error(ErrorKind::PermissionDenied, auth.denied(req));
            }
            if !auth.is_admin(peer) {
                if let Some(index) = exec_check_in(req) {
                    tracing::warn!(target: "rvsd::audit", uid = peer.uid, pid = peer.pid.unwrap_or(-1), request = op_name(req), "exec check denied");
                    return Response::Error {
                        kind: ErrorKind::PermissionDenied,
                        message: auth.exec_denied(req, peer),
                        index,
                    };
                }
            }
            let (reply, rx) = oneshot::channel();
            if tx
                .send(TableMsg {
                    req: req.clone(),
                    peer: *peer,
                    reply,
                })
                .await
                .is_err()
            {
                return Response::error(ErrorKind::Protocol, "rvsd is shutting down");
            }
            rx.await
                .unwrap_or_else(|_| Response::error(ErrorKind::Protocol, "rvsd is shutting down"))
        }
    }
}

fn list(snap: &Snapshot, key: Option<&crate::ctl::proto::ServiceKey>) -> Response {
    let locals = local_addrs();
    let local = |ip: &std::net::IpAddr| is_local(ip, &locals);
    match key {
        Some(k) => match snap.get(k) {
            Some(svc) => Response::Table(TableView {
                services: vec![svc.view(&local)],
            }),
            None => Response::error(ErrorKind::NoSuchService, "No such service"),
        },
        None => Response::Table(TableView {
            services: snap.services.iter().map(|s| s.view(&local)).collect(),
        }),
    }
}

/// Push an update every `every` until the client goes away. A client that
/// stops reading is dropped after the write times out.
async fn stream_updates(
    mut stream: UnixStream,
    every: Duration,
    published: &ArcSwap<Snapshot>,
    meta: &Meta,
    events: &EventLog,
    mut stop: watch::Receiver<bool>,
    write_timeout: Duration,
) -> Result<(), String> {
    let mut seen = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut rd, mut wr) = stream.split();
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // Anything the client sends, or its EOF, ends the subscription.
            _ = rd.read(&mut sink) => return Ok(()),
            _ = stop.changed() => return Ok(()),
        }
        let snap = published.load();
        let Response::Table(table) = list(&snap, None) else {
            unreachable!("whole-table list")
        };
        let live = snap
            .services
            .iter()
            .map(|s| s.state.live.load(std::sync::atomic::Ordering::Relaxed) as u64)
            .sum();
        let (fresh, newest) = events.since(seen);
        seen = newest;
        let update = Response::Update(crate::ctl::proto::Update {
            daemon: meta.info(),
            table,
            live_connections: live,
            events: fresh,
        });
        let frame = codec::encode_frame(&update).map_err(|e| e.to_string())?;
        match tokio::time::timeout(write_timeout, wr.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("subscriber went away: {e}")),
            Err(_) => return Err("subscriber stopped reading".into()),
        }
    }
}

enum ReadError {
    /// Nothing arrived within the hello or idle timeout.
    Idle,
    Closed,
    Bad(String),
}

/// Read one frame: the header within `idle`, then the body within
/// [`BODY_TIMEOUT`]. A body longer than `max_frame` is refused unread.
/// With a `budget`, its bytes are reserved there before the body is read;
/// the returned permit holds them until the caller has decoded it.
async fn read_body(
    stream: &mut UnixStream,
    idle: Duration,
    max_frame: u32,
    budget: Option<&Arc<Semaphore>>,
) -> Result<(Vec<u8>, Option<tokio::sync::OwnedSemaphorePermit>), ReadError> {
    let mut header = [0u8; codec::HEADER_LEN];
    match tokio::time::timeout(idle, stream.read_exact(&mut header)).await {
        Err(_) => return Err(ReadError::Idle),
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(ReadError::Closed)
        }
        Ok(Err(e)) => return Err(ReadError::Bad(format!("read: {e}"))),
    }
    let len = codec::body_len(header).map_err(|e| ReadError::Bad(e.to_string()))?;
    if len > max_frame as usize {
        return Err(ReadError::Bad(if max_frame == codec::MAX_PRE_HELLO_FRAME {
            format!(
                "frame of {len} bytes before the hello: the first request must be a Hello of at most {max_frame} bytes"
            )
        } else {
            format!(
                "frame of {len} bytes exceeds the {max_frame} bytes allowed to a client that may only read"
            )
        }));
    }
    let body = async {
        let permit = match budget {
            Some(b) => Some(
                b.clone()
                    .acquire_many_owned(len as u32)
                    .await
                    .map_err(|_| ReadError::Closed)?,
            ),
            None => None,
        };
        let mut body = Vec::with_capacity(len.min(64 * 1024));
        (&mut *stream)
            .take(len as u64)
            .read_to_end(&mut body)
            .await
            .map_err(|e| ReadError::Bad(format!("read: {e}")))?;
        if body.len() != len {
            return Err(ReadError::Bad(format!(
                "frame truncated: {} of {len} bytes",
                body.len()
            )));
        }
        Ok((body, permit))
    };
    match tokio::time::timeout(BODY_TIMEOUT, body).await {
        Ok(r) => r,
        Err(_) => Err(ReadError::Bad(format!(
            "the {len}-byte body did not arrive within {} s of its header",
            BODY_TIMEOUT.as_secs()
        ))),
    }
}

/// Send one answer; a client that does not take it within `timeout` gets a
/// `TimedOut` error (and is dropped by the caller).
async fn send(stream: &mut UnixStream, resp: &Response, timeout: Duration) -> std::io::Result<()> {
    let frame = codec::encode_frame(resp).map_err(|e| std::io::Error::other(e.to_string()))?;
    match tokio::time::timeout(timeout, stream.write_all(&frame)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("answer not taken within {} ms", timeout.as_millis()),
        )),
    }
}

/// Resolve `--socket-group NAME` to its gid.
pub fn group_gid(name: &str) -> Result<u32, String> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!(
            "--socket-group {name}: no such group (create it with groupadd {name})"
        )),
        Err(e) => Err(format!("--socket-group {name}: {e}")),
    }
}

/// Default state directory: `/var/lib/rvs` as root, else `$XDG_STATE_HOME/rvs`
/// or `~/.local/state/rvs`.
pub fn default_state_dir() -> PathBuf {
    if nix::unistd::getuid().is_root() {
        return PathBuf::from("/var/lib/rvs");
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("rvs");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/rvs"),
        None => PathBuf::from(format!("/tmp/rvs-{}/state", nix::unistd::getuid().as_raw())),
    }
}
