//! TCP forwarding through the real rvsd to real back ends on loopback.

mod common;

use common::*;
use rvs::ctl::proto::{Protocol, RealServerSpec, Request, ServiceKey, ServiceSpec, Stats};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

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

/// Occurrences of `needle` in the daemon's log.
fn log_count(d: &Daemon, needle: &str) -> usize {
    d.log().matches(needle).count()
}

#[test]
fn refused_server_is_retried_transparently() {
    let d = Daemon::start();
    let a = Backend::tcp("a");
    // The dead server on its own loopback address so that no other test's
    // ephemeral port can take it before it is revived below.
    let dead_addr: SocketAddr = format!("127.0.0.91:{}", free_port("127.0.0.91"))
        .parse()
        .unwrap();
    let v = vip();
    let key = add(&d, v, "rr", &[&a]);
    let mut c = d.client();
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
    // After --fail-after (3) consecutive failures the dead server is out of
    // rotation: no further connects were tried (20 connections, rr would
    // have tried it 10 times), and it is marked failed exactly once.
    assert_eq!(
        log_count(&d, "connect to real server failed"),
        3,
        "log:\n{}",
        d.log()
    );
    assert_eq!(log_count(&d, "real server DOWN"), 1);
    // Still listed (passive health does not edit the table).
    let listed: Vec<SocketAddr> = d.service(key).servers.iter().map(|s| s.spec.addr).collect();
    assert_eq!(listed, [dead_addr, a.addr]);
    assert_eq!(d.server(key, dead_addr).stats.conns, 0);

    // It comes back once something listens there again.
    let revived = Backend::tcp_on(&dead_addr.to_string(), "revived");
    assert!(
        wait_for(15, || who(v) == "revived"),
        "revived server not back in rotation; log:\n{}",
        d.log()
    );
    assert_eq!(log_count(&d, "back in rotation"), 1, "log:\n{}", d.log());
    let seen: Vec<String> = (0..4).map(|_| who(v)).collect();
    assert_eq!(
        seen.iter().filter(|s| *s == "revived").count(),
        2,
        "{seen:?}"
    );
    assert_eq!(seen.iter().filter(|s| *s == "a").count(), 2, "{seen:?}");
    drop(revived);
}

