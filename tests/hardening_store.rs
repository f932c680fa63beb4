//! The state directory under attack and under load (issue 19: B12, B13 and
//! the scale of changes): the temp file never follows a planted symlink and
//! is private; a state file that is not a regular file, or is too big, is
//! refused and left alone; two rvsd cannot share a state directory; a change
//! is journalled and survives kill -9 at any moment.
//!
//! Services use 127.44.x.y addresses.

mod common;

use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn state_file(d: &Daemon) -> PathBuf {
    d.state_dir.join("table.state")
}

/// Run rvsd on `socket` and `state_dir` and expect it to exit by itself
/// within 15 s; returns its status and stderr.
fn rvsd_must_exit(socket: &Path, state_dir: &Path) -> (ExitStatus, String) {
    let mut child = Command::new(RVSD)
        .arg("--socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(state_dir)
        .args(NO_CHECKS)
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

/// Names in the state directory other than the state file, journal and lock.
fn strays(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["table.state", "table.journal", "rvsd.lock"].contains(&n.as_str()))
        .collect()
}

#[test]
fn temp_file_never_follows_a_planted_symlink_and_files_are_private() {
    let mut d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.44.1.1:8080"]);
    assert!(d.stop().success());
    // The old fixed temp name, pointing at a file the attacker wants clobbered.
    let victim = d.dir.0.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let planted = d.state_dir.join("table.state.tmp");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    d.restart();
    for i in 2..40 {
        d.ok(&["-A", "-t", &format!("127.44.1.{i}:8080")]);
    }
    d.ok(&["-a", "-t", "127.44.1.2:8080", "-r", "198.51.100.1:80"]);
    assert!(d.stop().success(), "clean stop writes the snapshot");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "victim untouched"
    );
    assert!(
        std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link was neither followed nor renamed"
    );
    let meta = std::fs::symlink_metadata(state_file(&d)).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "table.state mode");
    let dir_mode = std::fs::metadata(&d.state_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "state directory mode {dir_mode:o}");
    for name in ["table.journal", "rvsd.lock"] {
        if let Ok(m) = std::fs::symlink_metadata(d.state_dir.join(name)) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{name} mode");
        }
    }
    std::fs::remove_file(&planted).unwrap();
    assert_eq!(strays(&d.state_dir), Vec::<String>::new(), "no temp left");
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]).lines().count(), 40);
}

#[test]
fn state_file_that_is_not_a_regular_file_is_refused_and_left_alone() {
    let mut d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.44.2.1:8080"]);
    assert!(d.stop().success());
    let path = state_file(&d);
    let good = std::fs::read(&path).unwrap();
    let real = d.dir.0.join("real.state");
    std::fs::write(&real, &good).unwrap();
    std::fs::remove_file(&path).unwrap();
    let p = path.display().to_string();

    let check = |what: &str, expect: &str| {
        let (status, err) = rvsd_must_exit(&d.socket, &d.state_dir);
        assert_eq!(status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains(&format!("state file {p} is {expect}, not a regular file")),
            "{what}: {err}"
        );
        assert!(err.contains("left untouched"), "{what}: {err}");
        assert!(err.contains(&format!("mv {p} {p}.bad")), "{what}: {err}");
        assert!(!d.socket.exists(), "{what}: socket left behind");
    };

    // /dev/zero: the old rvsd read it until memory ran out.
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    check("link to /dev/zero", "a symbolic link (to /dev/zero)");
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_file(&path).unwrap();

    // Even a link to a good state file is not followed.
    std::os::unix::fs::symlink(&real, &path).unwrap();
    check(
        "link to a state file",
        &format!("a symbolic link (to {})", real.display()),
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(std::fs::read(&real).unwrap(), good);

    // A FIFO: the old rvsd blocked in open(2) forever.
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    check("fifo", "a FIFO");
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_fifo());
    std::fs::remove_file(&path).unwrap();

    // The real file back in place: the table is restored.
    std::fs::write(&path, &good).unwrap();
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]), "-A -t 127.44.2.1:8080 -s wlc\n");
}

