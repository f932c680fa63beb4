//! One TCP connection from accept to relay: schedule a real server,
//! connect (bounded, retried on other servers, the sorry server when none
//! is left), then hand both sockets to the relay.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::relay::{forward, SCRATCH};
use crate::daemon::dataplane::sys;
use crate::daemon::health;
use crate::daemon::health::passive::{note_connected, note_end, note_failure};
use crate::daemon::service::ServiceRt;
use crate::daemon::state::conns::FlowGuard;
use crate::daemon::state::shared::Shared;

/// Default connect timeout to a real server.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Counts a connection in its data-plane thread's load (where the accept
/// placed it) until dropped.
struct Placed<'a> {
    shared: &'a Shared,
    thread: usize,
}

impl Drop for Placed<'_> {
    fn drop(&mut self) {
        self.shared.loads.release(self.thread);
    }
}

// Not an async fn: its arguments would be kept twice in the task (as
// arguments and as locals), and the task is what an idle connection costs.
#[allow(clippy::manual_async_fn)]
pub(crate) fn handle(
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
        let _placed = Placed {
            shared: &shared,
            thread,
        };
        let _live = FlowGuard::new(&shared, &rt.state);
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
