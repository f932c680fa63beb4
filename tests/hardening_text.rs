//! Issue 19, B8/B9/B17: what goes into the table as text and what comes out
//! of `-L`/`-S` — control characters refused on input (by rvsadm and by
//! rvsd for clients that send raw frames), floors on check timing, `-S`
//! escaping what an older table may hold and reading back byte for byte,
//! and self-loops through a wildcard virtual address refused.
//! Loopback range of this file: 127.45.0.0/16.

mod common;

use common::*;
use rvs::ctl::proto::{CheckKind, ErrorKind, HealthCheck, Request, Timeouts};
use rvs::ctl::CtlError;
use rvs::daemon::table::{Service, Table};

/// A raw request that rvsd must refuse as invalid; returns its message.
fn daemon_refuses(d: &Daemon, req: Request, want: &str) -> String {
    let before = d.state();
    let mut c = d.client();
    match c.call(&req) {
        Err(CtlError::Remote { kind, message, .. }) => {
            assert_eq!(kind, ErrorKind::Invalid, "{message}");
            assert!(message.contains(want), "{message:?} lacks {want:?}");
            assert!(
                !message.replace("\nhint: ", " ").contains(char::is_control),
                "{message:?}"
            );
            assert_eq!(d.state(), before, "{req:?} changed the table");
            message
        }
        other => panic!("{req:?}: expected a refusal, got {other:?}"),
    }
}

fn check_with(f: impl FnOnce(&mut HealthCheck)) -> HealthCheck {
    let mut h = HealthCheck::default();
    f(&mut h);
    h
}

