//! rvsadm against a live rvsd: every command, its error paths and exit
//! statuses (ipvsadm's “Exit codes and error messages”), and the listing formats byte for byte (ipvsadm's “Output formats”).
//!
//! Each test uses its own 127.10.N.x addresses (or a free port on ::1), so
//! the tests run in parallel without sharing a port.

mod common;

use common::*;
use std::process::Command;

/// Lines joined with `\n`, plus the final newline.
/// `s` with the addresses of [`populate`] moved to 127.11.`n`.x.
fn on(s: &str, n: u8) -> String {
    s.replace("127.11.1.", &format!("127.11.{n}."))
}

fn text(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// The four-service table most format tests list, on 127.11.`n`.x
/// (`n` one digit, so that column widths do not depend on it); returns the
/// IPv6 VIP. Expected texts name 127.11.1.x and go through [`on`].
fn populate(d: &Daemon, n: u8) -> String {
    assert!(n < 10);
    let v6 = loopback_vip("::1");
    for args in [
        "-A -t 127.11.1.1:8080 -s rr",
        "-a -t 127.11.1.1:8080 -r 198.51.100.2:80 -w 2",
        "-a -t 127.11.1.1:8080 -r 127.0.0.1:9000 -w 0 -x 100 -y 50",
        "-a -t 127.11.1.1:8080 -r 198.51.100.1:80",
        "-A -t 127.11.1.2:8443 -s sh -b sh-fallback,sh-port -p 1800 -M 255.255.255.0",
        "-a -t 127.11.1.2:8443 -r 198.51.100.3:443",
        "-A -u 127.11.1.1:8053 -s rr -o",
        "-a -u 127.11.1.1:8053 -r 198.51.100.5:53",
        &format!("-A -t {v6} -p 300 -M 64"),
        &format!("-a -t {v6} -r [2001:db8::1]:8080"),
        &format!("-a -t {v6} -r 198.51.100.9:80"),
    ] {
        let args = on(args, n);
        let argv: Vec<&str> = args.split(' ').collect();
        d.ok(&argv);
    }
    v6
}

#[test]
fn default_listing_is_byte_exact() {
    let d = Daemon::start_with(NO_CHECKS);
    let v6 = populate(&d, 1);
    let v6_line = format!("TCP  {v6} wlc persistent 300 mask 64");
    let expected = text(&[
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  127.11.1.1:8080 rr",
        "  -> 127.0.0.1:9000               Local   0      0          0         ",
        "  -> 198.51.100.1:80              Masq    1      0          0         ",
        "  -> 198.51.100.2:80              Masq    2      0          0         ",
        "TCP  127.11.1.2:8443 sh (sh-fallback,sh-port) persistent 1800 mask 255.255.255.0",
        "  -> 198.51.100.3:443             Masq    1      0          0         ",
        "UDP  127.11.1.1:8053 rr ops",
        "  -> 198.51.100.5:53              Masq    1      0          0         ",
        &v6_line,
        "  -> 198.51.100.9:80              Masq    1      0          0         ",
        "  -> [2001:db8::1]:8080           Masq    1      0          0         ",
    ]);
    assert_eq!(d.ok(&["-L", "-n"]), expected);
    assert_eq!(d.ok(&["-l", "-n"]), expected, "-l is -L");
    assert_eq!(d.ok(&["--list", "--numeric"]), expected);

    // --nosort: services in creation order, servers most recently added first.
    let expected = text(&[
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  127.11.1.1:8080 rr",
        "  -> 198.51.100.1:80              Masq    1      0          0         ",
        "  -> 127.0.0.1:9000               Local   0      0          0         ",
        "  -> 198.51.100.2:80              Masq    2      0          0         ",
        "TCP  127.11.1.2:8443 sh (sh-fallback,sh-port) persistent 1800 mask 255.255.255.0",
        "  -> 198.51.100.3:443             Masq    1      0          0         ",
        "UDP  127.11.1.1:8053 rr ops",
        "  -> 198.51.100.5:53              Masq    1      0          0         ",
        &v6_line,
        "  -> 198.51.100.9:80              Masq    1      0          0         ",
        "  -> [2001:db8::1]:8080           Masq    1      0          0         ",
    ]);
    assert_eq!(d.ok(&["-L", "-n", "--nosort"]), expected);

    // One service: no version header.
    assert_eq!(
        d.ok(&["-L", "-n", "-t", "127.11.1.2:8443"]),
        text(&[
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
            "TCP  127.11.1.2:8443 sh (sh-fallback,sh-port) persistent 1800 mask 255.255.255.0",
            "  -> 198.51.100.3:443             Masq    1      0          0         ",
        ])
    );
    assert_eq!(
        d.ok(&["-L", "-n", "-u", "127.11.1.1:8053"]),
        text(&[
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
            "UDP  127.11.1.1:8053 rr ops",
            "  -> 198.51.100.5:53              Masq    1      0          0         ",
        ])
    );
}

#[test]
fn stats_rate_thresholds_persistent_conn_views_are_byte_exact() {
    let d = Daemon::start_with(NO_CHECKS);
    let v6 = populate(&d, 2);
    let zeros = "        0        0        0        0        0";
    let svc = |s: &str| format!("{:<33}{zeros}", on(s, 2));
    let srv = |a: &str| format!("  -> {a:<28}{zeros}");
    let body = |svc: &dyn Fn(&str) -> String, srv: &dyn Fn(&str) -> String| {
        vec![
            svc("TCP  127.11.1.1:8080"),
            srv("127.0.0.1:9000"),
            srv("198.51.100.1:80"),
            srv("198.51.100.2:80"),
            svc("TCP  127.11.1.2:8443"),
            srv("198.51.100.3:443"),
            svc("UDP  127.11.1.1:8053"),
            srv("198.51.100.5:53"),
            svc(&format!("TCP  {v6}")),
            srv("198.51.100.9:80"),
            srv("[2001:db8::1]:8080"),
        ]
    };
    let mut stats = vec![
        "IP Virtual Server version 1.2.1 (size=4096)".to_string(),
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes".into(),
        "  -> RemoteAddress:Port".into(),
    ];
    stats.extend(body(&svc, &srv));
    let stats = text(&stats.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(d.ok(&["-L", "-n", "--stats"]), stats);
    assert_eq!(d.ok(&["-L", "-n", "--stats", "--exact"]), stats);
    assert_eq!(
        d.ok(&["-L", "-n", "--stats", "--rate"]),
        stats,
        "--stats wins over --rate"
    );

    // --rate: the three first real-server columns are plain %8llu.
    let rsrv = |a: &str| format!("  -> {a:<28}        0        0        0        0        0");
    let mut rate = vec![
        "IP Virtual Server version 1.2.1 (size=4096)".to_string(),
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS".into(),
        "  -> RemoteAddress:Port".into(),
    ];
    rate.extend(body(&svc, &rsrv));
    let rate = text(&rate.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(d.ok(&["-L", "-n", "--rate"]), rate);

    let v6_line = format!("TCP  {v6} wlc persistent 300 mask 64");
    assert_eq!(
        d.ok(&["-L", "-n", "--thresholds"]),
        on(
            &text(&[
                "IP Virtual Server version 1.2.1 (size=4096)",
                "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
                "  -> RemoteAddress:Port",
                "TCP  127.11.1.1:8080 rr",
                "  -> 127.0.0.1:9000               100        50         0          0         ",
                "  -> 198.51.100.1:80              0          0          0          0         ",
                "  -> 198.51.100.2:80              0          0          0          0         ",
                "TCP  127.11.1.2:8443 sh (sh-fallback,sh-port) persistent 1800 mask 255.255.255.0",
                "  -> 198.51.100.3:443             0          0          0          0         ",
                "UDP  127.11.1.1:8053 rr ops",
                "  -> 198.51.100.5:53              0          0          0          0         ",
                &v6_line,
                "  -> 198.51.100.9:80              0          0          0          0         ",
                "  -> [2001:db8::1]:8080           0          0          0          0         ",
            ]),
            2
        )
    );
    assert_eq!(
        d.ok(&["-L", "-n", "--persistent-conn"]),
        on(
            &text(&[
                "IP Virtual Server version 1.2.1 (size=4096)",
                "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ",
                "  -> RemoteAddress:Port",
                "TCP  127.11.1.1:8080 rr",
                "  -> 127.0.0.1:9000               0         0           0          0         ",
                "  -> 198.51.100.1:80              1         0           0          0         ",
                "  -> 198.51.100.2:80              2         0           0          0         ",
                "TCP  127.11.1.2:8443 sh (sh-fallback,sh-port) persistent 1800 mask 255.255.255.0",
                "  -> 198.51.100.3:443             1         0           0          0         ",
                "UDP  127.11.1.1:8053 rr ops",
                "  -> 198.51.100.5:53              1         0           0          0         ",
                &v6_line,
                "  -> 198.51.100.9:80              1         0           0          0         ",
                "  -> [2001:db8::1]:8080           1         0           0          0         ",
            ]),
            2
        )
    );
}

#[test]
fn save_format_and_local_servers_saved_as_masq() {
    let d = Daemon::start_with(NO_CHECKS);
    let v6 = populate(&d, 3);
    let expected = text(&[
        "-A -t 127.11.1.1:8080 -s rr",
        "-a -t 127.11.1.1:8080 -r 127.0.0.1:9000 -m -w 0",
        "-a -t 127.11.1.1:8080 -r 198.51.100.1:80 -m -w 1",
        "-a -t 127.11.1.1:8080 -r 198.51.100.2:80 -m -w 2",
        "-A -t 127.11.1.2:8443 -s sh -p 1800 -M 255.255.255.0 -b sh-fallback,sh-port",
        "-a -t 127.11.1.2:8443 -r 198.51.100.3:443 -m -w 1",
        "-A -u 127.11.1.1:8053 -s rr -o",
        "-a -u 127.11.1.1:8053 -r 198.51.100.5:53 -m -w 1",
        &format!("-A -t {v6} -s wlc -p 300 -M 64"),
        &format!("-a -t {v6} -r 198.51.100.9:80 -m -w 1"),
        &format!("-a -t {v6} -r [2001:db8::1]:8080 -m -w 1"),
    ]);
    let expected = on(&expected, 3);
    assert_eq!(d.ok(&["-S", "-n"]), expected);
    assert_eq!(d.ok(&["--save", "--numeric"]), expected);
}

#[test]
fn save_clear_restore_round_trips_byte_identically() {
    let d = Daemon::start_with(NO_CHECKS);
    populate(&d, 4);
    d.ok(&["--set", "100", "50", "20"]);
    let saved = d.ok(&["-S", "-n"]);
    assert_eq!(saved.lines().count(), 11);
    d.ok(&["-C"]);
    assert_eq!(d.ok(&["-S", "-n"]), "", "-C empties the table");
    assert_eq!(
        d.ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 100 50 20\n",
        "-C keeps the timeouts"
    );
    let out = d.rvsadm_stdin(&["-R"], &saved);
    assert_eq!(code(&out), 0, "-R: {}\n{}", stderr(&out), d.log());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(d.ok(&["-S", "-n"]), saved);

    // Restoring again on top fails as a whole (duplicates) and changes nothing.
    let before = d.state();
    let out = d.rvsadm_stdin(&["-R"], &saved);
    assert_eq!(code(&out), 255);
    assert_eq!(
        stderr(&out),
        on(
            "line 1: -A -t 127.11.1.1:8080 -s rr: Service already exists\n",
            4
        )
    );
    assert_eq!(d.state(), before);
}

#[test]
fn restore_is_atomic_on_a_client_side_error() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.10.4.9:8080"]);
    let before = d.state();
    let rules = "-A -t 127.10.4.1:8080 -s rr\n\
                 -a -t 127.10.4.1:8080 -r 198.51.100.1:80\n\
                 -a -t 127.10.4.1:8080 -r 198.51.100.2:80 -w -5\n\
                 -A -t 127.10.4.2:8080\n";
    let out = d.rvsadm_stdin(&["-R"], rules);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "line 3: -a -t 127.10.4.1:8080 -r 198.51.100.2:80 -w -5: illegal weight specified\n"
    );
    assert_eq!(d.state(), before, "nothing applied");
    // Nothing was bound either.
    std::net::TcpListener::bind("127.10.4.1:8080").expect("127.10.4.1:8080 is not held by rvsd");

    // A popt error (exit 255 class) on line 3.
    let rules = "-A -t 127.10.4.1:8080\n-a -t 127.10.4.1:8080 -r 198.51.100.1:80\n-a -t 127.10.4.1:8080 --bogus\n";
    let out = d.rvsadm_stdin(&["-R"], rules);
    assert_eq!(code(&out), 255, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "line 3: -a -t 127.10.4.1:8080 --bogus: --bogus: unknown option\n"
    );
    assert_eq!(d.state(), before, "nothing applied");
}

#[test]
fn restore_is_atomic_on_a_daemon_error() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.10.5.9:8080"]);
    let before = d.state();
    let rules = "-A -t 127.10.5.1:8080 -s rr\n\
                 -a -t 127.10.5.1:8080 -r 198.51.100.1:80\n\
                 -A -t 127.10.5.9:8080\n\
                 -A -t 127.10.5.2:8080\n";
    let out = d.rvsadm_stdin(&["-R"], rules);
    assert_eq!(code(&out), 255, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "line 3: -A -t 127.10.5.9:8080: Service already exists\n"
    );
    assert_eq!(d.state(), before, "nothing applied");
    std::net::TcpListener::bind("127.10.5.1:8080").expect("127.10.5.1:8080 is not held by rvsd");

    // The same with blank and comment lines before it: the number is the
    // line's number in the input.
    let rules = "# header\n\n-A -t 127.10.5.1:8080\n-a -t 127.10.5.1:8080 -r 198.51.100.1:80\n-d -t 127.10.5.1:8080 -r 198.51.100.2:80\n";
    let out = d.rvsadm_stdin(&["-R"], rules);
    assert_eq!(code(&out), 255, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "line 5: -d -t 127.10.5.1:8080 -r 198.51.100.2:80: No such destination\n"
    );
    assert_eq!(d.state(), before, "nothing applied");
}

