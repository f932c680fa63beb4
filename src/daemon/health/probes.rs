//! The probes of active checks (tcp, http, udp, exec), and how a failure
//! for lack of a local resource is told from a failure of the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::ctl::proto::CheckKind;

use super::{unix_ms, Check};

/// Why a probe did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server failed the check (reason in words).
    Server(String),
    /// This host lacked a resource to run the probe: says nothing about
    /// the server, counts neither way (the error, and what to do about it).
    Local(String, &'static str),
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Failure::Server(why)
    }
}

/// Whether `e` says this host ran out of something — descriptors
/// (EMFILE, ENFILE), socket buffers (ENOBUFS), memory (ENOMEM), epoll
/// watches (ENOSPC) or ephemeral ports (EADDRNOTAVAIL on connect) —
/// rather than that the other side failed.
pub(crate) fn is_local_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ENOSPC
                | libc::EADDRNOTAVAIL
        )
    )
}

/// An I/O error of a probe: local or the server's.
fn io_failure(e: std::io::Error) -> Failure {
    if is_local_error(&e) {
        Failure::Local(e.to_string(), local_hint(&e))
    } else {
        Failure::Server(io_reason(&e))
    }
}

/// Local resource errors met on connects and probes, since start.
static LOCAL_ERRORS: AtomicU64 = AtomicU64::new(0);
/// When one was last logged (ms since the epoch), and how many went
/// unlogged since.
static LOCAL_LOGGED_MS: AtomicU64 = AtomicU64::new(0);
static LOCAL_UNLOGGED: AtomicU64 = AtomicU64::new(0);

/// Local resource errors met so far (upstream connects, health probes).
pub(crate) fn local_errors() -> u64 {
    LOCAL_ERRORS.load(Relaxed)
}

/// Count a local resource error met by `what` (e.g. "connect to a real
/// server") toward `server`; logged at most once a second, with how many
/// went unlogged before it.
pub(crate) fn local_error(
    what: &str,
    server: SocketAddr,
    error: &dyn std::fmt::Display,
    hint: &'static str,
) {
    LOCAL_ERRORS.fetch_add(1, Relaxed);
    let now = unix_ms();
    let last = LOCAL_LOGGED_MS.load(Relaxed);
    if now.saturating_sub(last) < 1000
        || LOCAL_LOGGED_MS
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
    {
        LOCAL_UNLOGGED.fetch_add(1, Relaxed);
        return;
    }
    let unlogged = LOCAL_UNLOGGED.swap(0, Relaxed);
    tracing::warn!(
        %server,
        error = %error,
        total = LOCAL_ERRORS.load(Relaxed),
        unlogged,
        "{what} failed for lack of a local resource (not counted against the server): {hint}"
    );
}

/// What to do about local error `e`, in words for the log.
pub(crate) fn local_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) => {
            "raise rvsd's open-file limit (LimitNOFILE) or lower --max-connections"
        }
        Some(libc::ENFILE) => "the system's file table is full (fs.file-max)",
        Some(libc::EADDRNOTAVAIL) => {
            "out of local ports toward this server (net.ipv4.ip_local_port_range)"
        }
        Some(libc::ENOSPC) => "out of epoll watches (fs.epoll.max_user_watches)",
        Some(libc::EAGAIN) => "out of processes (RLIMIT_NPROC)",
        _ => "the host is short of memory or socket buffers",
    }
}

