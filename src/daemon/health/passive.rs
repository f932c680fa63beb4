//! Passive health: what real traffic says of a server. `--fail-after`
//! failed connects, or connections the server reset before answering, in a
//! row take it out at once; its active check (or, without one, a
//! background TCP probe) brings it back.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::ctl::proto::ServiceKey;
use crate::daemon::sched::Dest;
use crate::daemon::service::ServiceRt;
use crate::daemon::state::server::ServerState;
use crate::daemon::state::shared::Shared;

/// A connect to the server succeeded: its run of failed connects ends.
/// (It does not bring a down server back: only its check does, so that a
/// server whose port accepts but which fails its requests stays out.)
pub(crate) fn note_connected(dest: &Dest) {
    // Read first: the line is shared by every thread, and it is zero in
    // the usual case.
    if dest.state.connect_failures.load(Relaxed) != 0 {
        dest.state.connect_failures.store(0, Relaxed);
    }
}

/// How a relayed connection ended, as far as the server's health goes.
pub(crate) enum End {
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
pub(crate) fn note_end(rt: &ServiceRt, index: usize, end: End, shared: &Arc<Shared>) {
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
                    super::describe_io(&e)
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
pub(crate) fn note_failure(
    rt: &ServiceRt,
    index: usize,
    run: &std::sync::atomic::AtomicU32,
    shared: &Arc<Shared>,
    reason: impl FnOnce(u32) -> String,
) {
    let dest = &rt.dests[index];
    let n = run.fetch_add(1, Relaxed) + 1;
    if n >= shared.fail_after
        && super::mark(
            &shared.events,
            rt.spec.key,
            dest.addr,
            &dest.state,
            false,
            &reason(n),
        )
        && !dest.state.checked.load(Relaxed)
    {
        let check = super::resolve(&rt.spec, &rt.servers[index], shared.default_check);
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
    check: super::Check,
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
                    super::mark(
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
            Ok(Err(e)) if super::is_local_error(&e) => {
                super::local_error("recovery probe", addr, &e, super::local_hint(&e));
            }
            _ => oks = 0,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
