//! Every scheduler's distribution through real connections: the real rvsd,
//! real back ends on loopback, distinct 127.0.0.x source addresses as
//! distinct clients. Real servers are listed most recently added first, and
//! the expected sequences below follow the kernel rules in
//! ipvsadm's “Schedulers (kernel semantics)”.

mod common;

use common::*;
use rvs::ctl::proto::{RealServerSpec, Request, ServiceKey, ServiceSpec, SCHED_FLAG_1};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// A daemon with one TCP service on a fresh VIP and one back end per
/// `(name, weight)`, added in the given order.
fn setup(sched: &str, servers: &[(&str, u32)]) -> (Daemon, Vec<Backend>, ServiceKey) {
    let d = Daemon::start();
    let key = d.add_service(spec(tcp_key(vip_on("127.0.0.1")), sched));
    let backends: Vec<Backend> = servers
        .iter()
        .map(|(name, w)| {
            let b = Backend::tcp(name);
            d.add_server(key, b.addr, *w);
            b
        })
        .collect();
    (d, backends, key)
}

fn addr_of(backends: &[Backend], name: &str) -> SocketAddr {
    backends.iter().find(|b| b.name == name).unwrap().addr
}

/// Open `n` connections one after the other and keep them open.
fn hold(vip: SocketAddr, n: usize) -> Vec<Held> {
    (0..n).map(|_| Held::open("127.0.0.1", vip)).collect()
}

fn names(held: &[Held]) -> Vec<&str> {
    held.iter().map(|h| h.server.as_str()).collect()
}

/// Wait until `addr` has no connections left (active or inactive).
fn wait_idle(d: &Daemon, key: ServiceKey, addr: SocketAddr, left: u32) {
    assert!(
        wait_for(10, || {
            let s = d.server(key, addr);
            s.active_conns + s.inactive_conns == left
        }),
        "{addr} still has connections: {:?}",
        d.server(key, addr)
    );
}

/// Connecting must fail: the daemon closes or resets without a greeting.
fn assert_refused(vip: SocketAddr, d: &Daemon) {
    let s = connect_from("127.0.0.1", vip).expect("the listener accepts");
    let mut line = String::new();
    let r = std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line);
    assert!(
        matches!(r, Ok(0)) || r.is_err() && !is_timeout(r.as_ref().unwrap_err()),
        "expected a closed connection, got {r:?} {line:?}; log:\n{}",
        d.log()
    );
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[test]
fn rr_cycles_in_list_order() {
    let (d, _b, key) = setup("rr", &[("a", 1), ("b", 1), ("c", 1)]);
    let seen: Vec<String> = (0..9).map(|_| who(key.addr)).collect();
    assert_eq!(
        seen,
        ["c", "b", "a", "c", "b", "a", "c", "b", "a"],
        "log:\n{}",
        d.log()
    );
}

