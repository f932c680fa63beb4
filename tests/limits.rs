//! `--max-connections`: at the cap, new connections wait in the listen
//! backlog (they are not refused, nor relayed) until one ends. The idle
//! limits of `--set tcp tcpfin udp` for TCP: an established connection
//! ends after `tcp` seconds without traffic, a half-closed one after
//! `tcpfin`.

mod common;

use common::*;
use rvs::ctl::proto::{Request, Timeouts};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

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

/// A daemon with one TCP service in front of `server`, and its timeouts set.
fn with_timeouts(server: SocketAddr, tcp: u32, tcpfin: u32) -> (Daemon, SocketAddr) {
    let d = Daemon::start_with(NO_CHECKS);
    let vip = vip_on("127.0.0.1");
    d.ok(&["-A", "-t", &vip.to_string(), "-s", "rr"]);
    d.ok(&[
        "-a",
        "-t",
        &vip.to_string(),
        "-r",
        &server.to_string(),
        "-m",
    ]);
    d.call(Request::SetTimeouts(Timeouts {
        tcp,
        tcpfin,
        udp: 0,
    }));
    (d, vip)
}

/// Read until EOF or a reset (what an ended relay gives the client),
/// bounded; how long it took.
fn until_closed(c: &mut std::net::TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    c.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("not closed after {:?}: {e}", start.elapsed()),
        }
    }
}

#[test]
fn an_idle_connection_ends_after_the_tcp_timeout() {
    let a = Backend::tcp("a");
    let (d, vip) = with_timeouts(a.addr, 2, 0);
    let mut c = connect_from("127.0.0.1", vip).unwrap();
    assert_eq!(greeting(&c), "a");
    // Traffic keeps it alive past the limit...
    for i in 0..3 {
        // Time must pass: 2.7 s of traffic against a 2 s limit.
        std::thread::sleep(Duration::from_millis(900));
        c.write_all(format!("ping {i}\n").as_bytes()).unwrap();
        assert_eq!(greeting(&c), format!("ping {i}"));
    }
    // ...and silence ends it, no sooner than the limit.
    let took = until_closed(&mut c, Duration::from_secs(10));
    assert!(took >= Duration::from_millis(1800), "closed after {took:?}");
    assert!(wait_for(5, || d.connections().is_empty()));
}

#[test]
fn a_half_closed_connection_ends_after_the_tcpfin_timeout() {
    // A server that takes the client's FIN and stays silent, never closing.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = l.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.read_to_end(&mut buf);
        // The socket is handed back open: this side never closes.
        (buf, s)
    });
    // The established limit is long, the half-closed one short.
    let (d, vip) = with_timeouts(server, 60, 2);
    let mut c = connect_from("127.0.0.1", vip).unwrap();
    c.write_all(b"last words").unwrap();
    // Established for a while first: the FIN must shorten a limit already
    // running.
    assert!(wait_for(5, || d
        .connections()
        .iter()
        .any(|e| e.state == "ESTABLISHED")));
    // Time must pass: the established limit has been running a while.
    std::thread::sleep(Duration::from_millis(500));
    c.shutdown(Shutdown::Write).unwrap();
    assert!(
        wait_for(5, || d
            .connections()
            .iter()
            .any(|e| e.state != "ESTABLISHED")),
        "the FIN is seen: {:?}",
        d.connections()
    );
    let took = until_closed(&mut c, Duration::from_secs(15));
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "a half-closed connection must end after tcpfin (2 s), not tcp (60 s): {took:?}"
    );
    assert!(wait_for(5, || d.connections().is_empty()));
    drop(c);
    let (said, _s) = held.join().unwrap();
    assert_eq!(said, b"last words");
}