#[test]
fn rvsadm_refuses_control_characters_in_every_text_option() {
    let d = Daemon::start_with(NO_CHECKS);
    let vs = loopback_vip("127.45.0.1");
    d.ok(&["-A", "-t", &vs]);
    let base = d.state();
    for opt in [
        "--check-exec",
        "--check-http-path",
        "--check-http-host",
        "--check-http-body",
        "--check-udp-send",
        "--check-udp-expect",
        "--sorry-server",
    ] {
        for (value, what) in [
            ("/ok\nreboot", "control character U+000A at character 4"),
            ("/ok\r\n", "control character U+000D at character 4"),
            (
                "/\x1b]0;owned\x07",
                "control character U+001B at character 2",
            ),
            // (NUL cannot be in an argument; -R and raw frames can carry it.)
            ("/del\x7f", "control character U+007F at character 5"),
        ] {
            let err = d.refused(&["-E", "-t", &vs, opt, value], 2, what);
            assert!(err.contains(&format!("invalid {opt} value")), "{err}");
            assert!(
                !err.trim_end().contains(char::is_control),
                "the refusal echoes a control character: {err:?}"
            );
        }
    }
    // The real-server commands too, and through -R.
    d.refused(
        &[
            "-a",
            "-t",
            &vs,
            "-r",
            "127.45.0.2:80",
            "--check-exec",
            "a\tb",
        ],
        2,
        "control character U+0009 at character 2",
    );
    let out = d.rvsadm_stdin(
        &["-R"],
        &format!("-a -t {vs} -r 127.45.0.2:80 --check-http-host \"x\\x1b[2Jy\"\n"),
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 1: ") && stderr(&out).contains("U+001B at character 2"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).trim_end().contains(char::is_control));
    assert_eq!(d.state(), base);
}

#[test]
fn rvsd_refuses_control_characters_from_raw_frames() {
    let d = Daemon::start_with(NO_CHECKS);
    let key = tcp_key(vip_on("127.45.1.1"));
    let mut spec = spec(key, "rr");
    spec.health = check_with(|h| {
        h.kind = Some(CheckKind::Exec);
        h.exec = Some("true\nreboot".into());
        h.interval_ms = Some(5000);
    });
    daemon_refuses(
        &d,
        Request::AddService(spec.clone()),
        "--check-exec holds the control character U+000A at character 5",
    );
    spec.health = HealthCheck::default();
    d.add_service(spec.clone());
    for (h, want) in [
        (
            check_with(|h| h.http_host = Some("a\x1b[2Jb".into())),
            "--check-http-host holds the control character U+001B at character 2",
        ),
        (
            check_with(|h| h.http_path = Some("/\r\nX-Evil: 1".into())),
            "--check-http-path holds the control character U+000D at character 2",
        ),
        (
            check_with(|h| h.http_body = Some("ok\0".into())),
            "--check-http-body holds the control character U+0000 at character 3",
        ),
        (
            check_with(|h| h.udp_send = Some("\u{9b}1m".into())),
            "--check-udp-send holds the control character U+009B at character 1",
        ),
        (
            check_with(|h| h.udp_expect = Some("pong\x7f".into())),
            "--check-udp-expect holds the control character U+007F at character 5",
        ),
    ] {
        let server = rvs::ctl::proto::RealServerSpec {
            health: h.clone(),
            ..rvs::ctl::proto::RealServerSpec::new("127.45.1.2:80".parse().unwrap())
        };
        daemon_refuses(
            &d,
            Request::AddServer {
                service: key,
                server,
            },
            want,
        );
        // Inside a batch (what -R sends) as well.
        let mut edit = spec.clone();
        edit.health = h;
        daemon_refuses(&d, Request::Batch(vec![Request::EditService(edit)]), want);
    }
}

#[test]
fn check_timing_floors() {
    let d = Daemon::start_with(NO_CHECKS);
    let vs = loopback_vip("127.45.2.1");
    d.refused(
        &["-A", "-t", &vs, "--check-interval", "1ms"],
        2,
        "invalid --check-interval value `1ms': below the floor of 100ms (1s for exec checks)",
    );
    d.refused(
        &["-A", "-t", &vs, "--check-timeout", "1ms"],
        2,
        "invalid --check-timeout value `1ms': below the floor of 10ms",
    );
    d.refused(
        &[
            "-A",
            "-t",
            &vs,
            "--check",
            "exec",
            "--check-exec",
            "true",
            "--check-interval",
            "1ms",
        ],
        2,
        "below the floor of 100ms",
    );
    d.refused(
        &[
            "-A",
            "-t",
            &vs,
            "--check",
            "exec",
            "--check-exec",
            "true",
            "--check-interval",
            "500ms",
        ],
        2,
        "for an exec check: below the floor of 1s",
    );
    // What rvsadm cannot see, rvsd checks: an exec check on a real server
    // inherits the service's 100 ms.
    d.ok(&["-A", "-t", &vs, "--check-interval", "100ms"]);
    d.refused(
        &[
            "-a",
            "-t",
            &vs,
            "-r",
            "127.45.2.2:80",
            "--check",
            "exec",
            "--check-exec",
            "true",
        ],
        255,
        "the exec check of real server 127.45.2.2:80 would inherit --check-interval 100ms from the service, below the floor of 1s for exec checks",
    );
    // Raw frames get the same floors.
    let key = tcp_key(vs.parse().unwrap());
    let mut s = spec(key, "wlc");
    s.health.interval_ms = Some(1);
    daemon_refuses(
        &d,
        Request::EditService(s.clone()),
        "below the floor of 100ms",
    );
    s.health.interval_ms = None;
    s.health.timeout_ms = Some(0);
    daemon_refuses(&d, Request::EditService(s), "below the floor of 10ms");
    // The floors themselves are accepted.
    d.ok(&[
        "-a",
        "-t",
        &vs,
        "-r",
        "127.45.2.2:80",
        "--check",
        "exec",
        "--check-exec",
        "true",
        "--check-interval",
        "1s",
        "--check-timeout",
        "10ms",
    ]);
}

#[test]
fn save_restore_round_trip_is_byte_identical() {
    let d = Daemon::start_with(NO_CHECKS);
    let vs = loopback_vip("127.45.3.1");
    let rs = format!("127.45.3.2:{}", free_port("127.45.3.2"));
    d.ok(&[
        "-A",
        "-t",
        &vs,
        "-s",
        "rr",
        "--check",
        "none",
        "--check-http-path",
        "/a b/\"q\"/\\/$x/ü",
        "--check-http-host",
        "日本.example",
        "--check-http-body",
        "ipvsadm",
    ]);
    d.ok(&[
        "-a",
        "-t",
        &vs,
        "-r",
        &rs,
        "--check",
        "none",
        "--check-exec",
        "/usr/bin/probe \"$RVS_SERVER_ADDR\" 'é ü' \\\\ -x \\n $((1+1)) # end",
        "--check-udp-send",
        "\"",
        "--check-udp-expect",
        "-x",
    ]);
    let saved = d.ok(&["-S", "-n"]);
    assert_eq!(saved.lines().count(), 2, "{saved}");
    d.ok(&["-C"]);
    let out = d.rvsadm_stdin(&["-R"], &saved);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        d.ok(&["-S", "-n"]),
        saved,
        "-S | -C | -R | -S changed the table"
    );
    // The values are the ones given, not just stable.
    let key = tcp_key(vs.parse().unwrap());
    let svc = d.service(key);
    assert_eq!(
        svc.spec.health.http_path.as_deref(),
        Some("/a b/\"q\"/\\/$x/ü")
    );
    assert_eq!(svc.spec.health.http_body.as_deref(), Some("ipvsadm"));
    let srv = &svc.servers[0].spec.health;
    assert_eq!(
        srv.exec.as_deref(),
        Some("/usr/bin/probe \"$RVS_SERVER_ADDR\" 'é ü' \\\\ -x \\n $((1+1)) # end")
    );
    assert_eq!(
        (srv.udp_send.as_deref(), srv.udp_expect.as_deref()),
        (Some("\""), Some("-x"))
    );
}

