//! TCP forwarding (masquerading as a full proxy): accept → schedule →
//! connect (bounded, retried on other servers) → copy both ways until both
//! sides closed, passing each side's FIN on (half-close), under the idle
//! limits of `--set tcp tcpfin udp`.
//!
//! Accounting follows the kernel's director view: a connection is active
//! while established and inactive once either side has closed; `Conns`
//! counts connections bound to a server; packets are the segments the
//! kernel received from and sent to the client (`TCP_INFO` of the client
//! socket), read when the connection ends.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Poll};

use tokio::io::{AsyncRead, Interest, ReadBuf, Ready};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::dataplane::Shared;
use super::health;
use super::runtime::{
    now_ms, overload_on_bind, overload_on_unbind, ConnInfo, ConnState, ServiceRt, CONNECT_TIMEOUT,
};
use super::sched::Dest;
use super::stats::{Counters, ServerState};
use super::sys;
use super::workers::Inboxes;
use crate::ctl::proto::ServiceKey;

/// Accept loop of one TCP virtual service, on one data-plane thread
/// (`inboxes`: where to leave a connection for another).
pub async fn run_listener(
    listener: Arc<std::net::TcpListener>,
    slot: Arc<ArcSwap<ServiceRt>>,
    shared: Arc<Shared>,
    inboxes: Arc<Inboxes>,
    mut stop: watch::Receiver<bool>,
) {
    // Accepted with accept4(2) directly, not tokio's `TcpListener`: that
    // registers each connection with this thread's reactor, and one handed
    // to another thread would be registered twice.
    let listener = match sys::async_listener(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot register TCP listener");
            return;
        }
    };
    let me = super::workers::this_thread();
    let mut turn = 0;
    let mut backoff = Duration::from_millis(5);
    // One stop future for the listener's life: a fresh `changed()` on every
    // accept would join and leave the watch's waiter list each time.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        // Wait for a connection first, then take a permit, then accept: an
        // idle listener holds no permit (with one held per listener, more
        // services than the cap would lock some out for good), and at the
        // cap connections wait in the backlog. Biased: once stopped, the
        // listening socket is shut down and reads ready (accept would fail
        // with EINVAL); the stop must win over that.
        let mut ready = tokio::select! {
            biased;
            _ = &mut stopped => break,
            r = listener.readable() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "TCP listener failed");
                    break;
                }
            },
        };
        // Below the cap (the usual case) the permit is taken at once.
        let permit = match shared.budget.tcp.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => break,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                if let Some(n) = shared.tcp_at_cap.hit() {
                    tracing::warn!(
                        cap = shared.budget.caps().tcp,
                        times = n,
                        "TCP connection cap reached: new connections wait in the listen backlog (count since the last such line; --max-connections, RLIMIT_NOFILE)"
                    );
                }
                tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    p = shared.budget.tcp.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        // Would block (another thread took it): the readiness is cleared,
        // and the permit goes back.
        let Ok(accepted) = ready.try_io(|l| sys::accept(l.get_ref())) else {
            continue;
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                let rt = slot.load_full();
                let to = shared.loads.place(me, &mut turn);
                // Boxed: the task then moves a pointer, not the connection's
                // whole state, each time tokio moves its future.
                let task = Box::pin(handle(stream, peer, rt, shared.clone(), permit, to));
                if to == me {
                    tokio::spawn(task);
                } else {
                    inboxes.hand(to, task);
                }
            }
            // The client gave up before the accept (ECONNABORTED), or a
            // signal came: nothing to back off from.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR)) => {}
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS/ENOMEM: the connection stays in the
                // backlog; back off briefly instead of spinning on it, and
                // log one line every few seconds, not one per attempt.
                if let Some(n) = shared.accept_failed.hit() {
                    tracing::warn!(
                        error = %e,
                        failures = n,
                        backoff_ms = backoff.as_millis() as u64,
                        "accept failed (count since the last such line); backing off"
                    );
                }
                tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Counts a connection in the daemon's and the service's live totals, and
/// (placed there by the accept) in its data-plane thread's.
struct LiveGuard<'a> {
    shared: &'a Shared,
    rt: &'a ServiceRt,
    thread: usize,
}