/// The client's connection must end promptly, without a greeting.
fn assert_closed_promptly(v: SocketAddr, d: &Daemon) {
    let start = Instant::now();
    let mut s = connect_from("127.0.0.1", v).expect("the listener accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    let r = s.read(&mut buf);
    let took = start.elapsed();
    assert!(closed_by_peer(&r), "{r:?}; log:\n{}", d.log());
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
}

#[test]
fn no_real_server_closes_the_client_promptly() {
    let d = Daemon::start();
    let v = vip();
    // No real server at all.
    let key = add(&d, v, "wlc", &[]);
    assert_closed_promptly(v, &d);
    // Only a quiesced one.
    let a = Backend::tcp("a");
    d.add_server(key, a.addr, 0);
    assert_closed_promptly(v, &d);
    assert_eq!(a.accepted.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Only a dead one (connect refused, nothing else to try).
    d.delete_server(key, a.addr);
    let dead: SocketAddr = format!("127.0.0.92:{}", free_port("127.0.0.92"))
        .parse()
        .unwrap();
    d.add_server(key, dead, 1);
    for _ in 0..4 {
        assert_closed_promptly(v, &d);
    }
}

#[test]
fn quiesced_server_keeps_its_connection_and_gets_no_new_ones() {
    let d = Daemon::start();
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    let v = vip();
    let key = add(&d, v, "rr", &[&a, &b]);
    let mut held = Held::open("127.0.0.1", v);
    assert_eq!(held.server, "b");
    d.edit_server(
        key,
        RealServerSpec {
            weight: 0,
            ..RealServerSpec::new(b.addr)
        },
    );
    for _ in 0..6 {
        assert_eq!(who(v), "a", "log:\n{}", d.log());
    }
    assert_eq!(held.echo(b"quiesced but alive"), b"quiesced but alive");
    assert_eq!(d.server(key, b.addr).active_conns, 1);
    assert!(held.finish().is_empty());
    assert!(wait_for(10, || d.server(key, b.addr).active_conns
        + d.server(key, b.addr).inactive_conns
        == 0));
}

#[test]
fn deleted_server_keeps_its_connection_and_new_ones_go_elsewhere() {
    let d = Daemon::start();
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    let v = vip();
    let key = add(&d, v, "rr", &[&a, &b]);
    let mut held = Held::open("127.0.0.1", v);
    assert_eq!(held.server, "b");
    d.delete_server(key, b.addr);
    for _ in 0..6 {
        assert_eq!(who(v), "a", "log:\n{}", d.log());
    }
    assert_eq!(held.echo(b"deleted but alive"), b"deleted but alive");
    assert_eq!(held.echo(&[7u8; 100_000]), vec![7u8; 100_000]);
    assert!(held.finish().is_empty());
    let listed: Vec<SocketAddr> = d.service(key).servers.iter().map(|s| s.spec.addr).collect();
    assert_eq!(listed, [a.addr]);
}

#[test]
fn half_close_delivers_the_whole_echo_then_eof() {
    let d = Daemon::start();
    let a = Backend::tcp("a");
    let v = vip();
    add(&d, v, "rr", &[&a]);
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut s = connect_from("127.0.0.1", v).unwrap();
    let mut w = s.try_clone().unwrap();
    let sent = payload.clone();
    // Write (then shut down the write side) on another thread while this one
    // reads, so that neither side waits on full buffers.
    let writer = thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(&back[..2], b"a\n");
    assert_eq!(back.len(), 2 + payload.len());
    assert!(back[2..] == payload[..], "echo differs");
    // EOF stays EOF.
    let mut more = [0u8; 1];
    assert_eq!(s.read(&mut more).unwrap(), 0);
    let _ = d;
}

/// xorshift64*: fast pseudo-random bytes.
struct Rng(u64);

impl Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_exact_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            chunk.copy_from_slice(&self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
    }
}

/// FNV-1a over 64-bit little-endian words (lengths are multiples of 8).
fn fnv_words(mut h: u64, buf: &[u8]) -> u64 {
    for w in buf.chunks_exact(8) {
        h ^= u64::from_le_bytes(w.try_into().unwrap());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

#[test]
fn transfer_256_mib_both_ways_with_checksum() {
    const TOTAL: usize = 256 << 20;
    const CHUNK: usize = 64 << 10;
    let d = Daemon::start();
    let a = Backend::tcp("a");
    let v = vip();
    let key = add(&d, v, "rr", &[&a]);
    let mut s = connect_from("127.0.0.1", v).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let start = Instant::now();
    let writer = thread::spawn(move || {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut buf = vec![0u8; CHUNK];
        let mut h = FNV_OFFSET;
        for _ in 0..TOTAL / CHUNK {
            rng.fill(&mut buf);
            h = fnv_words(h, &buf);
            w.write_all(&buf).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
        h
    });
    let mut greet = [0u8; 2];
    s.read_exact(&mut greet).unwrap();
    assert_eq!(&greet, b"a\n");
    let mut buf = vec![0u8; CHUNK];
    let mut h = FNV_OFFSET;
    for _ in 0..TOTAL / CHUNK {
        s.read_exact(&mut buf).unwrap();
        h = fnv_words(h, &buf);
    }
    let mut tail = Vec::new();
    s.read_to_end(&mut tail).unwrap();
    let took = start.elapsed();
    let sent = writer.join().unwrap();
    assert!(tail.is_empty(), "{} extra bytes", tail.len());
    assert_eq!(h, sent, "checksum of the echo differs from what was sent");
    eprintln!(
        "256 MiB each way through rvsd in {took:.2?} ({:.0} MiB/s per direction)",
        256.0 / took.as_secs_f64()
    );
    // Byte counters are exact.
    assert!(wait_for(10, || {
        let st = d.service(key).stats;
        st.inbytes == TOTAL as u64 && st.outbytes == TOTAL as u64 + 2
    }));
}

#[test]
fn five_hundred_concurrent_connections() {
    raise_nofile();
    const N: usize = 500;
    let d = Daemon::start();
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    let v = vip();
    let key = add(&d, v, "rr", &[&a, &b]);
    let mut conns: Vec<TcpStream> = (0..N)
        .map(|i| connect_from("127.0.0.1", v).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    // Every connection is proxied before any of them ends: all are open at once.
    let names: Vec<String> = conns.iter().map(greeting_exact).collect();
    let on_a = names.iter().filter(|n| *n == "a").count();
    assert_eq!((on_a, N - on_a), (N / 2, N / 2), "rr splits evenly");
    let active: u32 = d.service(key).servers.iter().map(|s| s.active_conns).sum();
    assert_eq!(active as usize, N);
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(format!("message {i}\n").as_bytes()).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        assert_eq!(back, format!("message {i}\n"));
    }
    assert!(wait_for(10, || d
        .service(key)
        .servers
        .iter()
        .all(|s| s.active_conns + s.inactive_conns == 0)));
    assert_eq!(d.service(key).stats.conns, N as u64);
}

/// Read exactly the greeting line, byte by byte (no read-ahead past it).
fn greeting_exact(s: &TcpStream) -> String {
    let mut s = s;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).expect("greeting");
        if b[0] == b'\n' {
            return String::from_utf8(line).unwrap();
        }
        line.push(b[0]);
    }
}

#[test]
fn ipv6_service_in_front_of_ipv4_servers() {
    let d = Daemon::start();
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    // IPv6 must work here (::1 is on lo): fail loudly if it does not.
    let port = free_port("::1");
    let v: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    add(&d, v, "rr", &[&a, &b]);
    let seen: Vec<String> = (0..4).map(|_| who_from("::1", v)).collect();
    assert_eq!(seen, ["b", "a", "b", "a"], "log:\n{}", d.log());
    let (name, echo) = exchange("::1", v, b"over v6");
    assert_eq!((name.as_str(), echo.as_slice()), ("b", &b"over v6"[..]));
    let mut held = Held::open("::1", v);
    let conns = d.connections();
    assert!(
        conns
            .iter()
            .any(|c| c.client.is_ipv6() && c.virt == v && c.dest.is_ipv4()),
        "{conns:?}"
    );
    assert_eq!(held.echo(b"x"), b"x");
}

#[test]
fn table_survives_restart_and_crash() {
    let mut d = Daemon::start();
    let (a, b) = (Backend::tcp("a"), Backend::tcp("b"));
    let v = vip();
    add(&d, v, "rr", &[&a, &b]);
    assert_eq!(who(v), "b");
    assert!(d.stop().success(), "clean exit; log:\n{}", d.log());
    d.restart();
    let seen: Vec<String> = (0..4).map(|_| who(v)).collect();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.iter().filter(|s| *s == "a").count(), 2, "{seen:?}");
    assert_eq!(
        exchange("127.0.0.1", v, b"after restart").1,
        b"after restart"
    );
    d.kill9();
    d.restart();
    let seen: Vec<String> = (0..4).map(|_| who(v)).collect();
    assert_eq!(seen.iter().filter(|s| *s == "b").count(), 2, "{seen:?}");
    assert_eq!(exchange("127.0.0.1", v, b"after crash").1, b"after crash");
    assert_eq!(d.service(tcp_key(v)).servers.len(), 2);
}

/// Connect attempts until one is refused (the listener is gone); any that
/// still got through is closed at once. True when refused within `secs`.
fn wait_refused(v: SocketAddr, secs: u64) -> bool {
    wait_for(secs, || {
        match TcpStream::connect_timeout(&v, Duration::from_secs(1)) {
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
            Ok(_) => false,
        }
    })
}

#[test]
fn sigterm_drains_an_open_connection_then_exits() {
    let mut d = Daemon::start_with(&["--drain-timeout", "5"]);
    let a = Backend::tcp("a");
    let v = vip();
    add(&d, v, "rr", &[&a]);
    let mut held = Held::open("127.0.0.1", v);
    d.sigterm();
    // Listeners stop: new connections are refused.
    assert!(wait_refused(v, 5), "still accepting; log:\n{}", d.log());
    // The open connection keeps working meanwhile, and the daemon waits.
    // Time must pass to show rvsd *keeps* waiting (nothing to poll for).
    thread::sleep(Duration::from_millis(300));
    assert_eq!(held.echo(b"draining"), b"draining");
    assert!(d.wait_exit(0.0).is_none(), "exited with a connection open");
    // Once it closes the daemon exits, well before the drain timeout.
    let closed = Instant::now();
    assert!(held.finish().is_empty());
    let st = d.wait_exit(10.0).expect("rvsd exits after the drain");
    let took = closed.elapsed();
    eprintln!("rvsd exited {took:?} after the last connection closed");
    assert!(st.success(), "{st}; log:\n{}", d.log());
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(d.log().contains("all connections finished"), "{}", d.log());
}

#[test]
fn sigterm_with_an_idle_connection_exits_after_the_drain_timeout() {
    let mut d = Daemon::start_with(&["--drain-timeout", "2"]);
    let a = Backend::tcp("a");
    let v = vip();
    add(&d, v, "rr", &[&a]);
    let mut held = Held::open("127.0.0.1", v);
    let term = Instant::now();
    d.sigterm();
    let st = d
        .wait_exit(15.0)
        .expect("rvsd exits after the drain timeout");
    let took = term.elapsed();
    eprintln!("rvsd exited {took:?} after SIGTERM with an idle connection");
    assert!(st.success(), "{st}; log:\n{}", d.log());
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    assert!(d.log().contains("drain timeout"), "{}", d.log());
    // The daemon is gone: the held connection is closed.
    held.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 8];
    let r = held.stream.read(&mut buf);
    assert!(closed_by_peer(&r), "{r:?}");
}