/// One probe: `Ok(what passed)` or why not.
pub async fn probe(check: &Check) -> Result<String, Failure> {
    let secs = check.timeout.as_secs_f64();
    let timed_out = || format!("timeout after {} s", trim_float(secs));
    match check.kind {
        CheckKind::None => Ok("no active check".to_string()),
        CheckKind::Tcp => {
            match tokio::time::timeout(check.timeout, tokio::net::TcpStream::connect(check.target))
                .await
            {
                Ok(Ok(_)) => Ok("connected".to_string()),
                Ok(Err(e)) => Err(io_failure(e)),
                Err(_) => Err(timed_out().into()),
            }
        }
        CheckKind::Http => match tokio::time::timeout(check.timeout, http(check)).await {
            Ok(r) => r,
            Err(_) => Err(timed_out().into()),
        },
        CheckKind::Udp => match tokio::time::timeout(check.timeout, udp(check)).await {
            Ok(r) => r,
            Err(_) => Err(timed_out().into()),
        },
        CheckKind::Exec => exec(check).await,
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An I/O error in the words listings use.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    io_reason(e)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        _ => e.to_string(),
    }
}

async fn http(check: &Check) -> Result<String, Failure> {
    let tcp = tokio::net::TcpStream::connect(check.target)
        .await
        .map_err(io_failure)?;
    Ok(http_exchange(tcp, check).await?)
}

/// The HTTP check over a connected stream: send the request, parse the
/// response (hyper's HTTP/1 client), judge its status and body.
async fn http_exchange<IO>(io: IO, check: &Check) -> Result<String, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::{BodyExt, Empty};
    let io = hyper_util::rt::TokioIo::new(io);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<hyper::body::Bytes>>(io)
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = check
        .http_host
        .clone()
        .unwrap_or_else(|| check.target.to_string());
    let req = hyper::Request::get(check.http_path.as_str())
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "rvsd-health-check")
        .body(Empty::new())
        .map_err(|e| format!("bad HTTP request: {e}"))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP request failed: {e}"))?;
        let status = resp.status().as_u16();
        let (lo, hi) = check.http_status;
        if !(lo..=hi).contains(&status) {
            Err(format!("HTTP {status}"))
        } else if let Some(needle) = &check.http_body {
            let mut body = resp.into_body();
            let mut seen = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("HTTP body: {e}"))?;
                if let Some(data) = frame.data_ref() {
                    seen.extend_from_slice(data);
                }
                if seen.len() > 1 << 20 {
                    break;
                }
            }
            if String::from_utf8_lossy(&seen).contains(needle.as_str()) {
                Ok(format!("HTTP {status}"))
            } else {
                Err(format!("HTTP {status} without \"{needle}\" in the body"))
            }
        } else {
            Ok(format!("HTTP {status}"))
        }
    }
    .await;
    driver.abort();
    result
}

/// The health check's HTTP response parser and judge, on raw bytes (for
/// fuzzing and tests): `raw` is what the server answers to the check's
/// `GET`, `status` the accepted range (`--check-http-status`), `body` the
/// text the body must contain (`--check-http-body`). Returns what passed
/// or why not, exactly as `-L --health` would show it. Runs the real
/// check code (hyper's HTTP/1 client) over an in-memory stream that
/// ends after `raw`.
pub fn parse_http_response(
    raw: &[u8],
    status: (u16, u16),
    body: Option<&str>,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = Check {
        kind: CheckKind::Http,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        rise: 1,
        fall: 1,
        jitter: Duration::ZERO,
        target: SocketAddr::from(([127, 0, 0, 1], 80)),
        initial_up: true,
        http_path: "/".to_string(),
        http_host: None,
        http_status: status,
        http_body: body.map(str::to_string),
        exec: String::new(),
        udp_send: String::new(),
        udp_expect: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(async {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (mut rd, mut wr) = tokio::io::split(theirs);
        let raw = raw.to_vec();
        // The server: read the request, answer `raw`, then end (and
        // swallow whatever else comes).
        let server = tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match rd.read(&mut buf).await {
                    Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let _ = wr.write_all(&raw).await;
            let _ = wr.shutdown().await;
            while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        // Bounded, as the real check is by its timeout.
        let r = match tokio::time::timeout(check.timeout, http_exchange(ours, &check)).await {
            Ok(r) => r,
            Err(_) => Err("timeout after 1 s".to_string()),
        };
        server.abort();
        r
    })
}

async fn udp(check: &Check) -> Result<String, Failure> {
    let local: SocketAddr = if check.target.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .expect("valid");
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(io_failure)?;
    sock.connect(check.target).await.map_err(io_failure)?;
    sock.send(check.udp_send.as_bytes())
        .await
        .map_err(io_failure)?;
    let mut buf = vec![0u8; 65536];
    let n = sock.recv(&mut buf).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Failure::Server("port unreachable".to_string()),
        _ => io_failure(e),
    })?;
    match &check.udp_expect {
        Some(want) if !String::from_utf8_lossy(&buf[..n]).contains(want.as_str()) => {
            Err(format!("unexpected UDP reply ({n} bytes)").into())
        }
        _ => Ok(format!("UDP reply ({n} bytes)")),
    }
}

