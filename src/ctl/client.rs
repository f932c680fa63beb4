//! Blocking control-protocol client used by `rvsadm` and `rvstop`.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::codec;
use super::error::CtlError;
use super::proto::{DaemonInfo, Request, Response, Update, PROTOCOL_VERSION, RVS_VERSION};

/// One connection to rvsd, past the version handshake.
pub struct Client {
    stream: UnixStream,
    daemon: DaemonInfo,
}

impl Client {
    /// Connect to `path` and exchange hellos. `name` identifies the client in
    /// the daemon's log (e.g. "rvsadm").
    pub fn connect(path: &Path, name: &str) -> Result<Client, CtlError> {
        let stream = UnixStream::connect(path).map_err(|source| CtlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let mut client = Client {
            stream,
            daemon: DaemonInfo {
                protocol: 0,
                version: String::new(),
                pid: 0,
                uptime_secs: 0,
            },
        };
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: format!("{name} {RVS_VERSION}"),
        };
        match remote(client.raw_call(&hello)?)? {
            Response::Hello(info) => {
                if info.protocol != PROTOCOL_VERSION {
                    return Err(CtlError::VersionMismatch {
                        client: RVS_VERSION.to_string(),
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

    /// Bound how long a call may wait for the daemon.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), CtlError> {
        self.stream
            .set_read_timeout(timeout)
            .map_err(CtlError::Io)?;
        self.stream.set_write_timeout(timeout).map_err(CtlError::Io)
    }

    /// Send a request and return the daemon's response; `Response::Error`
    /// becomes `CtlError::Remote`.
    pub fn call(&mut self, req: &Request) -> Result<Response, CtlError> {
        remote(self.raw_call(req)?)
    }

    /// Subscribe to pushed updates every `interval_ms`; the connection then
    /// carries nothing else. Call [`Client::next_update`] to read them.
    pub fn subscribe(&mut self, interval_ms: u32) -> Result<(), CtlError> {
        codec::write_frame(&mut self.stream, &Request::Subscribe { interval_ms })
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
        codec::write_frame(&mut self.stream, req)?;
        let body = codec::read_frame(&mut self.stream)?;
        codec::decode_body(&body)
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
