//! `--max-connections`: at the cap, new connections wait in the listen
//! backlog (they are not refused, nor relayed) until one ends.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

#[test]
fn at_the_cap_a_connection_waits_until_another_ends() {
    let mut extra = NO_CHECKS.to_vec();
    extra.extend(["--worker-threads", "1", "--max-connections", "2"]);
    let d = Daemon::start_with(&extra);
    let a = Backend::tcp("a");
    let vip = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    d.ok(&["-A", "-t", &vip, "-s", "rr"]);
    d.ok(&["-a", "-t", &vip, "-r", &a.addr.to_string(), "-m"]);
    let vip: SocketAddr = vip.parse().unwrap();

    let first = connect_from("127.0.0.1", vip).unwrap();
    assert_eq!(greeting(&first), "a");
    let second = connect_from("127.0.0.1", vip).unwrap();
    assert_eq!(greeting(&second), "a");

    // The third is in the kernel's backlog: connected, but nothing relayed.
    let mut third = connect_from("127.0.0.1", vip).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut byte = [0u8; 1];
    let err = third
        .read(&mut byte)
        .expect_err("a connection over the cap must not be relayed");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    assert_eq!(a.accepted.load(std::sync::atomic::Ordering::Relaxed), 2);

    // One ends: the waiting one is taken at once and relayed.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(greeting(&third), "a");
    // The second is untouched by all this.
    let mut second = second;
    second.write_all(b"still here\n").unwrap();
    assert_eq!(greeting(&second), "still here");
}
