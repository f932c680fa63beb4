//! Passive health against the real rvsd (issue 19, B4): rvsd's own lack
//! of descriptors (EMFILE) on upstream connects and on health probes is
//! never counted against a real server.
//!
//! Loopback range 127.43.0.0/16. Timers are short (100 ms); every wait is
//! a bounded poll.

mod common;

use common::*;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// The health object of real server `srv` from `-L -n --json`.
fn health(d: &Daemon, srv: SocketAddr) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["-L", "-n", "--json"])).unwrap();
    for svc in v["services"].as_array().unwrap() {
        for s in svc["servers"].as_array().unwrap() {
            if s["port"] == srv.port() && s["address"] == srv.ip().to_string() {
                return s["health"].clone();
            }
        }
    }
    panic!("{srv} not listed: {v}");
}

// ---- B4: rvsd's own descriptor exhaustion is not the server's failure ----

/// rvsd's open descriptors: how many, and the highest number.
fn open_fds(pid: u32) -> (usize, i32) {
    let read = || {
        let fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        (fds.len(), fds.iter().copied().max().unwrap_or(0))
    };
    // Twice the same: no health probe's socket caught in passing.
    let mut last = read();
    loop {
        thread::sleep(Duration::from_millis(30));
        let now = read();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Lower rvsd's open-file limit (prlimit(1)) so that it has a few free
/// descriptors, their number odd or even as asked; returns that number.
fn leave_free(d: &Daemon, odd: bool) -> usize {
    let (count, max) = open_fds(d.pid());
    let mut limit = count + 8 + odd as usize;
    while limit <= max as usize {
        limit += 2;
    }
    // prlimit(1), util-linux (essential in Debian, as `ps` is).
    let out = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(d.pid().to_string())
        .arg(format!("--nofile={limit}:{limit}"))
        .output()
        .expect("run prlimit (util-linux)");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    limit - count
}

/// A proxied connection, greeted by its back end.
fn held(vip: SocketAddr) -> TcpStream {
    let s = connect_from("127.43.0.200", vip).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line).unwrap();
    assert_eq!(line, "a\n", "a proxied connection");
    s
}

/// The greeting of a new proxied connection, if one comes.
fn try_who(vip: SocketAddr) -> Option<String> {
    let s = connect_from("127.43.0.200", vip).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line).ok()?;
    Some(line.trim_end().to_string())
}

#[test]
fn emfile_on_upstream_connects_is_not_counted_against_the_server() {
    raise_nofile();
    // One data-plane thread: a small, steady set of descriptors. The
    // server's own check is TCP, but every minute only: what happens in
    // this test is the passive checks' doing.
    let d = Daemon::start_with(&["--worker-threads", "1"]);
    let vip = vip_on("127.43.0.10");
    let a = Backend::tcp_on("127.43.0.11:0", "a");
    let vs = vip.to_string();
    d.ok(&["-A", "-t", &vs, "-s", "rr", "--check-interval", "60s"]);
    d.ok(&["-a", "-t", &vs, "-r", &a.addr.to_string()]);
    assert_eq!(who_from("127.43.0.200", vip), "a");

    // An odd number of free descriptors; connections held by clients take
    // two each (client and server side), leaving exactly one: the next
    // accept takes it and the connect to the server meets EMFILE.
    let free = leave_free(&d, true);
    let clients: Vec<TcpStream> = (0..free / 2).map(|_| held(vip)).collect();
    for i in 0..5 {
        let mut s = connect_from("127.43.0.200", vip).expect("the kernel accepts");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let r = s.read(&mut buf);
        assert!(
            closed_by_peer(&r),
            "connection {i} at EMFILE: {r:?}; log:\n{}",
            d.log()
        );
    }
    drop(clients);

    // The server was never the problem: once clients close, new
    // connections go through at once, and it was never marked down.
    assert!(
        wait_for(10, || try_who(vip).as_deref() == Some("a")),
        "no connection after the clients closed; log:\n{}",
        d.log()
    );
    let h = health(&d, a.addr);
    assert_eq!(h["state"], "UP", "{h}\nlog:\n{}", d.log());
    let log = d.log();
    assert!(!log.contains("real server DOWN"), "log:\n{log}");
    assert!(
        log.contains("connect to a real server failed for lack of a local resource"),
        "the local error is logged as such; log:\n{log}"
    );
}

#[test]
fn emfile_on_health_probes_counts_neither_way() {
    raise_nofile();
    // Passive checks out of the way (--fail-after): only the active check
    // could take the server out here, and one failure would (fall 1).
    let d = Daemon::start_with(&["--worker-threads", "1", "--fail-after", "1000"]);
    let vip = vip_on("127.43.0.12");
    let a = Backend::tcp_on("127.43.0.13:0", "a");
    let vs = vip.to_string();
    d.ok(&[
        "-A",
        "-t",
        &vs,
        "-s",
        "rr",
        "--check-interval",
        "100ms",
        "--check-fall",
        "1",
    ]);
    d.ok(&["-a", "-t", &vs, "-r", &a.addr.to_string()]);
    assert!(wait_for(10, || health(&d, a.addr)["last_ok"] == true));

    // No free descriptor left: every probe's socket() meets EMFILE.
    let free = leave_free(&d, false);
    let clients: Vec<TcpStream> = (0..free / 2).map(|_| held(vip)).collect();
    assert!(
        wait_for(10, || d
            .log()
            .contains("health check failed for lack of a local resource")),
        "no probe met EMFILE; log:\n{}",
        d.log()
    );
    drop(clients);

    assert!(wait_for(10, || health(&d, a.addr)["last_ok"] == true));
    let h = health(&d, a.addr);
    assert_eq!(h["state"], "UP", "{h}\nlog:\n{}", d.log());
    assert!(!d.log().contains("real server DOWN"), "log:\n{}", d.log());
    assert_eq!(who_from("127.43.0.200", vip), "a");
}
