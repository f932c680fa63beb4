//! The table survives restarts and crashes; a damaged state file stops rvsd
//! without being touched; the control socket is exclusive and cleaned up;
//! a virtual address that cannot be bound is refused with the OS reason.
//!
//! Each test uses its own 127.30.N.x addresses.

mod common;

use common::*;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A table with a bit of everything; `n` picks the 127.30.`n`.x addresses.
fn populate(d: &Daemon, n: u8) {
    let v6 = loopback_vip("::1");
    for line in [
        format!("-A -t 127.30.{n}.1:8080 -s rr"),
        format!("-a -t 127.30.{n}.1:8080 -r 198.51.100.1:80 -w 3"),
        format!("-a -t 127.30.{n}.1:8080 -r 127.0.0.1:9000 -w 0 -x 10 -y 5"),
        format!("-A -t 127.30.{n}.2:8443 -s sh -b sh-port -p 1800 -M 255.255.255.0"),
        format!("-a -t 127.30.{n}.2:8443 -r 198.51.100.2:443"),
        format!("-A -u 127.30.{n}.1:8053 -s rr -o"),
        format!("-a -u 127.30.{n}.1:8053 -r [2001:db8::5]:53"),
        format!("-A -t {v6} -s mh -p 60 -M 64"),
        format!("-a -t {v6} -r 198.51.100.9:80"),
        "--set 100 50 20".to_string(),
    ] {
        let argv: Vec<&str> = line.split(' ').collect();
        d.ok(&argv);
    }
}

/// Everything observable about the table: -S -n, -L -n --thresholds, timeouts.
fn snapshot(d: &Daemon) -> String {
    format!("{}{}", d.state(), d.ok(&["-L", "-n", "--thresholds"]))
}

fn state_file(d: &Daemon) -> std::path::PathBuf {
    d.state_dir.join("table.state")
}