#[test]
fn restore_skips_comments_and_blank_lines() {
    let d = Daemon::start_with(NO_CHECKS);
    let rules = "# saved by hand\n\
                 -A -t 127.10.6.1:8080 -s rr\n\
                 \n\
                 \t# indented comment\n\
                 ipvsadm -a -t 127.10.6.1:8080 -r 198.51.100.1:80 -m -w 3\n\
                 -a\t-t 127.10.6.1:8080 -r 198.51.100.2:80\r\n\
                 --set 30 0 0";
    let out = d.rvsadm_stdin(&["-R"], rules);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        d.ok(&["-S", "-n"]),
        text(&[
            "-A -t 127.10.6.1:8080 -s rr",
            "-a -t 127.10.6.1:8080 -r 198.51.100.1:80 -m -w 3",
            "-a -t 127.10.6.1:8080 -r 198.51.100.2:80 -m -w 1",
        ])
    );
    assert_eq!(
        d.ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 30 120 300\n"
    );
    // Empty input: nothing to do, success.
    let out = d.rvsadm_stdin(&["-R"], "# nothing\n\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // -R takes no options.
    d.refused(
        &["-R", "-n"],
        2,
        "Illegal 'numeric' option with the 'restore' command",
    );
}

#[test]
fn daemon_side_errors_have_ipvsadm_messages_and_statuses() {
    let d = Daemon::start_with(NO_CHECKS);
    let a = "127.10.1.1:8080";
    let missing = "127.10.1.99:8080";
    d.ok(&["-A", "-t", a, "-s", "rr"]);
    d.ok(&["-a", "-t", a, "-r", "198.51.100.1:80", "-w", "2"]);
    d.ok(&["-A", "-u", a]);

    d.refused(&["-A", "-t", a], 255, "Service already exists");
    d.refused(&["-A", "-t", a, "-s", "wrr"], 255, "Service already exists");
    let err = d.refused(&["-L", "-n", "-t", missing], 1, "No such service");
    assert_eq!(err, "No such service\n");
    d.refused(&["-E", "-t", missing], 255, "No such service");
    d.refused(&["-D", "-t", missing], 255, "No such service");
    d.refused(&["-D", "-u", "127.10.1.1:8081"], 255, "No such service");
    d.refused(&["-Z", "-t", missing], 255, "No such service");
    let err = d.refused(
        &["-a", "-t", missing, "-r", "198.51.100.1:80"],
        255,
        "Service not defined",
    );
    assert_eq!(err, "Service not defined\n");
    d.refused(
        &["-e", "-t", missing, "-r", "198.51.100.1:80"],
        255,
        "Service not defined",
    );
    d.refused(
        &["-d", "-t", missing, "-r", "198.51.100.1:80"],
        255,
        "Service not defined",
    );
    let err = d.refused(
        &["-a", "-t", a, "-r", "198.51.100.1:80", "-w", "5"],
        255,
        "Destination already exists",
    );
    assert_eq!(err, "Destination already exists\n");
    d.refused(
        &["-e", "-t", a, "-r", "198.51.100.2:80"],
        255,
        "No such destination",
    );
    d.refused(
        &["-d", "-t", a, "-r", "198.51.100.1:81"],
        255,
        "No such destination",
    );
    let err = d.refused(
        &["-A", "-t", "127.10.1.2:8080", "-s", "bogus"],
        255,
        "Scheduler or persistence engine not found",
    );
    assert_eq!(err, "Scheduler or persistence engine not found\n");
    d.refused(
        &["-E", "-t", a, "-s", "nosuchsched"],
        255,
        "Scheduler or persistence engine not found",
    );
    let err = d.refused(
        &[
            "-a",
            "-t",
            a,
            "-r",
            "198.51.100.2:80",
            "-x",
            "5",
            "-y",
            "10",
        ],
        255,
        "Numerical result out of range",
    );
    assert!(err.starts_with("Numerical result out of range"), "{err}");
    d.refused(
        &["-e", "-t", a, "-r", "198.51.100.1:80", "-y", "1"],
        255,
        "Numerical result out of range",
    );
    // Service port 0 (a persistent catch-all in ipvsadm) is refused by rvsd.
    d.refused(
        &["-A", "-t", "127.10.1.3:0", "-p"],
        255,
        "not supported by rvs yet: port 0",
    );
    // The table still says what it said at the start.
    assert_eq!(
        d.ok(&["-S", "-n"]),
        text(&[
            "-A -t 127.10.1.1:8080 -s rr",
            "-a -t 127.10.1.1:8080 -r 198.51.100.1:80 -m -w 2",
            "-A -u 127.10.1.1:8080 -s wlc",
        ])
    );
}

