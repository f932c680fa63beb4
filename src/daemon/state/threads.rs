//! Which data-plane thread code runs on, and the live connections per
//! thread: lets shared state keep a part per thread, so threads do not
//! contend.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

thread_local! {
    /// Index of this data-plane thread (0 on any other thread).
    pub(crate) static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Index of the data-plane thread this runs on (0 on other threads): lets
/// shared state keep a part per thread, so threads do not contend.
pub(crate) fn this_thread() -> usize {
    INDEX.get()
}

/// Live TCP connections per data-plane thread, each count on a cache line
/// of its own (threads write their own count, read another's).
#[derive(Debug)]
pub(crate) struct Loads {
    counts: Box<[Count]>,
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Count(AtomicUsize);

impl Loads {
    /// Counts for `n` threads (at least one).
    pub(crate) fn new(n: usize) -> Loads {
        Loads {
            counts: (0..n.max(1)).map(|_| Count::default()).collect(),
        }
    }

    /// The thread a connection accepted on thread `me` goes to, counted
    /// there: `me`, unless the thread this acceptor compares with next
    /// holds fewer (then the two end up level, or one apart). Comparing
    /// with one other thread in turn (`turn`, the acceptor's own) keeps an
    /// accept to two loads at any thread count and still evens them out.
    pub(crate) fn place(&self, me: usize, turn: &mut usize) -> usize {
        let n = self.counts.len();
        let me = me.min(n - 1);
        let mut to = me;
        if n > 1 {
            let other = (me + 1 + *turn % (n - 1)) % n;
            *turn = turn.wrapping_add(1);
            if self.get(me) > self.get(other) {
                to = other;
            }
        }
        self.counts[to].0.fetch_add(1, Relaxed);
        to
    }

    /// A connection placed on `thread` ended.
    pub(crate) fn release(&self, thread: usize) {
        self.counts[thread].0.fetch_sub(1, Relaxed);
    }

    /// Live connections on `thread`.
    pub(crate) fn get(&self, thread: usize) -> usize {
        self.counts[thread].0.load(Relaxed)
    }

    /// How many threads are counted.
    pub(crate) fn threads(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Loads;

    #[test]
    fn a_burst_on_one_thread_is_evened_out() {
        let loads = Loads::new(2);
        let mut turn = 0;
        let placed: Vec<usize> = (0..64).map(|_| loads.place(0, &mut turn)).collect();
        assert_eq!((loads.get(0), loads.get(1)), (32, 32), "{placed:?}");
        // One thread's connections end: new ones go there first.
        for _ in 0..10 {
            loads.release(1);
        }
        let mut turn = 0;
        for _ in 0..10 {
            assert_eq!(loads.place(0, &mut turn), 1);
        }
        assert_eq!((loads.get(0), loads.get(1)), (32, 32));
    }

    #[test]
    fn with_many_threads_each_accept_compares_with_the_next_in_turn() {
        let loads = Loads::new(4);
        let mut turn = 0;
        for _ in 0..400 {
            loads.place(2, &mut turn);
        }
        let counts: Vec<usize> = (0..4).map(|t| loads.get(t)).collect();
        assert_eq!(counts.iter().sum::<usize>(), 400);
        for c in &counts {
            assert!((95..=105).contains(c), "{counts:?}");
        }
    }

    #[test]
    fn one_thread_keeps_everything() {
        let loads = Loads::new(1);
        let mut turn = 0;
        assert_eq!(loads.place(0, &mut turn), 0);
        assert_eq!(loads.place(5, &mut turn), 0);
        assert_eq!(loads.get(0), 2);
        assert_eq!(loads.threads(), 1);
    }
}
