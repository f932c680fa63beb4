//! The table owner: the one task that applies mutations in order, binds
//! their sockets (prepare), writes the state file and only then commits
//! and replies.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::auth::{summary, Peer};
use crate::ctl::proto::{ErrorKind, Request, Response, ServiceKey};
use crate::daemon::dataplane::{DataPlane, PrepareError};
use crate::daemon::store::Store;
use crate::daemon::table::{Change, Table, TableError, Undo};

/// A mutation on its way to the table task.
pub(crate) struct TableMsg {
    pub(crate) req: Request,
    pub(crate) peer: Peer,
    pub(crate) reply: oneshot::Sender<Response>,
}

/// The single owner of the table: applies mutations in arrival order, and
/// once a second re-weighs servers in a slow-start ramp.
pub(crate) async fn table_task(
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
                dp.commit(&table, crate::daemon::dataplane::Prepared::default());
                continue;
            }
        };
        let resp = apply(&mut table, &mut store, &mut dp, &msg.req);
        if matches!(msg.req, Request::Batch(_)) {
            crate::daemon::dataplane::sys::trim_heap();
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
                    let index = match (req, &e) {
                        (Request::Batch(reqs), PrepareError::Bind(b)) => {
                            bind_failure_index(reqs, &b.key)
                        }
                        _ => None,
                    };
                    let e = TableError::from(e);
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
/// bound (`key`, from the data plane's [`BindError`](crate::daemon::dataplane::BindError)), so that `rvsadm -R`
/// can name the line. The last such `-A` wins: it is the one whose service
/// is in the table being prepared.
fn bind_failure_index(reqs: &[Request], key: &ServiceKey) -> Option<u32> {
    reqs.iter()
        .rposition(|r| matches!(r, Request::AddService(spec) if spec.key == *key))
        .map(|i| i as u32)
}