#[test]
fn client_side_errors_exit_2_or_255_and_change_nothing() {
    let d = Daemon::start_with(NO_CHECKS);
    let a = "127.10.2.1:8080";
    d.ok(&["-A", "-t", a]);
    d.ok(&["-a", "-t", a, "-r", "198.51.100.1:80"]);

    d.refused(
        &["-A", "-t", "127.10.2.2"],
        2,
        "Zero port specified for non-persistent service",
    );
    d.refused(
        &["-A", "-t", "not an address"],
        2,
        "illegal virtual server address[:port] specified",
    );
    d.refused(
        &["-a", "-t", a, "-r", "198.51.100.2:80", "-w", "-1"],
        2,
        "illegal weight specified",
    );
    d.refused(
        &["-a", "-t", a, "-r", "198.51.100.2:99999"],
        2,
        "illegal real server address[:port] specified",
    );
    d.refused(
        &["-A", "-t", "127.10.2.2:8080", "-p", "0"],
        2,
        "invalid timeout value `0' specified",
    );
    d.refused(
        &["-A", "-t", "127.10.2.2:8080", "-o"],
        2,
        "One-Packet Scheduling is only for UDP virtual services",
    );
    d.refused(&["-A", "-t", a, "-D"], 2, "invalid option `-D'");
    d.refused(
        &["-a", "-t", a],
        2,
        "You need to supply the 'real-server' option for the 'add-server' command",
    );
    d.refused(
        &["-D", "-t", a, "-s", "rr"],
        2,
        "Illegal 'scheduler' option with the 'delete-service' command",
    );
    d.refused(
        &["--set", "1", "2"],
        2,
        "--set option requires 3 timeout values",
    );
    d.refused(&["-C", "extra"], 2, "unexpected argument extra");
    d.refused(&["-S", "--json"], 2, "Illegal 'json' option");
    // Not starting with a command: "Try ..." and 255.
    let err = d.refused(&["-t", a], 255, "Try `");
    assert_eq!(
        err,
        format!("Try `{RVSADM} -h' or '{RVSADM} --help' for more information.\n")
    );
    // popt errors: 255.
    let err = d.refused(&["-A", "-t", a, "--bogus"], 255, "unknown option");
    assert_eq!(err, "--bogus: unknown option\n");
    let err = d.refused(&["-A", "-t"], 255, "missing argument");
    assert_eq!(err, "-t: missing argument\n");
}

