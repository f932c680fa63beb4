//! Issue 19, control socket: bounded decoding (B1), exec checks only from
//! root (B2), client slots, frame and write budgets (B5), SIGHUP (B7), the
//! socket path (B10) and its directory (B11), and rvsadm's timeout (B14).
//! All against the real rvsd and rvsadm; loopback range 127.40.0.0/16.

mod common;

use common::*;
use rvs::ctl::codec;
use rvs::ctl::proto::{Request, Response, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---- helpers -------------------------------------------------------------

const NOBODY: u32 = 65534;

/// True when running as root; otherwise fails under CI, skips elsewhere.
fn need_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: must run as root in CI (it runs clients as uid {NOBODY})");
    }
    eprintln!("{test}: skipped: not running as root, cannot run clients as uid {NOBODY}");
    false
}

/// The primary group of uid 65534, and its name.
fn nobody_group() -> (u32, String) {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(NOBODY))
        .unwrap()
        .expect("uid 65534 exists");
    let group = nix::unistd::Group::from_gid(user.gid)
        .unwrap()
        .expect("the group of uid 65534 exists");
    (user.gid.as_raw(), group.name)
}

/// A copy of `bin` in `dir` (mode 0755, dir made traversable) that uid
/// 65534 can run whatever the build tree's permissions.
fn copy_for_nobody(dir: &Path, bin: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    if !to.exists() {
        std::fs::copy(bin, &to).unwrap();
    }
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

/// Spawn `cmd`, retrying while a fresh copy is "text file busy" (a process
/// forked by a parallel test may still hold its write descriptor).
fn spawn_retry(cmd: &mut Command) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(c) => return c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("spawn {cmd:?}: {e}"),
        }
    }
}

