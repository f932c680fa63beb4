//! The HTTP health check, end to end: `rvs::daemon::health::probe` with an
//! HTTP check against an in-process server on 127.0.0.1 that answers every
//! request with the fuzz input, byte for byte, then closes. This is the code
//! rvsd runs every interval against a real server's answer: hyper's HTTP/1
//! client parses the status line, headers and body framing, then rvs checks
//! the status range and looks for the body string (reading at most 1 MiB).
//!
//! Input: byte 0 picks the check's settings (bit 0: require the body to
//! contain "ok"; bit 1: accept only 200-299 instead of 200-399), the rest is
//! the whole response. Checks: nothing panics; the probe ends (timeout
//! 2 s); a pass means an acceptable status, and the body string when one is
//! required (checked on bodies that are not chunked).
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rvs::ctl::proto::CheckKind;
use rvs::daemon::health::{probe, Check};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

struct Env {
    rt: Runtime,
    listener: TcpListener,
    addr: SocketAddr,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        Env { rt, listener, addr }
    })
}

/// Read the request head (up to its blank line, 8 KiB at most), answer
/// `response`, close.
async fn serve_once(listener: &TcpListener, response: &[u8]) {
    let Ok((mut sock, _)) = listener.accept().await else {
        return;
    };
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = sock.write_all(response).await;
    let _ = sock.shutdown().await;
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, response)) = data.split_first() else {
        return;
    };
    let env = env();
    let need_ok = mode & 1 != 0;
    let status = if mode & 2 != 0 {
        (200, 299)
    } else {
        (200, 399)
    };
    let check = Check {
        kind: CheckKind::Http,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        rise: 2,
        fall: 3,
        jitter: Duration::ZERO,
        target: env.addr,
        initial_up: true,
        http_path: "/health".to_string(),
        http_host: None,
        http_status: status,
        http_body: need_ok.then(|| "ok".to_string()),
        exec: String::new(),
        udp_send: String::new(),
        udp_expect: None,
    };
    let verdict = env.rt.block_on(async {
        let server =
            tokio::time::timeout(Duration::from_secs(5), serve_once(&env.listener, response));
        let (verdict, _) = tokio::join!(probe(&check), server);
        verdict
    });
    if let Ok(what) = verdict {
        let code: u16 = what
            .strip_prefix("HTTP ")
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("a pass that is not \"HTTP <status>\": {what:?}"));
        assert!((status.0..=status.1).contains(&code), "HTTP {code} passed");
        let start = response.iter().position(|b| !b"\r\n".contains(b));
        assert!(
            start.is_some_and(|i| response[i..].starts_with(b"HTTP/1.")),
            "a pass for a response that is not HTTP/1.x"
        );
        // A chunked body may split "ok" across chunks; otherwise the body
        // is a contiguous slice of the response.
        let chunked = String::from_utf8_lossy(response)
            .to_ascii_lowercase()
            .contains("chunked");
        if need_ok && !chunked {
            assert!(
                response.windows(2).any(|w| w == b"ok"),
                "a pass without \"ok\" anywhere in the response"
            );
        }
    }
});