/// Run rvsd on `d`'s socket and state directory (plus `extra`) and expect
/// it to exit by itself within 15 s; returns its status and stderr.
fn rvsd_must_exit(d: &Daemon, state_dir: &std::path::Path, extra: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(RVSD)
        .arg("--socket")
        .arg(&d.socket)
        .arg("--state-dir")
        .arg(state_dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "rvsd was expected to refuse to start but kept running: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn table_survives_sigterm_and_restart() {
    let mut d = Daemon::start_with(NO_CHECKS);
    populate(&d, 1);
    let before = snapshot(&d);
    assert_eq!(d.ok(&["-S", "-n"]).lines().count(), 9);
    let status = d.stop();
    assert!(status.success(), "SIGTERM exit: {status}");
    assert!(!d.socket.exists(), "the socket is removed after SIGTERM");
    assert!(state_file(&d).exists());
    d.restart();
    assert_eq!(snapshot(&d), before);
    // The restored services really listen again.
    std::net::TcpListener::bind("127.30.1.1:8080").expect_err("restored TCP service is bound");
    std::net::UdpSocket::bind("127.30.1.1:8053").expect_err("restored UDP service is bound");
    // And a second round trip after more changes.
    d.ok(&["-D", "-t", "127.30.1.2:8443"]);
    d.ok(&[
        "-e",
        "-t",
        "127.30.1.1:8080",
        "-r",
        "198.51.100.1:80",
        "-w",
        "9",
    ]);
    let before = snapshot(&d);
    assert!(d.stop().success());
    d.restart();
    assert_eq!(snapshot(&d), before);
}

#[test]
fn table_survives_kill_9_and_the_stale_socket_is_replaced() {
    let mut d = Daemon::start_with(NO_CHECKS);
    populate(&d, 2);
    // The very last change before the crash was acknowledged, so it is on disk.
    d.ok(&[
        "-a",
        "-t",
        "127.30.2.2:8443",
        "-r",
        "198.51.100.3:443",
        "-w",
        "7",
    ]);
    let before = snapshot(&d);
    d.kill9();
    assert!(d.socket.exists(), "kill -9 leaves the socket file behind");
    let out = d.rvsadm(&["-L", "-n"]);
    assert_eq!(code(&out), 2, "nobody answers on the stale socket");
    d.restart();
    assert_eq!(snapshot(&d), before);
    assert!(
        d.log().contains("replaced a stale socket file"),
        "{}",
        d.log()
    );
    // Crash again right after a -C: the empty table is what comes back.
    d.ok(&["-C"]);
    let before = snapshot(&d);
    d.kill9();
    d.restart();
    assert_eq!(snapshot(&d), before);
    assert_eq!(d.ok(&["-S", "-n"]), "");
}

#[test]
fn corrupt_state_file_stops_rvsd_and_is_left_untouched() {
    let mut d = Daemon::start_with(NO_CHECKS);
    populate(&d, 3);
    assert!(d.stop().success());
    let path = state_file(&d);
    let good = std::fs::read(&path).unwrap();
    assert!(good.len() > 40);
    assert_eq!(&good[..8], b"RVSSTATE");

    let mut flipped_body = good.clone();
    let last = flipped_body.len() - 1;
    flipped_body[last] ^= 0x01;
    let mut flipped_magic = good.clone();
    flipped_magic[0] ^= 0x20;
    let mut flipped_sum = good.clone();
    flipped_sum[15] ^= 0x80;
    let mut bad_version = good.clone();
    bad_version[11] = 9;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a flipped body byte", flipped_body, "checksum mismatch"),
        ("a flipped magic byte", flipped_magic, "bad magic"),
        ("a flipped checksum byte", flipped_sum, "checksum mismatch"),
        ("another format version", bad_version, "format version 9"),
        ("truncated to half", good[..good.len() / 2].to_vec(), ""),
        (
            "truncated into the header",
            good[..10].to_vec(),
            "bad magic",
        ),
        ("empty", Vec::new(), "bad magic"),
        (
            "garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            "bad magic",
        ),
    ];
    for (what, bytes, why) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let (status, err) = rvsd_must_exit(&d, &d.state_dir, &[]);
        assert!(!status.success(), "{what}: rvsd started on a corrupt file");
        assert_eq!(status.code(), Some(1), "{what}");
        let p = path.display().to_string();
        assert!(err.contains(&p), "{what}: stderr does not name {p}: {err}");
        assert!(
            err.contains(&format!("mv {p} {p}.bad")),
            "{what}: stderr does not say how to move it aside: {err}"
        );
        assert!(err.contains("left untouched"), "{what}: {err}");
        assert!(err.contains(why), "{what}: {err} lacks {why:?}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{what}: the file was modified"
        );
        assert!(!d.socket.exists(), "{what}: a socket was left behind");
    }
    // Moving it aside as told gives an empty table; putting the good file
    // back restores everything.
    std::fs::rename(&path, path.with_extension("state.bad")).unwrap();
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]), "");
    assert!(d.stop().success());
    std::fs::write(&path, &good).unwrap();
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]).lines().count(), 9);
}

#[test]
fn unreadable_state_file_stops_rvsd() {
    let mut d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.30.4.1:8080"]);
    assert!(d.stop().success());
    let path = state_file(&d);
    // A directory where the file should be: cannot be read, must not be removed.
    let good = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let (status, err) = rvsd_must_exit(&d, &d.state_dir, &[]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains(&format!("cannot read state file {}", path.display())),
        "{err}"
    );
    assert!(path.is_dir(), "left alone");
    std::fs::remove_dir(&path).unwrap();
    std::fs::write(&path, &good).unwrap();
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]), "-A -t 127.30.4.1:8080 -s wlc\n");
}

#[test]
fn second_rvsd_on_the_same_socket_refuses_to_start() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.30.5.1:8080"]);
    let before = std::fs::read(state_file(&d)).unwrap();
    for state_dir in [d.state_dir.clone(), d.dir.0.join("other-state")] {
        let (status, err) = rvsd_must_exit(&d, &state_dir, &[]);
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "another rvsd is already running on {}",
                d.socket.display()
            )),
            "{err}"
        );
    }
    // The first one is untouched: socket, table, state file.
    assert!(d.socket.exists());
    assert_eq!(d.ok(&["-S", "-n"]), "-A -t 127.30.5.1:8080 -s wlc\n");
    assert_eq!(std::fs::read(state_file(&d)).unwrap(), before);
    d.ok(&["-A", "-t", "127.30.5.2:8080"]);
}

