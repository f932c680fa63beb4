//! Small back ends on loopback that say who they are.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A TCP back end: greets each connection with `name\n`, then echoes
/// everything back and closes after the client's FIN.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    stop: Arc<AtomicBool>,
    pub accepted: Arc<AtomicU64>,
    /// The accept loop; the listener closes when it returns.
    acceptor: Mutex<Option<thread::JoinHandle<()>>>,
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
        let acceptor = thread::spawn(move || {
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
            acceptor: Mutex::new(Some(acceptor)),
        }
    }

    /// Stop accepting and close the listener (new connections are refused
    /// once this returns); accepted connections go on.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.acceptor.lock().unwrap().take() {
            let _ = t.join();
        }
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
