//! Blocking control-protocol client used by `rvsadm` and `rvstop`.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::codec;
use super::error::CtlError;
use super::proto::{DaemonInfo, Request, Response, Update, PROTOCOL_VERSION, RVS_VERSION};

/// How long the hello and each request wait for rvsd unless `RVS_TIMEOUT`
/// says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that overrides [`DEFAULT_TIMEOUT`]: whole
/// seconds, `0` = wait forever.
pub const TIMEOUT_ENV: &str = "RVS_TIMEOUT";

/// The request timeout: `RVS_TIMEOUT` (seconds, 0 = none), else 30 s.
pub fn request_timeout() -> Result<Option<Duration>, CtlError> {
    let Some(v) = std::env::var_os(TIMEOUT_ENV).filter(|v| !v.is_empty()) else {
        return Ok(Some(DEFAULT_TIMEOUT));
    };
    let text = v.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(secs) if secs <= 24 * 3600 => Ok(Some(Duration::from_secs(secs))),
        _ => Err(CtlError::Config(format!(
            "{TIMEOUT_ENV}={text} is not a number of seconds from 0 to 86400 (0 waits forever)"
        ))),
    }
}

/// One connection to rvsd, past the version handshake.
pub struct Client {
    stream: UnixStream,
    daemon: DaemonInfo,
    path: PathBuf,
    /// The timeout of requests (`None` = none).
    timeout: Option<Duration>,
    /// Set by [`Client::set_timeout`]: a subscription keeps it.
    explicit_timeout: bool,
}

impl Client {
    /// Connect to `path` and exchange hellos. `name` identifies the client in
    /// the daemon's log (e.g. "rvsadm"). The hello and every later request
    /// wait at most [`request_timeout`] (30 s, or `RVS_TIMEOUT`).
    pub fn connect(path: &Path, name: &str) -> Result<Client, CtlError> {
        let timeout = request_timeout()?;
        let stream = UnixStream::connect(path).map_err(|source| CtlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        stream.set_read_timeout(timeout).map_err(CtlError::Io)?;
        stream.set_write_timeout(timeout).map_err(CtlError::Io)?;
        let mut client = Client {
            stream,
            daemon: DaemonInfo {
                protocol: 0,
                version: String::new(),
                pid: 0,
                uptime_secs: 0,
            },
            path: path.to_path_buf(),
            timeout,
            explicit_timeout: false,
        };
        let client_name = format!("{name} {RVS_VERSION}");
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: client_name.clone(),
        };
        match remote(client.raw_call(&hello)?)? {
            Response::Hello(info) => {
                if info.protocol != PROTOCOL_VERSION {
                    return Err(CtlError::VersionMismatch {
                        client: client_name,
                        client_proto: PROTOCOL_VERSION,
                        daemon: info.version,
                        daemon_proto: info.protocol,
                    });
                }
                client.daemon = info;
                Ok(client)
            }
            other => Err(CtlError::Unexpected(format!("{other:?}"))),
        }
    }

    /// What the daemon said about itself in the handshake.
    pub fn daemon(&self) -> &DaemonInfo {
        &self.daemon
    }

    /// Bound how long a call (or, after [`Client::subscribe`], the wait for
    /// the next update) may wait for the daemon; `None` waits forever.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), CtlError> {
        self.stream
            .set_read_timeout(timeout)
            .map_err(CtlError::Io)?;
        self.stream
            .set_write_timeout(timeout)
            .map_err(CtlError::Io)?;
        self.timeout = timeout;
        self.explicit_timeout = true;
        Ok(())
    }

    /// Send a request and return the daemon's response; `Response::Error`
    /// becomes `CtlError::Remote`.
    pub fn call(&mut self, req: &Request) -> Result<Response, CtlError> {
        remote(self.raw_call(req)?)
    }

    /// Subscribe to pushed updates every `interval_ms`; the connection then
    /// carries nothing else. Call [`Client::next_update`] to read them.
    /// A subscription is long-lived: the request timeout does not apply to
    /// the updates unless [`Client::set_timeout`] set one.
    pub fn subscribe(&mut self, interval_ms: u32) -> Result<(), CtlError> {
        codec::write_frame(&mut self.stream, &Request::Subscribe { interval_ms })
            .map_err(|e| self.timed_out(e))?;
        if !self.explicit_timeout {
            self.stream.set_read_timeout(None).map_err(CtlError::Io)?;
        }
        Ok(())
    }

    /// Block for the next pushed update of a subscription.
    pub fn next_update(&mut self) -> Result<Update, CtlError> {
        let body = codec::read_frame(&mut self.stream)?;
        match remote(codec::decode_body(&body)?)? {
            Response::Update(u) => Ok(u),
            other => Err(CtlError::Unexpected(format!("{other:?}"))),
        }
    }

    fn raw_call(&mut self, req: &Request) -> Result<Response, CtlError> {
        codec::write_frame(&mut self.stream, req).map_err(|e| self.timed_out(e))?;
        let body = codec::read_frame(&mut self.stream).map_err(|e| self.timed_out(e))?;
        codec::decode_body(&body)
    }

    /// A socket timeout as [`CtlError::Timeout`], naming the socket.
    fn timed_out(&self, e: CtlError) -> CtlError {
        match (e, self.timeout) {
            (CtlError::Io(io), Some(t))
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                CtlError::Timeout {
                    path: self.path.clone(),
                    secs: t.as_secs_f64(),
                }
            }
            (e, _) => e,
        }
    }
}

/// `Response::Error` as `CtlError::Remote`; any other response as it is.
fn remote(resp: Response) -> Result<Response, CtlError> {
    match resp {
        Response::Error {
            kind,
            message,
            index,
        } => Err(CtlError::Remote {
            kind,
            message,
            index,
        }),
        other => Ok(other),
    }
}

/// The socket path to use: explicit flag, else `RVS_SOCKET`, else the default.
pub fn resolve_socket(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("RVS_SOCKET")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(super::default_socket_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A daemon that answers the hello with another protocol version.
    fn newer_daemon(dir: &Path) -> (PathBuf, std::thread::JoinHandle<String>) {
        let sock = dir.join("fake.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let fake = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let body = codec::read_frame(&mut c).unwrap();
            let Request::Hello { client, .. } = codec::decode_body(&body).unwrap() else {
                panic!("the first request must be the hello")
            };
            let info = DaemonInfo {
                protocol: PROTOCOL_VERSION + 1,
                version: "9.9.9".into(),
                pid: 1,
                uptime_secs: 0,
            };
            codec::write_frame(&mut c, &Response::Hello(info)).unwrap();
            client
        });
        (sock, fake)
    }

    #[test]
    fn a_version_mismatch_names_the_client_that_met_it() {
        let dir = std::env::temp_dir().join(format!(
            "rvs-ctl-client-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (sock, fake) = newer_daemon(&dir);
        let err = match Client::connect(&sock, "rvstop") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("connected to a daemon of another protocol"),
        };
        let hello = fake.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(hello, format!("rvstop {RVS_VERSION}"));
        assert_eq!(
            err,
            format!(
                "rvstop {RVS_VERSION} (protocol {PROTOCOL_VERSION}) cannot talk to rvsd 9.9.9 \
                 (protocol {}): install matching versions",
                PROTOCOL_VERSION + 1
            )
        );
    }
}
