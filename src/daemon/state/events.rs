//! Health state changes, kept for subscribers (rvstop).

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::ctl::proto::HealthEvent;

/// Recent health events, kept for subscribers.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    inner: Mutex<(u64, VecDeque<HealthEvent>)>,
}

const EVENTS_KEPT: usize = 256;

impl EventLog {
    pub(crate) fn push(&self, ev: HealthEvent) {
        let mut g = self.inner.lock().expect("event log lock");
        g.0 += 1;
        if g.1.len() == EVENTS_KEPT {
            g.1.pop_front();
        }
        g.1.push_back(ev);
    }

    /// Events after sequence number `after`, and the newest sequence number.
    pub(crate) fn since(&self, after: u64) -> (Vec<HealthEvent>, u64) {
        let g = self.inner.lock().expect("event log lock");
        let (seq, evs) = (&g.0, &g.1);
        let fresh = (seq - after).min(evs.len() as u64) as usize;
        (evs.iter().skip(evs.len() - fresh).cloned().collect(), *seq)
    }
}