#[test]
fn rvs_rejections_exit_2_and_change_nothing() {
    let d = Daemon::start_with(NO_CHECKS);
    let a = "127.10.7.1:8080";
    d.ok(&["-A", "-t", a]);
    d.refused(
        &["-a", "-t", a, "-r", "198.51.100.1:80", "-g"],
        2,
        "not supported by rvs yet: -g",
    );
    d.refused(
        &["-a", "-t", a, "-r", "198.51.100.1:80", "-i"],
        2,
        "not supported by rvs yet: -i",
    );
    d.refused(&["-A", "-f", "1"], 2, "not supported by rvs yet: -f");
    d.refused(
        &["--start-daemon", "master"],
        2,
        "not supported by rvs yet: --start-daemon",
    );
    d.refused(
        &["--stop-daemon", "backup"],
        2,
        "not supported by rvs yet: --stop-daemon",
    );
    d.refused(
        &["-A", "--sctp-service", "127.10.7.2:8080"],
        2,
        "not supported by rvs yet: --sctp-service",
    );
    d.refused(
        &["-A", "-t", "127.10.7.2:8080", "-p", "--pe", "sip"],
        2,
        "not supported by rvs yet: --pe",
    );
    // In restore input too: nothing applied.
    let before = d.state();
    let out = d.rvsadm_stdin(
        &["-R"],
        "-A -t 127.10.7.3:8080\n-a -t 127.10.7.3:8080 -r 198.51.100.1:80 -g\n",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with(
            "line 2: -a -t 127.10.7.3:8080 -r 198.51.100.1:80 -g: not supported by rvs yet: -g"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.state(), before);
}

#[test]
fn edit_commands_are_full_replacements() {
    let d = Daemon::start_with(NO_CHECKS);
    let a = "127.10.8.1:8080";
    d.ok(&["-A", "-t", a, "-s", "sh", "-p", "600", "-b", "sh-port"]);
    d.ok(&[
        "-a",
        "-t",
        a,
        "-r",
        "198.51.100.1:80",
        "-w",
        "7",
        "-x",
        "20",
        "-y",
        "10",
    ]);
    d.ok(&["-a", "-t", a, "-r", "198.51.100.2:80", "-w", "3"]);
    assert_eq!(
        d.ok(&["-L", "-n", "-t", a]),
        text(&[
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
            "TCP  127.10.8.1:8080 sh (sh-port) persistent 600",
            "  -> 198.51.100.1:80              Masq    7      0          0         ",
            "  -> 198.51.100.2:80              Masq    3      0          0         ",
        ])
    );
    // -E without -s: back to wlc, not persistent, no flags.
    d.ok(&["-E", "-t", a]);
    // -e with only -x: weight back to 1, -y back to 0; position kept.
    d.ok(&["-e", "-t", a, "-r", "198.51.100.1:80", "-x", "30"]);
    assert_eq!(
        d.ok(&["-L", "-n", "--thresholds", "-t", a]),
        text(&[
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
            "  -> RemoteAddress:Port",
            "TCP  127.10.8.1:8080 wlc",
            "  -> 198.51.100.1:80              30         0          0          0         ",
            "  -> 198.51.100.2:80              0          0          0          0         ",
        ])
    );
    assert_eq!(
        d.ok(&["-S", "-n"]),
        text(&[
            "-A -t 127.10.8.1:8080 -s wlc",
            "-a -t 127.10.8.1:8080 -r 198.51.100.1:80 -m -w 1",
            "-a -t 127.10.8.1:8080 -r 198.51.100.2:80 -m -w 3",
        ])
    );
    d.ok(&["-E", "-t", a, "-s", "rr", "-p", "60", "-M", "255.255.0.0"]);
    d.ok(&["-e", "-t", a, "-r", "198.51.100.2:80", "-w", "0"]);
    d.ok(&["-d", "-t", a, "-r", "198.51.100.1:80"]);
    assert_eq!(
        d.ok(&["-S", "-n"]),
        text(&[
            "-A -t 127.10.8.1:8080 -s rr -p 60 -M 255.255.0.0",
            "-a -t 127.10.8.1:8080 -r 198.51.100.2:80 -m -w 0",
        ])
    );
    d.ok(&["-D", "-t", a]);
    assert_eq!(d.ok(&["-S", "-n"]), "");
    // The deleted service's port is released.
    std::net::TcpListener::bind(a).expect("-D releases the listening socket");
}

#[test]
fn timeouts_set_and_list() {
    let d = Daemon::start_with(NO_CHECKS);
    assert_eq!(
        d.ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    assert_eq!(d.ok(&["--set", "100", "50", "20"]), "");
    assert_eq!(
        d.ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 100 50 20\n"
    );
    assert_eq!(
        d.ok(&["-L", "-n", "--timeout"]),
        "Timeout (tcp tcpfin udp): 100 50 20\n"
    );
    // 0 keeps the current value.
    d.ok(&["--set", "0", "60", "0"]);
    assert_eq!(
        d.ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 100 60 20\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.ok(&["-L", "--timeout", "--json"])).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"tcp": 100, "tcpfin": 60, "udp": 20})
    );
    d.refused(
        &["--set", "2678401", "0", "0"],
        2,
        "invalid timeout value `2678401' specified",
    );
    // Timeouts are not part of -S.
    assert_eq!(d.ok(&["-S", "-n"]), "");
}