#[test]
fn socket_is_removed_after_sigterm() {
    let mut d = Daemon::start_with(NO_CHECKS);
    assert!(d.socket.exists());
    assert!(d.stop().success());
    assert!(!d.socket.exists());
    let out = d.rvsadm(&["-L", "-n"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(&d.socket.display().to_string()));
    // Starting again on the same path works.
    d.restart();
    d.ok(&["-L", "-n"]);
}

#[test]
fn bind_failure_is_refused_with_the_os_reason() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.30.6.9:8080"]);
    let tcp = std::net::TcpListener::bind("127.30.6.1:0").unwrap();
    let taken = tcp.local_addr().unwrap().to_string();
    let err = d.refused(&["-A", "-t", &taken], 255, &taken);
    assert!(err.contains("Address already in use"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let udp = std::net::UdpSocket::bind("127.30.6.1:0").unwrap();
    let taken_udp = udp.local_addr().unwrap().to_string();
    let err = d.refused(&["-A", "-u", &taken_udp], 255, &taken_udp);
    assert!(err.contains("Address already in use"), "{err}");
    // An address that is not on this host.
    let err = d.refused(
        &["-A", "-t", "198.51.100.77:8080"],
        255,
        "198.51.100.77:8080",
    );
    assert!(err.contains("Cannot assign requested address"), "{err}");
    // -E of an existing service does not rebind and is not affected.
    d.ok(&["-E", "-t", "127.30.6.9:8080", "-s", "rr"]);
    // Once the port is free, the same command works.
    drop(tcp);
    d.ok(&["-A", "-t", &taken]);
}

#[test]
fn bind_failure_inside_restore_applies_nothing_and_names_the_line() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.30.7.9:8080"]);
    let before = d.state();
    let tcp = std::net::TcpListener::bind("127.30.7.2:0").unwrap();
    let taken = tcp.local_addr().unwrap().to_string();
    let rules = format!(
        "-A -t 127.30.7.1:8080\n-a -t 127.30.7.1:8080 -r 198.51.100.1:80\n-A -t {taken} -s rr\n-A -t 127.30.7.3:8080\n"
    );
    let out = d.rvsadm_stdin(&["-R"], &rules);
    assert_eq!(code(&out), 255, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "line 3: -A -t {taken} -s rr: cannot bind TCP {taken}: "
        )),
        "{err}"
    );
    assert!(err.contains("Address already in use"), "{err}");
    assert_eq!(d.state(), before, "nothing applied");
    // The services before the failing line were not left bound.
    std::net::TcpListener::bind("127.30.7.1:8080").expect("127.30.7.1:8080 is free");
}

#[test]
fn unbindable_saved_service_stops_rvsd_at_start() {
    let mut d = Daemon::start_with(NO_CHECKS);
    let vip = loopback_vip("127.30.8.1");
    d.ok(&["-A", "-t", &vip]);
    assert!(d.stop().success());
    let file = std::fs::read(state_file(&d)).unwrap();
    let holder = std::net::TcpListener::bind(&vip).unwrap();
    let (status, err) = rvsd_must_exit(&d, &d.state_dir, &[]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot restore the table from {}",
            state_file(&d).display()
        )) && err.contains(&vip)
            && err.contains("Address already in use"),
        "{err}"
    );
    assert_eq!(std::fs::read(state_file(&d)).unwrap(), file);
    assert!(!d.socket.exists());
    drop(holder);
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]), format!("-A -t {vip} -s wlc\n"));
}

#[test]
fn sigterm_with_idle_control_clients_exits_promptly() {
    use std::io::{Read, Write};
    let mut d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.30.9.1:8080"]);
    // One silent client, one past the hello, one subscribed.
    let silent = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    let mut greeted = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    greeted
        .write_all(
            &rvs::ctl::codec::encode_frame(&rvs::ctl::proto::Request::Hello {
                protocol: rvs::ctl::proto::PROTOCOL_VERSION,
                client: "durability-test".into(),
            })
            .unwrap(),
        )
        .unwrap();
    rvs::ctl::codec::read_frame(&mut greeted).unwrap();
    let mut sub = d.client();
    sub.subscribe(100).unwrap();
    sub.next_update().unwrap();
    let t = Instant::now();
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "SIGTERM took {:?} with idle control clients",
        t.elapsed()
    );
    assert!(!d.socket.exists());
    greeted
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(greeted.read(&mut buf), Ok(0) | Err(_)), "closed");
    drop(silent);
}
