//! The real `rvsd` under test: start, stop, crash, restart, and drive it
//! with `rvsadm` or the control protocol.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rvs::ctl::proto::{
    ConnEntry, Protocol, RealServerSpec, Request, Response, ServerView, ServiceKey, ServiceSpec,
    ServiceView,
};

use super::{code, rvsadm_at, stderr, stdout, TempDir, RVSD};

/// A running rvsd, killed (by PID) on drop.
pub struct Daemon {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    /// RLIMIT_NOFILE (soft and hard) rvsd runs under, set by prlimit(1).
    nofile: Option<u64>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Daemon {
        let dir = TempDir::new("rvsd");
        let socket = dir.0.join("rvsd.sock");
        let state_dir = dir.0.join("state");
        let mut d = Daemon {
            dir,
            socket,
            state_dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            nofile: None,
        };
        d.spawn().expect("rvsd starts");
        d
    }

    /// Start rvsd under an open-files limit of its own (soft and hard, so
    /// that rvsd cannot raise it).
    pub fn start_limited(nofile: u64, extra: &[&str]) -> Daemon {
        let dir = TempDir::new("rvsd");
        let socket = dir.0.join("rvsd.sock");
        let state_dir = dir.0.join("state");
        let mut d = Daemon {
            dir,
            socket,
            state_dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            nofile: Some(nofile),
        };
        d.spawn().expect("rvsd starts");
        d
    }

    /// Start rvsd on a copy of the state files in `files` (a golden
    /// `table.state`, maybe a `table.journal`; other files are not copied).
    pub fn start_on(files: &Path, extra: &[&str]) -> Daemon {
        let dir = TempDir::new("rvsd");
        let socket = dir.0.join("rvsd.sock");
        let state_dir = dir.0.join("state");
        std::fs::create_dir(&state_dir).unwrap();
        for name in ["table.state", "table.journal"] {
            if files.join(name).exists() {
                std::fs::copy(files.join(name), state_dir.join(name)).unwrap();
            }
        }
        let mut d = Daemon {
            dir,
            socket,
            state_dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            nofile: None,
        };
        d.spawn().expect("rvsd starts");
        d
    }

    /// Start rvsd on this daemon's socket and state; Err(stderr) if it exits.
    pub fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("rvsd.log"))
            .unwrap();
        // prlimit(1) (util-linux) sets the limit and execs rvsd: same PID.
        let mut cmd = match self.nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(RVSD);
                c
            }
            None => Command::new(RVSD),
        };
        let mut child = cmd
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--log-level")
            .arg("debug")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rvsd");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("rvsd exited with {status}: {}", self.log()));
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("rvsd did not open its socket: {}", self.log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("rvsd.log")).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGTERM,
        )
        .unwrap();
        child.wait().unwrap()
    }

    /// SIGKILL (crash) and reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn restart(&mut self) {
        self.spawn().expect("rvsd restarts");
    }

    /// Run rvsadm against this daemon.
    pub fn rvsadm(&self, args: &[&str]) -> Output {
        self.rvsadm_stdin(args, "")
    }

    pub fn rvsadm_stdin(&self, args: &[&str], stdin: &str) -> Output {
        rvsadm_at(&self.socket, args, stdin)
    }

    /// Run rvsadm and insist on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.rvsadm(args);
        assert!(
            out.status.success(),
            "rvsadm {args:?} failed ({}): {}\nrvsd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn client(&self) -> rvs::ctl::Client {
        rvs::ctl::Client::connect(&self.socket, "test").expect("connect to rvsd")
    }

    // ---- Process control, configuration through the control protocol,
    // table inspection. ----

    /// Send SIGTERM without waiting.
    pub fn sigterm(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::SIGTERM,
        )
        .unwrap();
    }

    /// Wait up to `secs` for the daemon to exit; the status once it has.
    /// Clears the child on exit (so `restart` may follow).
    pub fn wait_exit(&mut self, secs: f64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// One control request that must succeed.
    pub fn call(&self, req: Request) -> Response {
        let mut c = self.client();
        c.call(&req)
            .unwrap_or_else(|e| panic!("{req:?} failed: {e}\nrvsd log:\n{}", self.log()))
    }

    /// Add a service (the spec as given).
    pub fn add_service(&self, spec: ServiceSpec) -> ServiceKey {
        let key = spec.key;
        self.call(Request::AddService(spec));
        key
    }

    /// Add a real server with a weight (and no thresholds).
    pub fn add_server(&self, service: ServiceKey, addr: SocketAddr, weight: u32) {
        self.add_server_spec(
            service,
            RealServerSpec {
                weight,
                ..RealServerSpec::new(addr)
            },
        );
    }

    pub fn add_server_spec(&self, service: ServiceKey, server: RealServerSpec) {
        self.call(Request::AddServer { service, server });
    }

    pub fn edit_server(&self, service: ServiceKey, server: RealServerSpec) {
        self.call(Request::EditServer { service, server });
    }

    pub fn delete_server(&self, service: ServiceKey, server: SocketAddr) {
        self.call(Request::DeleteServer { service, server });
    }

    /// The listing of one service.
    pub fn service(&self, key: ServiceKey) -> ServiceView {
        match self.call(Request::List(Some(key))) {
            Response::Table(t) => t
                .services
                .into_iter()
                .find(|s| s.spec.key == key)
                .expect("the service is listed"),
            other => panic!("unexpected answer to List: {other:?}"),
        }
    }

    /// The listing of one real server of a service.
    pub fn server(&self, key: ServiceKey, addr: SocketAddr) -> ServerView {
        self.service(key)
            .servers
            .into_iter()
            .find(|s| s.spec.addr == addr)
            .unwrap_or_else(|| panic!("{addr} is listed"))
    }

    /// The connection table (`-L -c`).
    pub fn connections(&self) -> Vec<ConnEntry> {
        match self.call(Request::ListConnections) {
            Response::Connections(c) => c,
            other => panic!("unexpected answer to ListConnections: {other:?}"),
        }
    }

    /// Everything the table holds, as text: `-S -n` plus `-L --timeout`.
    pub fn state(&self) -> String {
        format!(
            "{}{}",
            self.ok(&["-S", "-n"]),
            self.ok(&["-L", "--timeout"])
        )
    }

    /// Run rvsadm, insist that it fails with `status` and that stderr
    /// contains `msg`, and that the table did not change. Returns stderr.
    pub fn refused(&self, args: &[&str], status: i32, msg: &str) -> String {
        let before = self.state();
        let out = self.rvsadm(args);
        let err = stderr(&out);
        assert_eq!(
            code(&out),
            status,
            "rvsadm {args:?}: exit status; stderr: {err}"
        );
        assert!(
            err.contains(msg),
            "rvsadm {args:?}: stderr {err:?} lacks {msg:?}"
        );
        assert!(
            out.stdout.is_empty(),
            "rvsadm {args:?}: unexpected stdout {:?}",
            stdout(&out)
        );
        assert_eq!(self.state(), before, "rvsadm {args:?} changed the table");
        err
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The key of a TCP or UDP service.
pub fn tcp_key(addr: SocketAddr) -> ServiceKey {
    ServiceKey {
        proto: Protocol::Tcp,
        addr,
    }
}

pub fn udp_key(addr: SocketAddr) -> ServiceKey {
    ServiceKey {
        proto: Protocol::Udp,
        addr,
    }
}

/// A service spec with a scheduler and otherwise ipvsadm's defaults.
pub fn spec(key: ServiceKey, sched: &str) -> ServiceSpec {
    ServiceSpec {
        scheduler: sched.into(),
        ..ServiceSpec::new(key)
    }
}