#[test]
fn empty_table_and_connection_listing_headers() {
    let d = Daemon::start_with(NO_CHECKS);
    let empty = text(&[
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    ]);
    assert_eq!(d.ok(&["-L", "-n"]), empty);
    assert_eq!(d.ok(&[]), empty, "bare rvsadm lists");
    assert_eq!(
        d.ok(&["-L", "-c", "-n"]),
        text(&[
            "IPVS connection entries",
            "pro expire state       source             virtual            destination",
        ])
    );
    let json: serde_json::Value = serde_json::from_str(&d.ok(&["-L", "-c", "--json"])).unwrap();
    assert_eq!(json, serde_json::json!({"connections": []}));
    assert_eq!(d.ok(&["-S"]), "");
}

#[test]
fn json_listing_has_the_documented_fields() {
    let d = Daemon::start_with(NO_CHECKS);
    let v6 = populate(&d, 5);
    let out = d.ok(&["-L", "--json"]);
    assert!(out.ends_with("}\n"));
    let j: serde_json::Value = serde_json::from_str(&out).expect("-L --json is JSON");
    assert_eq!(j["version"], "1.2.1");
    let services = j["services"].as_array().unwrap();
    assert_eq!(services.len(), 4);
    let s = &services[0];
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "protocol",
        "address",
        "port",
        "scheduler",
        "persistent",
        "netmask",
        "sched_flags",
        "ops",
        "pe",
        "stats",
        "rates",
        "servers",
    ] {
        assert!(keys.contains(&k), "service field {k} missing: {keys:?}");
    }
    assert_eq!(s["protocol"], "TCP");
    assert_eq!(s["address"], "127.11.5.1");
    assert_eq!(s["port"], 8080);
    assert_eq!(s["scheduler"], "rr");
    assert_eq!(s["persistent"], serde_json::Value::Null);
    assert_eq!(s["netmask"], "255.255.255.255");
    assert_eq!(s["sched_flags"], serde_json::json!([]));
    assert_eq!(s["ops"], false);
    assert_eq!(s["pe"], serde_json::Value::Null);
    assert_eq!(
        s["stats"],
        serde_json::json!({"conns": 0, "inpkts": 0, "outpkts": 0, "inbytes": 0, "outbytes": 0})
    );
    assert_eq!(
        s["rates"],
        serde_json::json!({"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0})
    );
    let servers = s["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    let local = &servers[0];
    assert_eq!(local["address"], "127.0.0.1");
    assert_eq!(local["port"], 9000);
    assert_eq!(local["forward"], "Local");
    assert_eq!(local["weight"], 0);
    assert_eq!(local["u_threshold"], 100);
    assert_eq!(local["l_threshold"], 50);
    for k in [
        "active_conns",
        "inactive_conns",
        "persist_conns",
        "stats",
        "rates",
    ] {
        assert!(local.get(k).is_some(), "server field {k} missing");
    }
    assert_eq!(servers[1]["forward"], "Masq");
    let sh = &services[1];
    assert_eq!(sh["persistent"], 1800);
    assert_eq!(sh["netmask"], "255.255.255.0");
    assert_eq!(
        sh["sched_flags"],
        serde_json::json!(["sh-fallback", "sh-port"])
    );
    assert_eq!(services[2]["protocol"], "UDP");
    assert_eq!(services[2]["ops"], true);
    let v6s = &services[3];
    assert_eq!(v6s["address"], "::1", "IPv6 without brackets");
    let port: u64 = v6.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(v6s["port"], port);
    assert_eq!(v6s["netmask"], "64");
    // One service, and the flags --json ignores.
    let one: serde_json::Value =
        serde_json::from_str(&d.ok(&["-L", "-n", "--stats", "--json", "-u", "127.11.5.1:8053"]))
            .unwrap();
    assert_eq!(one["services"].as_array().unwrap().len(), 1);
    assert_eq!(one["services"][0], services[2]);
}

#[test]
fn zero_clears_counters_of_one_service_or_all() {
    let d = Daemon::start_with(NO_CHECKS);
    let b = Backend::tcp("z");
    let v1 = loopback_vip("127.10.9.1");
    let v2 = loopback_vip("127.10.9.2");
    let rs = b.addr.to_string();
    for v in [&v1, &v2] {
        d.ok(&["-A", "-t", v, "-s", "rr"]);
        d.ok(&["-a", "-t", v, "-r", &rs]);
    }
    let conns = |vip: &str| -> u64 {
        let j: serde_json::Value =
            serde_json::from_str(&d.ok(&["-L", "--json", "-t", vip])).unwrap();
        j["services"][0]["stats"]["conns"].as_u64().unwrap()
    };
    for v in [&v1, &v2] {
        assert_eq!(who(v.parse().unwrap()), "z");
    }
    assert!(wait_for(10, || conns(&v1) == 1 && conns(&v2) == 1));
    assert_eq!(d.ok(&["-Z", "-t", &v1]), "");
    assert_eq!(conns(&v1), 0);
    assert_eq!(conns(&v2), 1, "-Z -t zeroes only that service");
    let stats = d.ok(&["-L", "-n", "--stats", "-t", &v2]);
    assert!(
        stats
            .lines()
            .nth(2)
            .unwrap()
            .starts_with(&format!("TCP  {v2:<28}")),
        "{stats}"
    );
    assert_eq!(d.ok(&["-Z"]), "");
    assert_eq!(conns(&v2), 0, "-Z zeroes everything");
    // Zeroing is not a table change: -S is unchanged and nothing else moved.
    assert_eq!(d.ok(&["-S", "-n"]).lines().count(), 4);
}

#[test]
fn clear_removes_everything_and_releases_ports() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.10.10.1:8080"]);
    d.ok(&["-A", "-u", "127.10.10.1:8080"]);
    d.ok(&["-a", "-t", "127.10.10.1:8080", "-r", "198.51.100.1:80"]);
    assert_eq!(d.ok(&["-C"]), "");
    assert_eq!(d.ok(&["-S", "-n"]), "");
    std::net::TcpListener::bind("127.10.10.1:8080").expect("-C releases the TCP socket");
    std::net::UdpSocket::bind("127.10.10.1:8080").expect("-C releases the UDP socket");
    // -C on an empty table is fine.
    assert_eq!(d.ok(&["--clear"]), "");
}

#[test]
fn no_daemon_one_line_on_stderr_exit_2() {
    let dir = TempDir::new("nodaemon");
    let sock = dir.0.join("absent.sock");
    for args in [
        &["-L", "-n"][..],
        &["-A", "-t", "127.10.11.1:8080"],
        &["-S"],
        &["-C"],
    ] {
        let out = rvsadm_at(&sock, args, "");
        assert_eq!(code(&out), 2, "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        assert!(err.contains(&sock.display().to_string()), "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = rvsadm_at(&sock, &["-R"], "-A -t 127.10.11.1:8080\n");
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).lines().count(), 1);
    // A stale socket file nobody listens on is the same.
    let stale = dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = rvsadm_at(&stale, &["-L", "-n"], "");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(&stale.display().to_string()));
    // -v still works and says the daemon is not reachable.
    let out = rvsadm_at(&sock, &["-v"], "");
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains(&format!("rvsd: not reachable at {}", sock.display())));
}