#[test]
fn oversized_state_file_is_refused_without_reading_it() {
    let mut d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.44.3.1:8080"]);
    assert!(d.stop().success());
    let path = state_file(&d);
    let good = std::fs::read(&path).unwrap();
    // Sparse: 256 MiB + 1 byte of apparent size, no disk used.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(256 * 1024 * 1024 + 1).unwrap();
    drop(f);
    let t = Instant::now();
    let (status, err) = rvsd_must_exit(&d.socket, &d.state_dir);
    assert_eq!(status.code(), Some(1), "{err}");
    let p = path.display().to_string();
    assert!(
        err.contains(&format!(
            "state file {p} is 268435457 bytes, more than the 268435456 bytes rvsd reads"
        )),
        "{err}"
    );
    assert!(err.contains("left untouched"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let m = std::fs::metadata(&path).unwrap();
    assert_eq!(m.len(), 256 * 1024 * 1024 + 1, "left untouched");
    assert!(m.blocks() < 64, "still sparse");
    std::fs::write(&path, &good).unwrap();
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]), "-A -t 127.44.3.1:8080 -s wlc\n");
}

#[test]
fn second_rvsd_on_the_same_state_dir_refuses_to_start() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.44.4.1:8080"]);
    let before = std::fs::read_dir(&d.state_dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect::<Vec<_>>();
    let other_socket = d.dir.0.join("other.sock");
    let (status, err) = rvsd_must_exit(&other_socket, &d.state_dir);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "another rvsd (pid {}) is already using the state directory {}",
            d.pid(),
            d.state_dir.display()
        )),
        "{err}"
    );
    assert!(err.contains("--state-dir elsewhere"), "{err}");
    assert!(!other_socket.exists(), "the second rvsd left no socket");
    // The first one is untouched and keeps working.
    let after = std::fs::read_dir(&d.state_dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect::<Vec<_>>();
    assert_eq!(before.len(), after.len());
    for b in &before {
        assert!(after.contains(b), "{:?} changed", b.0);
    }
    d.ok(&["-A", "-t", "127.44.4.2:8080"]);
    assert_eq!(
        d.ok(&["-S", "-n"]),
        "-A -t 127.44.4.1:8080 -s wlc\n-A -t 127.44.4.2:8080 -s wlc\n"
    );
}

#[test]
fn state_dir_is_free_again_after_the_holder_dies() {
    let mut d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.44.5.1:8080"]);
    d.kill9();
    // The lock file stays behind with the dead pid; the lock itself is gone.
    assert!(d.state_dir.join("rvsd.lock").exists());
    d.restart();
    assert_eq!(d.ok(&["-S", "-n"]), "-A -t 127.44.5.1:8080 -s wlc\n");
}

