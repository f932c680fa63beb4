//! Health checking against real servers on loopback: each check kind passes,
//! fails, hangs and recovers; rise/fall counting; a server killed under load;
//! sorry server; slow start; settings through -S/-R and a restart.
//! Timers are short (100–200 ms intervals); assertions wait with bounds and
//! never depend on wall-clock speed.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// An HTTP back end whose status can be switched and which can hang.
struct Http {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    hang: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Http {
    fn start(name: &'static str) -> Http {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let hang = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, hg, sp) = (status.clone(), hang.clone(), stop.clone());
        thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (st, hg) = (st.clone(), hg.clone());
                thread::spawn(move || {
                    c.set_nonblocking(false).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = c.read(&mut buf);
                    if hg.load(Ordering::Relaxed) {
                        thread::sleep(Duration::from_secs(3));
                        return;
                    }
                    let code = st.load(Ordering::Relaxed);
                    let body = format!("{name} says {code}\n");
                    let _ = write!(
                        c,
                        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Http {
            addr,
            status,
            hang,
            stop,
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn vip() -> SocketAddr {
    format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap()
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

#[test]
fn tcp_check_takes_a_stopped_server_out_and_brings_it_back() {
    let d = Daemon::start();
    let v = vip();
    let a = Backend::tcp("a");
    let b = Backend::tcp("b");
    let vs = v.to_string();
    d.ok(&[
        "-A",
        "-t",
        &vs,
        "-s",
        "rr",
        "--check-interval",
        "100ms",
        "--check-timeout",
        "500ms",
    ]);
    d.ok(&["-a", "-t", &vs, "-r", &a.addr.to_string()]);
    d.ok(&["-a", "-t", &vs, "-r", &b.addr.to_string()]);
    wait_state(&d, b.addr, "UP", 5);
    assert_eq!(health(&d, b.addr)["check"], "tcp");
    b.stop();
    // The listener is gone once its thread notices; connects are then refused.
    wait_state(&d, b.addr, "DOWN", 10);
    let h = health(&d, b.addr);
    assert_eq!(h["reason"], "connection refused", "{h}");
    assert_eq!(h["last_ok"], false);
    for _ in 0..6 {
        assert_eq!(who(v), "a", "a down server gets no connections");
    }
    // A new back end on the same port: rise (2) successes bring it back.
    let b2 = Backend::tcp_on(&b.addr.to_string(), "b2");
    wait_state(&d, b2.addr, "UP", 10);
    let seen: Vec<String> = (0..4).map(|_| who(v)).collect();
    assert!(seen.contains(&"b2".to_string()), "{seen:?}");
    assert!(d.log().contains("real server DOWN") && d.log().contains("real server UP"));
}

#[test]
fn rise_and_fall_are_counted() {
    let d = Daemon::start();
    let v = vip().to_string();
    let h = Http::start("h");
    let hs = h.addr.to_string();
    d.ok(&[
        "-A",
        "-t",
        &v,
        "--check",
        "http",
        "--check-interval",
        "150ms",
        "--check-fall",
        "4",
        "--check-rise",
        "3",
    ]);
    d.ok(&["-a", "-t", &v, "-r", &hs]);
    wait_state(&d, h.addr, "UP", 5);
    h.status.store(503, Ordering::Relaxed);
    // After the first failed probe the server must still be UP (fall 4).
    assert!(wait_for(10, || health(&d, h.addr)["last_ok"] == false));
    assert_eq!(state(&d, h.addr), "UP", "one failure is not four");
    wait_state(&d, h.addr, "DOWN", 10);
    assert_eq!(health(&d, h.addr)["reason"], "HTTP 503");
    h.status.store(200, Ordering::Relaxed);
    assert!(wait_for(10, || health(&d, h.addr)["last_ok"] == true));
    assert_eq!(state(&d, h.addr), "DOWN", "one success is not three");
    wait_state(&d, h.addr, "UP", 10);
}

#[test]
fn http_check_status_body_and_hang() {
    let d = Daemon::start();
    let v = vip().to_string();
    let h = Http::start("web");
    let hs = h.addr.to_string();
    d.ok(&[
        "-A",
        "-t",
        &v,
        "--check",
        "http",
        "--check-interval",
        "100ms",
        "--check-timeout",
        "300ms",
        "--check-fall",
        "1",
        "--check-rise",
        "1",
        "--check-http-path",
        "/health",
        "--check-http-status",
        "200-204",
        "--check-http-body",
        "web says",
    ]);
    d.ok(&["-a", "-t", &v, "-r", &hs]);
    wait_state(&d, h.addr, "UP", 5);
    h.status.store(302, Ordering::Relaxed);
    wait_state(&d, h.addr, "DOWN", 5);
    assert_eq!(
        health(&d, h.addr)["reason"],
        "HTTP 302",
        "302 is outside 200-204"
    );
    h.status.store(200, Ordering::Relaxed);
    wait_state(&d, h.addr, "UP", 5);
    h.hang.store(true, Ordering::Relaxed);
    wait_state(&d, h.addr, "DOWN", 5);
    assert_eq!(health(&d, h.addr)["reason"], "timeout after 0.3 s");
    h.hang.store(false, Ordering::Relaxed);
    wait_state(&d, h.addr, "UP", 10);
    // A body that lacks the expected text fails too.
    d.ok(&[
        "-E",
        "-t",
        &v,
        "--check",
        "http",
        "--check-interval",
        "100ms",
        "--check-fall",
        "1",
        "--check-http-body",
        "nope",
    ]);
    wait_state(&d, h.addr, "DOWN", 5);
    assert!(health(&d, h.addr)["reason"]
        .as_str()
        .unwrap()
        .contains("without \"nope\""));
}

#[test]
fn exec_check_flips_and_is_killed_on_timeout() {
    let d = Daemon::start();
    let v = vip().to_string();
    let a = Backend::tcp("a");
    let flag = d.dir.0.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let cmd = format!(
        "test -e {} && test \"$RVS_SERVER_PORT\" = {}",
        flag.display(),
        a.addr.port()
    );
    d.ok(&[
        "-A",
        "-t",
        &v,
        "--check-interval",
        "100ms",
        "--check-fall",
        "1",
        "--check-rise",
        "1",
    ]);
    d.ok(&[
        "-a",
        "-t",
        &v,
        "-r",
        &a.addr.to_string(),
        "--check",
        "exec",
        "--check-exec",
        &cmd,
        "--check-interval",
        "1s",
    ]);
    wait_state(&d, a.addr, "UP", 5);
    assert!(wait_for(5, || health(&d, a.addr)["reason"] == "exit 0"));
    std::fs::remove_file(&flag).unwrap();
    wait_state(&d, a.addr, "DOWN", 5);
    assert_eq!(health(&d, a.addr)["reason"], "exit 1");
    std::fs::write(&flag, "").unwrap();
    wait_state(&d, a.addr, "UP", 5);

    // A hanging command is killed with its process group at the timeout.
    let marker = d.dir.0.join("child-survived");
    let hang = format!("(sleep 1; touch {}) & sleep 30", marker.display());
    d.ok(&[
        "-e",
        "-t",
        &v,
        "-r",
        &a.addr.to_string(),
        "--check",
        "exec",
        "--check-exec",
        &hang,
        "--check-timeout",
        "200ms",
        "--check-interval",
        "1s",
        "--check-fall",
        "1",
    ]);
    wait_state(&d, a.addr, "DOWN", 5);
    assert_eq!(health(&d, a.addr)["reason"], "timeout after 0.2 s");
    d.ok(&["-d", "-t", &v, "-r", &a.addr.to_string()]);
    // Time must pass to show that something does not happen: a surviving
    // child would touch the marker 1 s after its check started, before the
    // -d above.
    thread::sleep(Duration::from_millis(1500));
    assert!(
        !marker.exists(),
        "the check's child process outlived the timeout"
    );
}

#[test]
fn server_killed_under_load_costs_no_client_errors() {
    let d = Daemon::start();
    let v = vip();
    let vs = v.to_string();
    let a = Backend::tcp("a");
    let b = Backend::tcp("b");
    d.ok(&[
        "-A",
        "-t",
        &vs,
        "-s",
        "rr",
        "--check-interval",
        "200ms",
        "--check-timeout",
        "200ms",
        "--check-fall",
        "3",
    ]);
    d.ok(&["-a", "-t", &vs, "-r", &a.addr.to_string()]);
    d.ok(&["-a", "-t", &vs, "-r", &b.addr.to_string()]);
    wait_state(&d, b.addr, "UP", 5);
    let errors = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (errors, done, stop) = (errors.clone(), done.clone(), stop.clone());
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match connect_from("127.0.0.1", v) {
                        Ok(s) => {
                            let mut line = String::new();
                            let ok = std::io::BufRead::read_line(
                                &mut std::io::BufReader::new(&s),
                                &mut line,
                            )
                            .is_ok()
                                && !line.is_empty();
                            if !ok {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Traffic flowing before the kill...
    assert!(wait_for(10, || done.load(Ordering::Relaxed) >= 10));
    let killed = Instant::now();
    b.stop();
    wait_state(&d, b.addr, "DOWN", 10);
    let detection = killed.elapsed();
    // ... and after it was taken out.
    let at = done.load(Ordering::Relaxed);
    assert!(wait_for(10, || done.load(Ordering::Relaxed) >= at + 10));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    assert!(n > 20, "too little traffic to mean anything: {n}");
    assert_eq!(
        errors.load(Ordering::Relaxed),
        0,
        "{n} connections; rvsd log:\n{}",
        d.log()
    );
    println!("killed server detected after {detection:?}; {n} connections, 0 errors");
}

#[test]
fn sorry_server_only_while_nothing_is_up() {
    let d = Daemon::start();
    let v = vip();
    let vs = v.to_string();
    let a = Backend::tcp("a");
    let sorry = Backend::tcp("sorry");
    d.ok(&[
        "-A",
        "-t",
        &vs,
        "--check-interval",
        "100ms",
        "--check-fall",
        "1",
        "--check-rise",
        "1",
        "--sorry-server",
        &sorry.addr.to_string(),
    ]);
    d.ok(&["-a", "-t", &vs, "-r", &a.addr.to_string()]);
    wait_state(&d, a.addr, "UP", 5);
    assert_eq!(who(v), "a");
    a.stop();
    wait_state(&d, a.addr, "DOWN", 5);
    assert_eq!(who(v), "sorry");
    let listing = d.ok(&["-L", "-n", "--health"]);
    assert!(
        listing.contains("(ACTIVE)") && listing.contains("DOWN (SORRY)"),
        "{listing}"
    );
    let a2 = Backend::tcp_on(&a.addr.to_string(), "a2");
    wait_state(&d, a2.addr, "UP", 5);
    assert_eq!(who(v), "a2");
    assert_eq!(sorry.accepted.load(Ordering::Relaxed), 1);
}

#[test]
fn initial_down_until_proven_and_slow_start_ramp() {
    let d = Daemon::start();
    let v = vip().to_string();
    let a = Backend::tcp("a");
    d.ok(&[
        "-A",
        "-t",
        &v,
        "--check-interval",
        "100ms",
        "--check-initial",
        "down",
        "--check-rise",
        "2",
        "--slow-start",
        "4",
    ]);
    d.ok(&["-a", "-t", &v, "-r", &a.addr.to_string(), "-w", "100"]);
    // Down first (no verdict yet), then up after two successes.
    let first = health(&d, a.addr);
    assert!(
        first["state"] == "DOWN" || first["last_ok"] == true,
        "{first}"
    );
    wait_state(&d, a.addr, "UP", 5);
    // Right after coming up the weight in effect is ramping, below 100.
    let w = health(&d, a.addr)["effective_weight"].clone();
    assert!(
        w.as_u64().is_some_and(|w| (1..100).contains(&w)),
        "effective weight {w}"
    );
    assert!(
        wait_for(15, || health(&d, a.addr)["effective_weight"].is_null()),
        "the ramp ends after the slow-start period: {}",
        health(&d, a.addr)
    );
}

#[test]
fn udp_check_sees_replies_and_silence() {
    let d = Daemon::start();
    let v = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let u = UdpBackend::start("u");
    let port = u.addr.port().to_string();
    d.ok(&[
        "-A",
        "-u",
        &v,
        "--check",
        "udp",
        "--check-interval",
        "100ms",
        "--check-timeout",
        "300ms",
        "--check-fall",
        "1",
        "--check-rise",
        "1",
        "--check-udp-send",
        "ping",
        "--check-udp-expect",
        "u:ping",
    ]);
    d.ok(&["-a", "-u", &v, "-r", &u.addr.to_string()]);
    wait_state(&d, u.addr, "UP", 5);
    drop(u);
    wait_state(&d, format!("127.0.0.1:{port}").parse().unwrap(), "DOWN", 5);
}

#[test]
fn settings_survive_save_restore_and_restart() {
    let mut d = Daemon::start();
    let v = vip().to_string();
    let a = Backend::tcp("a");
    d.ok(&[
        "-A",
        "-t",
        &v,
        "-s",
        "rr",
        "--check",
        "http",
        "--check-interval",
        "1.5s",
        "--check-http-path",
        "/ok",
        "--check-http-host",
        "example.org",
        "--check-http-body",
        "all good",
        "--slow-start",
        "10",
        "--sorry-server",
        "127.0.0.1:9",
    ]);
    d.ok(&[
        "-a",
        "-t",
        &v,
        "-r",
        &a.addr.to_string(),
        "--check",
        "tcp",
        "--check-port",
        "9",
        "--check-fall",
        "5",
    ]);
    let saved = d.ok(&["-S", "-n"]);
    assert!(saved.contains("--check-http-body \"all good\""), "{saved}");
    assert!(
        saved.contains("--check-interval 1500ms") && saved.contains("--sorry-server 127.0.0.1:9"),
        "{saved}"
    );
    d.ok(&["-C"]);
    let out = d.rvsadm_stdin(&["-R"], &saved);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.ok(&["-S", "-n"]), saved);
    d.stop();
    d.restart();
    assert_eq!(
        d.ok(&["-S", "-n"]),
        saved,
        "health settings survive a restart"
    );
}