#[test]
fn socket_flag_and_rvs_socket_env() {
    let d = Daemon::start_with(NO_CHECKS);
    d.ok(&["-A", "-t", "127.10.12.1:8080"]);
    let sock = d.socket.to_str().unwrap();
    let bogus = d.dir.0.join("bogus.sock");
    let run = |args: &[&str], env: &std::path::Path| {
        Command::new(RVSADM)
            .args(args)
            .env("RVS_SOCKET", env)
            .output()
            .unwrap()
    };
    // --socket wins over RVS_SOCKET, before or after the command.
    for args in [
        &["--socket", sock, "-S", "-n"][..],
        &["-S", "-n", "--socket", sock],
        &["-S", "-n", &format!("--socket={sock}")],
    ] {
        let out = run(args, &bogus);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "-A -t 127.10.12.1:8080 -s wlc\n");
    }
    let out = run(&["-S", "-n"], &d.socket);
    assert_eq!(stdout(&out), "-A -t 127.10.12.1:8080 -s wlc\n");
    let out = run(
        &["--socket", bogus.to_str().unwrap(), "-S", "-n"],
        &d.socket,
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bogus.sock"));
    // Mutations through --socket.
    let out = run(&["-D", "-t", "127.10.12.1:8080", "--socket", sock], &bogus);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(d.ok(&["-S", "-n"]), "");
}

