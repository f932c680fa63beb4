//! Hardening of `rvsd --metrics-listen` (issue 19, B3): a flood of idle
//! connections, a slowloris, a client that never reads and a burst of
//! concurrent scrapes must neither starve the control socket and the data
//! plane nor pin memory or a slot. Loopback range 127.41.0.0/16.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// A free `ip:port` for `--metrics-listen`.
fn metrics_on(ip: &str) -> String {
    format!("{ip}:{}", free_port(ip))
}

/// Lower rvsd's open-files limit (soft and hard) to `n` with util-linux's
/// prlimit, so that descriptor exhaustion shows with a small test.
fn limit_nofile(d: &Daemon, n: u32) {
    let st = Command::new("prlimit")
        .arg("--pid")
        .arg(d.pid().to_string())
        .arg(format!("--nofile={n}:{n}"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(st.success(), "prlimit --nofile={n} failed");
}

/// `rvsadm args` against `d`; None when it did not finish within `secs`
/// (then it is killed by its PID).
fn rvsadm_within(d: &Daemon, args: &[&str], secs: u64) -> Option<Output> {
    let child = Command::new(RVSADM)
        .args(args)
        .env("RVS_SOCKET", &d.socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rvsadm");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => {
            waiter.join().unwrap();
            Some(out.expect("rvsadm ran"))
        }
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
            waiter.join().unwrap();
            None
        }
    }
}

/// How one scrape went.
#[derive(Debug)]
enum Scrape {
    /// 200 and the body.
    Body(String),
    /// Closed (EOF or reset) before any answer: refused at once.
    Refused,
    /// Anything else (a timeout, another status, a half answer).
    Failed(String),
}

/// `GET /metrics` with a deadline of `secs` on every step.
fn try_scrape(addr: &str, secs: u64) -> Scrape {
    let limit = Duration::from_secs(secs);
    let mut s = match TcpStream::connect_timeout(&addr.parse().unwrap(), limit) {
        Ok(s) => s,
        Err(e) => return Scrape::Failed(format!("connect: {e}")),
    };
    s.set_read_timeout(Some(limit)).unwrap();
    s.set_write_timeout(Some(limit)).unwrap();
    if let Err(e) = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: rvs\r\nConnection: close\r\n\r\n")
    {
        return match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                Scrape::Failed(format!("write: {e}"))
            }
            _ => Scrape::Refused,
        };
    }
    let mut resp = Vec::new();
    match s.read_to_end(&mut resp) {
        Ok(_) => {}
        Err(e)
            if resp.is_empty()
                && !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
        {
            return Scrape::Refused
        }
        Err(e) => return Scrape::Failed(format!("read after {} bytes: {e}", resp.len())),
    }
    if resp.is_empty() {
        return Scrape::Refused;
    }
    let resp = String::from_utf8_lossy(&resp).into_owned();
    match resp.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Scrape::Body(body.to_string()),
        _ => Scrape::Failed(resp.chars().take(200).collect()),
    }
}

/// A TCP service on `vip_ip` with one back end on `backend_ip`.
fn proxied_service(
    d: &Daemon,
    vip_ip: &str,
    backend_ip: &str,
    name: &str,
) -> (Backend, SocketAddr) {
    let b = Backend::tcp_on(&format!("{backend_ip}:0"), name);
    let vip = vip_on(vip_ip);
    d.ok(&["-A", "-t", &vip.to_string()]);
    d.ok(&["-a", "-t", &vip.to_string(), "-r", &b.addr.to_string()]);
    (b, vip)
}

