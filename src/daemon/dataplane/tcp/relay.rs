//! The relay engine: copy both ways until both sides closed, passing each
//! side's FIN on, under the idle limits; accounting on the real server.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, Interest, ReadBuf, Ready};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use crate::daemon::dataplane::sys;
use crate::daemon::health::passive::End;
use crate::daemon::sched::Dest;
use crate::daemon::service::ServiceRt;
use crate::daemon::service::{overload_on_bind, overload_on_unbind};
use crate::daemon::state::conns::{ConnInfo, ConnState};
use crate::daemon::state::counters::Counters;
use crate::daemon::state::now_ms;
use crate::daemon::state::shared::Shared;

/// Per-connection accounting on a real server: active/inactive counts and
/// the upper/lower threshold overload flag (ipvsadm's “Upper/lower thresholds and the OVERLOAD flag”).
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
pub(crate) fn forward<'a>(
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
    pub(super) static SCRATCH: std::cell::RefCell<Box<[u8]>> =
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