impl<'a> LiveGuard<'a> {
    fn new(shared: &'a Shared, rt: &'a ServiceRt, thread: usize) -> Self {
        shared.live.fetch_add(1, Relaxed);
        rt.state.live.fetch_add(1, Relaxed);
        LiveGuard { shared, rt, thread }
    }
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Relaxed);
        self.rt.state.live.fetch_sub(1, Relaxed);
        self.shared.loads.release(self.thread);
    }
}

// Not an async fn: its arguments would be kept twice in the task (as
// arguments and as locals), and the task is what an idle connection costs.
#[allow(clippy::manual_async_fn)]
fn handle(
    client: std::net::TcpStream,
    peer: SocketAddr,
    rt: Arc<ServiceRt>,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    thread: usize,
) -> impl Future<Output = ()> {
    async move {
        // Held until the connection ends (the async block must own it).
        let _permit = permit;
        let _live = LiveGuard::new(&shared, &rt, thread);
        // Registered with the reactor of the thread this task runs on.
        let mut client = match TcpStream::from_std(client) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(client = %peer, error = %e, "cannot register an accepted connection");
                return;
            }
        };
        let mut skip: Vec<usize> = Vec::new();
        loop {
            let Some(pick) = rt.schedule(peer, &skip) else {
                tracing::debug!(client = %peer, service = %rt.spec.key.addr, "no real server available");
                if let Some(sorry) = &rt.sorry {
                    let server = {
                        let limit = std::pin::pin!(tokio::time::sleep(CONNECT_TIMEOUT));
                        connect(sorry.addr, limit).await
                    };
                    if let Ok(server) = server {
                        forward(client, server, Vec::new(), peer, &rt, sorry, &shared).await;
                        return;
                    }
                }
                reset(client);
                return;
            };
            let dest = &rt.dests[pick.index];
            match attempt(dest.addr, &mut client).await {
                Ok((server, first)) => {
                    note_connected(dest);
                    let (assured, end) =
                        forward(client, server, first, peer, &rt, dest, &shared).await;
                    note_end(&rt, pick.index, end, &shared);
                    if let Some(net) = pick.template {
                        rt.release_template(net, assured);
                    }
                    return;
                }
                Err(e) if health::is_local_error(&e) => {
                    // Not the server's fault: not counted against it.
                    health::local_error(
                        "connect to a real server",
                        dest.addr,
                        &e,
                        health::local_hint(&e),
                    );
                    if let Some(net) = pick.template {
                        rt.release_template(net, false);
                    }
                    // Out of local ports toward this server (they are
                    // picked per destination): another may still do.
                    // Out of descriptors, buffers or memory: every server
                    // would fail the same way, so the client is refused.
                    if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
                        skip.push(pick.index);
                        continue;
                    }
                    reset(client);
                    return;
                }
                Err(e) => {
                    tracing::debug!(server = %dest.addr, error = %e, "connect to real server failed");
                    note_failure(
                        &rt,
                        pick.index,
                        &dest.state.connect_failures,
                        &shared,
                        |n| format!("{n} connects failed: {}", health::describe_io(&e)),
                    );
                    if let Some(net) = pick.template {
                        rt.drop_template(net);
                    }
                    skip.push(pick.index);
                }
            }
        }
    }
}

/// Connect to `addr` and wait for the opening, under one deadline (one
/// timer) for both; the server socket and what the client said first.
async fn attempt(
    addr: SocketAddr,
    client: &mut TcpStream,
) -> std::io::Result<(TcpStream, Vec<u8>)> {
    let mut limit = std::pin::pin!(tokio::time::sleep(CONNECT_TIMEOUT));
    let server = connect(addr, limit.as_mut()).await?;
    let first = opening(client, &server, limit).await?;
    Ok((server, first))
}

/// A server that was dying when we connected (its listener closed with our
/// connection still in the accept queue) resets or closes before saying
/// anything. If that happens before the client has sent a byte, nothing was
/// exchanged yet and another server can take the client transparently.
///
/// Waits until the server spoke, the client spoke (client-first protocols)
/// or the attempt's deadline (`limit`, what the connect left of
/// `CONNECT_TIMEOUT`) passed. Returns what the client said first, taken off
/// its socket here (one read instead of a peek and a read) and handed to
/// the relay to send on; or the error to count as a failed connect when the
/// server closed first.
async fn opening(
    client: &mut TcpStream,
    server: &TcpStream,
    limit: Pin<&mut tokio::time::Sleep>,
) -> std::io::Result<Vec<u8>> {
    let mut byte = [0u8; 1];
    // `poll_read`, not `readable()` and `try_read`: it waits out a false
    // readiness by itself, and after a short read it clears readiness, so
    // the relay's first read does not end in EAGAIN.
    let first = std::future::poll_fn(|cx| {
        SCRATCH.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(buf);
            ready!(Pin::new(&mut *client).poll_read(cx, &mut rb))?;
            Poll::Ready(Ok::<_, std::io::Error>(rb.filled().to_vec()))
        })
    });
    tokio::select! {
        biased;
        r = server.peek(&mut byte) => match r {
            Ok(0) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "closed before sending anything",
            )),
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(e),
        },
        // An error on the client's side is the relay's to meet.
        r = first => Ok(r.unwrap_or_default()),
        _ = limit => Ok(Vec::new()),
    }
}

