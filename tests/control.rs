//! Robustness of the control socket against misbehaving clients, and its
//! permission model, with raw `UnixStream`s against the real rvsd.

mod common;

use common::*;
use rvs::ctl::codec;
use rvs::ctl::proto::{DaemonInfo, ErrorKind, Request, Response, PROTOCOL_VERSION};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn raw(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).expect("connect to rvsd");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn frame(req: &Request) -> Vec<u8> {
    codec::encode_frame(req).unwrap()
}

fn hello(protocol: u32) -> Vec<u8> {
    frame(&Request::Hello {
        protocol,
        client: "control-test".into(),
    })
}

/// Read one response frame.
fn response(s: &mut UnixStream) -> Response {
    let body = codec::read_frame(s).expect("a response frame");
    codec::decode_body(&body).expect("a decodable response")
}

/// The daemon answers `Error { kind: Protocol }` and then closes.
fn protocol_error_then_closed(s: &mut UnixStream) -> String {
    let message = match response(s) {
        Response::Error {
            kind: ErrorKind::Protocol,
            message,
            index: None,
        } => message,
        other => panic!("expected a protocol error, got {other:?}"),
    };
    assert_closed(s);
    message
}

/// The daemon closed the connection (EOF, or a reset).
fn assert_closed(s: &mut UnixStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected EOF, got {n} more bytes"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected EOF, got {e}"),
    }
}

