//! Prometheus exposition: `rvsd --metrics-listen ADDR:PORT` serves
//! `GET /metrics` (text format 0.0.4) over hyper.
//!
//! Series are labelled by what identifies them in the table — protocol,
//! virtual address and port, real-server address and port — never by
//! generated names. Counters are cumulative since the service or server
//! appeared (`-Z` does not reset them: Prometheus counters only go up).
//!
//! The listener runs on a thread of its own (a current-thread runtime), not
//! on the control runtime: a scrape flood or a slow render never delays
//! `rvsadm` or health checks. It serves at most [`MAX_CONNECTIONS`] at once
//! (more are closed on accept and counted), closes a connection whose
//! header takes longer than [`HEADER_TIMEOUT`] (also the keep-alive idle
//! timeout), whose writes stall for [`WRITE_TIMEOUT`], or that lives longer
//! than [`MAX_LIFETIME`]. Concurrent scrapes share one render of the body.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify, Semaphore};

mod render;

pub(crate) use render::render;
use render::{render_budget, render_listener};

use crate::daemon::service::Snapshot;
use crate::daemon::state::shared::Shared;

/// Connections served at once; more are closed as soon as they are
/// accepted (and counted in `rvs_metrics_connections_refused_total`).
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// A request's header must arrive within this (also the keep-alive idle
/// timeout: hyper arms it whenever it waits for a header).
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A write that makes no progress for this long ends the connection.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After this a connection is shut down gracefully (the answer in
/// progress completes, within [`WRITE_TIMEOUT`] more).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// Read buffer of a connection (hyper's default is ~400 KB).
const MAX_BUF: usize = 16 * 1024;
/// At most one warning about refused connections or accept errors per this.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// After a render that took `t`, the next one starts `GAP_FACTOR * t`
/// later at the earliest: a scrape flood costs at most 1/(1+GAP_FACTOR) of
/// the metrics thread's CPU time on rendering.
const GAP_FACTOR: u32 = 4;
/// Rendered bodies alive at once (the latest one and those still being
/// written to slow readers): at this count waiting scrapes get the latest
/// body again instead of a new render, so memory stays within a few
/// bodies whatever the clients do.
const MAX_BODIES: usize = 4;

/// Accept queue of the metrics listener: a burst of scrapers waits there
/// (costing no descriptor) rather than having its SYNs dropped.
const BACKLOG: u32 = 1024;

/// Bind the metrics listener (so a bad address fails at start).
pub(crate) async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    socket
        .and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(BACKLOG)
        })
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))
}

/// Serve `/metrics` on a thread of its own (a current-thread runtime), so
/// that neither scrapes nor rendering take time from the control runtime,
/// until `stop` fires.
pub(crate) fn start(
    listener: tokio::net::TcpListener,
    published: Arc<ArcSwap<Snapshot>>,
    shared: Arc<Shared>,
    started: Instant,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let listener = listener
        .into_std()
        .map_err(|e| format!("metrics listener: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the metrics runtime: {e}"))?;
    std::thread::Builder::new()
        .name("rvs-metrics".into())
        .spawn(move || rt.block_on(serve(listener, published, shared, started, stop)))
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(())
}

/// Counts about the metrics listener itself.
#[derive(Default)]
struct ListenerStats {
    open: AtomicUsize,
    refused: AtomicU64,
}

async fn serve(
    listener: std::net::TcpListener,
    published: Arc<ArcSwap<Snapshot>>,
    shared: Arc<Shared>,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics listener: not serving /metrics");
            return;
        }
    };
    let stats = Arc::new(ListenerStats::default());
    let cache = Arc::new(Cache::new());
    tokio::spawn(
        cache
            .clone()
            .renderer(published, shared, started, stats.clone()),
    );
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (mut refused_log, mut error_log) = (Quiet::default(), Quiet::default());
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    if let Some(more) = error_log.due() {
                        tracing::warn!(error = %e, unlogged = more, "metrics accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            let total = stats.refused.fetch_add(1, Relaxed) + 1;
            if let Some(more) = refused_log.due() {
                tracing::warn!(
                    %peer,
                    refused_total = total,
                    unlogged = more,
                    "metrics connection refused: {MAX_CONNECTIONS} already open"
                );
            }
            continue;
        };
        let (cache, stats) = (cache.clone(), stats.clone());
        tokio::spawn(async move {
            stats.open.fetch_add(1, Relaxed);
            connection(stream, cache).await;
            stats.open.fetch_sub(1, Relaxed);
            drop(slot);
        });
    }
}

