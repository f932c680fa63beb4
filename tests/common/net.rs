//! Loopback addresses and client connections through the balancer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

/// A loopback port that was free a moment ago.
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free `ip:port` on loopback for a virtual service.
pub fn vip_on(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), free_port(ip))
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
