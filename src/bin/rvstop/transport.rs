//! Everything that talks to the outside world, each on its own thread,
//! feeding one channel of [`Event`]s to the event loop:
//! - the subscription (connect, subscribe, keep the newest push in a
//!   [`Latest`] slot and wake the event loop; on error report `Disconnected`
//!   and retry every second),
//! - operator actions on a second connection (the subscription carries only
//!   pushes),
//! - terminal input,
//! - termination signals.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crossterm::event::KeyEvent;
use rvs::ctl::proto::{Request, Update};
use rvs::ctl::Client;

/// Pause between reconnection attempts.
pub const RETRY: Duration = Duration::from_secs(1);
/// Bound on one operator request.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The one event type of the event loop.
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    Resize,
    /// Reading the terminal failed.
    InputError(String),
    /// A push from rvsd waits in the [`Latest`] slot.
    Update,
    Disconnected(String),
    /// The answer to an operator action.
    ActionDone {
        what: String,
        result: Result<(), String>,
    },
    /// SIGINT, SIGTERM, SIGHUP or SIGQUIT (its number).
    Signal(i32),
}

/// Events kept from pushes the event loop skipped (rvsd itself remembers
/// the last 256), oldest dropped first.
pub const MAX_PENDING_EVENTS: usize = 1024;

/// The newest push from rvsd, waiting for the event loop. One slot instead
/// of a queue: when drawing is slower than rvsd pushes, a newer table
/// replaces the waiting one (rvstop shows only the newest anyway) and the
/// waiting one's health events move into the newer one, so memory stays at
/// one table however far the event loop falls behind.
#[derive(Debug, Default)]
pub struct Latest {
    slot: Mutex<Option<Update>>,
}

impl Latest {
    /// Keep `update` as the newest, carrying over the events of one not yet
    /// taken (at most [`MAX_PENDING_EVENTS`]). True when the slot was empty,
    /// i.e. the event loop must be woken.
    pub fn put(&self, mut update: Update) -> bool {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = slot.is_none();
        if let Some(old) = slot.take() {
            let mut events = old.events;
            events.append(&mut update.events);
            let excess = events.len().saturating_sub(MAX_PENDING_EVENTS);
            events.drain(..excess);
            update.events = events;
        }
        *slot = Some(update);
        was_empty
    }

    /// The waiting update, if any.
    pub fn take(&self) -> Option<Update> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Hand one push to the event loop; false when the event loop is gone.
/// Only an empty slot sends a wake-up, so at most one is ever queued.
pub fn deliver(update: Update, latest: &Latest, tx: &Sender<Event>) -> bool {
    !latest.put(update) || tx.send(Event::Update).is_ok()
}

/// Subscribe to rvsd at `socket` and hand pushes to the event loop (through
/// `latest` and a wake-up on `tx`) until the receiver goes away.
pub fn spawn_subscription(
    socket: PathBuf,
    interval_ms: u32,
    latest: Arc<Latest>,
    tx: Sender<Event>,
) {
    thread::Builder::new()
        .name("subscription".into())
        .spawn(move || loop {
            let err = match subscribe_once(&socket, interval_ms, &latest, &tx) {
                Ok(()) => return, // the event loop is gone
                Err(e) => e,
            };
            if tx.send(Event::Disconnected(err)).is_err() {
                return;
            }
            thread::sleep(RETRY);
        })
        .expect("spawn the subscription thread");
}

/// One connection's life; `Ok` only when the receiver is gone.
fn subscribe_once(
    socket: &std::path::Path,
    interval_ms: u32,
    latest: &Latest,
    tx: &Sender<Event>,
) -> Result<(), String> {
    let mut client = Client::connect(socket, "rvstop").map_err(|e| e.to_string())?;
    // A daemon that stops pushing (stopped, wedged) counts as gone.
    let patience = Duration::from_millis(u64::from(interval_ms) * 5) + Duration::from_secs(2);
    client
        .set_timeout(Some(patience))
        .map_err(|e| e.to_string())?;
    client.subscribe(interval_ms).map_err(|e| e.to_string())?;
    loop {
        let update = client.next_update().map_err(|e| match e {
            rvs::ctl::CtlError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                "rvsd closed the connection".to_string()
            }
            rvs::ctl::CtlError::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                format!("no update from rvsd for {} s", patience.as_secs())
            }
            other => other.to_string(),
        })?;
        if !deliver(update, latest, tx) {
            return Ok(());
        }
    }
}

/// Carry out operator requests, each on a fresh connection (the
/// subscription carries only pushes). Nothing stays open between requests,
/// so an idle dashboard holds a single connection to rvsd.
pub fn spawn_actions(socket: PathBuf, rx: Receiver<(Request, String)>, tx: Sender<Event>) {
    thread::Builder::new()
        .name("actions".into())
        .spawn(move || {
            for (req, what) in rx {
                let result = call(&socket, &req);
                if tx.send(Event::ActionDone { what, result }).is_err() {
                    return;
                }
            }
        })
        .expect("spawn the actions thread");
}

fn call(socket: &std::path::Path, req: &Request) -> Result<(), String> {
    let mut client = Client::connect(socket, "rvstop").map_err(|e| e.to_string())?;
    client
        .set_timeout(Some(CALL_TIMEOUT))
        .map_err(|e| e.to_string())?;
    client.call(req).map(|_| ()).map_err(|e| e.to_string())
}