#[test]
fn help_and_version() {
    let d = Daemon::start_with(NO_CHECKS);
    let out = d.rvsadm(&["-h"]);
    assert_eq!(code(&out), 0);
    let help = stdout(&out);
    assert!(help.contains("Usage:\n"), "{help}");
    assert!(help.contains(&format!("  {RVSADM} -A|E virtual-service [-s scheduler]")));
    for cmd in [
        "--add-service",
        "--restore",
        "--save",
        "--zero",
        "--set tcp tcpfin udp",
    ] {
        assert!(help.contains(cmd), "-h lacks {cmd}");
    }
    assert_eq!(stdout(&d.rvsadm(&["--help"])), help);

    let out = d.rvsadm(&["-v"]);
    assert_eq!(code(&out), 0);
    let v = stdout(&out);
    let lines: Vec<&str> = v.lines().collect();
    assert_eq!(lines.len(), 2, "{v}");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        lines[0],
        format!("rvsadm v{version} (ipvsadm v1.31 compatible, IPVS v1.2.1)")
    );
    assert!(
        lines[1].starts_with(&format!(
            "rvsd v{version} (protocol {}, pid {}, up ",
            rvs::ctl::proto::PROTOCOL_VERSION,
            d.pid()
        )),
        "{v}"
    );
    assert_eq!(stdout(&d.rvsadm(&["--version"])).lines().count(), 2);
}