/// Connect to a real server, bounded by `limit` (one timer for the
/// attempt: this connect and the opening after it); the socket has
/// `TCP_NODELAY`.
async fn connect(
    addr: SocketAddr,
    limit: Pin<&mut tokio::time::Sleep>,
) -> std::io::Result<TcpStream> {
    tokio::select! {
        biased;
        r = connect_now(addr) => r,
        _ = limit => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )),
    }
}

/// A connect that learns its outcome from the socket's readiness: a
/// refused or failed connect also closes the socket for writing (EPOLLHUP),
/// so `SO_ERROR` is read only then, not after every successful connect.
async fn connect_now(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::from_std(sys::connect_start(addr)?)?;
    let ready = stream.ready(Interest::WRITABLE).await?;
    if ready.is_write_closed() || ready.is_error() {
        return Err(stream.take_error()?.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connect failed")
        }));
    }
    Ok(stream)
}

fn reset(client: TcpStream) {
    let _ = client.set_zero_linger();
    drop(client);
}

/// A connect to the server succeeded: its run of failed connects ends.
/// (It does not bring a down server back: only its check does, so that a
/// server whose port accepts but which fails its requests stays out.)
fn note_connected(dest: &Dest) {
    // Read first: the line is shared by every thread, and it is zero in
    // the usual case.
    if dest.state.connect_failures.load(Relaxed) != 0 {
        dest.state.connect_failures.store(0, Relaxed);
    }
}

/// How a relayed connection ended, as far as the server's health goes.
enum End {
    /// Both directions finished (even if the server closed without a
    /// byte): the server did its part, and its run of failures ends.
    Clean,
    /// The server reset (or otherwise failed) the connection before sending
    /// a single byte, after the client had spoken: the request is lost, and
    /// it counts as a failure toward `--fail-after`.
    Unanswered(std::io::Error),
    /// Anything else (the idle limit, the server failing after it had
    /// answered): counted neither way.
    Other,
}

/// Passive health from how a connection ended: `--fail-after` connections
/// in a row that the server reset before answering take it out, like as
/// many failed connects; a clean end breaks the run.
fn note_end(rt: &ServiceRt, index: usize, end: End, shared: &Arc<Shared>) {
    let dest = &rt.dests[index];
    let unanswered = &dest.state.unanswered;
    match end {
        End::Clean => {
            if unanswered.load(Relaxed) != 0 {
                unanswered.store(0, Relaxed);
            }
        }
        End::Unanswered(e) => {
            tracing::debug!(server = %dest.addr, error = %e, "real server failed a connection before answering");
            note_failure(rt, index, unanswered, shared, |n| {
                format!(
                    "{n} connections failed before an answer: {}",
                    health::describe_io(&e)
                )
            });
        }
        End::Other => {}
    }
}

/// Passive health: after `fail_after` consecutive failures (counted in
/// `run`) the server is marked down at once. Its own active check brings
/// it back (after `rise` successes); without one, a background TCP probe
/// does.
fn note_failure(
    rt: &ServiceRt,
    index: usize,
    run: &std::sync::atomic::AtomicU32,
    shared: &Arc<Shared>,
    reason: impl FnOnce(u32) -> String,
) {
    let dest = &rt.dests[index];
    let n = run.fetch_add(1, Relaxed) + 1;
    if n >= shared.fail_after
        && health::mark(
            &shared.events,
            rt.spec.key,
            dest.addr,
            &dest.state,
            false,
            &reason(n),
        )
        && !dest.state.checked.load(Relaxed)
    {
        let check = health::resolve(&rt.spec, &rt.servers[index], shared.default_check);
        tokio::spawn(recovery_probe(
            rt.spec.key,
            dest.addr,
            check,
            dest.state.clone(),
            shared.clone(),
        ));
    }
}