#[test]
fn counters_match_the_traffic() {
    let d = Daemon::start();
    let a = Backend::tcp("a");
    let v = vip();
    let key = add(&d, v, "rr", &[&a]);
    let sizes = [10usize, 100, 1000, 65_536];
    for n in sizes {
        let payload = vec![b'x'; n];
        let (name, echo) = exchange("127.0.0.1", v, &payload);
        assert_eq!(name, "a");
        assert_eq!(echo.len(), n);
    }
    let sent: u64 = sizes.iter().map(|&n| n as u64).sum();
    let want = (sizes.len() as u64, sent, sent + 2 * sizes.len() as u64);
    let got = |s: Stats| (s.conns, s.inbytes, s.outbytes);
    assert!(
        wait_for(10, || {
            let svc = d.service(key);
            got(svc.stats) == want
                && got(svc.servers[0].stats) == want
                && svc.stats.inpkts > 0
                && svc.stats.outpkts > 0
        }),
        "want (conns, inbytes, outbytes) = {want:?}, got {:?}",
        d.service(key)
    );
    let svc = d.service(key);
    let (s, r) = (svc.stats, svc.servers[0].stats);
    assert_eq!((s.inpkts, s.outpkts), (r.inpkts, r.outpkts));
    // At least one segment per direction and connection.
    assert!(
        s.inpkts >= sizes.len() as u64 && s.outpkts >= sizes.len() as u64,
        "{s:?}"
    );
}

