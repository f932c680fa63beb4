//! Golden bytes of the control protocol, version 1. If one of these fails,
//! the wire format changed: bump PROTOCOL_VERSION and add new goldens
//! (keep the old ones documented in doc/protocol.md).

use rvs::ctl::codec::{decode_body, encode_frame};
use rvs::ctl::proto::*;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key() -> ServiceKey {
    ServiceKey {
        proto: Protocol::Tcp,
        addr: "10.0.0.1:80".parse().unwrap(),
    }
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let hello = Request::Hello {
        protocol: 2,
        client: "rvsadm 0.1.0".into(),
    };
    let add = Request::AddService(ServiceSpec {
        scheduler: "rr".into(),
        persistent: Some(360),
        ..ServiceSpec::new(key())
    });
    let server = Request::AddServer {
        service: key(),
        server: RealServerSpec::new("10.0.1.1:8080".parse().unwrap()),
    };
    let err = Response::Error {
        kind: ErrorKind::NoSuchService,
        message: "No such service".into(),
        index: Some(3),
    };
    let info = Response::Hello(DaemonInfo {
        protocol: 2,
        version: "0.1.0".into(),
        pid: 42,
        uptime_secs: 7,
    });
    vec![
        ("hello", encode_frame(&hello).unwrap()),
        ("add_service", encode_frame(&add).unwrap()),
        ("add_server", encode_frame(&server).unwrap()),
        ("error", encode_frame(&err).unwrap()),
        ("daemon_hello", encode_frame(&info).unwrap()),
        ("list_all", encode_frame(&Request::List(None)).unwrap()),
    ]
}

/// Version 2 (health checks, sorry server, slow start, subscription events).
/// Version 1 frames are recorded in doc/protocol.md.
const GOLDEN: &[(&str, &str)] = &[
    ("hello", "0000000f00020c72767361646d20302e312e30"),
    ("add_service", "000000290100000a0000015002727201fb680100ffffffff000000000000000000000000000000000000000000"),
    ("add_server", "000000250500000a00000150000a000101fb901f000100000000000000000000000000000000000000"),
    ("error", "0000001405010f4e6f207375636820736572766963650103"),
    ("daemon_hello", "0000000a000205302e312e302a07"),
    ("list_all", "000000020a00"),
];

#[test]
fn wire_format_is_pinned() {
    let got: Vec<(String, String)> = cases()
        .into_iter()
        .map(|(n, b)| (n.to_string(), hex(&b)))
        .collect();
    for ((n, h), (gn, gh)) in got.iter().zip(GOLDEN) {
        assert_eq!(n, gn);
        assert_eq!(h, gh, "wire bytes of {n} changed: bump PROTOCOL_VERSION");
    }
    assert_eq!(got.len(), GOLDEN.len());
}

#[test]
fn frozen_positions_decode() {
    // Request::Hello and Response::Hello are variant 0, Response::Error is
    // variant 5: any two versions can at least tell each other they differ.
    let hello: Request = decode_body(
        &encode_frame(&Request::Hello {
            protocol: 99,
            client: "x".into(),
        })
        .unwrap()[4..],
    )
    .unwrap();
    assert!(matches!(hello, Request::Hello { protocol: 99, .. }));
    let body = &encode_frame(&Response::error(ErrorKind::Protocol, "m")).unwrap()[4..];
    assert_eq!(body[0], 5);
}