/// rvsadm as uid 65534 in its own group.
fn rvsadm_as_nobody(dir: &Path, socket: &Path, args: &[&str], stdin: &str) -> Output {
    let (gid, _) = nobody_group();
    let bin = copy_for_nobody(dir, Path::new(RVSADM), "rvsadm-copy");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("RVS_SOCKET", socket)
        .uid(NOBODY)
        .gid(gid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_retry(&mut cmd);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// An rvsd started by this file (own flags, environment and user), killed
/// by PID on drop.
struct Rvsd {
    child: Option<Child>,
    log: PathBuf,
    socket: PathBuf,
}

impl Rvsd {
    /// Start rvsd; `Err(log)` when it exits before its socket answers.
    fn start(cmd: &mut Command, socket: &Path, log: &Path) -> Result<Rvsd, String> {
        let logf = std::fs::File::create(log).unwrap();
        cmd.arg("--log-level")
            .arg("debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf);
        let child = spawn_retry(cmd);
        let mut d = Rvsd {
            child: Some(child),
            log: log.to_path_buf(),
            socket: socket.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                d.child = None;
                return Err(format!("rvsd exited with {st}: {}", d.log()));
            }
            if UnixStream::connect(socket).is_ok() {
                return Ok(d);
            }
            assert!(
                Instant::now() < deadline,
                "rvsd did not open {}: {}",
                socket.display(),
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = rvsadm_at(&self.socket, args, "");
        assert!(
            out.status.success(),
            "rvsadm {args:?}: {}\n{}",
            stderr(&out),
            self.log()
        );
        stdout(&out)
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn rvsd_cmd(socket: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(RVSD);
    cmd.arg("--socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(state)
        .args(NO_CHECKS);
    cmd
}

/// Run rvsd to completion (it is expected to refuse to start) within 15 s.
fn rvsd_refuses(cmd: &mut Command) -> Output {
    // The command may run a fresh copy of rvsd (spawn_retry says why).
    let mut child = spawn_retry(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("rvsd did not refuse to start: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// rvsd must still run: answering `-L`, not exited.
fn assert_alive(d: &mut Daemon, what: &str) {
    let out = d.rvsadm(&["-L", "-n"]);
    if !out.status.success() {
        let st = d.wait_exit(5.0);
        panic!(
            "rvsd does not answer after {what} (exit status {st:?}): {}\n{}",
            stderr(&out),
            d.log()
        );
    }
    if let Some(st) = d.wait_exit(0.0) {
        panic!("rvsd died after {what}: {st}\n{}", d.log());
    }
}

/// A service on `vip` balancing to `backend`, and proof that it proxies.
fn proxied_service(d: &Daemon, vip: std::net::SocketAddr, backend: &Backend) {
    d.ok(&["-A", "-t", &vip.to_string(), "-s", "rr"]);
    d.ok(&[
        "-a",
        "-t",
        &vip.to_string(),
        "-r",
        &backend.addr.to_string(),
        "-m",
    ]);
    assert_eq!(who_from("127.40.0.100", vip), backend.name);
}

fn frame_of(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Send `bytes` on a fresh connection and read until the daemon closes it.
/// Returns what came back.
fn send_raw(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(socket).expect("connect to rvsd");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    back
}

/// The error message of the first frame in `back`, if it is an error.
fn error_message(back: &[u8]) -> Option<String> {
    let len = codec::body_len(back.get(..4)?.try_into().ok()?).ok()?;
    match codec::decode_body::<Response>(back.get(4..4 + len)?).ok()? {
        Response::Error { message, .. } => Some(message),
        _ => None,
    }
}

// ---- B1: bounded decoding ------------------------------------------------

#[test]
fn b1_huge_claimed_lengths_before_the_hello_leave_rvsd_serving() {
    let backend = Backend::tcp_on("127.40.0.2:0", "b1-backend");
    let vip = vip_on("127.40.0.1");
    let mut d = Daemon::start();
    proxied_service(&d, vip, &backend);

    // The issue's reproduction: Hello { protocol: 2, client: <claim> bytes }
    // (b"\0\2\xfd" + u64 LE), framed, before any hello.
    let mut batch_tag = codec::encode_body(&Request::Batch(vec![])).unwrap();
    batch_tag.pop(); // the empty Vec's length
    for claim in [1u64 << 44, 1u64 << 63, u64::MAX] {
        let mut body = vec![0u8, 2, 0xfd];
        body.extend_from_slice(&claim.to_le_bytes());
        let back = send_raw(&d.socket, &frame_of(&body));
        assert_alive(&mut d, &format!("a string claim of {claim} bytes"));
        let msg = error_message(&back).unwrap_or_default();
        assert!(msg.starts_with("malformed request: "), "{msg:?}");
        // The Vec path: Batch(Vec<Request>) claiming `claim` elements.
        let mut body = batch_tag.clone();
        body.push(0xfd);
        body.extend_from_slice(&claim.to_le_bytes());
        send_raw(&d.socket, &frame_of(&body));
        assert_alive(&mut d, &format!("a vector claim of {claim} elements"));
    }
    // A big frame before the hello is refused unread.
    let mut big = (1u32 << 20).to_be_bytes().to_vec();
    big.extend_from_slice(&[0u8; 8192]);
    let msg = error_message(&send_raw(&d.socket, &big)).unwrap_or_default();
    assert_eq!(
        msg,
        "frame of 1048576 bytes before the hello: the first request must be a Hello of at most 4096 bytes"
    );
    assert_alive(&mut d, "a 1 MiB frame before the hello");

    // Still serving: the table, and traffic.
    let listing = d.ok(&["-L", "-n"]);
    assert!(listing.contains(&backend.addr.to_string()), "{listing}");
    for _ in 0..3 {
        assert_eq!(who_from("127.40.0.100", vip), "b1-backend");
    }
}

// ---- B2: exec checks only from root or rvsd's uid --------------------------

#[test]
fn b2_socket_group_members_may_not_set_exec_checks() {
    if !need_root("b2_socket_group_members_may_not_set_exec_checks") {
        return;
    }
    let (_, group) = nobody_group();
    let d = Daemon::start_with(&["--default-check", "none", "--socket-group", &group]);
    let dir = d.dir.0.clone();
    let nobody = |args: &[&str], stdin: &str| rvsadm_as_nobody(&dir, &d.socket, args, stdin);
    let vip = "127.40.2.1:8080";
    let marker = d.dir.0.join("exec-ran");
    let cmd = format!("touch {}", marker.display());

    // A member may add services and servers ...
    let out = nobody(&["-A", "-t", vip, "-s", "rr"], "");
    assert_eq!(code(&out), 0, "{}\n{}", stderr(&out), d.log());
    let out = nobody(&["-a", "-t", vip, "-r", "198.51.100.1:80"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = d.state();

    // ... but no exec check: not on a server, not as a service default, not
    // in an edit, not inside a restore.
    let refusals: [(&[&str], String); 4] = [
        (
            &["-a", "-t", vip, "-r", "198.51.100.2:80", "--check", "exec", "--check-exec", &cmd],
            String::new(),
        ),
        (
            &["-e", "-t", vip, "-r", "198.51.100.1:80", "--check", "exec", "--check-exec", &cmd],
            String::new(),
        ),
        (
            &["-E", "-t", vip, "-s", "rr", "--check", "exec", "--check-exec", &cmd],
            String::new(),
        ),
        (
            &["-R"],
            format!("-a -t {vip} -r 198.51.100.3:80\n-a -t {vip} -r 198.51.100.4:80 --check exec --check-exec true\n"),
        ),
    ];
    for (args, stdin) in &refusals {
        let out = nobody(args, stdin);
        assert_eq!(code(&out), 255, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("permission denied: ")
                && err.contains("exec checks run their command as rvsd's user, so only root or rvsd's own uid (0) may set them, not uid 65534"),
            "{args:?}: {err}"
        );
    }
    let out = nobody(&["-R"], &refusals[3].1);
    assert!(stderr(&out).starts_with("line 2: "), "{}", stderr(&out));
    assert_eq!(d.state(), before, "refused requests changed nothing");
    assert!(d.log().contains("exec check denied"), "{}", d.log());

    // Root may.
    d.ok(&[
        "-a",
        "-t",
        vip,
        "-r",
        "198.51.100.5:80",
        "--check",
        "exec",
        "--check-exec",
        "true",
    ]);
    assert!(d.ok(&["-S", "-n"]).contains("--check-exec true"));
    assert!(!marker.exists(), "no member's command ever ran");
}

// ---- B5: slots, frames and writes ----------------------------------------

/// Not a test of its own: run (as uid 65534) by
/// `b5_idle_clients_do_not_lock_root_out`. Holds greeted connections to
/// `RVS_HOLD_SOCKET` until stdin closes.
#[test]
#[ignore]
fn hold_idle_clients() {
    let Some(socket) = std::env::var_os("RVS_HOLD_SOCKET") else {
        return;
    };
    let n: usize = std::env::var("RVS_HOLD_N").unwrap().parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..n {
        if let Ok(c) = rvs::ctl::Client::connect(Path::new(&socket), "holder") {
            held.push(c);
        }
    }
    println!("held {}", held.len());
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(held);
}

#[test]
fn b5_idle_clients_do_not_lock_root_out() {
    if !need_root("b5_idle_clients_do_not_lock_root_out") {
        return;
    }
    let dir = TempDir::new("b5-slots");
    let socket = dir.0.join("rvsd.sock");
    let mut cmd = rvsd_cmd(&socket, &dir.0.join("state"));
    cmd.args(["--socket-mode", "666"])
        .env("RVS_TEST_CTL_MAX_CLIENTS", "8");
    let d = Rvsd::start(&mut cmd, &socket, &dir.0.join("rvsd.log")).unwrap();

    // Uid 65534 opens 12 greeted connections and keeps them idle.
    let exe = std::env::current_exe().unwrap();
    let holder = copy_for_nobody(&dir.0, &exe, "holder");
    let (gid, _) = nobody_group();
    let mut cmd = Command::new(holder);
    cmd.args([
        "--exact",
        "hold_idle_clients",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("RVS_HOLD_SOCKET", &socket)
    .env("RVS_HOLD_N", "12")
    .env("RVS_TIMEOUT", "10")
    .uid(NOBODY)
    .gid(gid)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut hold = spawn_retry(&mut cmd);
    let mut line = String::new();
    let mut out = BufReader::new(hold.stdout.take().unwrap());
    // libtest may print "test hold_idle_clients ... " on the same line.
    while !line.contains("held ") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "holder ended early");
    }
    let held = line.rsplit("held ").next().unwrap().trim();
    assert_eq!(held, "8", "the non-root slots are 8");

    // Others are turned away, root still gets in.
    let out = rvsadm_as_nobody(&dir.0, &socket, &["-L", "-n"], "");
    assert_ne!(code(&out), 0, "a ninth unprivileged client");
    for _ in 0..3 {
        d.ok(&["-L", "-n"]);
    }
    d.ok(&["-A", "-t", "127.40.5.1:8080"]);
    assert!(d.log().contains("too many control clients"), "{}", d.log());
    drop(hold.stdin.take());
    let _ = hold.wait();
}

#[test]
fn b5_client_that_does_not_read_its_answers_is_dropped() {
    let dir = TempDir::new("b5-write");
    let socket = dir.0.join("rvsd.sock");
    let mut cmd = rvsd_cmd(&socket, &dir.0.join("state"));
    cmd.env("RVS_TEST_CTL_WRITE_TIMEOUT_MS", "1000");
    let d = Rvsd::start(&mut cmd, &socket, &dir.0.join("rvsd.log")).unwrap();
    let mut restore = "-A -t 127.40.6.1:8080 -s rr\n".to_string();
    for i in 1..=40 {
        restore += &format!("-a -t 127.40.6.1:8080 -r 198.51.100.{i}:80\n");
    }
    let out = rvsadm_at(&socket, &["-R"], &restore);
    assert!(out.status.success(), "{}", stderr(&out));

    // Ask for the table 2,000 times (several MiB of answers) and read none.
    let mut s = UnixStream::connect(&socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let hello = codec::encode_frame(&Request::Hello {
        protocol: PROTOCOL_VERSION,
        client: "b5".into(),
    })
    .unwrap();
    s.write_all(&hello).unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; codec::body_len(header).unwrap()];
    s.read_exact(&mut body).unwrap();
    let list = codec::encode_frame(&Request::List(None)).unwrap();
    const ASKED: usize = 2000;
    let mut asks = Vec::new();
    for _ in 0..ASKED {
        asks.extend_from_slice(&list);
    }
    let _ = s.write_all(&asks);
    assert!(
        wait_for(20, || d.log().contains(
            "control client did not read its answer within 1000 ms: dropped"
        )),
        "{}",
        d.log()
    );
    // The daemon hung up: what is buffered, then EOF (or a reset, as the
    // daemon closed with requests unread), short of all answers.
    let mut got = Vec::new();
    if let Err(e) = s.read_to_end(&mut got) {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    let one = {
        let mut c = rvs::ctl::Client::connect(&socket, "b5").unwrap();
        codec::encode_frame(&c.call(&Request::List(None)).unwrap())
            .unwrap()
            .len()
    };
    assert!(
        got.len() < one * ASKED,
        "{} of {} bytes",
        got.len(),
        one * ASKED
    );
    d.ok(&["-L", "-n"]);
}

#[test]
fn b5_frames_of_read_only_clients_are_capped() {
    if !need_root("b5_frames_of_read_only_clients_are_capped") {
        return;
    }
    let d = Daemon::start_with(&["--default-check", "none", "--socket-mode", "666"]);
    // A 200 KiB -R from a client that may only read: refused before the
    // body is read, with the cap in the message.
    let mut restore = String::new();
    for i in 0..4000 {
        restore += &format!("-A -t 127.40.7.{}:{} -s rr\n", 1 + i / 250, 1000 + i);
    }
    let out = rvsadm_as_nobody(&d.dir.0, &d.socket, &["-R"], &restore);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("bytes allowed to a client that may only read"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.ok(&["-S", "-n"]), "");
}

// ---- B7: SIGHUP --------------------------------------------------------------

#[test]
fn b7_sighup_does_not_stop_rvsd() {
    let backend = Backend::tcp_on("127.40.0.3:0", "b7-backend");
    let vip = vip_on("127.40.0.4");
    let mut d = Daemon::start();
    proxied_service(&d, vip, &backend);
    let held = Held::open("127.40.0.100", vip);
    for n in 1..=2 {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(d.pid() as i32),
            nix::sys::signal::SIGHUP,
        )
        .unwrap();
        assert!(
            wait_for(10, || d.log().matches("SIGHUP received").count() >= n),
            "{}",
            d.log()
        );
        assert_alive(&mut d, "SIGHUP");
    }
    assert!(d.ok(&["-L", "-n"]).contains(&backend.addr.to_string()));
    assert_eq!(who_from("127.40.0.100", vip), "b7-backend");
    let mut held = held;
    assert_eq!(held.echo(b"still here"), b"still here");
}

// ---- B10: only a socket is replaced --------------------------------------

#[test]
fn b10_regular_file_at_the_socket_path_is_never_deleted() {
    let dir = TempDir::new("b10");
    let precious = dir.0.join("table.state");
    std::fs::write(&precious, b"the table, not a socket\n").unwrap();
    let out = rvsd_refuses(&mut rvsd_cmd(&precious, &dir.0.join("state")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().last().unwrap(),
        format!(
            "rvsd: --socket {} is a regular file of 24 bytes, not a socket: refusing to replace it (point --socket at a new path, or remove the file yourself if it is not needed)",
            precious.display()
        )
    );
    assert_eq!(
        std::fs::read(&precious).unwrap(),
        b"the table, not a socket\n"
    );
    // A directory is refused too; a stale socket is still replaced.
    let sub = dir.0.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let out = rvsd_refuses(&mut rvsd_cmd(&sub, &dir.0.join("state")));
    assert!(
        stderr(&out).contains("is a directory, not a socket"),
        "{}",
        stderr(&out)
    );
    assert!(sub.is_dir());
    let stale = dir.0.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let d = Rvsd::start(
        &mut rvsd_cmd(&stale, &dir.0.join("state")),
        &stale,
        &dir.0.join("rvsd.log"),
    )
    .unwrap();
    assert!(d.log().contains("replaced a stale socket file"));
}

// ---- B11: the socket directory -------------------------------------------

#[test]
fn b11_default_socket_dir_must_be_ours_and_private() {
    if !need_root("b11_default_socket_dir_must_be_ours_and_private") {
        return;
    }
    // rvsd as uid 65534 with XDG_RUNTIME_DIR set: its default socket is
    // $XDG_RUNTIME_DIR/rvs/rvsd.sock.
    let dir = TempDir::new("b11");
    let (gid, _) = nobody_group();
    let rvsd = copy_for_nobody(&dir.0, Path::new(RVSD), "rvsd-copy");
    let xdg = dir.0.join("xdg");
    let state = dir.0.join("state");
    for d in [&xdg, &state] {
        std::fs::create_dir(d).unwrap();
        nix::unistd::chown(
            d,
            Some(nix::unistd::Uid::from_raw(NOBODY)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let sockdir = xdg.join("rvs");
    let socket = sockdir.join("rvsd.sock");
    let cmd = || {
        let mut c = Command::new(&rvsd);
        c.arg("--state-dir")
            .arg(&state)
            .args(NO_CHECKS)
            .env_remove("RVS_SOCKET")
            .env("XDG_RUNTIME_DIR", &xdg)
            .uid(NOBODY)
            .gid(gid);
        c
    };
    let fix = "remove it (or fix its owner and mode) or point --socket elsewhere";

    // Pre-created by another user (root here).
    std::fs::create_dir(&sockdir).unwrap();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = rvsd_refuses(&mut cmd());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).lines().last().unwrap(),
        format!("rvsd: socket directory {} belongs to uid 0, not to rvsd's uid {NOBODY}: another user may have created it to receive rvsadm's commands; {fix}", sockdir.display())
    );
    // Ours, but writable by others.
    nix::unistd::chown(
        &sockdir,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = rvsd_refuses(&mut cmd());
    assert_eq!(
        stderr(&out).lines().last().unwrap(),
        format!("rvsd: socket directory {} is writable by group or others (mode 0777): anyone who can write there can replace the socket; {fix}", sockdir.display())
    );
    assert!(!socket.exists());
    // Absent: rvsd creates it, owned by its uid, traverse-only for others
    // (the default --socket-mode 660 lets the group connect).
    std::fs::remove_dir(&sockdir).unwrap();
    let d = Rvsd::start(&mut cmd(), &socket, &dir.0.join("rvsd.log")).unwrap();
    let meta = std::fs::symlink_metadata(&sockdir).unwrap();
    assert_eq!(meta.uid(), NOBODY);
    assert_eq!(meta.mode() & 0o7777, 0o711);
    d.ok(&["-L", "-n"]);
    drop(d);
    // With --socket-mode 600 nobody else needs to reach it: 0700.
    let _ = std::fs::remove_file(&socket);
    std::fs::remove_dir(&sockdir).unwrap();
    let d = Rvsd::start(
        cmd().args(["--socket-mode", "600"]),
        &socket,
        &dir.0.join("rvsd2.log"),
    )
    .unwrap();
    assert_eq!(
        std::fs::symlink_metadata(&sockdir).unwrap().mode() & 0o7777,
        0o700
    );
    drop(d);
}

#[test]
fn b11_explicit_socket_in_a_world_writable_dir_needs_the_sticky_bit() {
    let dir = TempDir::new("b11-explicit");
    let open = dir.0.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = open.join("rvsd.sock");
    let out = rvsd_refuses(&mut rvsd_cmd(&socket, &dir.0.join("state")));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "socket directory {} is writable by everyone and not sticky (mode 0777): anyone could replace the socket",
            open.display()
        )),
        "{}",
        stderr(&out)
    );
    // Sticky, as /tmp: accepted.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let d = Rvsd::start(
        &mut rvsd_cmd(&socket, &dir.0.join("state")),
        &socket,
        &dir.0.join("rvsd.log"),
    )
    .unwrap();
    d.ok(&["-L", "-n"]);
    // A directory rvsd creates for an explicit path is private too.
    drop(d);
    let socket = dir.0.join("new/sub/rvsd.sock");
    let d = Rvsd::start(
        rvsd_cmd(&socket, &dir.0.join("state")).args(["--socket-mode", "600"]),
        &socket,
        &dir.0.join("rvsd2.log"),
    )
    .unwrap();
    for p in [dir.0.join("new"), dir.0.join("new/sub")] {
        assert_eq!(
            std::fs::metadata(&p).unwrap().mode() & 0o777,
            0o700,
            "{p:?}"
        );
    }
    drop(d);
}

// ---- B14: rvsadm's timeout -----------------------------------------------

#[test]
fn b14_rvsadm_gives_up_on_a_silent_daemon() {
    let dir = TempDir::new("b14");
    let socket = dir.0.join("silent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // Accepts and never answers; keeps every connection open.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(16) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let run = |args: &[&str], timeout: &str| {
        let start = Instant::now();
        let mut child = Command::new(RVSADM)
            .args(args)
            .env("RVS_SOCKET", &socket)
            .env("RVS_TIMEOUT", timeout)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("rvsadm {args:?} still waiting after 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (child.wait_with_output().unwrap(), start.elapsed())
    };
    let expect = format!(
        "rvsd on {} did not answer within 1 s; it may be stuck or overloaded (check its log; set RVS_TIMEOUT=SECS to wait longer, 0 waits forever)\n",
        socket.display()
    );
    for args in [&["-L", "-n"][..], &["-A", "-t", "127.40.14.1:80"]] {
        let (out, took) = run(args, "1");
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), expect);
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    }
    // A bad value is named.
    let (out, _) = run(&["-L", "-n"], "soon");
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "RVS_TIMEOUT=soon is not a number of seconds from 0 to 86400 (0 waits forever)\n"
    );
}