/// `-D` then `-A` of the same TCP service at once (as scripts do): the old
/// listener must have released the port. Failed with EADDRINUSE under load
/// before the data plane shut removed listeners down synchronously.
#[test]
fn service_deleted_and_re_added_at_once_binds_again() {
    let d = Daemon::start();
    let a = Backend::tcp("a");
    let v = vip();
    let key = add(&d, v, "rr", &[&a]);
    for round in 0..30 {
        d.call(Request::DeleteService(key));
        let mut c = d.client();
        if let Err(e) = c.call(&Request::AddService(spec(key, "rr"))) {
            panic!(
                "round {round}: re-adding {v} failed: {e}\nlog:\n{}",
                d.log()
            );
        }
        d.add_server(key, a.addr, 1);
        assert_eq!(who(v), "a", "round {round}");
    }
    // Stopping a listener is not an accept error.
    assert!(!d.log().contains("accept failed"), "log:\n{}", d.log());
}

/// A back end that sends `payload` and its FIN together (MSG_MORE, then
/// shutdown: one segment for a small payload) on every connection.
fn speak_and_close(payload: Vec<u8>) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { break };
            let payload = payload.clone();
            thread::spawn(move || {
                use nix::sys::socket::{send, MsgFlags};
                use std::os::fd::AsRawFd;
                let more = MsgFlags::from_bits_retain(libc::MSG_MORE);
                let mut off = 0;
                while off < payload.len() {
                    match send(c.as_raw_fd(), &payload[off..], more) {
                        Ok(k) => off += k,
                        Err(_) => return,
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
                // Hold the socket until the client is done reading.
                let _ = (&c).read(&mut [0u8; 1]);
            });
        }
    });
    addr
}

