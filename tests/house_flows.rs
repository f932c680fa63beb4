//! Live UDP flows are counted like TCP connections (one guard for both):
//! in `-L -n` (every UDP flow is inactive, as in the kernel), in
//! `rvs_open_connections` of `/metrics` and in the live total that
//! subscribers (rvstop) get, and all three fall back to 0 when the flows
//! expire. Loopback range of this file: 127.50.0.0/16.

mod common;

use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const FLOWS: usize = 5;

/// ActiveConn and InActConn of the real server `rip` in `rvsadm -L -n`.
fn conns_of(d: &Daemon, rip: SocketAddr) -> (u64, u64) {
    let list = d.ok(&["-L", "-n"]);
    let line = list
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("-> {rip}")))
        .unwrap_or_else(|| panic!("no line for {rip} in:\n{list}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    let n = cols.len();
    (cols[n - 2].parse().unwrap(), cols[n - 1].parse().unwrap())
}

/// The live total of the next subscription update that arrives.
fn next_live(sub: &mut rvs::ctl::Client) -> u64 {
    sub.next_update()
        .expect("a subscription update")
        .live_connections
}

#[test]
fn udp_flows_count_in_listing_metrics_and_subscriptions_until_they_expire() {
    let maddr = loopback_vip("127.50.0.1");
    let d = Daemon::start_with(&["--metrics-listen", &maddr]);
    let backend = UdpBackend::start("u");
    let vip: SocketAddr = {
        let s = UdpSocket::bind("127.50.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let v = vip.to_string();
    let r = backend.addr.to_string();
    d.ok(&["-A", "-u", &v, "-s", "rr"]);
    d.ok(&["-a", "-u", &v, "-r", &r, "-m"]);
    // tcp and tcpfin unchanged (0), udp 2 s.
    d.ok(&["--set", "0", "0", "2"]);

    let mut sub = d.client();
    sub.set_timeout(Some(Duration::from_secs(5))).unwrap();
    sub.subscribe(100).unwrap();
    assert_eq!(next_live(&mut sub), 0, "nothing is live yet");
    assert_eq!(value(&scrape(&maddr), "rvs_open_connections"), 0);

    // Five clients, each with one flow that the server answered.
    let clients: Vec<UdpSocket> = (0..FLOWS)
        .map(|i| {
            let c = UdpSocket::bind(format!("127.50.0.{}:0", 11 + i)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send_to(b"hi", vip).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = c.recv_from(&mut buf).expect("a reply through rvsd");
            assert_eq!((&buf[..n], from), (&b"u:hi"[..], vip));
            c
        })
        .collect();

    assert_eq!(
        conns_of(&d, backend.addr),
        (0, FLOWS as u64),
        "every UDP flow is an inactive connection"
    );
    assert_eq!(
        value(&scrape(&maddr), "rvs_open_connections"),
        FLOWS as u64,
        "documented as TCP connections and UDP flows"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut live = next_live(&mut sub);
    while live != FLOWS as u64 && Instant::now() < deadline {
        live = next_live(&mut sub);
    }
    assert_eq!(live, FLOWS as u64, "subscribers see the flows live");

    // Idle for the udp timeout: every count goes back to 0.
    assert!(
        wait_for(15, || conns_of(&d, backend.addr) == (0, 0)),
        "{:?}",
        conns_of(&d, backend.addr)
    );
    assert!(wait_for(5, || value(
        &scrape(&maddr),
        "rvs_open_connections"
    ) == 0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut live = next_live(&mut sub);
    while live != 0 && Instant::now() < deadline {
        live = next_live(&mut sub);
    }
    assert_eq!(live, 0, "subscribers see the flows gone");
    drop(clients);
}
