//! The control socket: accepts clients, checks their credentials
//! (SO_PEERCRED), decodes frames, answers reads from the published snapshot
//! and sends mutations to the single table task, which applies them in
//! order, binds sockets, writes the state file and only then replies.
//!
//! Robustness: the frame length is checked before allocating, the hello must
//! arrive within [`HELLO_TIMEOUT`], an idle client is dropped after
//! [`IDLE_TIMEOUT`], and a bad frame ends only that client's connection.

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
/// Control connections served at once; more are closed at accept.
pub const MAX_CLIENTS: usize = 8192;

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
    pub fn may_mutate(&self, peer: &Peer) -> bool {
        if peer.uid == 0 || peer.uid == self.daemon_uid {
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

/// Create the control socket: refuse when a live rvsd answers on it,
/// replace a stale file, mode `mode`, group `--socket-group`.
pub fn bind_socket(
    path: &Path,
    mode: u32,
    group: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another rvsd is already running on {} (stop it first, or start this one with --socket elsewhere)",
                path.display()
            ));
        }
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
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
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
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!("too many control clients: connection closed");
            continue;
        };
        let (tx, published, auth, meta, events) = (
            tx.clone(),
            published.clone(),
            auth.clone(),
            meta.clone(),
            events.clone(),
        );
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = client(stream, tx, published, auth, meta, events, stop).await {
                tracing::debug!(error = %e, "control client dropped");
            }
        });
    }
}

/// Serve one control connection. Between requests it also watches `stop`:
/// at shutdown an idle or subscribed client is let go (a request already
/// being handled is still answered), so that its `tx` clone does not keep
/// the table task, and with it rvsd, alive until the idle timeout.
async fn client(
    mut stream: UnixStream,
    tx: mpsc::Sender<TableMsg>,
    published: Arc<ArcSwap<Snapshot>>,
    auth: Arc<Auth>,
    meta: Arc<Meta>,
    events: Arc<EventLog>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("peer credentials: {e}"))?;
    let peer = Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    };
    let mut greeted = false;
    loop {
        let limit = if greeted { IDLE_TIMEOUT } else { HELLO_TIMEOUT };
        let read = tokio::select! {
            // Shutdown: idle clients must not hold the table task open.
            _ = stop.changed() => return Ok(()),
            r = tokio::time::timeout(limit, read_body(&mut stream)) => r,
        };
        let body = match read {
            Err(_) => return Err("timed out waiting for a request".into()),
            Ok(Err(ReadError::Closed)) => return Ok(()),
            Ok(Err(ReadError::Bad(why))) => {
                let _ = send(
                    &mut stream,
                    &Response::error(ErrorKind::Protocol, why.clone()),
                )
                .await;
                return Err(why);
            }
            Ok(Ok(body)) => body,
        };
        let req: Request = match codec::decode_body(&body) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("malformed request: {e}");
                let _ = send(
                    &mut stream,
                    &Response::error(ErrorKind::Protocol, why.clone()),
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
                Response::Hello(meta.info())
            }
            (Request::Subscribe { interval_ms }, true) => {
                let every = Duration::from_millis((*interval_ms).clamp(100, 60_000) as u64);
                return stream_updates(stream, every, &published, &meta, &events, stop).await;
            }
            (_, false) => {
                let why = "the first request must be Hello".to_string();
                let _ = send(
                    &mut stream,
                    &Response::error(ErrorKind::Protocol, why.clone()),
                )
                .await;
                return Err(why);
            }
            (req, true) => dispatch(req, &peer, &tx, &published, &auth).await,
        };
        let big = matches!(&resp, Response::Table(t) if t.services.len() > 1000);
        send(&mut stream, &resp)
            .await
            .map_err(|e| format!("write: {e}"))?;
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
        match tokio::time::timeout(Duration::from_secs(10), wr.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("subscriber went away: {e}")),
            Err(_) => return Err("subscriber stopped reading".into()),
        }
    }
}

enum ReadError {
    Closed,
    Bad(String),
}

async fn read_body(stream: &mut UnixStream) -> Result<Vec<u8>, ReadError> {
    let mut header = [0u8; codec::HEADER_LEN];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(ReadError::Closed),
        Err(e) => return Err(ReadError::Bad(format!("read: {e}"))),
    }
    let len = codec::body_len(header).map_err(|e| ReadError::Bad(e.to_string()))?;
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
    Ok(body)
}

async fn send(stream: &mut UnixStream, resp: &Response) -> std::io::Result<()> {
    let frame = codec::encode_frame(resp).map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.write_all(&frame).await
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
