//! Persistence (`-p`, `-M`) through real connections: templates pin a
//! client network to a real server, are listed in the connection table and
//! in PersistConn, outlive their timeout while connections use them, and
//! expire afterwards (ipvsadm's “Persistence”).

mod common;

use common::*;
use rvs::ctl::proto::{ConnEntry, Netmask, RealServerSpec, ServiceKey, ServiceSpec};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A persistent rr service with back ends a then b (list order b, a: the
/// first new client goes to b, the next to a).
fn setup(timeout: u32, mask: &str) -> (Daemon, Backend, Backend, ServiceKey) {
    let d = Daemon::start();
    let key = d.add_service(ServiceSpec {
        persistent: Some(timeout),
        netmask: Netmask::V4(mask.parse().unwrap()),
        ..spec(tcp_key(vip_on("127.0.0.1")), "rr")
    });
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    d.add_server(key, a.addr, 1);
    d.add_server(key, b.addr, 1);
    (d, a, b, key)
}

fn templates(d: &Daemon) -> Vec<ConnEntry> {
    d.connections().into_iter().filter(|c| c.template).collect()
}

#[test]
fn netmask_groups_clients_on_one_server_with_a_listed_template() {
    let (d, a, b, key) = setup(60, "255.255.255.0");
    // Without persistence rr would alternate; the /24 sticks to b.
    for round in 0..3 {
        for src in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
            assert_eq!(
                who_from(src, key.addr),
                "b",
                "round {round} from {src}; log:\n{}",
                d.log()
            );
        }
    }
    let t = templates(&d);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].client, "127.0.0.0:0".parse::<SocketAddr>().unwrap());
    assert_eq!(t[0].dest, b.addr);
    assert_eq!(t[0].virt, key.addr);
    assert!(t[0].expires > 0 && t[0].expires <= 60, "{t:?}");
    // Once a connection through it was established the template is ASSURED.
    assert!(
        wait_for(5, || templates(&d)[0].state == "ASSURED"),
        "{:?}",
        templates(&d)
    );
    assert_eq!(d.server(key, b.addr).persist_conns, 1);
    assert_eq!(d.server(key, a.addr).persist_conns, 0);

    // Another /24 is a different client group: scheduled afresh (rr → a).
    for _ in 0..3 {
        assert_eq!(who_from("127.0.1.5", key.addr), "a");
        assert_eq!(who_from("127.0.1.200", key.addr), "a");
    }
    let mut nets: Vec<(SocketAddr, SocketAddr)> =
        templates(&d).iter().map(|t| (t.client, t.dest)).collect();
    nets.sort();
    assert_eq!(
        nets,
        [
            ("127.0.0.0:0".parse().unwrap(), b.addr),
            ("127.0.1.0:0".parse().unwrap(), a.addr)
        ]
    );
    assert_eq!(d.server(key, a.addr).persist_conns, 1);
    // Templates are not connections: once every connection has ended, the
    // active/inactive counts are back to 0 while PersistConn stays.
    assert!(wait_for(10, || {
        let s = d.service(key);
        s.servers
            .iter()
            .all(|s| s.active_conns + s.inactive_conns == 0 && s.persist_conns == 1)
    }));
}

#[test]
fn template_expires_after_its_timeout_and_the_client_moves() {
    let (d, a, b, key) = setup(2, "255.255.255.255");
    assert_eq!(who(key.addr), "b");
    assert_eq!(who(key.addr), "b", "pinned by the template");

    // While a connection uses it the template outlives its timeout.
    let mut held = Held::open("127.0.0.1", key.addr);
    assert_eq!(held.server, "b");
    // Time must pass: beyond the 2 s timeout and into the next expiry tick
    // (every 2 s), with nothing to poll for (the template must *stay*).
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(
        templates(&d).len(),
        1,
        "kept while referenced; log:\n{}",
        d.log()
    );
    assert_eq!(who(key.addr), "b", "still pinned while referenced");
    assert_eq!(held.echo(b"ping"), b"ping");
    held.finish();

    // No connection left: the template expires (the tick runs every 2 s).
    let start = Instant::now();
    assert!(
        wait_for(10, || templates(&d).is_empty()),
        "template still listed: {:?}",
        templates(&d)
    );
    let gone_after = start.elapsed();
    assert!(
        wait_for(5, || d.server(key, b.addr).persist_conns == 0),
        "{:?}",
        d.server(key, b.addr)
    );
    eprintln!("template gone {gone_after:?} after the last connection ended");
    // A new pick happens: rr moves on to a, and a new template pins it.
    assert_eq!(who(key.addr), "a", "log:\n{}", d.log());
    assert_eq!(who(key.addr), "a");
    assert_eq!(d.server(key, a.addr).persist_conns, 1);
}

#[test]
fn template_follows_a_quiesced_server_but_not_a_deleted_one() {
    let (d, a, b, key) = setup(60, "255.255.255.255");
    assert_eq!(who(key.addr), "b");
    d.edit_server(
        key,
        RealServerSpec {
            weight: 0,
            ..RealServerSpec::new(b.addr)
        },
    );
    // expire_quiescent_template = 0: the client keeps going to b.
    assert_eq!(who(key.addr), "b", "log:\n{}", d.log());
    // A new client is scheduled and cannot get the quiesced b.
    assert_eq!(who_from("127.0.0.2", key.addr), "a");
    assert_eq!(who_from("127.0.0.3", key.addr), "a");
    // Deleting b invalidates its template: the client is rescheduled.
    d.delete_server(key, b.addr);
    assert_eq!(who(key.addr), "a");
    let t = templates(&d);
    assert!(t.iter().all(|t| t.dest == a.addr), "{t:?}");
}