#[test]
fn delete_and_add_again_at_once_rebinds() {
    let d = Daemon::start_with(NO_CHECKS);
    for i in 0..30 {
        for args in [
            &["-A", "-t", "127.10.13.1:8080"][..],
            &["-A", "-u", "127.10.13.1:8080"],
            &["-D", "-t", "127.10.13.1:8080"],
            &["-D", "-u", "127.10.13.1:8080"],
        ] {
            let out = d.rvsadm(args);
            assert_eq!(code(&out), 0, "round {i}: {args:?}: {}", stderr(&out));
        }
    }
    d.ok(&["-A", "-t", "127.10.13.1:8080"]);
    for i in 0..10 {
        let out = d.rvsadm_stdin(&["-R"], "-C\n-A -t 127.10.13.1:8080\n");
        assert_eq!(code(&out), 0, "round {i}: {}", stderr(&out));
        let out = d.rvsadm(&["-C"]);
        assert_eq!(code(&out), 0, "round {i}: {}", stderr(&out));
        let out = d.rvsadm_stdin(&["-R"], "-A -t 127.10.13.1:8080\n");
        assert_eq!(code(&out), 0, "round {i}: {}", stderr(&out));
    }
    assert_eq!(d.ok(&["-S", "-n"]), "-A -t 127.10.13.1:8080 -s wlc\n");
}

#[test]
fn connection_listing_shows_live_connections_and_templates() {
    let d = Daemon::start_with(NO_CHECKS);
    let b = Backend::tcp("b");
    let v = loopback_vip("127.10.77.1");
    d.ok(&["-A", "-t", &v, "-p", "300", "-M", "255.255.255.0"]);
    d.ok(&["-a", "-t", &v, "-r", &b.addr.to_string()]);
    let vip: std::net::SocketAddr = v.parse().unwrap();
    let held = connect_from("127.10.77.9", vip).unwrap();
    assert_eq!(greeting(&held), "b");
    let text = d.ok(&["-L", "-n", "-c"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "IPVS connection entries");
    assert_eq!(
        lines[1],
        "pro expire state       source             virtual            destination"
    );
    let conn = lines
        .iter()
        .find(|l| l.contains("ESTABLISHED"))
        .unwrap_or_else(|| panic!("{text}"));
    let client = held.local_addr().unwrap().to_string();
    let want = format!("TCP 15:00  ESTABLISHED {client:<18} {v:<18} {}", b.addr);
    // The expiry counts down from 15:00 (900 s); allow it to have moved a second.
    assert!(
        *conn == want || *conn == want.replace("15:00", "14:59"),
        "{conn:?} vs {want:?}"
    );
    let template = lines
        .iter()
        .find(|l| l.contains("127.10.77.0:0"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        template.starts_with("TCP ") && template.contains(" ASSURED ")
            || template.contains(" NONE "),
        "{template}"
    );
    assert!(template.ends_with(&b.addr.to_string()), "{template}");
}

#[test]
fn zero_inside_restore_zeroes_counters() {
    let d = Daemon::start();
    let b = Backend::tcp("z");
    let v = loopback_vip("127.10.78.1");
    d.ok(&["-A", "-t", &v]);
    d.ok(&["-a", "-t", &v, "-r", &b.addr.to_string()]);
    assert_eq!(who(v.parse().unwrap()), "z");
    let conns = || -> u64 {
        let j: serde_json::Value =
            serde_json::from_str(&d.ok(&["-L", "--json", "-t", &v])).unwrap();
        j["services"][0]["stats"]["conns"].as_u64().unwrap()
    };
    assert!(wait_for(10, || conns() == 1));
    let out = d.rvsadm_stdin(&["-R"], &format!("-Z -t {v}\n"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(conns(), 0);
}
