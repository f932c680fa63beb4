//! Passive health against the real rvsd (issue 19, B16 and B4):
//! - a real server that accepts, reads the request and then resets is
//!   taken out by passive checks, and is brought back only by its own
//!   active check kind after `rise` successes counted from the take-down
//!   (no flapping back in on a TCP connect);
//! - rvsd's own lack of descriptors (EMFILE) on upstream connects and on
//!   health probes is never counted against a real server.
//!
//! Loopback range 127.43.0.0/16. Timers are short (100–200 ms); every wait
//! is a bounded poll.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What a [`Flaky`] back end saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A connection that sent nothing and closed: a TCP health check.
    Probe,
    /// rvsd's HTTP health check (by its User-Agent), answered 200.
    CheckOk,
    /// rvsd's HTTP health check, reset.
    CheckReset,
    /// A client's request, answered 200.
    Served,
    /// A client's request, read and then reset.
    Reset,
}

/// An HTTP back end that, while `bad`, accepts, reads the request and
/// then resets the connection (SO_LINGER 0) without answering.
struct Flaky {
    addr: SocketAddr,
    bad: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Flaky {
    fn start(ip: &str, name: &'static str, bad: bool) -> Flaky {
        let l = TcpListener::bind((ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let bad = Arc::new(AtomicBool::new(bad));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s, sp) = (bad.clone(), seen.clone(), stop.clone());
        thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                let Ok((c, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let (b, s) = (b.clone(), s.clone());
                thread::spawn(move || serve(c, name, &b, &s));
            }
        });
        Flaky {
            addr,
            bad,
            seen,
            stop,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut c: TcpStream, name: &str, bad: &AtomicBool, seen: &Mutex<Vec<Seen>>) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => req.extend_from_slice(&buf[..k]),
        }
    }
    if req.is_empty() {
        seen.lock().unwrap().push(Seen::Probe);
        return;
    }
    let check = String::from_utf8_lossy(&req).contains("rvsd-health-check");
    if bad.load(Ordering::Relaxed) {
        seen.lock()
            .unwrap()
            .push(if check { Seen::CheckReset } else { Seen::Reset });
        nix::sys::socket::setsockopt(
            &c,
            nix::sys::socket::sockopt::Linger,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )
        .unwrap();
        drop(c); // RST
        return;
    }
    seen.lock()
        .unwrap()
        .push(if check { Seen::CheckOk } else { Seen::Served });
    let body = format!("{name}\n");
    let _ = write!(
        c,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// One HTTP request through the virtual service: the body (who answered)
/// or what went wrong.
fn get(vip: SocketAddr) -> Result<String, String> {
    let mut s = connect_from("127.43.0.200", vip).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .map_err(|e| format!("receive: {e}"))?;
    let resp = String::from_utf8_lossy(&resp);
    match resp.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.trim().to_string()),
        _ => Err(format!("bad answer {resp:?}")),
    }
}

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

fn state(d: &Daemon, srv: SocketAddr) -> String {
    health(d, srv)["state"].as_str().unwrap().to_string()
}

fn wait_state(d: &Daemon, srv: SocketAddr, want: &str, secs: u64) {
    assert!(
        wait_for(secs, || state(d, srv) == want),
        "{srv} did not become {want}: {}\nlog:\n{}",
        health(d, srv),
        d.log()
    );
}

/// Log lines that mention `server` and contain `what`.
fn log_lines(d: &Daemon, server: SocketAddr, what: &str) -> usize {
    let s = server.to_string();
    d.log()
        .lines()
        .filter(|l| l.contains(&s) && l.contains(what))
        .count()
}

/// Send requests one at a time (at most `max`) until `srv` is DOWN;
/// returns (requests sent, client errors).
fn requests_until_down(d: &Daemon, vip: SocketAddr, srv: SocketAddr, max: usize) -> (usize, usize) {
    let mut errors = 0;
    for sent in 1..=max {
        if get(vip).is_err() {
            errors += 1;
        }
        if state(d, srv) == "DOWN" {
            return (sent, errors);
        }
    }
    panic!(
        "{srv} still not DOWN after {max} requests ({errors} client errors): {}\nlog:\n{}",
        health(d, srv),
        d.log()
    );
}