#[test]
fn a_reply_and_its_fin_arrive_whole_and_together() {
    let d = Daemon::start_with(NO_CHECKS);
    for len in [6usize, 10_000, 300_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let backend = speak_and_close(payload.clone());
        let v = vip();
        d.ok(&["-A", "-t", &v.to_string(), "-s", "rr"]);
        d.ok(&["-a", "-t", &v.to_string(), "-r", &backend.to_string(), "-m"]);
        let mut s = connect_from("127.0.0.1", v).unwrap();
        if len > 100_000 {
            // A slow reader at first: rvsd meets a full socket on the way.
            thread::sleep(Duration::from_millis(200));
        }
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), len, "all bytes, then EOF");
        assert!(back == payload, "bytes differ ({len})");
        if len == 6 {
            // The reply and the FIN came from the server in one segment,
            // and rvsd passed them on in one: the client received the
            // SYN-ACK and that segment, nothing else.
            let (segs_in, _) = rvs::daemon::dataplane::sys::tcp_segments(&s).unwrap();
            assert_eq!(segs_in, 2, "segments the client received");
        }
        d.ok(&["-D", "-t", &v.to_string()]);
    }
}

/// The FIN that came with the server's reply ends only that direction
/// (rvsd passes it on without a read of its own): the client, having read
/// the reply and EOF, still sends, and the server receives it all.
#[test]
fn after_a_reply_with_its_fin_the_client_still_sends() {
    let d = Daemon::start_with(NO_CHECKS);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        use nix::sys::socket::{send, MsgFlags};
        use std::os::fd::AsRawFd;
        let Ok((mut c, _)) = l.accept() else { return };
        let more = MsgFlags::from_bits_retain(libc::MSG_MORE);
        let _ = send(c.as_raw_fd(), b"reply\n", more);
        let _ = c.shutdown(Shutdown::Write);
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        let _ = tx.send(got);
    });
    let v = vip();
    d.ok(&["-A", "-t", &v.to_string(), "-s", "rr"]);
    d.ok(&["-a", "-t", &v.to_string(), "-r", &backend.to_string(), "-m"]);
    let mut s = connect_from("127.0.0.1", v).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"reply\n");
    let late: Vec<u8> = (0..100_000).map(|i| (i % 251) as u8).collect();
    s.write_all(&late).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server got EOF");
    assert_eq!(got.len(), late.len(), "bytes the server received");
    assert!(got == late, "bytes differ");
}