/// Probe a failed server that has no active check with TCP connects (to
/// its check address) until `rise` in a row succeed, or until something
/// else cleared the mark or the server left the table. A connect that
/// fails for lack of a local resource counts neither way.
async fn recovery_probe(
    svc: ServiceKey,
    addr: SocketAddr,
    check: health::Check,
    state: Arc<ServerState>,
    shared: Arc<Shared>,
) {
    let mut delay = Duration::from_millis(500);
    let mut oks = 0;
    while state.is_down() && !state.checked.load(Relaxed) && Arc::strong_count(&state) > 1 {
        tokio::time::sleep(delay).await;
        match tokio::time::timeout(check.timeout, TcpStream::connect(check.target)).await {
            Ok(Ok(_)) => {
                oks += 1;
                if oks >= check.rise {
                    health::mark(
                        &shared.events,
                        svc,
                        addr,
                        &state,
                        true,
                        "recovery probe connected",
                    );
                    return;
                }
                continue;
            }
            Ok(Err(e)) if health::is_local_error(&e) => {
                health::local_error("recovery probe", addr, &e, health::local_hint(&e));
            }
            _ => oks = 0,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Per-connection accounting on a real server: active/inactive counts and
/// the upper/lower threshold overload flag (reference §3.16).
struct Binding<'a> {
    dest: &'a Dest,
    info: Arc<ConnInfo>,
}

impl<'a> Binding<'a> {
    fn new(dest: &'a Dest, info: Arc<ConnInfo>) -> Self {
        dest.state.active.fetch_add(1, Relaxed);
        overload_on_bind(dest);
        Binding { dest, info }
    }

    /// First FIN seen: the connection leaves the active count.
    fn closing(&self, state: ConnState) {
        if self
            .info
            .state
            .compare_exchange(ConnState::Established as u8, state as u8, Relaxed, Relaxed)
            .is_ok()
        {
            self.dest.state.active.fetch_sub(1, Relaxed);
            self.dest.state.inactive.fetch_add(1, Relaxed);
        }
    }
}

impl Drop for Binding<'_> {
    fn drop(&mut self) {
        if self.info.state() == ConnState::Established {
            self.dest.state.active.fetch_sub(1, Relaxed);
        } else {
            self.dest.state.inactive.fetch_sub(1, Relaxed);
        }
        overload_on_unbind(self.dest);
    }
}

/// Relay one connection, starting with `first`, what the client already
/// said; returns true when it was established (for the template's ASSURED
/// state), and how it ended for the server's health.
#[allow(clippy::manual_async_fn)] // as `handle`: each argument stored once
fn forward<'a>(
    mut client: TcpStream,
    mut server: TcpStream,
    first: Vec<u8>,
    peer: SocketAddr,
    rt: &'a ServiceRt,
    dest: &'a Dest,
    shared: &'a Shared,
) -> impl Future<Output = (bool, End)> + 'a {
    async move {
        // (Both sockets have TCP_NODELAY already: the client's from the
        // listener, the server's from `connect`.)
        rt.state.counters.add_conn();
        dest.state.counters.add_conn();
        let info = Arc::new(ConnInfo::new(peer, dest.addr, ConnState::Established));
        let _reg = rt.state.register(info.clone());
        let binding = Binding::new(dest, info.clone());
        let counters = [&rt.state.counters, &dest.state.counters];
        // Per direction: waiting for its socket to become readable (and
        // registered to be woken when it does). Atomic only because the
        // task must be Send; it never leaves its thread.
        let parked = [AtomicBool::new(false), AtomicBool::new(false)];
        let end;
        {
            let (mut cr, cw) = client.split();
            let (mut sr, sw) = server.split();
            let up = async {
                let r = pump(&mut cr, &sw, first, &info, &counters, true, &parked[0]).await;
                binding.closing(ConnState::CloseWait);
                r
            };
            let down = async {
                let r = pump(
                    &mut sr,
                    &cw,
                    Vec::new(),
                    &info,
                    &counters,
                    false,
                    &parked[1],
                )
                .await;
                binding.closing(ConnState::FinWait);
                r
            };
            // Pinned in place: the task's size is what an idle connection
            // costs, so nothing is stored twice.
            let (mut up, mut down) = (std::pin::pin!(up), std::pin::pin!(down));
            let mut idle = Idle {
                timer: std::pin::pin!(None),
            };
            // Both directions until both have ended (the first error ends
            // the connection), or the idle limit: polled by hand, in a
            // fixed order, with no join or select state in the task. A
            // direction parked on a socket that is still not readable did
            // not wake the task: it is not polled (its waker stays
            // registered with the socket). The closure owns what only it
            // uses (a copy of each reference, no reference to a local).
            let (mut up_done, mut down_done) = (false, false);
            let (client_io, server_io): (&TcpStream, &TcpStream) = (cw.as_ref(), sw.as_ref());
            let (parked, info_ref) = (&parked, &*info);
            // An error carries its direction: true for server → client.
            let ended = std::future::poll_fn(move |cx| {
                let still = parked[0].load(Relaxed) && !readable_now(client_io);
                if let Some(e) = poll_direction(up.as_mut(), &mut up_done, still, cx) {
                    return Poll::Ready(Err((e, false)));
                }
                let still = parked[1].load(Relaxed) && !readable_now(server_io);
                if let Some(e) = poll_direction(down.as_mut(), &mut down_done, still, cx) {
                    return Poll::Ready(Err((e, true)));
                }
                if up_done && down_done {
                    return Poll::Ready(Ok(true));
                }
                idle.poll(cx, info_ref, shared).map(|()| Ok(false))
            })
            .await;
            end = match ended {
                Ok(true) => End::Clean,
                Ok(false) => {
                    tracing::debug!(client = %peer, server = %dest.addr, "idle limit reached: closing");
                    End::Other
                }
                Err((e, from_server)) => {
                    tracing::debug!(client = %peer, server = %dest.addr, error = %e, "connection ended with an error");
                    // Server → client failed with nothing received from
                    // the server: nothing was written to the client
                    // either, so it was the read from the server that
                    // failed (a reset, a timeout) before any answer; but
                    // for ENOTCONN, which only passing the server's FIN on
                    // to a client already gone can meet. Client → server:
                    // the client's read or the server's write, not told
                    // apart, so not counted.
                    if from_server
                        && e.kind() != std::io::ErrorKind::NotConnected
                        && sys::tcp_bytes_received(server_io) == Some(0)
                    {
                        End::Unanswered(e)
                    } else {
                        End::Other
                    }
                }
            };
        }
        account_packets(&client, &counters);
        (true, end)
    }
}

