//! Test harness: the real `rvsd` on a temporary socket, the real `rvsadm`,
//! and small back ends on loopback that say who they are.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// rvsd flags for tests whose real servers are documentation addresses
/// (198.51.100.0/24, listed as `Masq` rather than `Local`): no default
/// health check, so nothing is ever sent to them. Such tests send no traffic
/// through those services either.
pub const NO_CHECKS: &[&str] = &["--default-check", "none"];
pub const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rvs-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running rvsd, killed (by PID) on drop.
pub struct Daemon {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
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
        let mut child = Command::new(RVSD)
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
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn rvsadm_at(socket: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(RVSADM)
        .args(args)
        .env("RVS_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rvsadm");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_string();
    let writer = thread::spawn(move || {
        let _ = input.write_all(data.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A loopback port that was free a moment ago.
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP back end: greets each connection with `name\n`, then echoes
/// everything back and closes after the client's FIN.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    stop: Arc<AtomicBool>,
    pub accepted: Arc<AtomicU64>,
}

impl Backend {
    pub fn tcp(name: &str) -> Backend {
        Backend::tcp_on("127.0.0.1:0", name)
    }

    pub fn tcp_on(addr: &str, name: &str) -> Backend {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (s, a, n) = (stop.clone(), accepted.clone(), name.to_string());
        thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        let n = n.clone();
                        thread::spawn(move || {
                            c.set_nonblocking(false).unwrap();
                            let _ = c.write_all(format!("{n}\n").as_bytes());
                            let mut buf = vec![0u8; 64 * 1024];
                            loop {
                                match c.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(k) => {
                                        if c.write_all(&buf[..k]).is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            let _ = c.shutdown(std::net::Shutdown::Write);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend {
            addr,
            name: name.to_string(),
            stop,
            accepted,
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A UDP back end: answers every datagram with `name:` + the payload.
pub struct UdpBackend {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UdpBackend {
    pub fn start(name: &str) -> UdpBackend {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = s.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, n) = (stop.clone(), name.to_string());
        thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !st.load(Ordering::Relaxed) {
                if let Ok((k, from)) = s.recv_from(&mut buf) {
                    let mut reply = format!("{n}:").into_bytes();
                    reply.extend_from_slice(&buf[..k]);
                    let _ = s.send_to(&reply, from);
                }
            }
        });
        UdpBackend { addr, stop }
    }
}

impl Drop for UdpBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Connect to `to` from source address `from` (e.g. 127.0.0.7) so that
/// schedulers see distinct clients.
pub fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{
        bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    let family = if to.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd: OwnedFd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    let local: SocketAddr = SocketAddr::new(from.parse().unwrap(), 0);
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(local),
    )?;
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(to),
    )?;
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

/// Connect through the balancer and return the back end's greeting.
pub fn who(vip: SocketAddr) -> String {
    who_from("127.0.0.1", vip)
}

pub fn who_from(from: &str, vip: SocketAddr) -> String {
    let s = connect_from(from, vip).expect("connect to the virtual service");
    greeting(&s)
}

pub fn greeting(s: &TcpStream) -> String {
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .expect("greeting from a back end");
    line.trim_end().to_string()
}

/// Poll `cond` for up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}

// ---- Helpers for the data-plane tests (configuration through the control
// protocol, table inspection, held connections, process control). ----

use rvs::ctl::proto::{
    ConnEntry, Protocol, RealServerSpec, Request, Response, ServerView, ServiceKey, ServiceSpec,
    ServiceView,
};

impl Daemon {
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
}

/// A free `ip:port` on loopback for a virtual service.
pub fn vip_on(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), free_port(ip))
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

/// An open proxied connection whose greeting has been read (so the daemon
/// has bound it to a real server and counts it).
pub struct Held {
    pub stream: TcpStream,
    pub server: String,
}

impl Held {
    pub fn open(from: &str, vip: SocketAddr) -> Held {
        let stream = connect_from(from, vip).expect("connect to the virtual service");
        let server = greeting(&stream);
        Held { stream, server }
    }

    /// Send `msg` and read exactly its echo back.
    pub fn echo(&mut self, msg: &[u8]) -> Vec<u8> {
        self.stream.write_all(msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        self.stream.read_exact(&mut back).unwrap();
        back
    }

    /// Half-close, drain the rest and wait for the EOF.
    pub fn finish(mut self) -> Vec<u8> {
        self.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).unwrap();
        rest
    }
}

/// Open a connection, read the greeting, send `payload`, half-close and
/// return (greeting, everything after it until EOF).
pub fn exchange(from: &str, vip: SocketAddr, payload: &[u8]) -> (String, Vec<u8>) {
    let mut s = connect_from(from, vip).expect("connect to the virtual service");
    s.write_all(payload).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let nl = all
        .iter()
        .position(|&b| b == b'\n')
        .expect("a greeting line");
    let name = String::from_utf8_lossy(&all[..nl]).into_owned();
    (name, all[nl + 1..].to_vec())
}

/// Raise this process's open-file limit to the hard limit (tests holding
/// hundreds of sockets on both ends).
pub fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// True when a read ended because the peer closed or reset (not a timeout).
pub fn closed_by_peer(r: &std::io::Result<usize>) -> bool {
    match r {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// `addr:port` on loopback `ip` with a port that was free a moment ago
/// (`[::1]:port` for IPv6), ready for `-t`/`-u`.
pub fn loopback_vip(ip: &str) -> String {
    let port = free_port(ip);
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Exit status of a finished rvsadm (-1 when killed by a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

impl Daemon {
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

/// The text of rvsd's `/metrics` at `addr`.
pub fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("metrics endpoint answers");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: rvs\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The value of the first series in `text` that starts with `series`.
pub fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}