#[test]
fn a_thousand_idle_metrics_connections_starve_neither_the_control_socket_nor_traffic() {
    raise_nofile();
    let maddr = metrics_on("127.41.0.1");
    let mut flags = NO_CHECKS.to_vec();
    flags.extend(["--worker-threads", "1", "--metrics-listen", &maddr]);
    let d = Daemon::start_with(&flags);
    let (_b, vip) = proxied_service(&d, "127.41.0.2", "127.41.0.3", "b1");
    assert_eq!(who_from("127.41.0.4", vip), "b1");
    // A small descriptor budget, so that 1,000 connections exhaust it
    // when each one costs rvsd a descriptor.
    limit_nofile(&d, 512);

    let target: SocketAddr = maddr.parse().unwrap();
    // (A connect that times out means rvsd no longer accepts and its
    // backlog is full: stop there and look at the damage.)
    let mut idle = Vec::new();
    for _ in 0..1000 {
        match TcpStream::connect_timeout(&target, Duration::from_secs(3)) {
            Ok(s) => idle.push(s),
            Err(_) => break,
        }
    }
    let opened = idle.len();

    // The control socket answers.
    let out = rvsadm_within(&d, &["-L", "-n"], 5).unwrap_or_else(|| {
        panic!(
            "rvsadm -L -n did not answer within 5 s with 1,000 idle metrics connections open\nrvsd log tail:\n{}",
            tail(&d.log())
        )
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&vip.to_string()), "{}", stdout(&out));
    // Proxied traffic flows.
    let s = connect_from("127.41.0.4", vip).expect("connect to the virtual service");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = [0u8; 3];
    let got = (&s).read_exact(&mut line);
    assert!(
        got.is_ok() && &line == b"b1\n",
        "no greeting through rvsd with 1,000 idle metrics connections open: {got:?}\nrvsd log tail:\n{}",
        tail(&d.log())
    );
    drop(s);
    // A fresh scrape is served or refused at once (the slots are taken),
    // never left hanging.
    match try_scrape(&maddr, 3) {
        Scrape::Body(text) => assert!(text.contains("rvs_virtual_services 1\n"), "{text}"),
        Scrape::Refused => {}
        Scrape::Failed(why) => panic!("a fresh scrape neither answered nor was refused: {why}"),
    }
    // Once the idle ones time out (header-read timeout), scrapes work
    // again and only the scrape itself is open; the refusals are counted.
    let mut text = String::new();
    assert!(
        wait_for(30, || match try_scrape(&maddr, 3) {
            Scrape::Body(t) => {
                text = t;
                value(&text, "rvs_metrics_connections ") == 1
            }
            _ => false,
        }),
        "the idle connections did not time out:\n{text}"
    );
    let refused = value(&text, "rvs_metrics_connections_refused_total ");
    assert!(
        opened == 1000 && refused >= 800,
        "{opened} connected, {refused} refused:\n{text}"
    );
    drop(idle);
}

