//! The data-plane threads. Each runs a current-thread tokio runtime of its
//! own, with its own epoll instance, and owns one listening socket of every
//! service (`SO_REUSEPORT` when there is more than one thread, so the kernel
//! spreads new connections and UDP clients over the threads). A connection
//! lives on the thread that accepted it: no task moves between threads,
//! nothing on the data path wakes another thread, and the control plane
//! (table task, control socket, health checks, metrics) runs on a runtime of
//! its own, so a slow `fsync` of the state file never delays a packet.

use std::sync::mpsc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// Index of this data-plane thread (0 on any other thread).
    static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many data-plane threads were started (at least 1).
static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Index of the data-plane thread this runs on (0 on other threads): lets
/// shared state keep a part per thread, so threads do not contend.
pub fn this_thread() -> usize {
    INDEX.get()
}

/// How many data-plane threads run (1 before any start).
pub fn count() -> usize {
    STARTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The running data-plane threads.
pub struct Workers {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Start `n` threads (at least one), each with its runtime.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        STARTED.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::channel();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("rvs-dp-{i}"))
                .spawn(move || {
                    INDEX.set(i);
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
        Ok(Workers { handles, stops })
    }

    /// How many threads run the data plane (at least one).
    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// The runtimes, one per thread, in order.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
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
