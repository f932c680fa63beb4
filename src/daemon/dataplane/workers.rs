//! The data-plane threads. Each runs a current-thread tokio runtime of its
//! own, with its own epoll instance, and owns one listening socket of every
//! service (`SO_REUSEPORT` when there is more than one thread, so the kernel
//! spreads new connections and UDP clients over the threads). It spreads
//! them by a hash of the addresses, which splits 64 connections 36/28 or
//! worse more than a third of the time; so an accept hands a TCP
//! connection to another thread when that one holds fewer ([`Loads`],
//! [`Inboxes`]). A connection then lives on the thread it was given to: no
//! task moves between threads once it runs, and the control plane
//! (table task, control socket, health checks, metrics) runs on a runtime of
//! its own, so a slow `fsync` of the state file never delays a packet.

use std::sync::{mpsc, Arc};

use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};

use crate::daemon::state::threads::{self};

/// A connection's task, handed by the thread that accepted it to the
/// thread that is to run it.
pub(crate) type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Where the accepts of other threads leave connections for each thread.
/// A task of the thread's own drains its inbox when woken; one wake serves
/// every connection left before the task runs, so a burst of hand-offs
/// costs one cross-thread wake-up, not one each (`Handle::spawn` would
/// write the thread's eventfd for every one).
pub(crate) struct Inboxes {
    slots: Box<[Inbox]>,
}

struct Inbox {
    tx: mpsc::Sender<Task>,
    wake: Arc<Notify>,
}

impl Inboxes {
    /// Leave `task` for `thread` to run.
    pub(crate) fn hand(&self, thread: usize, task: Task) {
        let inbox = &self.slots[thread];
        // Fails only once the thread ended: the task (its connection) is
        // dropped, as the thread's own would be.
        if inbox.tx.send(task).is_ok() {
            inbox.wake.notify_one();
        }
    }
}

/// Spawn here what other threads left in this thread's inbox.
async fn drain(rx: mpsc::Receiver<Task>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        while let Ok(task) = rx.try_recv() {
            tokio::spawn(task);
        }
    }
}

/// The running data-plane threads.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    inboxes: Arc<Inboxes>,
    stops: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Start `n` threads (at least one), each with its runtime.
    pub(crate) fn start(n: usize) -> std::io::Result<Workers> {
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::channel();
            let (stop, stopped) = oneshot::channel::<()>();
            let (task_tx, task_rx) = mpsc::channel();
            let wake = Arc::new(Notify::new());
            slots.push(Inbox {
                tx: task_tx,
                wake: wake.clone(),
            });
            std::thread::Builder::new()
                .name(format!("rvs-dp-{i}"))
                .spawn(move || {
                    threads::INDEX.set(i);
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    rt.spawn(drain(task_rx, wake));
                    let _ = tx.send(Ok(rt.handle().clone()));
                    // Until the daemon ends (or drops this set of threads).
                    let _ = rt.block_on(stopped);
                })?;
            let handle = rx
                .recv()
                .map_err(|_| std::io::Error::other("data-plane thread ended at start"))??;
            handles.push(handle);
            stops.push(stop);
        }
        Ok(Workers {
            handles,
            inboxes: Arc::new(Inboxes {
                slots: slots.into(),
            }),
            stops,
        })
    }

    /// How many threads run the data plane (at least one).
    pub(crate) fn threads(&self) -> usize {
        self.handles.len()
    }

    /// The runtimes, one per thread, in order.
    pub(crate) fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// The threads' inboxes, in the same order.
    pub(crate) fn inboxes(&self) -> &Arc<Inboxes> {
        &self.inboxes
    }
}

impl Drop for Workers {
    /// End the threads: their runtimes drop every task still running
    /// (connections left after the drain).
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}