/// One connection: header-read, write and lifetime limits around hyper.
async fn connection(stream: tokio::net::TcpStream, cache: Arc<Cache>) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let cache = cache.clone();
        async move { Ok::<_, Infallible>(respond(&req, &cache).await) }
    });
    let io = hyper_util::rt::TokioIo::new(WriteDeadline::new(stream, WRITE_TIMEOUT));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUF)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        _ = tokio::time::sleep(MAX_LIFETIME) => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(WRITE_TIMEOUT, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::debug!("metrics connection outlived its lifetime: closed");
                    return;
                }
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "metrics connection ended");
    }
}

/// Rate limit for a warning: `due` says when to log again, with how many
/// occurrences went unlogged since the last time.
#[derive(Default)]
struct Quiet {
    last: Option<Instant>,
    unlogged: u64,
}

impl Quiet {
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < LOG_EVERY) {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// A rendered exposition text and when its render started.
#[derive(Clone)]
struct Rendered {
    at: Instant,
    body: Bytes,
}

/// The shared body: every scrape waits for a render that started after it
/// asked (so it sees the state of its own time), and every scrape waiting
/// at once shares that one render — N concurrent scrapes cost one render
/// and one copy of the body.
struct Cache {
    latest: watch::Sender<Option<Rendered>>,
    wanted: AtomicBool,
    wake: Notify,
    /// Rendered bodies alive now (see [`Counted`]).
    bodies: Arc<AtomicUsize>,
}

/// A rendered text that counts itself in `Cache::bodies` while any
/// answer (or the cache) still holds it.
struct Counted {
    text: String,
    alive: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Relaxed);
    }
}

impl Cache {
    fn new() -> Cache {
        Cache {
            latest: watch::Sender::new(None),
            wanted: AtomicBool::new(false),
            wake: Notify::new(),
            bodies: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A body rendered after `asked` (empty if the renderer is gone).
    async fn body(&self, asked: Instant) -> Bytes {
        let mut rx = self.latest.subscribe();
        self.wanted
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
        let fresh = rx
            .wait_for(|r| r.as_ref().is_some_and(|r| r.at >= asked))
            .await;
        match fresh {
            Ok(r) => r.as_ref().map(|r| r.body.clone()).unwrap_or_default(),
            Err(_) => Bytes::new(),
        }
    }

    /// Render whenever a scrape waits, at most one render at a time and
    /// with a pause proportional to the last render's cost.
    async fn renderer(
        self: Arc<Self>,
        published: Arc<ArcSwap<Snapshot>>,
        shared: Arc<Shared>,
        started: Instant,
        stats: Arc<ListenerStats>,
    ) {
        let mut earliest = tokio::time::Instant::now();
        loop {
            while !self.wanted.swap(false, std::sync::atomic::Ordering::AcqRel) {
                self.wake.notified().await;
            }
            tokio::time::sleep_until(earliest).await;
            self.wanted
                .store(false, std::sync::atomic::Ordering::Release);
            let at = Instant::now();
            if self.bodies.load(Relaxed) >= MAX_BODIES {
                // Slow readers hold old bodies: no new one until they end.
                let last = self.latest.borrow().as_ref().map(|r| r.body.clone());
                if let Some(body) = last {
                    self.latest.send_replace(Some(Rendered { at, body }));
                    continue;
                }
            }
            let mut text = render(&published.load(), &shared.loads, started);
            render_budget(&mut text, &shared);
            render_listener(&mut text, &stats);
            let took = at.elapsed();
            earliest = tokio::time::Instant::now() + took * GAP_FACTOR;
            self.bodies.fetch_add(1, Relaxed);
            let body = Bytes::from_owner(Counted {
                text,
                alive: self.bodies.clone(),
            });
            self.latest.send_replace(Some(Rendered { at, body }));
        }
    }
}

async fn respond(req: &Request<Incoming>, cache: &Cache) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            cache.body(Instant::now()).await,
        ),
        (&hyper::Method::GET, "/") => (
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"rvsd metrics: see /metrics\n"),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found: try GET /metrics\n"),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(body))
        .expect("static response parts are valid")
}

/// A stream whose writes fail with `TimedOut` once one has made no
/// progress for `limit` (hyper has no write timeout of its own): a client
/// that stops reading cannot hold a slot and its answer forever.
struct WriteDeadline {
    inner: tokio::net::TcpStream,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    fn new(inner: tokio::net::TcpStream, limit: Duration) -> WriteDeadline {
        WriteDeadline {
            inner,
            limit,
            timer: None,
        }
    }

    /// Pass a ready result through (and disarm); on `Pending`, arm the
    /// timer and fail once it fired.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.timer = None;
            return r;
        }
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no write progress for {} s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, r)
    }
}
