//! The accept loop of one TCP virtual service.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::connect::handle;
use crate::daemon::dataplane::sys;
use crate::daemon::dataplane::workers::Inboxes;
use crate::daemon::service::ServiceRt;
use crate::daemon::state::shared::Shared;

/// Accept loop of one TCP virtual service, on one data-plane thread
/// (`inboxes`: where to leave a connection for another).
pub(crate) async fn run_listener(
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
    let me = crate::daemon::state::threads::this_thread();
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
