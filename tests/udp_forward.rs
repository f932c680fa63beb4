//! UDP forwarding through the real rvsd to real back ends on loopback:
//! per-client flows, replies, the connection table, idle expiry and
//! one-packet scheduling (`-o`).

mod common;

use common::*;
use rvs::ctl::proto::{Protocol, Request, Response, ServiceKey, ServiceSpec, Timeouts};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A UDP rr service with back ends a then b (list order b, a).
fn setup(ops: bool) -> (Daemon, UdpBackend, UdpBackend, ServiceKey) {
    let d = Daemon::start();
    let vip = SocketAddr::new("127.0.0.1".parse().unwrap(), free_udp_port());
    let key = d.add_service(ServiceSpec {
        ops,
        ..spec(udp_key(vip), "rr")
    });
    let (a, b) = (UdpBackend::start("a"), UdpBackend::start("b"));
    d.add_server(key, a.addr, 1);
    d.add_server(key, b.addr, 1);
    (d, a, b, key)
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client socket on its own source address.
fn client(from: &str) -> UdpSocket {
    let s = UdpSocket::bind((from, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Send `msg` to the VIP and return the name of the server that answered.
fn ask(s: &UdpSocket, vip: SocketAddr, msg: &str) -> String {
    s.send_to(msg.as_bytes(), vip).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("a reply through rvsd");
    assert_eq!(from, vip, "replies come from the virtual address");
    let reply = std::str::from_utf8(&buf[..n]).unwrap();
    let (name, echoed) = reply.split_once(':').expect("name:payload");
    assert_eq!(echoed, msg);
    name.to_string()
}

#[test]
fn flows_stick_per_client_and_are_listed() {
    let (d, a, b, key) = setup(false);
    let clients = [
        client("127.0.0.1"),
        client("127.0.0.2"),
        client("127.0.0.3"),
    ];
    let mut got = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let answers: Vec<String> = (0..5)
            .map(|k| ask(c, key.addr, &format!("client {i} datagram {k}")))
            .collect();
        assert!(
            answers.iter().all(|n| *n == answers[0]),
            "client {i} moved: {answers:?}"
        );
        got.push(answers[0].clone());
    }
    assert_eq!(got, ["b", "a", "b"], "log:\n{}", d.log());
    // Interleaved traffic keeps each flow on its server.
    for _ in 0..3 {
        for (i, c) in clients.iter().enumerate() {
            assert_eq!(ask(c, key.addr, "again"), got[i]);
        }
    }

    let conns = d.connections();
    assert_eq!(conns.len(), 3, "{conns:?}");
    for (c, want) in clients.iter().zip([b.addr, a.addr, b.addr]) {
        let local = c.local_addr().unwrap();
        let e = conns
            .iter()
            .find(|e| e.client == local)
            .unwrap_or_else(|| panic!("no entry for {local}: {conns:?}"));
        assert_eq!(
            (e.proto, e.state.as_str(), e.dest, e.virt, e.template),
            (Protocol::Udp, "UDP", want, key.addr, false)
        );
        assert!(e.expires > 0 && e.expires <= 300, "{e:?}");
    }
    // UDP flows count as inactive connections only.
    let sa = d.server(key, a.addr);
    let sb = d.server(key, b.addr);
    assert_eq!((sa.active_conns, sa.inactive_conns), (0, 1));
    assert_eq!((sb.active_conns, sb.inactive_conns), (0, 2));
    // Counters: one conn per flow, one packet each way per datagram.
    let st = d.service(key).stats;
    assert_eq!((st.conns, st.inpkts), (3, 24));
    assert!(wait_for(5, || d.service(key).stats.outpkts == 24));
    assert_eq!(sb.stats.conns, 2);
}

#[test]
fn idle_flow_expires_and_the_client_is_rescheduled() {
    let (d, a, b, key) = setup(false);
    d.call(Request::SetTimeouts(Timeouts {
        tcp: 0,
        tcpfin: 0,
        udp: 2,
    }));
    match d.call(Request::GetTimeouts) {
        Response::Timeouts(t) => assert_eq!(
            t,
            Timeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 2
            },
            "0 keeps a value"
        ),
        other => panic!("{other:?}"),
    }
    let c = client("127.0.0.1");
    assert_eq!(ask(&c, key.addr, "one"), "b");
    assert_eq!(ask(&c, key.addr, "two"), "b");
    assert_eq!(d.connections().len(), 1);
    assert_eq!(d.server(key, b.addr).inactive_conns, 1);
    // Idle for the udp timeout: the flow is gone (bounded wait).
    let start = std::time::Instant::now();
    assert!(
        wait_for(10, || d.connections().is_empty()),
        "flow still listed: {:?}",
        d.connections()
    );
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "expired too early"
    );
    assert!(wait_for(5, || d.server(key, b.addr).inactive_conns == 0));
    // The next datagram opens a new flow: rr moves on to a.
    assert_eq!(ask(&c, key.addr, "three"), "a", "log:\n{}", d.log());
    assert_eq!(d.server(key, a.addr).inactive_conns, 1);
    assert_eq!(d.service(key).stats.conns, 2);
}

#[test]
fn one_packet_scheduling_spreads_datagrams_of_one_client() {
    let (d, _a, _b, key) = setup(true);
    let c = client("127.0.0.1");
    let seen: Vec<String> = (0..6).map(|k| ask(&c, key.addr, &format!("{k}"))).collect();
    assert_eq!(seen, ["b", "a", "b", "a", "b", "a"], "log:\n{}", d.log());
    // Conns counts datagrams under -o.
    assert_eq!(d.service(key).stats.conns, 6);
}

/// A burst of three batches and more (rvsd takes 32 datagrams per
/// recvmmsg; 100 small datagrams still fit the default socket buffers),
/// sent before any reply is read: the first datagram opens the flow while
/// the rest of its batch waits behind it, so every datagram must arrive,
/// once, in order, and every reply must come back.
#[test]
fn a_burst_arrives_complete_and_in_order() {
    let (d, _a, _b, key) = setup(false);
    let c = client("127.0.0.9");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    const N: usize = 100;
    for k in 0..N {
        c.send_to(format!("{k:04}").as_bytes(), key.addr).unwrap();
    }
    let mut server = None;
    for k in 0..N {
        let mut buf = [0u8; 64];
        let (n, from) = c.recv_from(&mut buf).expect("every reply comes back");
        assert_eq!(from, key.addr);
        let reply = std::str::from_utf8(&buf[..n]).unwrap();
        let (name, payload) = reply.split_once(':').unwrap();
        assert_eq!(payload, format!("{k:04}"), "reply {k} out of order");
        match &server {
            None => server = Some(name.to_string()),
            Some(s) => assert_eq!(s, name, "the flow moved at datagram {k}"),
        }
    }
    let st = d.service(key).stats;
    assert_eq!((st.conns, st.inpkts), (1, N as u64));
    assert!(wait_for(5, || d.service(key).stats.outpkts == N as u64));
    assert_eq!(d.service(key).stats.outbytes, (N * 6) as u64);
}