#[test]
fn save_escapes_control_characters_an_older_table_holds() {
    let mut d = Daemon::start_with(NO_CHECKS);
    let vip = vip_on("127.45.4.1");
    let key = tcp_key(vip);
    // A table written by an older rvsd, which took anything.
    let mut spec = spec(key, "rr");
    spec.health = check_with(|h| {
        h.http_host = Some("a\x1b[2Jb".into());
        h.kind = Some(CheckKind::None);
    });
    let server = rvs::ctl::proto::RealServerSpec {
        health: check_with(|h| h.exec = Some("true\nreboot".into())),
        ..rvs::ctl::proto::RealServerSpec::new("127.45.4.2:80".parse().unwrap())
    };
    d.stop();
    let _ = std::fs::remove_dir_all(&d.state_dir);
    std::fs::create_dir_all(&d.state_dir).unwrap();
    let old = Table::from_parts(
        vec![Service {
            spec,
            servers: vec![server],
        }],
        Timeouts::default(),
    );
    rvs::daemon::store::Store::new(&d.state_dir)
        .compact(&old)
        .unwrap();
    d.restart();

    let out = d.rvsadm(&["-S", "-n"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let saved = stdout(&out);
    assert!(
        !saved.replace('\n', "").contains(char::is_control),
        "-S wrote a control character raw: {saved:?}"
    );
    assert_eq!(saved.lines().count(), 2, "one line per entry: {saved:?}");
    assert!(
        saved.contains("--check-http-host \"a\\x1b[2Jb\""),
        "{saved}"
    );
    assert!(saved.contains("--check-exec \"true\\nreboot\""), "{saved}");
    let warn = stderr(&out);
    assert!(
        warn.contains(&format!(
            "warning: service TCP {vip}: --check-http-host holds the control character U+001B at character 2"
        )) && warn.contains(&format!(
            "warning: real server 127.45.4.2:80 of service TCP {vip}: --check-exec holds the control character U+000A at character 5"
        )),
        "{warn}"
    );
    // -L --health shows nothing raw either.
    let listed = d.ok(&["-L", "-n", "--health"]);
    assert!(
        !listed.replace('\n', "").contains(char::is_control),
        "{listed:?}"
    );
    // -R reads the escapes back to the same values, and refuses them with
    // the line, the option and the position; nothing changes.
    let before = d.state();
    let out = d.rvsadm_stdin(&["-R"], &saved);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("line 1: ")
            && err.contains(
                "invalid --check-http-host value: control character U+001B at character 2"
            ),
        "{err}"
    );
    assert!(!err.trim_end().contains(char::is_control), "{err:?}");
    assert_eq!(d.state(), before);
}

/// Add a wildcard service on a port free on `any`, then insist that every
/// local destination on that port is refused as a loop, as a real server
/// and as a sorry server, while another port is fine.
fn wildcard_loops_refused(any: &str, local: &[String]) {
    let d = Daemon::start_with(NO_CHECKS);
    let port = free_port(any);
    let vs = if any.contains(':') {
        format!("[{any}]:{port}")
    } else {
        format!("{any}:{port}")
    };
    d.ok(&["-A", "-t", &vs, "-s", "rr"]);
    for ip in local {
        let dest = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        let err = d.refused(
            &["-a", "-t", &vs, "-r", &dest],
            255,
            "listens on every local address, so it would loop; give another address or port",
        );
        assert!(
            err.starts_with(
                "Invalid operation.  Possibly wrong module version, address not unicast, ..."
            ),
            "{err}"
        );
        d.refused(
            &["-E", "-t", &vs, "-s", "rr", "--sorry-server", &dest],
            255,
            "it would loop",
        );
        // UDP loops the same way.
        d.refused(
            &["-A", "-u", &vs, "--sorry-server", &dest],
            255,
            "it would loop",
        );
    }
    // Another port of the same host is a real server like any other.
    let other = if any.contains(':') {
        format!("[::1]:{}", port ^ 1)
    } else {
        format!("127.45.5.1:{}", port ^ 1)
    };
    d.ok(&["-a", "-t", &vs, "-r", &other]);
}

#[test]
fn wildcard_self_loop_refused_ipv4() {
    let mut local = vec![
        "127.0.0.1".to_string(),
        "127.45.5.9".to_string(),
        // The same, written as an IPv4-mapped IPv6 address.
        "::ffff:127.45.5.9".to_string(),
    ];
    // An address of this host that is not loopback, when there is one.
    local.extend(
        rvs::daemon::host::local_addrs()
            .into_iter()
            .find(|ip| ip.is_ipv4() && !ip.is_loopback())
            .map(|ip| ip.to_string()),
    );
    wildcard_loops_refused("0.0.0.0", &local);
}

#[test]
fn wildcard_self_loop_refused_ipv6() {
    let mut local = vec!["::1".to_string()];
    local.extend(
        rvs::daemon::host::local_addrs()
            .into_iter()
            .find(|ip| match ip {
                std::net::IpAddr::V6(v6) => {
                    !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80
                }
                _ => false,
            })
            .map(|ip| ip.to_string()),
    );
    wildcard_loops_refused("::", &local);
}