/// Established TCP connections whose local end is `addr` (rvsd's side of
/// its metrics connections), as `ss` (iproute2) lists them.
fn served_from(addr: &str) -> usize {
    let out = Command::new("ss")
        .args(["-Htn", "state", "established", "src", addr])
        .output()
        .expect("ss (iproute2) runs");
    assert!(out.status.success(), "ss: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[test]
fn a_slowloris_is_disconnected_after_the_header_timeout() {
    let maddr = metrics_on("127.41.1.1");
    let mut flags = NO_CHECKS.to_vec();
    flags.extend(["--worker-threads", "1", "--metrics-listen", &maddr]);
    let d = Daemon::start_with(&flags);
    let mut s = TcpStream::connect(&maddr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: rvs\r\nX-Slow: ")
        .unwrap();
    // One more header byte every 250 ms, for at most 30 s: trickling must
    // not extend the deadline.
    let start = Instant::now();
    let mut closed = false;
    let mut answer = Vec::new();
    while start.elapsed() < Duration::from_secs(30) {
        if s.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            // An error status (408) before the close is fine.
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "a client trickling its header was still connected after {:?}",
        start.elapsed()
    );
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Its slot is free again.
    assert!(matches!(try_scrape(&maddr, 5), Scrape::Body(_)));
    drop(d);
}

/// `count` TCP services, each with two real servers on documentation
/// addresses (never contacted: no checks, no traffic), in one `-R`.
fn big_table(d: &Daemon, count: usize) {
    // A port picked free may be taken by another test before rvsd binds it
    // (a wildcard listener of another file): `-R` is atomic, so try again
    // with fresh ports.
    for _ in 0..3 {
        let out = d.rvsadm_stdin(&["-R"], &big_table_script(count));
        if out.status.success() {
            return;
        }
        assert!(
            stderr(&out).contains("Address already in use"),
            "-R: {}",
            stderr(&out)
        );
    }
    panic!("-R of {count} services kept meeting ports in use");
}

fn big_table_script(count: usize) -> String {
    let mut script = String::new();
    for i in 0..count {
        let ip = format!("127.41.{}.{}", 10 + i / 200, 1 + i % 200);
        let vip = vip_on(&ip);
        script.push_str(&format!("-A -t {vip} -s rr\n"));
        for r in 1..=2 {
            script.push_str(&format!(
                "-a -t {vip} -r 198.51.100.{}:{} -w 1\n",
                1 + i % 250,
                8000 + r
            ));
        }
    }
    script
}

/// The text without the lines that move on their own: uptime, and the
/// metrics listener's own connection counts.
fn steady(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("rvs_uptime_seconds ") && !l.starts_with("rvs_metrics_"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn concurrent_scrapes_get_the_whole_table_and_rvsadm_stays_responsive() {
    const SERVICES: usize = 300;
    let maddr = metrics_on("127.41.2.1");
    let mut flags = NO_CHECKS.to_vec();
    flags.extend(["--worker-threads", "1", "--metrics-listen", &maddr]);
    let d = Daemon::start_with(&flags);
    big_table(&d, SERVICES);
    let reference = match try_scrape(&maddr, 10) {
        Scrape::Body(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(value(&reference, "rvs_virtual_services "), SERVICES as u64);
    assert_eq!(
        reference
            .lines()
            .filter(|l| l.starts_with("rvs_real_server_weight{"))
            .count(),
        2 * SERVICES
    );
    let reference = steady(&reference);

    // 50 threads, 5 scrapes each, all at once.
    let threads = 50;
    let start = Arc::new(Barrier::new(threads + 1));
    let scrapers: Vec<_> = (0..threads)
        .map(|_| {
            let (start, maddr) = (start.clone(), maddr.clone());
            thread::spawn(move || {
                start.wait();
                (0..5).map(|_| try_scrape(&maddr, 20)).collect::<Vec<_>>()
            })
        })
        .collect();
    start.wait();
    for _ in 0..3 {
        let out = rvsadm_within(&d, &["-L", "-n"], 5)
            .expect("rvsadm -L -n answers within 5 s during a scrape burst");
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stdout(&out)
                .lines()
                .filter(|l| l.starts_with("TCP"))
                .count(),
            SERVICES
        );
    }
    for s in scrapers {
        for got in s.join().unwrap() {
            match got {
                Scrape::Body(t) => assert!(steady(&t) == reference, "a scrape differs"),
                other => panic!("a scrape of the burst failed: {other:?}"),
            }
        }
    }
}

#[test]
fn a_client_that_never_reads_is_cut_off_by_the_write_timeout() {
    let maddr = metrics_on("127.41.3.1");
    let mut flags = NO_CHECKS.to_vec();
    flags.extend(["--worker-threads", "1", "--metrics-listen", &maddr]);
    let d = Daemon::start_with(&flags);
    big_table(&d, 300);
    let one = match try_scrape(&maddr, 10) {
        Scrape::Body(t) => t.len(),
        other => panic!("{other:?}"),
    };
    // 40 pipelined requests whose answers (40 × ~100 KB) far exceed the
    // socket buffers, then no reading for a while.
    let mut s = TcpStream::connect(&maddr).unwrap();
    let requests = 40;
    for _ in 0..requests {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: rvs\r\n\r\n")
            .unwrap();
    }
    assert_eq!(served_from(&maddr), 1, "the client's connection is listed");
    // rvsd drops it once a write made no progress for its write timeout:
    // its side of the connection leaves ESTABLISHED.
    assert!(
        wait_for(40, || served_from(&maddr) == 0),
        "a client that does not read is still connected ({} open)",
        served_from(&maddr)
    );
    // Now read: the answers stop short of all 40, with an EOF or a reset.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break "eof".to_string(),
            Ok(n) => got += n,
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        got < requests * one,
        "all {requests} answers ({got} bytes) reached a client that did not read; end: {end}"
    );
    assert!(
        !end.contains("timed out") && !end.contains("temporarily unavailable"),
        "the connection was still open: {end} after {got} bytes"
    );
    drop(d);
}
