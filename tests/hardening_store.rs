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