fn counts(seen: &[String]) -> BTreeMap<&str, u32> {
    let mut counts = BTreeMap::new();
    for s in seen {
        *counts.entry(s.as_str()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn wrr_exact_proportions_and_kernel_sequence() {
    // The whole service in one atomic batch: the scheduler is built once for
    // the list c(1), b(2), a(3) with cw = mw = 3: passes cw=3 → a;
    // cw=2 → b a; cw=1 → c b a (ipvsadm's “wrr — Weighted Round Robin”).
    let d = Daemon::start();
    let key = tcp_key(vip_on("127.0.0.1"));
    let backends: Vec<Backend> = ["a", "b", "c"].iter().map(|n| Backend::tcp(n)).collect();
    let mut batch = vec![Request::AddService(spec(key, "wrr"))];
    for (b, w) in backends.iter().zip([3, 2, 1]) {
        batch.push(Request::AddServer {
            service: key,
            server: RealServerSpec {
                weight: w,
                ..RealServerSpec::new(b.addr)
            },
        });
    }
    d.call(Request::Batch(batch));
    let seen: Vec<String> = (0..12).map(|_| who(key.addr)).collect();
    let cycle = ["a", "b", "a", "c", "b", "a"];
    let want: Vec<&str> = cycle.iter().chain(cycle.iter()).copied().collect();
    assert_eq!(seen, want, "log:\n{}", d.log());
    assert_eq!(
        counts(&seen[..6]),
        BTreeMap::from([("a", 3), ("b", 2), ("c", 1)])
    );
    // The table agrees: Conns per server over two cycles is 6:4:2.
    let conns: BTreeMap<u32, u64> = d
        .service(key)
        .servers
        .iter()
        .map(|s| (s.spec.weight, s.stats.conns))
        .collect();
    assert_eq!(conns, BTreeMap::from([(1, 2), (2, 4), (3, 6)]));
}

#[test]
fn wrr_servers_added_one_by_one_keep_the_current_weight() {
    // As in the kernel's dest_changed hook: a(3) alone gives di=3, mw=cw=1;
    // adding b(2) then c(1) keeps cw=1 (<= mw=3), so the first pass is the
    // cw=1 pass (c b a), then full cycles from cw=3.
    let (d, _b, key) = setup("wrr", &[("a", 3), ("b", 2), ("c", 1)]);
    let seen: Vec<String> = (0..15).map(|_| who(key.addr)).collect();
    let want = [
        "c", "b", "a", "a", "b", "a", "c", "b", "a", "a", "b", "a", "c", "b", "a",
    ];
    assert_eq!(seen, want, "log:\n{}", d.log());
    for w in seen.windows(6) {
        assert_eq!(counts(w), BTreeMap::from([("a", 3), ("b", 2), ("c", 1)]));
    }
}

#[test]
fn lc_follows_held_connections() {
    let (d, b, key) = setup("lc", &[("a", 1), ("b", 1)]);
    let mut held = hold(key.addr, 3);
    // Ties go to the list head (b); then the least loaded.
    assert_eq!(names(&held), ["b", "a", "b"], "log:\n{}", d.log());
    let sa = d.server(key, addr_of(&b, "a"));
    let sb = d.server(key, addr_of(&b, "b"));
    assert_eq!((sa.active_conns, sb.active_conns), (1, 2));
    // Close b's two connections: b is the least loaded again.
    let a_conn = held.remove(1);
    drop(held);
    wait_idle(&d, key, addr_of(&b, "b"), 0);
    let more = hold(key.addr, 2);
    assert_eq!(names(&more), ["b", "b"], "b (0) then tie → list head");
    drop(a_conn);
}

#[test]
fn wlc_weighs_held_connections() {
    // List order b(2), a(1); overhead = active*256, compared per weight.
    let (d, _b, key) = setup("wlc", &[("a", 1), ("b", 2)]);
    let held = hold(key.addr, 8);
    assert_eq!(
        names(&held),
        ["b", "a", "b", "b", "a", "b", "b", "a"],
        "log:\n{}",
        d.log()
    );
}

#[test]
fn sed_prefers_expected_delay() {
    // (active+1)/weight: b(3) takes three before a(1) gets one.
    let (d, _b, key) = setup("sed", &[("a", 1), ("b", 3)]);
    let held = hold(key.addr, 8);
    assert_eq!(
        names(&held),
        ["b", "b", "b", "a", "b", "b", "b", "a"],
        "log:\n{}",
        d.log()
    );
}

#[test]
fn nq_uses_an_idle_server_first() {
    // Like sed, but any idle server wins at once.
    let (d, _b, key) = setup("nq", &[("a", 1), ("b", 3)]);
    let held = hold(key.addr, 8);
    assert_eq!(
        names(&held),
        ["b", "a", "b", "b", "b", "b", "b", "a"],
        "log:\n{}",
        d.log()
    );
}

/// For each source address: the servers its connections landed on.
fn by_source(
    vip: SocketAddr,
    sources: &[String],
    per: usize,
) -> BTreeMap<String, BTreeSet<String>> {
    sources
        .iter()
        .map(|src| {
            let got = (0..per).map(|_| who_from(src, vip)).collect();
            (src.clone(), got)
        })
        .collect()
}

fn sources(from: u8, n: u8) -> Vec<String> {
    (from..from + n).map(|i| format!("127.0.0.{i}")).collect()
}

fn assert_sticky_and_spread(sched: &str) {
    let (d, _b, key) = setup(sched, &[("a", 1), ("b", 1), ("c", 1)]);
    let srcs = sources(10, 24);
    let got = by_source(key.addr, &srcs, 3);
    for (src, servers) in &got {
        assert_eq!(servers.len(), 1, "{sched}: {src} moved: {servers:?}");
    }
    let used: BTreeSet<&String> = got.values().flatten().collect();
    assert!(
        used.len() >= 2,
        "{sched}: 24 sources all on {used:?}; log:\n{}",
        d.log()
    );
    // Same mapping again later (no state: a pure function of the source).
    let again = by_source(key.addr, &srcs, 1);
    assert_eq!(got, again, "{sched}");
}

#[test]
fn sh_same_source_same_server_and_sources_spread() {
    assert_sticky_and_spread("sh");
}

#[test]
fn mh_same_source_same_server_and_sources_spread() {
    assert_sticky_and_spread("mh");
}

#[test]
fn sh_quiesced_bucket_fails_without_fallback_and_moves_with_it() {
    let d = Daemon::start();
    let key = d.add_service(spec(tcp_key(vip_on("127.0.0.1")), "sh"));
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    d.add_server(key, a.addr, 1);
    d.add_server(key, b.addr, 1);
    // Find a source hashed to a.
    let src = sources(50, 32)
        .into_iter()
        .find(|s| who_from(s, key.addr) == "a")
        .expect("some source hashes to a");
    d.edit_server(
        key,
        RealServerSpec {
            weight: 0,
            ..RealServerSpec::new(a.addr)
        },
    );
    // Without sh-fallback the bucket's server is unavailable → refused.
    let s = connect_from(&src, key.addr).unwrap();
    let mut line = String::new();
    let r = std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line);
    assert!(matches!(r, Ok(0)) || r.is_err() && !is_timeout(r.as_ref().unwrap_err()));
    // With sh-fallback (-b sh-fallback) the next available bucket is used.
    d.call(Request::EditService(ServiceSpec {
        sched_flags: SCHED_FLAG_1,
        ..spec(key, "sh")
    }));
    assert_eq!(who_from(&src, key.addr), "b", "log:\n{}", d.log());
}

#[test]
fn dh_sends_every_source_to_one_server() {
    // dh hashes the destination (the VIP): all clients share one server.
    let (d, _b, key) = setup("dh", &[("a", 1), ("b", 1), ("c", 1)]);
    let got = by_source(key.addr, &sources(10, 12), 2);
    let used: BTreeSet<&String> = got.values().flatten().collect();
    assert_eq!(used.len(), 1, "{got:?}; log:\n{}", d.log());
}

#[test]
fn fo_picks_highest_weight_and_fails_over_when_quiesced() {
    let (d, b, key) = setup("fo", &[("a", 3), ("b", 2), ("c", 1)]);
    for _ in 0..4 {
        assert_eq!(who(key.addr), "a");
    }
    let held_a = Held::open("127.0.0.1", key.addr);
    assert_eq!(held_a.server, "a");
    let quiesce = |name: &str, w: u32| {
        d.edit_server(
            key,
            RealServerSpec {
                weight: w,
                ..RealServerSpec::new(addr_of(&b, name))
            },
        )
    };
    quiesce("a", 0);
    for _ in 0..4 {
        assert_eq!(who(key.addr), "b", "log:\n{}", d.log());
    }
    quiesce("b", 0);
    assert_eq!(who(key.addr), "c");
    quiesce("a", 3);
    assert_eq!(who(key.addr), "a");
    // The connection held across the edits still works.
    let mut held_a = held_a;
    assert_eq!(held_a.echo(b"still here"), b"still here");
}

#[test]
fn ovf_overflows_when_active_exceeds_weight() {
    // a(2) takes connections while active <= 2, then b(1) while active <= 1.
    let (d, b, key) = setup("ovf", &[("a", 2), ("b", 1)]);
    let mut held = hold(key.addr, 5);
    assert_eq!(names(&held), ["a", "a", "a", "b", "b"], "log:\n{}", d.log());
    assert_refused(key.addr, &d);
    // One of a's connections ends: a takes the next one again.
    held.remove(0);
    wait_idle(&d, key, addr_of(&b, "a"), 2);
    assert_eq!(Held::open("127.0.0.1", key.addr).server, "a");
}

#[test]
fn upper_threshold_stops_new_connections_and_resumes_below() {
    // fo sends everything to a(2) unless a is overloaded (-x 2).
    let d = Daemon::start();
    let key = d.add_service(spec(tcp_key(vip_on("127.0.0.1")), "fo"));
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    d.add_server_spec(
        key,
        RealServerSpec {
            weight: 2,
            u_threshold: 2,
            ..RealServerSpec::new(a.addr)
        },
    );
    d.add_server(key, b.addr, 1);
    let mut held = hold(key.addr, 4);
    assert_eq!(names(&held), ["a", "a", "b", "b"], "log:\n{}", d.log());
    assert_eq!(d.server(key, a.addr).active_conns, 2);
    // Still at the threshold: new connections keep going to b.
    assert_eq!(who(key.addr), "b");
    // Below 75 % of the threshold (1 of 2): a is back.
    held.remove(0);
    wait_idle(&d, key, a.addr, 1);
    let again = Held::open("127.0.0.1", key.addr);
    assert_eq!(again.server, "a", "log:\n{}", d.log());
    // And at the threshold once more: b.
    assert_eq!(who(key.addr), "b");
    drop(again);
}
