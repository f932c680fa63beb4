//! Writes the seed corpus of every target into `corpus/<target>/`:
//! `cargo run --example gen_corpus` from `fuzz/` (see README.md).
//!
//! Everything is made by the real code: command lines go through rvsadm's
//! parser, the requests they become are applied to a real `Table`, saved by
//! the real `Store`, listed by rvsadm's `-S` renderer and encoded by the
//! control codec. Files are named after what they hold; re-running rewrites
//! them identically. Files the fuzzer added (hash names) are left alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rvs::ctl::codec::{encode_body, encode_frame};
use rvs::ctl::proto::*;
use rvs::daemon::store::Store;
use rvs::daemon::table::Table;
use rvs_fuzz::request::{parse, Command};
use rvs_fuzz::{argv_to_bytes, join_files, output, restore, view_of};

/// Command lines as people type them (rvsadm_cli seeds; the table changes
/// among them also build the table of the other seeds).
const LINES: &[&str] = &[
    "-A -t 10.0.0.1:80 -s rr",
    "-A -t 10.0.0.1:443 -s wlc -p 300 -M 255.255.255.0",
    "-A -u 10.0.0.2:53 -s sh -b sh-fallback,sh-port -o",
    "-A -t [2001:db8::1]:80 -s lc -p",
    "-A -t 10.0.0.3:8080 -s wrr --check http --check-http-path /healthz --check-http-status 200-299 --check-http-body ok --check-interval 5s --check-timeout 500ms --check-rise 3 --check-fall 2 --sorry-server 127.0.0.1:8081 --slow-start 30",
    "-A -u 10.0.0.4:514 -s rr --check udp --check-udp-send ping --check-udp-expect pong",
    "-a -t 10.0.0.1:80 -r 192.168.1.10:80 -m -w 3",
    "-a -t 10.0.0.1:80 -r 192.168.1.11:8080 -m -w 0 -x 100 -y 10",
    "-a -t 10.0.0.1:443 -r 192.168.1.12 -m",
    "-a -u 10.0.0.2:53 -r 192.168.1.13:53 -m -w 2",
    "-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -m -w 1",
    "-a -t 10.0.0.3:8080 -r 127.0.0.1:9001 -m -w 5 --check-exec \"test -e /tmp/up\" --check exec --check-jitter 100ms --check-initial down",
    "-a -t 10.0.0.3:8080 -r 127.0.0.1:9002 -m --check tcp --check-addr 127.0.0.2 --check-port 9102",
    "-e -t 10.0.0.1:80 -r 192.168.1.10:80 -m -w 7",
    "-E -t 10.0.0.1:443 -s lc -p 600 -M 255.255.255.0",
    "--set 900 120 300",
    "-d -t 10.0.0.1:80 -r 192.168.1.11:8080",
    "-D -t 10.0.0.9:80",
    "-Z",
    "-Z -t 10.0.0.1:80",
    "-C",
    "-L -n",
    "-L -n --stats --exact",
    "-L -n --rate",
    "-L -n --thresholds --persistent-conn",
    "-L -n -c",
    "-L --timeout",
    "-L -n --health",
    "-L -t 10.0.0.1:80 -n --json",
    "-l --daemon",
    "-S -n",
    "-Sn",
    "-R",
    "-h",
    "-v",
    "--socket /run/rvs/rvsd.sock -L -n",
    "-A -t 10.0.0.1:80 -s nosuch",
    "-a -t 10.0.0.1:80 -r 192.168.1.10:80 -g",
    "-A -t 10.0.0.1 -s rr",
    "--start-daemon master",
];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let requests = cli(&root.join("rvsadm_cli"));
    let table = table_of(&requests);
    state_file(&root.join("state_file"), &table);
    let view = view_of(&table);
    let save = output::render_save(&view, true);
    restore_seeds(&root.join("rvsadm_restore"), &save);
    restore_seeds(&root.join("rvsadm_save_restore"), &save);
    command_line_seeds(&root.join("rvsadm_save_restore"));
    ctl_frame(&root.join("ctl_frame"), &requests, &table, &view);
    health_http(&root.join("health_http"));
    regressions(&root);
}