async fn exec(check: &Check) -> Result<String, Failure> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&check.exec)
        .env("RVS_SERVER_ADDR", check.target.ip().to_string())
        .env("RVS_SERVER_PORT", check.target.port().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    // A spawn that fails for lack of descriptors, memory or processes
    // (EAGAIN: RLIMIT_NPROC) is this host's problem, not the server's.
    let mut child = cmd.spawn().map_err(|e| {
        let why = format!("cannot run the check command: {e}");
        if is_local_error(&e) || e.raw_os_error() == Some(libc::EAGAIN) {
            Failure::Local(why, local_hint(&e))
        } else {
            Failure::Server(why)
        }
    })?;
    let pid = child.id();
    match tokio::time::timeout(check.timeout, child.wait()).await {
        Ok(Ok(st)) if st.success() => Ok("exit 0".to_string()),
        Ok(Ok(st)) => Err(Failure::Server(match st.code() {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".to_string(),
        })),
        Ok(Err(e)) => Err(Failure::Server(format!("check command: {e}"))),
        Err(_) => {
            // Kill the whole process group: the shell and whatever it started.
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            Err(Failure::Server(format!(
                "timeout after {} s",
                trim_float(check.timeout.as_secs_f64())
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_responses_are_judged_as_the_check_judges_them() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nall ok\n";
        assert_eq!(
            parse_http_response(ok, (200, 399), None),
            Ok("HTTP 200".into())
        );
        assert_eq!(
            parse_http_response(ok, (200, 399), Some("all ok")),
            Ok("HTTP 200".into())
        );
        assert_eq!(
            parse_http_response(ok, (200, 399), Some("ready")),
            Err("HTTP 200 without \"ready\" in the body".into())
        );
        let busy = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_http_response(busy, (200, 399), None),
            Err("HTTP 503".into())
        );
        // Until EOF: a body without a length.
        let eof = b"HTTP/1.0 200 OK\r\n\r\nstill ready";
        assert_eq!(
            parse_http_response(eof, (200, 200), Some("ready")),
            Ok("HTTP 200".into())
        );
        for bad in [
            &b""[..],
            b"\0\xff garbage\r\n\r\n",
            b"HTTP/1.1 2000 X\r\n\r\n",
        ] {
            let r = parse_http_response(bad, (200, 399), None);
            assert!(
                r.as_ref()
                    .is_err_and(|e| e.starts_with("HTTP request failed")),
                "{bad:?}: {r:?}"
            );
        }
    }

    #[test]
    fn local_resource_errors_are_told_from_the_servers() {
        for local in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EADDRNOTAVAIL,
        ] {
            let e = std::io::Error::from_raw_os_error(local);
            assert!(is_local_error(&e), "{e}");
            assert!(matches!(io_failure(e), Failure::Local(..)));
        }
        for remote in [libc::ECONNREFUSED, libc::ECONNRESET, libc::EHOSTUNREACH] {
            let e = std::io::Error::from_raw_os_error(remote);
            assert!(!is_local_error(&e), "{e}");
            assert!(matches!(io_failure(e), Failure::Server(_)));
        }
    }
}
