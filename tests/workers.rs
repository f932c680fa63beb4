//! The data plane on several threads (`--worker-threads N`): one listening
//! socket per thread and service (SO_REUSEPORT), traffic through all of
//! them, connections spread evenly over the threads, and the port still
//! exclusive to one rvsd.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Listening TCP sockets on `port` in /proc/net/tcp (state 0A = LISTEN).
fn listeners_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
        })
        .count()
}

/// rvsd's data-plane threads, by name.
fn data_plane_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm"))
                .unwrap_or_default();
            comm.starts_with("rvs-dp-")
        })
        .count()
}

#[test]
fn every_thread_listens_and_every_connection_is_relayed() {
    let mut extra = NO_CHECKS.to_vec();
    extra.extend(["--worker-threads", "4"]);
    let d = Daemon::start_with(&extra);
    assert_eq!(data_plane_threads(d.pid()), 4);
    let port = free_port("127.0.0.1");
    let vip = format!("127.0.0.1:{port}");
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    d.ok(&["-A", "-t", &vip, "-s", "rr"]);
    d.ok(&["-a", "-t", &vip, "-r", &a.addr.to_string()]);
    d.ok(&["-a", "-t", &vip, "-r", &b.addr.to_string()]);
    assert_eq!(listeners_on(port), 4, "one listening socket per thread");

    // 200 connections from many source ports land on all four sockets
    // (the kernel hashes them); each is relayed both ways.
    let vip: SocketAddr = vip.parse().unwrap();
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for i in 0..200 {
        let mut s = connect_from("127.0.0.1", vip).expect("connect");
        let name = greeting(&s);
        let msg = format!("ping {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut echo = String::new();
        s.read_to_string(&mut echo).unwrap();
        assert_eq!(echo, msg, "echo through rvsd");
        *seen.entry(name).or_default() += 1;
    }
    // Round robin is per service, across threads: an even split.
    assert_eq!(seen.get("a"), Some(&100), "{seen:?}");
    assert_eq!(seen.get("b"), Some(&100), "{seen:?}");
    let stats = d.ok(&["-L", "-n", "--stats", "--exact"]);
    let line = stats
        .lines()
        .find(|l| l.starts_with("TCP") && l.contains(&vip.to_string()))
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(line.split_whitespace().nth(2), Some("200"), "{stats}");

    // Deleting the service closes every socket at once; re-adding works.
    d.ok(&["-D", "-t", &vip.to_string()]);
    assert_eq!(listeners_on(port), 0);
    d.ok(&["-A", "-t", &vip.to_string()]);
    assert_eq!(listeners_on(port), 4);
}

/// `rvs_thread_connections` of each of `threads` threads.
fn per_thread(maddr: &str, threads: usize) -> Vec<u64> {
    let text = scrape(maddr);
    (0..threads)
        .map(|t| value(&text, &format!("rvs_thread_connections{{thread=\"{t}\"}} ")))
        .collect()
}

#[test]
fn held_connections_are_spread_evenly_over_the_threads() {
    // The kernel spreads connections over the threads' sockets by a hash
    // of the addresses: 40 of them split 20/20 one time in eight. rvsd
    // hands a connection to the other thread when that one holds fewer.
    let maddr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let mut extra = NO_CHECKS.to_vec();
    extra.extend(["--worker-threads", "2", "--metrics-listen", &maddr]);
    let d = Daemon::start_with(&extra);
    let b = Backend::tcp("b");
    let vip = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    d.ok(&["-A", "-t", &vip]);
    d.ok(&["-a", "-t", &vip, "-r", &b.addr.to_string()]);
    let vip: SocketAddr = vip.parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..40 {
        let s = connect_from("127.0.0.1", vip).expect("connect");
        assert_eq!(greeting(&s), "b");
        held.push(s);
    }
    assert_eq!(per_thread(&maddr, 2), vec![20, 20]);
    // Every connection, wherever it was handed, still relays both ways.
    for (i, s) in held.iter_mut().enumerate() {
        let msg = format!("ping {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        let mut echo = vec![0; msg.len()];
        s.read_exact(&mut echo).unwrap();
        assert_eq!(echo, msg.as_bytes());
    }
    // Ten end, from either thread: the ten new ones go to whichever
    // thread lost more until the two are level again.
    for s in held.drain(..10) {
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }
    assert!(
        wait_for(10, || per_thread(&maddr, 2).iter().sum::<u64>() == 30),
        "{:?}",
        per_thread(&maddr, 2)
    );
    for _ in 0..10 {
        let s = connect_from("127.0.0.1", vip).expect("connect");
        assert_eq!(greeting(&s), "b");
        held.push(s);
    }
    assert_eq!(per_thread(&maddr, 2), vec![20, 20]);
    drop(held);
    assert!(
        wait_for(10, || per_thread(&maddr, 2) == vec![0, 0]),
        "{:?}",
        per_thread(&maddr, 2)
    );
}

#[test]
fn a_port_held_by_another_rvsd_or_a_reuseport_socket_is_refused() {
    let mut extra = NO_CHECKS.to_vec();
    extra.extend(["--worker-threads", "2"]);
    let (one, two) = (Daemon::start_with(&extra), Daemon::start_with(&extra));
    let port = free_port("127.0.0.1");
    let vip = format!("127.0.0.1:{port}");
    one.ok(&["-A", "-t", &vip]);
    // SO_REUSEPORT would let the second rvsd join the first one's sockets
    // and take half its connections: it must be refused instead.
    let err = two.refused(&["-A", "-t", &vip], 255, &vip);
    assert!(err.contains("Address already in use"), "{err}");
    assert!(!two.ok(&["-L", "-n"]).contains(&vip));
    assert_eq!(listeners_on(port), 2);

    // The same for UDP, and for a foreign socket that set SO_REUSEPORT.
    let sock = {
        use nix::sys::socket::{
            bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
        };
        let fd = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        setsockopt(&fd, sockopt::ReusePort, &true).unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrStorage::from(addr),
        )
        .unwrap();
        UdpSocket::from(fd)
    };
    let taken = sock.local_addr().unwrap().to_string();
    let err = one.refused(&["-A", "-u", &taken], 255, &taken);
    assert!(err.contains("Address already in use"), "{err}");
}

#[test]
fn udp_flows_on_several_threads_keep_their_server() {
    let mut extra = NO_CHECKS.to_vec();
    extra.extend(["--worker-threads", "3"]);
    let d = Daemon::start_with(&extra);
    let vip = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (a, b) = (UdpBackend::start("a"), UdpBackend::start("b"));
    d.ok(&["-A", "-u", &vip.to_string(), "-s", "rr"]);
    d.ok(&["-a", "-u", &vip.to_string(), "-r", &a.addr.to_string()]);
    d.ok(&["-a", "-u", &vip.to_string(), "-r", &b.addr.to_string()]);
    // 24 clients (distinct source ports: hashed over the three sockets),
    // each sending 5 datagrams: every reply comes back, always from the
    // server the flow's first datagram went to.
    let clients: Vec<UdpSocket> = (0..24)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    let mut per_server = std::collections::HashMap::<String, usize>::new();
    for (i, c) in clients.iter().enumerate() {
        let mut server = None;
        for k in 0..5 {
            let msg = format!("c{i} m{k}");
            c.send_to(msg.as_bytes(), vip).unwrap();
            let mut buf = [0u8; 256];
            let (n, from) = c.recv_from(&mut buf).expect("reply through rvsd");
            assert_eq!(from, vip, "replies come from the virtual address");
            let reply = String::from_utf8_lossy(&buf[..n]).to_string();
            let (name, payload) = reply.split_once(':').unwrap();
            assert_eq!(payload, msg);
            match &server {
                None => server = Some(name.to_string()),
                Some(s) => assert_eq!(s, name, "flow {i} changed server"),
            }
        }
        *per_server.entry(server.unwrap()).or_default() += 1;
    }
    assert_eq!(per_server.get("a"), Some(&12), "{per_server:?}");
    assert_eq!(per_server.get("b"), Some(&12), "{per_server:?}");
    let conns = d.ok(&["-L", "-n", "-c"]);
    assert_eq!(
        conns.lines().filter(|l| l.starts_with("UDP")).count(),
        24,
        "{conns}"
    );
}
