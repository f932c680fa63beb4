//! SIGTERM ends rvsd promptly even while control clients are connected: an
//! idle rvsadm-style connection and a dashboard subscription.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn sigterm_with_idle_client_and_subscriber_connected() {
    let mut d = Daemon::start();
    let _idle = d.client();
    let mut sub = d.client();
    sub.subscribe(100).unwrap();
    let first = sub.next_update().expect("a first push");
    assert_eq!(first.daemon.pid, d.pid());
    let started = Instant::now();
    let status = d.stop();
    assert!(status.success(), "{status}: {}", d.log());
    // Without the fix rvsd waited for the clients (10 minutes idle limit).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        sub.next_update().is_err(),
        "the subscription ends with the daemon"
    );
}