/// Poll one direction of a relay unless it has ended (`done`) or waits
/// for a readiness that has not come (`parked`); returns the error that
/// ends the connection, if it failed.
#[inline(always)] // on every wake-up of every connection
fn poll_direction(
    dir: Pin<&mut impl Future<Output = std::io::Result<()>>>,
    done: &mut bool,
    parked: bool,
    cx: &mut std::task::Context<'_>,
) -> Option<std::io::Error> {
    if *done || parked {
        return None;
    }
    match dir.poll(cx) {
        Poll::Ready(Ok(())) => {
            *done = true;
            None
        }
        Poll::Ready(Err(e)) => Some(e),
        Poll::Pending => None,
    }
}

/// Size of the per-thread copy buffer and of one splice.
const CHUNK: usize = 64 * 1024;

thread_local! {
    /// Copy buffer shared by every connection on this thread: a connection
    /// holds no buffer while it waits, so an idle connection costs only
    /// its task and its two sockets.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; CHUNK].into_boxed_slice());
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

/// Copy one direction, starting with `first` (bytes already read); on EOF
/// pass the FIN on, unless the other direction has ended already: then
/// both sockets are about to be closed, and close(2) sends the FIN.
///
/// Data is read into the thread's scratch buffer and written on at once;
/// only what the peer cannot take yet is kept (in `rest`) across a wait.
/// A direction that fills the whole buffer in one read carries bulk data:
/// it switches to splice(2) through a pipe, so its bytes no longer cross
/// user space.
#[allow(clippy::manual_async_fn)] // as `handle`: each argument stored once
fn pump<'a, 's>(
    from: &'a mut ReadHalf<'s>,
    to: &'a WriteHalf<'s>,
    mut rest: Vec<u8>,
    info: &'a ConnInfo,
    counters: &'a [&'a Counters; 2],
    inbound: bool,
    parked: &'a AtomicBool,
) -> impl Future<Output = std::io::Result<()>> + use<'a, 's> {
    async move {
        let count = |n: usize| {
            info.touch();
            for c in counters {
                if inbound {
                    c.add_in(0, n as u64);
                } else {
                    c.add_out(0, n as u64);
                }
            }
        };
        // What the client said first (`rest` to begin with) is sent like a
        // remainder of a read: one loop, so the task holds one pending write.
        let (mut n, mut full, mut fin) = (rest.len(), false, false);
        loop {
            if !rest.is_empty() {
                let mut off = 0;
                std::future::poll_fn(|cx| poll_write_rest(cx, to.as_ref(), &mut rest, &mut off))
                    .await?;
            }
            if n > 0 {
                count(n);
            }
            if fin {
                break;
            }
            if full {
                if let Some(pipe) = sys::Pipe::new() {
                    // Boxed: only bulk connections pay for its state.
                    Box::pin(splice_pump(from.as_ref(), to.as_ref(), &pipe, &count)).await?;
                    break;
                }
            }
            (n, full, fin) =
                std::future::poll_fn(|cx| relay_ready(cx, from, to, &mut rest, parked)).await?;
            if n == 0 {
                break;
            }
        }
        // The FIN counts as traffic: the half-closed limit runs from it (as
        // a FIN restarts the kernel's timer).
        info.touch();
        if info.state() == ConnState::Established {
            sys::shutdown_write(to.as_ref())?;
        }
        Ok(())
    }
}