/// A daemon with one service, on an address no other test uses.
fn daemon_with_a_service() -> Daemon {
    let d = Daemon::start_with(NO_CHECKS);
    let out = d.rvsadm(&["-A", "-t", &next_vip()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    d
}

fn next_vip() -> String {
    use std::sync::atomic::{AtomicU8, Ordering};
    static N: AtomicU8 = AtomicU8::new(1);
    // A free port, so that another test run on this machine cannot collide.
    loopback_vip(&format!("127.20.{}.1", N.fetch_add(1, Ordering::Relaxed)))
}

fn saved(d: &Daemon) -> String {
    d.ok(&["-S", "-n"])
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn garbage_bytes_end_only_that_connection() {
    let d = daemon_with_a_service();
    let table = saved(&d);
    // Text: its first four bytes announce a ~1.7 GB frame.
    let mut s = raw(&d);
    s.write_all(b"GET / HTTP/1.1\r\nHost: rvs\r\n\r\n").unwrap();
    let msg = protocol_error_then_closed(&mut s);
    assert!(msg.contains("exceeds"), "{msg}");
    // A small frame whose body is not a message.
    let mut s = raw(&d);
    s.write_all(&[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb])
        .unwrap();
    let msg = protocol_error_then_closed(&mut s);
    assert!(msg.starts_with("malformed request"), "{msg}");
    // A valid message followed by trailing bytes inside the frame.
    let mut f = hello(PROTOCOL_VERSION);
    f.extend_from_slice(&[1, 2, 3]);
    let len = (f.len() - 4) as u32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    let mut s = raw(&d);
    s.write_all(&f).unwrap();
    let msg = protocol_error_then_closed(&mut s);
    assert!(msg.contains("trailing"), "{msg}");
    assert_eq!(saved(&d), table);
    d.ok(&["-L", "-n"]);
}

#[test]
fn truncated_frame_ends_only_that_connection() {
    let d = daemon_with_a_service();
    let table = saved(&d);
    let mut s = raw(&d);
    let f = hello(PROTOCOL_VERSION);
    s.write_all(&f[..f.len() - 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let msg = protocol_error_then_closed(&mut s);
    assert!(msg.contains("frame truncated"), "{msg}");
    // A header cut short.
    let mut s = raw(&d);
    s.write_all(&[0, 0]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut s);
    // A truncated mutation after a good hello: nothing applied.
    let mut s = raw(&d);
    s.write_all(&hello(PROTOCOL_VERSION)).unwrap();
    assert!(matches!(response(&mut s), Response::Hello(_)));
    let f = frame(&Request::Clear);
    s.write_all(&f[..f.len() - 1]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let msg = protocol_error_then_closed(&mut s);
    assert!(msg.contains("frame truncated"), "{msg}");
    assert_eq!(saved(&d), table, "a truncated -C changed nothing");
    d.ok(&["-L", "-n"]);
}

#[test]
fn huge_length_prefix_is_refused_before_allocating() {
    let d = daemon_with_a_service();
    let table = saved(&d);
    let pid = d.pid();
    let before = rss_kib(pid);
    // 4 GiB announced, before the hello and after it.
    let mut s = raw(&d);
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    let msg = protocol_error_then_closed(&mut s);
    assert!(msg.contains("4294967295"), "{msg}");
    let mut s = raw(&d);
    s.write_all(&hello(PROTOCOL_VERSION)).unwrap();
    assert!(matches!(response(&mut s), Response::Hello(_)));
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    protocol_error_then_closed(&mut s);
    // Just under a writer's cap (60 MiB announced after the hello: before
    // it, 4 KiB is the cap), a little sent: memory follows the bytes that
    // arrive, not the announcement.
    let mut s = raw(&d);
    s.write_all(&hello(PROTOCOL_VERSION)).unwrap();
    assert!(matches!(response(&mut s), Response::Hello(_)));
    s.write_all(&(60u32 << 20).to_be_bytes()).unwrap();
    s.write_all(&[0u8; 1024]).unwrap();
    // Time for rvsd to read what was sent (nothing to poll: its memory must
    // *not* grow).
    std::thread::sleep(Duration::from_millis(300));
    let during = rss_kib(pid);
    drop(s);
    d.ok(&["-L", "-n"]);
    let after = rss_kib(pid);
    let grew = during.max(after).saturating_sub(before);
    eprintln!(
        "rvsd RSS: {before} KiB before, {during} KiB with 60 MiB announced, {after} KiB after"
    );
    assert!(
        grew < 64 * 1024,
        "rvsd RSS grew by {grew} KiB ({before} → {during} → {after} KiB)"
    );
    assert_eq!(saved(&d), table);
}

#[test]
fn request_before_hello_is_refused() {
    let d = daemon_with_a_service();
    let table = saved(&d);
    let mut s = raw(&d);
    s.write_all(&frame(&Request::List(None))).unwrap();
    let msg = protocol_error_then_closed(&mut s);
    assert_eq!(msg, "the first request must be Hello");
    // A mutation before the hello is refused too and changes nothing.
    let mut s = raw(&d);
    s.write_all(&frame(&Request::Clear)).unwrap();
    protocol_error_then_closed(&mut s);
    assert_eq!(saved(&d), table);
}

#[test]
fn hello_then_garbage_ends_only_that_connection() {
    let d = daemon_with_a_service();
    let table = saved(&d);
    let mut s = raw(&d);
    s.write_all(&hello(PROTOCOL_VERSION)).unwrap();
    match response(&mut s) {
        Response::Hello(info) => {
            assert_eq!(info.protocol, PROTOCOL_VERSION);
            assert_eq!(info.pid, d.pid());
        }
        other => panic!("{other:?}"),
    }
    // A well-formed request works on this connection ...
    s.write_all(&frame(&Request::GetTimeouts)).unwrap();
    assert!(matches!(response(&mut s), Response::Timeouts(_)));
    // ... then garbage ends it.
    s.write_all(&[0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    protocol_error_then_closed(&mut s);
    assert_eq!(saved(&d), table);
    d.ok(&["-L", "-n"]);
}

#[test]
fn silent_client_does_not_block_others_and_is_dropped() {
    let d = daemon_with_a_service();
    let mut silent = raw(&d);
    let connected = Instant::now();
    // Others are served while it sits there.
    let t = Instant::now();
    d.ok(&["-L", "-n"]);
    d.ok(&["-A", "-t", "127.20.200.1:8080"]);
    d.ok(&["-D", "-t", "127.20.200.1:8080"]);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "served in {:?}",
        t.elapsed()
    );
    // It is dropped after the hello timeout (5 s), without an answer.
    assert_closed(&mut silent);
    let waited = connected.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(9),
        "dropped after {waited:?}"
    );
    d.ok(&["-L", "-n"]);
}

/// Raise this process's soft open-files limit to its hard limit.
fn raise_nofile(need: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    assert!(
        hard >= need,
        "this test needs {need} open files; the hard limit is {hard}"
    );
}

#[test]
fn two_thousand_idle_connections_then_a_client_is_served() {
    const N: usize = 2000;
    raise_nofile(N as u64 + 500);
    let d = daemon_with_a_service();
    let pid = d.pid();
    let base = fd_count(pid);
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = raw(&d);
        // Every one past the hello (idle timeout 10 min): silent clients are
        // dropped after 5 s, which a loaded machine can take to open 2,000
        // connections (silent clients have their own test).
        s.write_all(&hello(PROTOCOL_VERSION)).unwrap();
        assert!(matches!(response(&mut s), Response::Hello(_)), "client {i}");
        conns.push(s);
    }
    // `base` may still count the socket of the rvsadm that added the
    // service (closed a moment later): allow a few descriptors either way.
    assert!(
        wait_for(10, || fd_count(pid) + 5 >= base + N),
        "rvsd holds {} fds for {N} clients (base {base})",
        fd_count(pid)
    );
    let held = fd_count(pid);
    let rss = rss_kib(pid);
    let t = Instant::now();
    d.ok(&["-L", "-n"]);
    d.ok(&["-A", "-t", "127.20.201.1:8080"]);
    eprintln!(
        "{N} idle clients: rvsd holds {held} fds (base {base}), RSS {rss} KiB; -L and -A took {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(conns);
    assert!(
        wait_for(10, || fd_count(pid) <= base + 5),
        "rvsd still holds {} fds after the clients left (base {base})",
        fd_count(pid)
    );
    d.ok(&["-D", "-t", "127.20.201.1:8080"]);
}

#[test]
fn version_mismatch_is_answered_with_the_daemons_protocol() {
    let d = daemon_with_a_service();
    let mut s = raw(&d);
    s.write_all(&hello(999)).unwrap();
    match response(&mut s) {
        Response::Hello(info) => {
            assert_eq!(info.protocol, rvs::ctl::proto::PROTOCOL_VERSION);
            assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        }
        other => panic!("{other:?}"),
    }
    drop(s);
    assert!(
        wait_for(5, || d.log().contains("(protocol 999) cannot talk to rvsd")),
        "{}",
        d.log()
    );
    d.ok(&["-L", "-n"]);

    // The client side: a daemon that speaks a newer protocol.
    let ours = rvs::ctl::proto::PROTOCOL_VERSION;
    let theirs = ours + 1;
    let e = rvs::ctl::CtlError::VersionMismatch {
        client: "rvsadm 0.1.0".into(),
        client_proto: 1,
        daemon: "0.2.0".into(),
        daemon_proto: 2,
    };
    assert!(e
        .to_string()
        .starts_with("rvsadm 0.1.0 (protocol 1) cannot talk to rvsd 0.2.0 (protocol 2)"));
    let dir = TempDir::new("fakedaemon");
    let sock = dir.0.join("fake.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let fake = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let body = codec::read_frame(&mut c).unwrap();
        let req: Request = codec::decode_body(&body).unwrap();
        assert!(
            matches!(req, Request::Hello { protocol, .. } if protocol == ours),
            "{req:?}"
        );
        codec::write_frame(
            &mut c,
            &Response::Hello(DaemonInfo {
                protocol: theirs,
                version: "9.9.9".into(),
                pid: 1,
                uptime_secs: 0,
            }),
        )
        .unwrap();
        // rvsadm must hang up without sending anything else.
        let mut rest = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.read_to_end(&mut rest).unwrap();
        rest
    });
    let out = rvsadm_at(&sock, &["-L", "-n"], "");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "rvsadm {} (protocol {ours}) cannot talk to rvsd 9.9.9 (protocol {theirs}): install matching versions\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(out.stdout.is_empty());
    assert!(
        fake.join().unwrap().is_empty(),
        "nothing sent after the hello"
    );
}

// ---- permissions -------------------------------------------------------

const NOBODY: u32 = 65534;

/// True when running as root; otherwise fails under CI, skips elsewhere.
fn need_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: must run as root in CI (it runs rvsadm as uid {NOBODY})");
    }
    eprintln!("{test}: skipped: not running as root, cannot run rvsadm as uid {NOBODY}");
    false
}

/// The primary group of uid 65534 from /etc/passwd, and its name.
fn nobody_group() -> (u32, String) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let gid: u32 = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[2] == NOBODY.to_string())
        .map(|f| f[3].parse().unwrap())
        .expect("uid 65534 in /etc/passwd");
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .unwrap()
        .expect("the group of uid 65534 exists");
    (gid, group.name)
}

/// rvsadm run as uid/gid 65534 (a copy of the binary in the daemon's
/// directory, so that the build tree need not be readable by nobody).
fn as_nobody(d: &Daemon, args: &[&str], stdin: &str) -> Output {
    use std::os::unix::fs::PermissionsExt;
    let (gid, _) = nobody_group();
    let bin = d.dir.0.join("rvsadm-copy");
    if !bin.exists() {
        std::fs::copy(RVSADM, &bin).unwrap();
    }
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args(args)
        .env("RVS_SOCKET", &d.socket)
        .uid(NOBODY)
        .gid(gid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A fresh copy can be "text file busy" for a moment: a process forked
    // by a parallel test may still hold the copy's write descriptor.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("spawn {} as uid {NOBODY}: {e}", bin.display()),
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn world_readable_socket_lets_others_list_but_not_change() {
    if !need_root("world_readable_socket_lets_others_list_but_not_change") {
        return;
    }
    let d = Daemon::start_with(&["--default-check", "none", "--socket-mode", "666"]);
    d.ok(&["-A", "-t", "127.20.210.1:8080", "-s", "rr"]);
    d.ok(&["-a", "-t", "127.20.210.1:8080", "-r", "198.51.100.1:80"]);
    let before = d.state();
    let out = as_nobody(&d, &["-L", "-n"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), d.ok(&["-L", "-n"]));
    let out = as_nobody(&d, &["-S", "-n"], "");
    assert_eq!(stdout(&out), d.ok(&["-S", "-n"]));
    for args in [
        &["-A", "-t", "127.20.210.2:8080"][..],
        &["-D", "-t", "127.20.210.1:8080"],
        &["-C"],
        &["-Z"],
        &["--set", "1", "1", "1"],
    ] {
        let out = as_nobody(&d, args, "");
        assert_eq!(code(&out), 255, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("permission denied: ") && err.contains("needs root"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        stderr(&as_nobody(&d, &["-A", "-t", "127.20.210.2:8080"], "")),
        "permission denied: add-service (-A) needs root (or start rvsd with --socket-group to delegate)\n"
    );
    let out = as_nobody(&d, &["-R"], "-C\n");
    assert_eq!(code(&out), 255);
    assert!(stderr(&out).starts_with("permission denied: restore (-R) needs root"));
    assert_eq!(d.state(), before, "nobody changed nothing");
    assert!(d.log().contains("mutation denied"));
}

#[test]
fn default_mode_keeps_others_out() {
    if !need_root("default_mode_keeps_others_out") {
        return;
    }
    let d = Daemon::start_with(NO_CHECKS);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "default socket mode");
    for args in [&["-L", "-n"][..], &["-A", "-t", "127.20.211.1:8080"]] {
        let out = as_nobody(&d, args, "");
        assert_eq!(code(&out), 2, "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "could not connect to rvsd at {}",
                d.socket.display()
            )) && err.contains("Permission denied"),
            "{err}"
        );
    }
    assert_eq!(d.ok(&["-S", "-n"]), "");
}

#[test]
fn socket_group_members_may_change_the_table() {
    if !need_root("socket_group_members_may_change_the_table") {
        return;
    }
    let (gid, group) = nobody_group();
    let d = Daemon::start_with(&["--default-check", "none", "--socket-group", &group]);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.gid(), gid, "socket given to --socket-group");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let out = as_nobody(&d, &["-A", "-t", "127.20.212.1:8080", "-s", "rr"], "");
    assert_eq!(code(&out), 0, "{}\n{}", stderr(&out), d.log());
    let out = as_nobody(
        &d,
        &["-R"],
        "-a -t 127.20.212.1:8080 -r 198.51.100.1:80 -w 4\n",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        d.ok(&["-S", "-n"]),
        "-A -t 127.20.212.1:8080 -s rr\n-a -t 127.20.212.1:8080 -r 198.51.100.1:80 -m -w 4\n"
    );
    // The audit log names the member's uid.
    assert!(d.log().contains(&format!("uid={NOBODY}")), "{}", d.log());
    // A different group is told which group it needs.
    drop(d);
    let d = Daemon::start_with(&[
        "--default-check",
        "none",
        "--socket-group",
        "root",
        "--socket-mode",
        "666",
    ]);
    let out = as_nobody(&d, &["-C"], "");
    assert_eq!(code(&out), 255);
    assert_eq!(
        stderr(&out),
        "permission denied: flush (-C) needs root or group root\n"
    );
}