#[test]
fn reset_after_the_request_takes_the_server_out_and_its_http_check_keeps_it_out() {
    let d = Daemon::start();
    let vip = vip_on("127.43.0.1");
    let good = Flaky::start("127.43.0.2", "good", false);
    let bad = Flaky::start("127.43.0.3", "bad", true);
    let vs = vip.to_string();
    // fall 1000: the active check alone would take minutes to take the bad
    // server out, so passive checks must do it.
    d.ok(&[
        "-A",
        "-t",
        &vs,
        "-s",
        "rr",
        "--check",
        "http",
        "--check-interval",
        "200ms",
        "--check-fall",
        "1000",
        "--check-rise",
        "3",
    ]);
    d.ok(&["-a", "-t", &vs, "-r", &good.addr.to_string()]);
    d.ok(&["-a", "-t", &vs, "-r", &bad.addr.to_string()]);
    assert_eq!(state(&d, bad.addr), "UP");

    // --fail-after (3) requests reset before an answer take it out; with
    // rr every other request goes to it, so a few client errors at most.
    let (sent, errors) = requests_until_down(&d, vip, bad.addr, 200);
    println!("bad server out after {sent} requests, {errors} client errors");
    assert!(
        (3..=4).contains(&errors),
        "{errors} client errors in {sent} requests; log:\n{}",
        d.log()
    );
    let h = health(&d, bad.addr);
    assert!(
        log_lines(&d, bad.addr, "3 connections failed before an answer") == 1,
        "{h}\nlog:\n{}",
        d.log()
    );

    // It stays out while its HTTP check fails, under load: four clients
    // send 200 requests meanwhile, and none sees an error; watched for at
    // least ten check intervals, nothing (a connect that succeeds, a TCP
    // probe) puts it back.
    let clients: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || (0..50).map(|_| get(vip)).collect::<Vec<_>>()))
        .collect();
    let until = Instant::now() + Duration::from_secs(2);
    let mut fails_seen = false;
    while Instant::now() < until || clients.iter().any(|c| !c.is_finished()) {
        let h = health(&d, bad.addr);
        assert_eq!(
            h["state"],
            "DOWN",
            "flapped back in: {h}\nlog:\n{}",
            d.log()
        );
        fails_seen |= h["last_ok"] == false;
        thread::sleep(Duration::from_millis(50));
    }
    assert!(fails_seen, "its HTTP check never ran and failed");
    let answers: Vec<Result<String, String>> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let wrong: Vec<_> = answers
        .iter()
        .filter(|a| a.as_deref() != Ok("good"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} requests after the take-down: {wrong:?}\nlog:\n{}",
        wrong.len(),
        answers.len(),
        d.log()
    );
    assert_eq!(log_lines(&d, bad.addr, "real server DOWN"), 1);
    assert_eq!(log_lines(&d, bad.addr, "real server UP"), 0, "{}", d.log());

    // Healthy again: back after `rise` (3) successful HTTP checks.
    let healed_at = bad.seen().len();
    bad.bad.store(false, Ordering::Relaxed);
    wait_state(&d, bad.addr, "UP", 10);
    let after: Vec<Seen> = bad.seen()[healed_at..].to_vec();
    let checks = after.iter().filter(|s| **s == Seen::CheckOk).count();
    assert!(
        checks >= 3,
        "UP after {checks} successful checks: {after:?}"
    );
    assert!(!after.contains(&Seen::Probe), "a TCP probe ran: {after:?}");
    assert_eq!(health(&d, bad.addr)["reason"], "HTTP 200");
    let answers: Vec<String> = (0..6).map(|_| get(vip).unwrap()).collect();
    assert!(answers.contains(&"bad".to_string()), "{answers:?}");
}

#[test]
fn a_passive_take_down_needs_rise_fresh_successes_of_the_servers_own_check() {
    let d = Daemon::start();
    let vip = vip_on("127.43.0.4");
    let good = Flaky::start("127.43.0.5", "good", false);
    // Its TCP port accepts (the default TCP check passes), its requests
    // are reset.
    let bad = Flaky::start("127.43.0.6", "bad", true);
    let vs = vip.to_string();
    d.ok(&[
        "-A",
        "-t",
        &vs,
        "-s",
        "rr",
        "--check-interval",
        "200ms",
        "--check-rise",
        "4",
    ]);
    d.ok(&["-a", "-t", &vs, "-r", &good.addr.to_string()]);
    d.ok(&["-a", "-t", &vs, "-r", &bad.addr.to_string()]);
    // Many passing TCP checks before the take-down.
    assert!(wait_for(10, || bad
        .seen()
        .iter()
        .filter(|s| **s == Seen::Probe)
        .count()
        >= 5));
    requests_until_down(&d, vip, bad.addr, 200);
    // No more traffic: wait for its TCP check to bring it back.
    wait_state(&d, bad.addr, "UP", 10);
    let seen = bad.seen();
    let last_reset = seen.iter().rposition(|s| *s == Seen::Reset).unwrap();
    let probes = seen[last_reset..]
        .iter()
        .filter(|s| **s == Seen::Probe)
        .count();
    assert!(
        probes >= 4,
        "back after {probes} TCP checks (rise 4): the checks before the take-down counted; {seen:?}"
    );
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
