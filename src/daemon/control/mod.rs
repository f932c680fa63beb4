//! The control socket: accepts clients, checks their credentials
//! (SO_PEERCRED), decodes frames, answers reads from the published snapshot
//! and sends mutations to the single table task, which applies them in
//! order, binds sockets, writes the state file and only then replies.
//!
//! Robustness: the frame length is checked before allocating (at most
//! `codec::MAX_PRE_HELLO_FRAME` before the hello, `READER_MAX_FRAME` from
//! a client that may only read), decoding is bounded by the body length, the
//! bodies being read or decoded share a budget of `BYTES_IN_FLIGHT`, the
//! hello must arrive within `HELLO_TIMEOUT`, a body within `BODY_TIMEOUT`
//! of its header, an idle client is dropped after `IDLE_TIMEOUT`, a client
//! that does not read its answer within `WRITE_TIMEOUT` is dropped, and a
//! bad frame ends only that client's connection. `RESERVED_CLIENTS` slots
//! beyond `MAX_CLIENTS` are kept for root and rvsd's own uid, so that
//! others cannot lock the administrator out.

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

pub(crate) mod auth;
pub(crate) mod socket;
pub(crate) mod table_task;

pub(crate) use auth::{exec_check_in, group_gid, op_name, Auth, Peer};
pub use socket::default_state_dir;
pub(crate) use socket::{bind_socket, check_socket_path};
pub(crate) use table_task::{table_task, TableMsg};

use crate::daemon::host::{is_local, local_addrs};
use crate::daemon::service::Snapshot;
use crate::daemon::state::events::EventLog;

pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Once a frame's header is in, its body must follow within this.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// An answer (or a pushed update) not taken by the client within this
/// drops the client.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Control connections served at once; more are closed at accept.
pub(crate) const MAX_CLIENTS: usize = 8192;
/// Extra slots only root and rvsd's own uid may use once the others are taken.
pub(crate) const RESERVED_CLIENTS: usize = 32;
/// Request bodies being read or decoded at once from clients other than
/// root and rvsd's uid, in bytes.
pub(crate) const BYTES_IN_FLIGHT: usize = 256 * 1024 * 1024;
/// Largest frame from a client that may only read (its requests are tiny).
pub(crate) const READER_MAX_FRAME: u32 = 64 * 1024;

/// The control server's limits: the constants above, except that tests may
/// shrink the client slots and the write timeout through the environment
/// (`RVS_TEST_CTL_MAX_CLIENTS`, `RVS_TEST_CTL_WRITE_TIMEOUT_MS`), which no
/// documentation mentions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_clients: usize,
    pub(crate) reserved_clients: usize,
    pub(crate) write_timeout: Duration,
}

impl Limits {
    pub(crate) fn from_env() -> Limits {
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

/// Static facts about this daemon for the hello.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) started: Instant,
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

/// What every control connection shares: the way to the table owner and
/// what reads are answered from.
pub(crate) struct Server {
    /// Mutations go to the table task through this.
    pub(crate) tx: mpsc::Sender<TableMsg>,
    /// The published table, for listings and subscriptions.
    pub(crate) published: Arc<ArcSwap<Snapshot>>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) meta: Arc<Meta>,
    /// Health events pushed to subscribers.
    pub(crate) events: Arc<EventLog>,
}

/// Accept control clients on `listener` until `stop` fires.
pub(crate) async fn serve(server: Server, listener: UnixListener, mut stop: watch::Receiver<bool>) {
    let Server {
        tx,
        published,
        auth,
        meta,
        events,
    } = server;
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
            crate::daemon::dataplane::sys::trim_heap();
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
                    &crate::daemon::state::shared::SharedTimeouts::new(snap.timeouts),
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