/// rvsd on `socket` and `state_dir` with a tiny journal limit (a compaction
/// every few changes, so that kills land in those too), logging to `log`.
fn spawn_small_journal(socket: &Path, state_dir: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(RVSD)
        .arg("--socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(state_dir)
        .args(NO_CHECKS)
        .env("RVSD_JOURNAL_BYTES", "3000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rvsd exited with {status}");
        }
        assert!(Instant::now() < deadline, "rvsd did not open its socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// The table as rvsd lists it, in the model's terms.
fn listed(socket: &Path) -> Vec<(ServiceSpec, Vec<RealServerSpec>)> {
    let mut c = rvs::ctl::Client::connect(socket, "test").unwrap();
    match c.call(&Request::List(None)).unwrap() {
        Response::Table(t) => t
            .services
            .into_iter()
            .map(|s| (s.spec, s.servers.into_iter().map(|v| v.spec).collect()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn modelled(t: &Table) -> Vec<(ServiceSpec, Vec<RealServerSpec>)> {
    t.services()
        .iter()
        .map(|s| (s.spec.clone(), s.servers.clone()))
        .collect()
}

use rvs::ctl::proto::{RealServerSpec, Request, Response, ServiceKey, ServiceSpec, Timeouts};
use rvs::daemon::table::Table;

/// A random change that `model` accepts.
fn next_change(
    model: &Table,
    keys: &[ServiceKey],
    rnd: &mut impl FnMut(u64) -> u64,
    n: &mut u32,
) -> Request {
    loop {
        let k = keys[rnd(keys.len() as u64) as usize];
        let servers = model.service(&k).map(|s| s.servers.clone());
        let req = match (servers, rnd(20)) {
            (None, _) => Request::AddService(ServiceSpec::new(k)),
            (Some(_), 0) => Request::DeleteService(k),
            (Some(_), 1) => Request::SetTimeouts(Timeouts {
                tcp: 1 + rnd(1000) as u32,
                tcpfin: 1 + rnd(100) as u32,
                udp: 1 + rnd(100) as u32,
            }),
            (Some(s), 2..=5) if !s.is_empty() => {
                let mut srv = s[rnd(s.len() as u64) as usize].clone();
                srv.weight = rnd(100) as u32;
                Request::EditServer {
                    service: k,
                    server: srv,
                }
            }
            (Some(s), 6..=8) if !s.is_empty() => Request::DeleteServer {
                service: k,
                server: s[rnd(s.len() as u64) as usize].addr,
            },
            (Some(_), _) => {
                *n += 1;
                let mut srv = RealServerSpec::new(
                    format!("10.44.{}.{}:80", *n / 250 % 250, *n % 250 + 1)
                        .parse()
                        .unwrap(),
                );
                srv.weight = 1 + rnd(9) as u32;
                Request::AddServer {
                    service: k,
                    server: srv,
                }
            }
        };
        if model.clone().apply(&req).is_ok() {
            return req;
        }
    }
}

/// kill -9 at random moments while changes stream in (journal appends and
/// compactions alike): after each restart the table holds every
/// acknowledged change, in order, and at most the one change in flight.
#[test]
fn no_acknowledged_change_is_lost_to_kill_9() {
    let dir = TempDir::new("store-kill");
    let socket = dir.0.join("rvsd.sock");
    let state_dir = dir.0.join("state");
    let log = dir.0.join("rvsd.log");
    let keys: Vec<ServiceKey> = (1..=6)
        .map(|i| {
            let ip = format!("127.44.9.{i}");
            tcp_key(format!("{ip}:{}", free_port(&ip)).parse().unwrap())
        })
        .collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut model = Table::default();
    let mut n = 0u32;
    let (mut acked, mut kills, mut in_flight_kept, mut batches) = (0, 0, 0, 0);
    let started = Instant::now();
    while kills < 40 && started.elapsed() < Duration::from_secs(90) {
        let mut child = spawn_small_journal(&socket, &state_dir, &log);
        let got = listed(&socket);
        assert_eq!(
            got,
            modelled(&model),
            "after kill {kills}; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        // A batch of changes to send, generated against the model.
        let mut plan = Vec::new();
        let mut m = model.clone();
        for _ in 0..400 {
            let req = if rnd(8) == 0 {
                let mut reqs = Vec::new();
                let mut mm = m.clone();
                for _ in 0..3 {
                    let r = next_change(&mm, &keys, &mut rnd, &mut n);
                    mm.apply(&r).unwrap();
                    reqs.push(r);
                }
                Request::Batch(reqs)
            } else {
                next_change(&m, &keys, &mut rnd, &mut n)
            };
            m.apply(&req).unwrap();
            plan.push(req);
        }
        let mut c = rvs::ctl::Client::connect(&socket, "kill-test").unwrap();
        let writer = std::thread::spawn(move || {
            let mut done = 0;
            for req in &plan {
                match c.call(req) {
                    Ok(Response::Ok) => done += 1,
                    Ok(other) => panic!("{req:?} refused: {other:?}"),
                    Err(_) => break,
                }
            }
            (plan, done)
        });
        std::thread::sleep(Duration::from_millis(5 + rnd(120)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let (plan, done) = writer.join().unwrap();
        for req in &plan[..done] {
            if matches!(req, Request::Batch(_)) {
                batches += 1;
            }
            model.apply(req).unwrap();
        }
        acked += done;
        // The change in flight may or may not have made it: learn which.
        if let Some(req) = plan.get(done) {
            let mut with = model.clone();
            with.apply(req).unwrap();
            let child = spawn_small_journal(&socket, &state_dir, &log);
            let got = listed(&socket);
            let mut child = child;
            child.kill().unwrap();
            child.wait().unwrap();
            if got == modelled(&with) {
                model = with;
                in_flight_kept += 1;
            } else {
                assert_eq!(
                    got,
                    modelled(&model),
                    "after kill {kills}: acknowledged change lost"
                );
            }
        }
    }
    eprintln!("{kills} kills, {acked} acknowledged changes ({batches} batches), {in_flight_kept} in-flight changes kept");
    assert!(
        kills >= 10 && acked >= 200,
        "{kills} kills, {acked} changes"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("table restored"), "{log}");
    eprintln!(
        "{} torn last records dropped, {} stale journals replaced",
        log.matches("dropped a torn last journal record").count(),
        log.matches("journal does not continue the snapshot")
            .count()
    );
}

/// Changes applied in place (no table copy) and made live incrementally:
/// after every change the listing equals the model, order included (a
/// service removed and added again in one restore moves to the end).
#[test]
fn listing_follows_every_incremental_change() {
    let d = Daemon::start_with(NO_CHECKS);
    let keys: Vec<ServiceKey> = (1..=6)
        .map(|i| {
            let ip = format!("127.44.10.{i}");
            tcp_key(format!("{ip}:{}", free_port(&ip)).parse().unwrap())
        })
        .collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut model = Table::default();
    let mut n = 0u32;
    let mut c = d.client();
    // The plain case first: the first service removed and added again.
    let (a, b) = (keys[0], keys[1]);
    for req in [
        Request::AddService(ServiceSpec::new(a)),
        Request::AddService(ServiceSpec::new(b)),
        Request::Batch(vec![
            Request::DeleteService(a),
            Request::AddService(ServiceSpec::new(a)),
        ]),
    ] {
        model.apply(&req).unwrap();
        assert_eq!(c.call(&req).unwrap(), Response::Ok, "{req:?}");
    }
    assert_eq!(
        listed(&d.socket)
            .iter()
            .map(|s| s.0.key)
            .collect::<Vec<_>>(),
        [b, a]
    );
    let mut moved = 0;
    for i in 0..400 {
        let req = if rnd(3) == 0 {
            let mut reqs = Vec::new();
            let mut mm = model.clone();
            for _ in 0..4 {
                let r = next_change(&mm, &keys, &mut rnd, &mut n);
                mm.apply(&r).unwrap();
                reqs.push(r);
            }
            Request::Batch(reqs)
        } else {
            next_change(&model, &keys, &mut rnd, &mut n)
        };
        let before: Vec<ServiceKey> = model.services().iter().map(|s| s.spec.key).collect();
        model.apply(&req).unwrap();
        let after: Vec<ServiceKey> = model.services().iter().map(|s| s.spec.key).collect();
        if before.len() == after.len() && before != after {
            moved += 1;
        }
        assert_eq!(c.call(&req).unwrap(), Response::Ok, "{req:?}");
        assert_eq!(listed(&d.socket), modelled(&model), "change {i}: {req:?}");
    }
    assert!(
        moved > 0,
        "no service moved to the end: the test lacks that case"
    );
}