/// Forward key presses and resizes.
pub fn spawn_input(tx: Sender<Event>) {
    thread::Builder::new()
        .name("input".into())
        .spawn(move || loop {
            let ev = match crossterm::event::read() {
                Ok(crossterm::event::Event::Key(k)) => Event::Key(k),
                Ok(crossterm::event::Event::Resize(..)) => Event::Resize,
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Event::InputError(e.to_string()));
                    return;
                }
            };
            if tx.send(ev).is_err() {
                return;
            }
        })
        .expect("spawn the input thread");
}

/// Block termination signals in this thread (and so in every thread spawned
/// after it) and turn them into events, so that the terminal is restored
/// before exiting. Call before spawning other threads.
pub fn spawn_signals(tx: Sender<Event>) -> Result<(), String> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                let _ = tx.send(Event::Signal(sig as i32));
            }
        })
        .map_err(|e| format!("cannot spawn the signal thread: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs::ctl::proto::{DaemonInfo, HealthEvent, HealthState, Protocol, ServiceKey, TableView};
    use std::sync::mpsc;
    use std::time::Instant;

    /// Push number `n`: its number in `live_connections` and in its one event.
    fn push(n: u64) -> Update {
        Update {
            daemon: DaemonInfo {
                protocol: 2,
                version: "test".into(),
                pid: 1,
                uptime_secs: n,
            },
            table: TableView { services: vec![] },
            live_connections: n,
            events: vec![HealthEvent {
                at_ms: n,
                service: ServiceKey {
                    proto: Protocol::Tcp,
                    addr: "127.0.0.1:80".parse().unwrap(),
                },
                server: "127.0.0.1:8080".parse().unwrap(),
                state: HealthState::Down,
                reason: format!("push {n}"),
            }],
        }
    }

    fn wakeups(rx: &mpsc::Receiver<Event>) -> usize {
        rx.try_iter().filter(|e| matches!(e, Event::Update)).count()
    }

    #[test]
    fn a_stuck_event_loop_holds_one_update_and_one_wakeup() {
        let latest = Latest::default();
        let (tx, rx) = mpsc::channel();
        // The event loop draws nothing while 500 pushes arrive.
        for n in 0..500 {
            assert!(deliver(push(n), &latest, &tx));
        }
        assert_eq!(wakeups(&rx), 1, "one wake-up, not one per push");
        let u = latest.take().expect("an update waits");
        assert_eq!(u.live_connections, 499, "the newest table wins");
        assert_eq!(
            u.events.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            (0..500).collect::<Vec<_>>(),
            "the skipped pushes' events are all there, in order"
        );
        assert!(latest.take().is_none());
        // Far behind: the events are bounded too (the oldest go).
        for n in 0..10_000 {
            assert!(deliver(push(n), &latest, &tx));
        }
        assert_eq!(wakeups(&rx), 1);
        let u = latest.take().unwrap();
        assert_eq!(u.live_connections, 9_999);
        assert_eq!(u.events.len(), MAX_PENDING_EVENTS);
        assert_eq!(u.events[0].at_ms, 10_000 - MAX_PENDING_EVENTS as u64);
        assert_eq!(u.events.last().unwrap().at_ms, 9_999);
        // A gone event loop stops the subscription.
        drop(rx);
        assert!(!deliver(push(0), &latest, &tx));
    }

    #[test]
    fn a_flood_faster_than_the_event_loop_stays_bounded() {
        const N: u64 = 20_000;
        let latest = Arc::new(Latest::default());
        let (tx, rx) = mpsc::channel();
        let producer = {
            let latest = latest.clone();
            thread::spawn(move || {
                for n in 0..N {
                    assert!(deliver(push(n), &latest, &tx));
                }
                tx
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut newest, mut events, mut takes) = (None::<u64>, Vec::new(), 0);
        while newest != Some(N - 1) {
            assert!(Instant::now() < deadline, "the flood did not arrive");
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Event::Update) => {}
                other => panic!("expected a wake-up, got {other:?}"),
            }
            // The queue never holds a second wake-up (nor a second table).
            assert_eq!(wakeups(&rx), 0, "a second wake-up was queued");
            // Drawing is slower than the pushes.
            thread::sleep(Duration::from_micros(300));
            let u = latest.take().expect("a wake-up comes with an update");
            assert!(
                newest.is_none_or(|p| u.live_connections > p),
                "an older table came after a newer one"
            );
            newest = Some(u.live_connections);
            // Events arrive in order, and only an overflow of the bound
            // drops any: then the oldest, never one in the middle.
            let got: Vec<u64> = u.events.iter().map(|e| e.at_ms).collect();
            assert!(got.len() <= MAX_PENDING_EVENTS);
            assert!(
                got.windows(2).all(|w| w[1] == w[0] + 1),
                "a gap inside one update"
            );
            let next = events.last().map_or(0, |l| l + 1);
            assert!(
                got.first() == Some(&next) || got.len() == MAX_PENDING_EVENTS,
                "events {next}.. lost without an overflow"
            );
            events.extend(got);
            takes += 1;
        }
        let tx = producer.join().unwrap();
        drop(tx);
        assert!(
            takes < N,
            "{takes} draws for {N} pushes: nothing was skipped"
        );
        assert_eq!(events.last(), Some(&(N - 1)));
        eprintln!(
            "{N} pushes, {takes} draws, {} events delivered",
            events.len()
        );
    }
}
