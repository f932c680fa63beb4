//! Everything that talks to the outside world, each on its own thread,
//! feeding one channel of [`Event`]s to the event loop:
//! - the subscription (connect, subscribe, forward every push; on error report
//!   `Disconnected` and retry every second),
//! - operator actions on a second connection (the subscription carries only
//!   pushes),
//! - terminal input,
//! - termination signals.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
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
    Update(Box<Update>),
    Disconnected(String),
    /// The answer to an operator action.
    ActionDone {
        what: String,
        result: Result<(), String>,
    },
    /// SIGINT, SIGTERM, SIGHUP or SIGQUIT (its number).
    Signal(i32),
}

/// Subscribe to rvsd at `socket` and forward updates to `tx` until the
/// receiver goes away.
pub fn spawn_subscription(socket: PathBuf, interval_ms: u32, tx: Sender<Event>) {
    thread::Builder::new()
        .name("subscription".into())
        .spawn(move || loop {
            let err = match subscribe_once(&socket, interval_ms, &tx) {
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
        if tx.send(Event::Update(Box::new(update))).is_err() {
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
