//! Issue 19, B4 and B6: the descriptor budget and the UDP flow budget.
//!
//! B4: rvsd derives its connection cap from RLIMIT_NOFILE (after a reserve
//! for the control socket, the state file and health checks, and after its
//! listening sockets, one per service per data-plane thread), logs it, and
//! refuses a table change whose listeners would eat into the reserve; so
//! at the cap `rvsadm` still gets in, and a table rvsd acknowledged is one
//! it can restart with.
//!
//! B6: UDP flows have a cap of their own (`--max-udp-flows`), so a
//! spoofed-source flood cannot starve TCP; a datagram over the cap is
//! dropped before it is counted anywhere, logged once per interval; flows
//! the real server never answered expire after `--udp-unreplied-timeout`.
//!
//! Loopback range: 127.42.0.0/16.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// rvsd started under an open-files limit of its own (soft and hard, so
/// that rvsd cannot raise it), with no default health check.
fn limited(nofile: u64, extra: &[&str]) -> Daemon {
    Daemon::start_limited(nofile, &[NO_CHECKS, extra].concat())
}

/// Descriptors rvsd has open.
fn open_fds(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count()
}

/// The TCP and UDP caps of the last "connection cap" line of the log.
fn caps(d: &Daemon) -> (usize, usize) {
    let log = d.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("connection cap "))
        .unwrap_or_else(|| panic!("no connection cap in the log:\n{log}"));
    let after = |what: &str| -> usize {
        let rest = &line[line
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {line}"))
            + what.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (after("connection cap "), after("UDP flow cap "))
}

/// The first line from a proxied connection, or None when nothing came
/// within `wait`.
fn greeting_within(s: &TcpStream, wait: Duration) -> Option<String> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match (&*s).read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into()),
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
}

/// The Conns column of a service in `rvsadm -L -n --stats`.
fn conns(listing: &str, proto: &str, vip: &str) -> u64 {
    listing
        .lines()
        .find(|l| l.starts_with(proto) && l.contains(vip))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {proto} {vip} in:\n{listing}"))
}

/// Open UDP flows of a service in `rvsadm -L -n -c`.
fn udp_flows(d: &Daemon, vip: &str) -> usize {
    d.ok(&["-L", "-n", "-c"])
        .lines()
        .filter(|l| l.starts_with("UDP") && l.contains(vip))
        .count()
}

#[test]
fn the_cap_follows_the_descriptor_limit_and_rvsadm_still_gets_in() {
    raise_nofile();
    let started = Instant::now();
    let d = limited(256, &["--worker-threads", "1"]);
    let (cap, _) = caps(&d);
    assert!(
        d.log().contains("(RLIMIT_NOFILE 256, reserve "),
        "{}",
        d.log()
    );
    // Two descriptors a connection, the reserve and the listener off 256.
    assert!((20..=110).contains(&cap), "cap {cap}");

    let a = Backend::tcp_on("127.42.0.10:0", "a");
    let vip = loopback_vip("127.42.0.1");
    d.ok(&["-A", "-t", &vip, "-s", "rr"]);
    d.ok(&["-a", "-t", &vip, "-r", &a.addr.to_string(), "-m"]);
    let vip_addr: SocketAddr = vip.parse().unwrap();

    // More clients than the descriptors rvsd has: before, it accepted until
    // EMFILE and then the control socket could not accept rvsadm.
    let clients: Vec<TcpStream> = (0..200)
        .map(|i| connect_from(&format!("127.42.0.{}", 20 + i % 100), vip_addr).unwrap())
        .collect();
    assert!(
        wait_for(20, || a.accepted.load(std::sync::atomic::Ordering::Relaxed)
            as usize
            >= cap),
        "{} of {cap} relayed",
        a.accepted.load(std::sync::atomic::Ordering::Relaxed)
    );
    // The control socket answers at the cap, and shows the cap's connections.
    let active = || -> (usize, String) {
        let listing = d.ok(&["-L", "-n"]);
        let n = listing
            .lines()
            .find(|l| l.contains(&a.addr.to_string()))
            .and_then(|l| l.split_whitespace().nth(4))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{listing}"));
        (n, listing)
    };
    assert!(wait_for(10, || active().0 == cap), "{}", active().1);
    // No more than the cap was relayed; the rest wait in the backlog.
    assert_eq!(
        a.accepted.load(std::sync::atomic::Ordering::Relaxed) as usize,
        cap
    );
    let waiting = clients
        .iter()
        .filter(|c| greeting_within(c, Duration::from_millis(1)).is_none())
        .count();
    assert!(waiting >= 200 - cap, "{waiting} waiting");

    // Said in the log, once per interval (not once per waiting client).
    let said = d
        .log()
        .lines()
        .filter(|l| l.contains("TCP connection cap reached"))
        .count();
    let most = 2 + started.elapsed().as_secs() as usize / 5;
    assert!((1..=most).contains(&said), "{}", d.log());

    // Once the clients go, traffic flows again.
    drop(clients);
    assert!(
        wait_for(20, || {
            let c = connect_from("127.42.0.2", vip_addr).unwrap();
            greeting_within(&c, Duration::from_secs(2)).as_deref() == Some("a")
        }),
        "{}",
        d.log()
    );
    assert!(!d.log().contains("Too many open files"), "{}", d.log());
}