/// Inputs that crashed rvs once; replayed by every run (issue 19 B1: a
/// claimed string length of 2^44 made bincode abort on allocation, 2^63
/// made it panic, before the input was checked).
fn regressions(root: &Path) {
    for (name, claim) in [("2p44", 1u64 << 44), ("2p63", 1u64 << 63)] {
        // The issue's frame: Request::Hello (variant 0), protocol 2, then
        // the client name's length as 0xfd + u64.
        let mut body = vec![0u8, 2, 0xfd];
        body.extend_from_slice(&claim.to_le_bytes());
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        put(
            &root.join("ctl_frame"),
            &format!("b1-claim-{name}.frame"),
            &frame,
        );
        // A state file with one service whose scheduler name claims it;
        // zero checksum: the target fills it in.
        let mut state = b"RVSSTATE\0\0\0\x02".to_vec();
        state.extend_from_slice(&[0; 8]);
        state.extend_from_slice(&[1, 0, 0, 10, 0, 0, 1, 80, 0xfd]);
        state.extend_from_slice(&claim.to_le_bytes());
        put(
            &root.join("state_file"),
            &format!("b1-claim-{name}.zero-sum.state"),
            &join_files(&[&state]),
        );
    }
}

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn argv(line: &str) -> Vec<String> {
    let mut v = vec!["rvsadm".to_string()];
    v.extend(restore::tokenize(line));
    v
}

/// rvsadm_cli seeds; returns the requests of the table changes that parsed.
fn cli(dir: &Path) -> Vec<Request> {
    let mut requests = Vec::new();
    for (i, line) in LINES.iter().enumerate() {
        let words = argv(line);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        put(dir, &format!("line-{i:02}"), &argv_to_bytes(&args));
        if let Ok(Command::Run(inv)) = parse(&words) {
            if inv.action.is_mutation() {
                if let Some(r) = inv.action.request() {
                    requests.push(r);
                }
            }
        }
    }
    assert!(requests.len() >= 15, "the seed command lines parse");
    requests
}

