//! TCP forwarding through the real rvsd to real back ends on loopback.

mod common;

use common::*;
use rvs::ctl::proto::{Protocol, RealServerSpec, Request, ServiceKey, ServiceSpec};
use std::io::{Read, Write};
use std::net::SocketAddr;

fn vip() -> SocketAddr {
    format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap()
}

fn add(d: &Daemon, vip: SocketAddr, sched: &str, backends: &[&Backend]) -> ServiceKey {
    let key = ServiceKey {
        proto: Protocol::Tcp,
        addr: vip,
    };
    let mut c = d.client();
    c.call(&Request::AddService(ServiceSpec {
        scheduler: sched.into(),
        ..ServiceSpec::new(key)
    }))
    .unwrap();
    for b in backends {
        c.call(&Request::AddServer {
            service: key,
            server: RealServerSpec::new(b.addr),
        })
        .unwrap();
    }
    key
}

#[test]
fn rr_alternates_and_echo_round_trips() {
    let d = Daemon::start();
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    let v = vip();
    add(&d, v, "rr", &[&a, &b]);
    // List order is b, a (most recently added first): rr starts after the head.
    let seen: Vec<String> = (0..6).map(|_| who(v)).collect();
    assert_eq!(
        seen,
        ["b", "a", "b", "a", "b", "a"],
        "rvsd log:\n{}",
        d.log()
    );

    let mut s = connect_from("127.0.0.1", v).unwrap();
    let _ = greeting(&s);
    s.write_all(b"hello through rvs").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert!(
        String::from_utf8_lossy(&back).ends_with("hello through rvs"),
        "{back:?}"
    );
}

#[test]
fn refused_server_is_retried_transparently() {
    let d = Daemon::start();
    let a = Backend::tcp("a");
    let dead = free_port("127.0.0.1");
    let v = vip();
    let key = add(&d, v, "rr", &[&a]);
    let mut c = d.client();
    let dead_addr: SocketAddr = format!("127.0.0.1:{dead}").parse().unwrap();
    c.call(&Request::AddServer {
        service: key,
        server: RealServerSpec::new(dead_addr),
    })
    .unwrap();
    for _ in 0..20 {
        assert_eq!(
            who(v),
            "a",
            "every connection lands on the live server; log:\n{}",
            d.log()
        );
    }
}