#[test]
fn a_change_that_would_eat_the_reserve_is_refused_and_a_restart_succeeds() {
    let mut d = limited(512, &["--worker-threads", "2"]);
    let port = free_port("127.42.1.1");
    let batch = |n: usize, from: usize| -> String {
        (from..from + n)
            .map(|i| {
                format!(
                    "-A -t 127.42.{}.{}:{port} -s rr\n",
                    1 + i / 200,
                    1 + i % 200
                )
            })
            .collect()
    };

    // 200 services on 2 threads need 400 listening sockets: more than 512
    // leaves after the reserve and the least room kept for connections.
    let before = d.ok(&["-S", "-n"]);
    let out = d.rvsadm_stdin(&["-R"], &batch(200, 0));
    let err = stderr(&out);
    assert_eq!(code(&out), 255, "{err}");
    for what in [
        "not enough file descriptors",
        "RLIMIT_NOFILE 512",
        "400 listening sockets",
        "LimitNOFILE=",
        "ulimit -n",
        "--worker-threads",
        "nothing was changed",
    ] {
        assert!(err.contains(what), "{what:?} not in {err}");
    }
    assert_eq!(d.ok(&["-S", "-n"]), before, "the table changed");

    // Up to the line, services are taken; one more -A is refused.
    let reserve: usize = {
        let log = d.log();
        let line = log
            .lines()
            .rfind(|l| l.contains("connection cap "))
            .unwrap()
            .to_string();
        let rest = &line[line.find("reserve ").unwrap() + 8..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // (512 - reserve - listeners >= 128, the least room kept.)
    let fit = (512 - reserve - 128) / 2;
    assert!((100..200).contains(&fit), "reserve {reserve}");
    let out = d.rvsadm_stdin(&["-R"], &batch(fit, 0));
    assert!(out.status.success(), "{}", stderr(&out));
    let more = format!("127.42.9.9:{port}");
    let out = d.rvsadm(&["-A", "-t", &more, "-s", "rr"]);
    assert_eq!(code(&out), 255, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("RLIMIT_NOFILE 512"),
        "{}",
        stderr(&out)
    );
    let table = d.ok(&["-S", "-n"]);
    assert_eq!(table.lines().count(), fit, "{table}");
    assert!(!d.log().contains("Too many open files"), "{}", d.log());

    // What was acknowledged, rvsd restarts with.
    let _ = d.stop();
    d.spawn()
        .expect("rvsd restarts with the table it acknowledged");
    assert_eq!(d.ok(&["-S", "-n"]), table);
    let (cap, udp) = caps(&d);
    assert!(cap >= 1 && udp >= 1, "{}", d.log());
}

#[test]
fn a_service_costs_one_descriptor_per_thread() {
    let d = limited(4096, &["--worker-threads", "2"]);
    let port = free_port("127.42.2.1");
    let before = open_fds(&d);
    let batch: String = (1..=50)
        .map(|i| format!("-A -t 127.42.2.{i}:{port} -s rr\n"))
        .collect();
    let out = d.rvsadm_stdin(&["-R"], &batch);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = open_fds(&d);
    // 50 services × 2 threads; it was twice that (a duplicate of every
    // listening socket).
    assert!(
        (100..=105).contains(&(after - before)),
        "{before} -> {after} descriptors"
    );
}

#[test]
fn a_udp_flood_neither_starves_tcp_nor_inflates_conns_nor_floods_the_log() {
    raise_nofile();
    let metrics = format!("127.42.3.20:{}", free_port("127.42.3.20"));
    let d = limited(
        8192,
        &[
            "--worker-threads",
            "1",
            "--max-connections",
            "20",
            "--max-udp-flows",
            "40",
            "--udp-unreplied-timeout",
            "3",
            "--metrics-listen",
            &metrics,
        ],
    );
    assert_eq!(caps(&d), (20, 40), "{}", d.log());
    let text = scrape(&metrics);
    assert_eq!(value(&text, "rvs_connection_cap{protocol=\"tcp\"}"), 20);
    assert_eq!(value(&text, "rvs_connection_cap{protocol=\"udp\"}"), 40);
    assert_eq!(value(&text, "rvs_udp_flows_refused_total"), 0);
    // A real server that never answers (the flood's target) and one that does.
    let silent = UdpSocket::bind("127.42.3.10:0").unwrap();
    let echo = UdpBackend::start("e");
    let flooded = loopback_vip("127.42.3.1");
    let answered = loopback_vip("127.42.3.2");
    let tcp = Backend::tcp_on("127.42.3.11:0", "t");
    let tcp_vip = loopback_vip("127.42.3.3");
    d.ok(&["-A", "-u", &flooded, "-s", "rr"]);
    d.ok(&[
        "-a",
        "-u",
        &flooded,
        "-r",
        &silent.local_addr().unwrap().to_string(),
        "-m",
    ]);
    d.ok(&["-A", "-u", &answered, "-s", "rr"]);
    d.ok(&["-a", "-u", &answered, "-r", &echo.addr.to_string(), "-m"]);
    d.ok(&["-A", "-t", &tcp_vip, "-s", "rr"]);
    d.ok(&["-a", "-t", &tcp_vip, "-r", &tcp.addr.to_string(), "-m"]);

    // One answered flow.
    let client = UdpSocket::bind("127.42.4.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.send_to(b"hi", &answered).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).expect("a reply");
    assert_eq!(&buf[..n], b"e:hi");

    // A flood from 300 source addresses: the flooded service may hold
    // three quarters of the cap (30 flows), leaving the other UDP service
    // room.
    let sources: Vec<UdpSocket> = (0..300)
        .map(|i| UdpSocket::bind(format!("127.42.{}.{}:0", 5 + i / 200, 1 + i % 200)).unwrap())
        .collect();
    for s in &sources {
        s.send_to(b"x", &flooded).unwrap();
    }
    assert!(
        wait_for(10, || udp_flows(&d, &flooded) == 30),
        "{} flows",
        udp_flows(&d, &flooded)
    );
    // The datagrams over the share are counted (at most 270: the kernel
    // may drop some of the burst before rvsd reads it), not logged one by one.
    assert!(
        wait_for(10, || {
            let n = value(&scrape(&metrics), "rvs_udp_flows_refused_total");
            n > 0 && n <= 270
        }),
        "{}",
        scrape(&metrics)
    );
    // New clients of the other UDP service still get flows...
    let other = UdpSocket::bind("127.42.4.2:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    other.send_to(b"me too", &answered).unwrap();
    let (n, _) = other.recv_from(&mut buf).expect("a reply during the flood");
    assert_eq!(&buf[..n], b"e:me too");
    // ...and TCP is untouched by the flood.
    let held: Vec<TcpStream> = (0..5)
        .map(|i| connect_from(&format!("127.42.8.{}", i + 1), tcp_vip.parse().unwrap()).unwrap())
        .collect();
    for h in &held {
        assert_eq!(
            greeting_within(h, Duration::from_secs(10)).as_deref(),
            Some("t")
        );
    }
    // Refused datagrams count nowhere.
    let stats = d.ok(&["-L", "-n", "--stats"]);
    assert_eq!(conns(&stats, "UDP", &flooded), 30, "{stats}");
    assert_eq!(conns(&stats, "UDP", &answered), 2, "{stats}");
    // 270 refusals, logged on one line (or two, if the flood crossed an
    // interval), each with its count.
    let log = d.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("UDP flow cap reached"))
        .collect();
    assert!((1..=2).contains(&lines.len()), "{lines:#?}");
    assert!(lines[0].contains("dropped="), "{}", lines[0]);

    // Unanswered flows expire after the unreplied limit (3 s), not the
    // udp timeout (300 s); the answered ones stay.
    assert!(
        wait_for(15, || udp_flows(&d, &flooded) == 0),
        "{}",
        d.ok(&["-L", "-n", "-c"])
    );
    assert_eq!(udp_flows(&d, &answered), 2);
    // Their permits are back: new clients get flows again.
    for s in &sources[..10] {
        s.send_to(b"y", &flooded).unwrap();
    }
    assert!(wait_for(10, || udp_flows(&d, &flooded) == 10));
    let stats = d.ok(&["-L", "-n", "--stats"]);
    assert_eq!(conns(&stats, "UDP", &flooded), 40, "{stats}");
    drop(held);
    let mut c = connect_from("127.42.8.9", tcp_vip.parse().unwrap()).unwrap();
    assert_eq!(
        greeting_within(&c, Duration::from_secs(10)).as_deref(),
        Some("t")
    );
    c.write_all(b"bye\n").unwrap();
}

#[test]
fn more_services_than_the_cap_all_accept() {
    // Each accept loop held a permit while waiting: with more listeners
    // than the cap, the last services never accepted.
    let d = limited(1024, &["--worker-threads", "2", "--max-connections", "8"]);
    assert_eq!(caps(&d).0, 8, "{}", d.log());
    let a = Backend::tcp_on("127.42.10.250:0", "a");
    let port = free_port("127.42.10.1");
    let rules: String = (1..=12)
        .map(|i| {
            format!(
                "-A -t 127.42.10.{i}:{port} -s rr\n-a -t 127.42.10.{i}:{port} -r {} -m\n",
                a.addr
            )
        })
        .collect();
    let out = d.rvsadm_stdin(&["-R"], &rules);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in 1..=12 {
        let vip: SocketAddr = format!("127.42.10.{i}:{port}").parse().unwrap();
        let c = connect_from("127.42.10.200", vip).unwrap();
        assert_eq!(
            greeting_within(&c, Duration::from_secs(10)).as_deref(),
            Some("a"),
            "service {vip} does not accept"
        );
    }
}