fn table_of(requests: &[Request]) -> Table {
    let mut t = Table::default();
    // The last changes (-d/-D/-Z/-C) would empty it: apply the additions.
    for r in requests {
        if matches!(
            r,
            Request::AddService(_)
                | Request::AddServer { .. }
                | Request::EditServer { .. }
                | Request::EditService(_)
                | Request::SetTimeouts(_)
        ) {
            // Some seed lines are refused on purpose (unknown scheduler...).
            let _ = t.apply(r);
        }
    }
    assert_eq!(t.services().len(), 6, "the seed table has every service");
    t
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-gen-corpus-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Real state files: the table, one service, an empty table, each also with
/// a zero checksum (the target fills it in: see state_file.rs).
fn state_file(dir: &Path, table: &Table) {
    let one = Table::from_parts(table.services()[..1].to_vec(), Timeouts::default());
    for (name, t) in [("full", table), ("one", &one), ("empty", &Table::default())] {
        let d = scratch(name);
        let store = Store::new(&d);
        store.save(t).unwrap();
        let bytes = std::fs::read(store.path()).unwrap();
        let _ = std::fs::remove_dir_all(&d);
        put(dir, &format!("{name}.state"), &join_files(&[&bytes]));
        let mut zero = bytes.clone();
        zero[12..20].fill(0);
        put(
            dir,
            &format!("{name}.zero-sum.state"),
            &join_files(&[&zero]),
        );
    }
}

/// rvsadm_restore seeds: real `-S -n` output, the same as ipvsadm-save
/// writes it, and hand-written inputs with comments, CRs and errors.
fn restore_seeds(dir: &Path, save: &str) {
    assert!(
        restore::parse_input("rvsadm", save).is_ok(),
        "-S output restores:\n{save}"
    );
    put(dir, "save-full", save.as_bytes());
    let first: String = save.lines().take(3).map(|l| format!("{l}\n")).collect();
    put(dir, "save-head", first.as_bytes());
    put(dir, "ipvsadm-prefixed", b"# saved by ipvsadm-save\nipvsadm -C\nipvsadm -A -t 10.0.0.1:80 -s rr\r\nipvsadm -a -t 10.0.0.1:80 -r 192.168.1.10:80 -m -w 1\r\n\n--set 900 120 300\n");
    put(dir, "quoted", b"-A -t 10.0.0.3:80 -s rr --check exec --check-exec \"curl -fs \\\"http://x/\\\" || exit 1\"\n");
    put(dir, "bad-line", b"-C\n-A -t 10.0.0.1:80 -s rr\n-L -n\n");
    put(dir, "nested-restore", b"-R\n");
}

/// rvsadm_save_restore seeds of the `ARGV\0` kind: the table-building
/// command lines, words NUL-ended, commands ended by an empty word; one
/// with a check command that spans lines, as a shell can pass it.
fn command_line_seeds(dir: &Path) {
    let mut all = b"ARGV\0".to_vec();
    for line in LINES
        .iter()
        .filter(|l| l.starts_with("-A") || l.starts_with("-a"))
    {
        let words = argv(line);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        all.extend(argv_to_bytes(&args));
        all.push(0);
    }
    put(dir, "argv-table", &all);
    let mut multi = b"ARGV\0".to_vec();
    multi.extend(argv_to_bytes(&["-A", "-t", "10.0.0.1:80", "-s", "rr"]));
    multi.push(0);
    multi.extend(argv_to_bytes(&[
        "-a",
        "-t",
        "10.0.0.1:80",
        "-r",
        "127.0.0.1:9001",
        "-m",
        "--check",
        "exec",
        "--check-exec",
        "test -e /tmp/up &&\n  test -e /tmp/ready",
    ]));
    multi.push(0);
    put(dir, "argv-exec-two-lines", &multi);
}

fn ctl_frame(dir: &Path, requests: &[Request], table: &Table, view: &TableView) {
    let key = table.services()[0].spec.key;
    let server: SocketAddr = "192.168.1.10:80".parse().unwrap();
    let hello = Request::Hello {
        protocol: PROTOCOL_VERSION,
        client: "rvsadm".into(),
    };
    let mut reqs = vec![
        hello.clone(),
        Request::List(None),
        Request::List(Some(key)),
        Request::ListConnections,
        Request::GetTimeouts,
        Request::Subscribe { interval_ms: 1000 },
        Request::DeleteServer {
            service: key,
            server,
        },
        Request::Batch(requests.to_vec()),
    ];
    reqs.extend(requests.iter().cloned());
    let info = DaemonInfo {
        protocol: PROTOCOL_VERSION,
        version: RVS_VERSION.into(),
        pid: 4242,
        uptime_secs: 3600,
    };
    let conns = vec![
        ConnEntry {
            proto: Protocol::Tcp,
            client: "198.51.100.7:51234".parse().unwrap(),
            virt: key.addr,
            dest: server,
            state: "ESTABLISHED".into(),
            expires: 899,
            template: false,
        },
        ConnEntry {
            proto: Protocol::Udp,
            client: "[2001:db8::99]:5353".parse().unwrap(),
            virt: "10.0.0.2:53".parse().unwrap(),
            dest: "192.168.1.13:53".parse().unwrap(),
            state: "UDP".into(),
            expires: 299,
            template: true,
        },
    ];
    let event = HealthEvent {
        at_ms: 1_790_000_000_000,
        service: key,
        server,
        state: HealthState::Down,
        reason: "connection refused".into(),
    };
    let resps = vec![
        Response::Hello(info.clone()),
        Response::Ok,
        Response::Table(view.clone()),
        Response::Table(TableView::default()),
        Response::Connections(conns),
        Response::Timeouts(Timeouts::default()),
        Response::error(ErrorKind::NoSuchService, "No such service"),
        Response::Error {
            kind: ErrorKind::DestinationExists,
            message: "Destination already exists".into(),
            index: Some(3),
        },
        Response::Update(Update {
            daemon: info,
            table: view.clone(),
            live_connections: 17,
            events: vec![event],
        }),
    ];
    for (i, r) in reqs.iter().enumerate() {
        put(
            dir,
            &format!("request-{i:02}.frame"),
            &encode_frame(r).unwrap(),
        );
    }
    for (i, r) in resps.iter().enumerate() {
        put(
            dir,
            &format!("response-{i:02}.frame"),
            &encode_frame(r).unwrap(),
        );
    }
    // A bare body, and a conversation's opening as one stream.
    put(dir, "hello.body", &encode_body(&hello).unwrap());
    let mut stream = encode_frame(&hello).unwrap();
    stream.extend(encode_frame(&Request::List(None)).unwrap());
    put(dir, "hello-then-list.stream", &stream);
}

/// health_http seeds: byte 0 = mode (bit 0: require "ok" in the body,
/// bit 1: 200-299 only), then a real response.
fn health_http(dir: &Path) {
    let responses: &[(&str, u8, &str)] = &[
        ("ok-length", 1, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"),
        ("ok-chunked", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nall o\r\n4\r\nk!\r\n\r\n0\r\n\r\n"),
        ("ok-until-close", 1, "HTTP/1.0 200 OK\r\nServer: nginx\r\n\r\nstatus: ok\n"),
        ("no-content", 0, "HTTP/1.1 204 No Content\r\nDate: Fri, 04 Dec 2026 17:00:00 GMT\r\n\r\n"),
        ("redirect", 2, "HTTP/1.1 301 Moved Permanently\r\nLocation: /healthz/\r\nContent-Length: 0\r\n\r\n"),
        ("unavailable", 0, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 11\r\n\r\nunavailable"),
        ("not-found", 1, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"),
        ("continue-then-ok", 0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ("body-missing-word", 1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfail"),
        ("short-body", 1, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok"),
        ("json", 3, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"ok\"}"),
        ("lf-only", 0, "HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
        ("garbage", 0, "SSH-2.0-OpenSSH_9.2\r\n"),
    ];
    for (name, mode, text) in responses {
        let mut b = vec![*mode];
        b.extend_from_slice(text.as_bytes());
        put(dir, name, &b);
    }
}