/// Once `from` is readable, read into the thread's scratch buffer and write
/// as much as `to` takes now; what it does not take is copied to `rest`.
/// Returns the bytes read (0 at EOF), whether they filled the buffer and
/// whether all that is left after them is the peer's FIN (then EOF needs
/// no read of its own). While pending, nothing is held. (`poll_read`
/// rather than `try_read`: after a short read it clears readiness, which
/// saves a read that would only say EAGAIN.)
fn relay_ready(
    cx: &mut std::task::Context<'_>,
    from: &mut ReadHalf<'_>,
    to: &WriteHalf<'_>,
    rest: &mut Vec<u8>,
    parked: &AtomicBool,
) -> Poll<std::io::Result<(usize, bool, bool)>> {
    SCRATCH.with_borrow_mut(|buf| {
        let cap = buf.len();
        let mut rb = ReadBuf::new(buf);
        let Poll::Ready(read) = Pin::new(&mut *from).poll_read(cx, &mut rb) else {
            // Parked only if the waker was registered with the socket: not
            // when tokio's budget ran out (then the task is woken anyway,
            // by tokio, and this read must be polled again).
            parked.store(tokio::task::coop::has_budget_remaining(), Relaxed);
            return Poll::Pending;
        };
        parked.store(false, Relaxed);
        read?;
        let data = rb.filled();
        // A short read clears the socket's readiness, all but its "closed"
        // part; readable again at once therefore means the peer's FIN has
        // arrived. Then the data goes with MSG_MORE: the FIN this direction
        // passes on next leaves in the same segment, as HAProxy does,
        // instead of a segment (and an ACK) of its own.
        let fin_next = !data.is_empty() && data.len() < cap && readable_now(from.as_ref());
        // The lock-free look first: the full look (which locks the
        // socket's waiter list when its future is dropped) only when the
        // FIN may be in.
        let fin = fin_next && only_fin_left(from.as_ref());
        let mut sent = 0;
        while sent < data.len() {
            let r = if fin_next {
                let to = to.as_ref();
                to.try_io(Interest::WRITABLE, || sys::send_more(to, &data[sent..]))
            } else {
                to.try_write(&data[sent..])
            };
            match r {
                Ok(k) => sent += k,
                Err(e) if would_block(&e) => break,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        rest.extend_from_slice(&data[sent..]);
        Poll::Ready(Ok((data.len(), data.len() == cap, fin)))
    })
}

/// After a short read that left `s` readable: whether that readiness is
/// the peer's FIN alone. tokio then holds the socket read-closed but no
/// longer readable (the short read cleared that, and no data came since:
/// new data would have set it again), and the read that would return 0 can
/// be skipped (as HAProxy skips it when epoll said RDHUP). Its readiness is
/// already set, so the look registers no waker. (A short read also stops
/// at TCP urgent data; bytes left behind such a mark with the FIN already
/// in would not be relayed, and the close that follows resets the
/// connection instead of ending it cleanly.)
fn only_fin_left(s: &TcpStream) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(s.ready(Interest::READABLE)).poll(&mut cx) {
        // (`is_readable` also says true when only read-closed: look at the
        // bit itself.)
        Poll::Ready(Ok(r)) => {
            r.is_read_closed() && (r & Ready::READABLE).is_empty() && !r.is_error()
        }
        _ => false,
    }
}

/// Whether tokio holds `s` readable (or read-closed) right now: a look at
/// its readiness, with no syscall, no lock and no waker. (`try_io` runs
/// the closure only when readiness is set; only a WouldBlock from it
/// would clear that readiness.)
fn readable_now(s: &TcpStream) -> bool {
    s.try_io(Interest::READABLE, || Ok(())).is_ok()
}

/// Write out what the peer could not take at once (from `*off` on). A
/// poll function rather than an async fn: a connection that waits for its
/// peer then holds no readiness future in its task (about 200 bytes a
/// direction, in every connection's task).
fn poll_write_rest(
    cx: &mut std::task::Context<'_>,
    to: &TcpStream,
    rest: &mut Vec<u8>,
    off: &mut usize,
) -> Poll<std::io::Result<()>> {
    while *off < rest.len() {
        ready!(to.poll_write_ready(cx))?;
        match to.try_write(&rest[*off..]) {
            Ok(k) => *off += k,
            Err(e) if would_block(&e) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    *rest = Vec::new();
    *off = 0;
    Poll::Ready(Ok(()))
}

/// Bulk copy of one direction through a pipe, until EOF: each chunk is
/// spliced from the socket into the (empty) pipe and then out to the peer
/// until the pipe is empty again, so EAGAIN always means the socket.
async fn splice_pump(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &sys::Pipe,
    count: &impl Fn(usize),
) -> std::io::Result<()> {
    loop {
        let n = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || pipe.fill_from(from, CHUNK)) {
                Ok(n) => break n,
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || pipe.drain_to(to, left)) {
                Ok(k) => left -= k,
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
        }
        count(n);
    }
}

/// The idle limit of one connection (`--set tcp tcpfin`), on one timer.
/// Traffic does not touch the timer (it only stamps `last`); when the timer
/// fires, the limit is checked against `last` and the timer set again for
/// the rest. The timer is set for at most the half-closed limit from now,
/// so that a FIN, which may shorten the limit (to `tcpfin` from the FIN),
/// never has to move it: an idle established connection is looked at
/// every `tcpfin` seconds instead. Polled only once it has fired, so a
/// wake-up for traffic costs one load, not a timer poll.
struct Idle<'t> {
    timer: Pin<&'t mut Option<tokio::time::Sleep>>,
}

impl Idle<'_> {
    /// Ready once the connection has been idle longer than its state allows.
    fn poll(
        &mut self,
        cx: &mut std::task::Context<'_>,
        info: &ConnInfo,
        shared: &Shared,
    ) -> Poll<()> {
        if let Some(t) = self.timer.as_ref().as_pin_ref() {
            if !t.is_elapsed() {
                return Poll::Pending;
            }
        }
        let last = info.last.load(Relaxed);
        let limit = info.idle_limit_ms(&shared.timeouts);
        let idle = now_ms().saturating_sub(last);
        if idle >= limit {
            return Poll::Ready(());
        }
        let wait = (limit - idle).min(shared.timeouts.tcpfin_ms()).max(1);
        let at = tokio::time::Instant::now() + Duration::from_millis(wait);
        match self.timer.as_mut().as_pin_mut() {
            Some(t) => t.reset(at),
            None => self.timer.set(Some(tokio::time::sleep_until(at))),
        }
        // Pending: the deadline is at least 1 ms ahead, and tokio rounds
        // it up to its next tick.
        match self.timer.as_mut().as_pin_mut() {
            Some(t) => t.poll(cx),
            None => Poll::Pending,
        }
    }
}

/// Packets of the virtual service as its client saw them: the segments
/// the kernel received from (InPkts) and sent to (OutPkts) the client, both
/// from one `TCP_INFO` of the client socket.
fn account_packets(client: &TcpStream, counters: &[&Counters; 2]) {
    let (inpkts, outpkts) = sys::tcp_segments(client).unwrap_or((0, 0));
    for c in counters {
        c.add_in(inpkts, 0);
        c.add_out(outpkts, 0);
    }
}
