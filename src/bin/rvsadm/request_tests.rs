//! Unit tests of the ipvsadm grammar: every example of ipvsadm's “Command-line grammar”.

use super::*;

const TRY: &str = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";

fn argv(words: &[&str]) -> Vec<String> {
    std::iter::once("ipvsadm")
        .chain(words.iter().copied())
        .map(String::from)
        .collect()
}

fn line(s: &str) -> Vec<String> {
    argv(&s.split_whitespace().collect::<Vec<_>>())
}

fn err(s: &str) -> (u8, String) {
    let e = parse(&line(s)).expect_err(s);
    (e.status, e.message)
}

fn e2(msg: &str) -> (u8, String) {
    (2, msg.to_string())
}

fn inv(s: &str) -> Invocation {
    match parse(&line(s)) {
        Ok(Command::Run(inv)) => inv,
        other => panic!("{s}: {other:?}"),
    }
}

fn action(s: &str) -> Action {
    inv(s).action
}

fn service_spec(s: &str) -> ServiceSpec {
    match action(s) {
        Action::AddService(spec) | Action::EditService(spec) => spec,
        other => panic!("{s}: {other:?}"),
    }
}

fn server_spec(s: &str) -> (ServiceKey, RealServerSpec) {
    match action(s) {
        Action::AddServer { service, server } | Action::EditServer { service, server } => {
            (service, server)
        }
        other => panic!("{s}: {other:?}"),
    }
}

fn key(s: &str) -> ServiceKey {
    ServiceKey {
        proto: Protocol::Tcp,
        addr: s.parse().unwrap(),
    }
}

#[test]
fn first_option_must_be_a_command() {
    for s in [
        "-n",
        "-X",
        "foo",
        "--bogus",
        "--start-daemon",
        "--add-serv",
        "-q -A",
    ] {
        assert_eq!(err(s), (255, TRY.to_string()), "{s}");
    }
    let e = parse(&["/usr/sbin/rvsadm".to_string(), "-n".to_string()]).unwrap_err();
    assert_eq!(
        e.message,
        "Try `/usr/sbin/rvsadm -h' or '/usr/sbin/rvsadm --help' for more information."
    );
}

#[test]
fn popt_errors_after_the_command() {
    assert_eq!(err("-A -D -t 1.2.3.4:80"), e2("invalid option `-D'"));
    assert_eq!(err("-A -t 1.2.3.4:80 -h"), e2("invalid option `-h'"));
    assert_eq!(err("-A -q"), (255, "-q: unknown option".into()));
    assert_eq!(err("-L --foo"), (255, "--foo: unknown option".into()));
    assert_eq!(err("-A -t"), (255, "-t: missing argument".into()));
    assert_eq!(
        err("-A -t 1.2.3.4:80 --scheduler"),
        (255, "--scheduler: missing argument".into())
    );
    assert_eq!(err("--set -1 2 3"), (255, "-1: unknown option".into()));
    assert_eq!(
        err("-A --add-serv"),
        (255, "--add-serv: unknown option".into())
    );
    // Whichever comes first in argv wins.
    assert_eq!(
        err("-A -t 1234 -q"),
        e2("illegal virtual server address[:port] specified")
    );
    assert_eq!(err("-A -q -t 1234"), (255, "-q: unknown option".into()));
}

#[test]
fn leftovers_and_duplicates() {
    assert_eq!(err("-A -t 1.2.3.4:80 foo"), e2("unexpected argument foo"));
    assert_eq!(err("-R extra"), e2("unexpected argument extra"));
    assert_eq!(
        err("-A -t 1.2.3.4:80 -s rr -s wlc"),
        e2("multiple 'scheduler' options specified")
    );
    assert_eq!(
        err("-a -t 1.2.3.4:80 -r 10.0.0.1 -m -g"),
        e2("multiple 'forwarding-method' options specified")
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -u 1.2.3.4:80"),
        e2("multiple 'service-address' options specified")
    );
    assert_eq!(err("-L -n -n"), e2("multiple 'numeric' options specified"));
    assert!(matches!(action("-L --sort --sort"), Action::List { .. }));
    assert_eq!(
        err("--socket a --socket b -L"),
        e2("multiple 'socket' options specified")
    );
}

#[test]
fn per_option_errors() {
    let cases = [
        (
            "-A -t 1234",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t 1.2.3.4:99999",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t [::1]",
            "illegal virtual server address[:port] specified",
        ),
        ("-A -f 0", "invalid fwmark value `0' specified"),
        (
            "-A -f 4294967296",
            "invalid fwmark value `4294967296' specified",
        ),
        (
            "-A -t 1.2.3.4:80 -p 0",
            "invalid timeout value `0' specified",
        ),
        (
            "-A -t 1.2.3.4:80 -p foo",
            "invalid timeout value `foo' specified",
        ),
        (
            "-A -t 1.2.3.4:80 -p 2678401",
            "invalid timeout value `2678401' specified",
        ),
        (
            "-A -t 1.2.3.4:80 -p -M bogus.invalid",
            "illegal virtual server persistent mask specified",
        ),
        (
            "-A -t [2001:db8::1]:80 -p -M 255.255.255.0",
            "illegal ipv6 netmask specified",
        ),
        (
            "-A -t [2001:db8::1]:80 -p -M 129",
            "illegal ipv6 netmask specified",
        ),
        (
            "-a -t 1.2.3.4:80 -r 1234",
            "illegal real server address[:port] specified",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 -w -1",
            "illegal weight specified",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 -w 2147483648",
            "illegal weight specified",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 -w 3x",
            "illegal weight specified",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 -x 0x50",
            "illegal u_threshold specified",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 -y -5",
            "illegal l_threshold specified",
        ),
        ("-L --syncid 256", "illegal syncid specified"),
        (
            "--start-daemon master --mcast-port 0",
            "illegal mcast-port specified",
        ),
        (
            "--start-daemon master --mcast-ttl 256",
            "illegal mcast-ttl specified",
        ),
        (
            "--start-daemon master --sync-maxlen 65508",
            "illegal sync-maxlen specified",
        ),
        (
            "--start-daemon master --mcast-group 10.0.0.1",
            "invalid IPv4 mcast-group `10.0.0.1'",
        ),
        (
            "--start-daemon master --mcast-group 2001:db8::1",
            "invalid IPv6 mcast-group `2001:db8::1'",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 --tun-type vxlan",
            "illegal tunnel type specified",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 --tun-port 0",
            "illegal tunnel port specified",
        ),
        ("-A -6 -f 1", "-6 used before -f\n"),
        (
            "--start-daemon foo",
            "illegal start-daemon parameter specified",
        ),
        ("--stop-daemon foo", "illegal start_daemon specified"),
        ("--set 1 2", "--set option requires 3 timeout values"),
        ("--set 1 2 x", "invalid timeout value `x' specified"),
        (
            "--set 1 2 2678401",
            "invalid timeout value `2678401' specified",
        ),
        ("--set 1 2 3 4", "unexpected argument 4"),
    ];
    for (s, msg) in cases {
        assert_eq!(err(s), e2(msg), "{s}");
    }
}

#[test]
fn sched_flags() {
    assert_eq!(
        err("-A -t 1.2.3.4:80 -b foo"),
        e2("invalid scheduler flag `foo'")
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -b sh-bogus -s sh"),
        e2("invalid scheduler flag `sh-bogus'")
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -b sh-port"),
        e2("incompatible scheduler flag `sh-port'")
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -s sh -b mh-port"),
        e2("incompatible scheduler flag `mh-port'")
    );
    assert_eq!(
        service_spec("-A -t 1.2.3.4:80 -b sh-port,sh-fallback -s sh").sched_flags,
        0x18
    );
    assert_eq!(
        service_spec("-A -t 1.2.3.4:80 -s mh -b mh-fallback").sched_flags,
        0x08
    );
    assert_eq!(
        service_spec("-A -t 1.2.3.4:80 -b flag-1,,flag-3").sched_flags,
        0x28
    );
    let a = argv(&["-A", "-t", "1.2.3.4:80", "-b", ""]);
    assert!(matches!(
        parse(&a),
        Ok(Command::Run(Invocation {
            action: Action::AddService(_),
            ..
        }))
    ));
    // Flags are checked before the matrix.
    assert_eq!(err("-L -b foo"), e2("invalid scheduler flag `foo'"));
}

#[test]
fn matrix_messages() {
    let cases = [
        ("-A", "You need to supply the 'service-address' option for the 'add-service' command"),
        ("-A -t 1.2.3.4:80 -M 255.255.255.0 -n", "Illegal 'numeric' option with the 'add-service' command"),
        ("-C -t 1.2.3.4:80", "Illegal 'service-address' option with the 'flush' command"),
        ("--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command"),
        (
            "--stop-daemon backup --mcast-interface eth1",
            "Illegal 'mcast-interface' option with the 'stop-daemon' command",
        ),
        ("-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command"),
        (
            "-L -c -t 1.2.3.4:80",
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
        ),
        ("-R -n", "Illegal 'numeric' option with the 'restore' command"),
        ("-S --nosort", "Illegal 'nosort' option with the 'save' command"),
        ("-a -t 1.2.3.4:80", "You need to supply the 'real-server' option for the 'add-server' command"),
        ("-d -t 1.2.3.4:80 -r 10.0.0.1 -w 1", "Illegal 'weight' option with the 'delete-server' command"),
        ("-Z -n", "Illegal 'numeric' option with the 'zero' command"),
        ("-L --timeout --stats", "options conflicts in the list command"),
        ("-L -c --rate", "options conflicts in the list command"),
        ("-L --timeout --persistent-conn", "options conflicts in the list command"),
        ("-A -t 1.2.3.4:80 --json", "Illegal 'json' option with the 'add-service' command"),
        ("-S --json", "Illegal 'json' option with the 'save' command"),
    ];
    for (s, msg) in cases {
        assert_eq!(err(s), e2(msg), "{s}");
    }
}

#[test]
fn service_checks() {
    assert_eq!(
        err("-A -t 1.2.3.4"),
        e2("Zero port specified for non-persistent service")
    );
    assert_eq!(
        err("-E -t 1.2.3.4:80 -o"),
        e2("One-Packet Scheduling is only for UDP virtual services")
    );
    assert!(service_spec("-A -u 1.2.3.4:53 -o").ops);
    let s = service_spec("-A -t 1.2.3.4 -p");
    assert_eq!((s.key, s.persistent), (key("1.2.3.4:0"), Some(360)));
}

#[test]
fn server_checks() {
    assert_eq!(
        err("-a -t 1.2.3.4:80 -r [::1]:80 -g"),
        e2("Different address family is allowed only for tunneling servers")
    );
    // -m (the default) may mix families: an IPv6 service in front of IPv4 servers.
    let (svc, srv) = server_spec("-a -t [::1]:80 -r 127.0.0.1:8080");
    assert_eq!(
        (svc.addr.to_string(), srv.addr.to_string()),
        ("[::1]:80".into(), "127.0.0.1:8080".into())
    );
    assert_eq!(
        err("-a -t 1.2.3.4:80 -r 10.0.0.1 --tun-type gue"),
        e2("Tunnel options conflict with forward method")
    );
    let tun = |extra: &str| err(&format!("-a -t 1.2.3.4:80 -r 10.0.0.1 -i {extra}"));
    assert_eq!(
        tun("--tun-type gue"),
        e2("You need to supply the 'tun-port' option for the 'gue' tunnel type")
    );
    assert_eq!(
        tun("--tun-port 5"),
        e2("Illegal 'tun-port' option with the 'ipip' tunnel type")
    );
    assert_eq!(
        tun("--tun-type gre --tun-remcsum"),
        e2("Illegal 'tun-remcsum' option with the 'gre' tunnel type")
    );
    assert_eq!(
        tun("--tun-type gue --tun-port 5 --tun-csum --tun-remcsum"),
        e2("The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type")
    );
    assert!(tun("--tun-type gue --tun-port 5")
        .1
        .starts_with("not supported by rvs yet: -i "));
}

#[test]
fn defaults_and_full_replacement() {
    let s = service_spec("-A -t 1.2.3.4:80");
    assert_eq!(s, ServiceSpec::new(key("1.2.3.4:80")));
    assert_eq!(s.scheduler, "wlc");
    assert_eq!(
        service_spec("-E -t 1.2.3.4:80"),
        ServiceSpec::new(key("1.2.3.4:80"))
    );
    let s = service_spec("-E -t 1.2.3.4:80 -s sh -p 600 -M 255.255.255.0");
    assert_eq!(s.scheduler, "sh");
    assert_eq!(s.persistent, Some(600));
    assert_eq!(s.netmask, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)));
    let (k, r) = server_spec("-a -t 1.2.3.4:80 -r 10.0.0.1");
    assert_eq!(k, key("1.2.3.4:80"));
    assert_eq!(r, RealServerSpec::new("10.0.0.1:80".parse().unwrap()));
    assert_eq!(r.forward, Forward::Masq, "-m is the default in rvs");
    let (_, r) = server_spec("-e -t 1.2.3.4:80 -r 10.0.0.1:8080 -x 10");
    assert_eq!(
        (r.addr.port(), r.weight, r.u_threshold, r.l_threshold),
        (8080, 1, 10, 0)
    );
    let (_, r) = server_spec("-a -t 1.2.3.4:80 -r 10.0.0.1:8080 -m -w 0 -x 5 -y 2");
    assert_eq!(
        (r.addr.port(), r.weight, r.u_threshold, r.l_threshold),
        (8080, 0, 5, 2)
    );
    // -r parsed before -t gets port 0.
    let (_, r) = server_spec("-a -r 10.0.0.1 -t 1.2.3.4:80");
    assert_eq!(r.addr.port(), 0);
    assert_eq!(
        server_spec("-a -t 1.2.3.4:80 -r 10.0.0.1 -w 2147483647")
            .1
            .weight,
        i32::MAX as u32
    );
}

#[test]
fn bundling_and_attached_arguments() {
    assert_eq!(
        action("-At1.2.3.4:80"),
        Action::AddService(ServiceSpec::new(key("1.2.3.4:80")))
    );
    assert_eq!(service_spec("-At 1.2.3.4:80 -s=rr").scheduler, "rr");
    assert_eq!(service_spec("-As=rr -t 1.2.3.4:80").scheduler, "rr");
    assert_eq!(
        service_spec("--add-service --tcp-service=1.2.3.4:80 --scheduler=sh").scheduler,
        "sh"
    );
    match action("-Ln") {
        Action::List {
            service: None,
            opts,
        } => assert!(opts.numeric),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        action("-lcn"),
        Action::ListConnections {
            numeric: true,
            persistent_conn: false
        }
    );
    assert_eq!(action("-L --timeout"), Action::ListTimeouts);
    assert_eq!(
        action("-L -c --persistent-conn"),
        Action::ListConnections {
            numeric: false,
            persistent_conn: true
        }
    );
    // Long scheduler names are cut to 15 characters like ipvsadm's strncpy.
    assert_eq!(
        service_spec("-A -t 1.2.3.4:80 -s abcdefghijklmnopq").scheduler,
        "abcdefghijklmno"
    );
}

#[test]
fn persistent_optional_value() {
    let p = |s: &str| service_spec(s).persistent;
    assert_eq!(p("-A -t 1.2.3.4:80 -p"), Some(360));
    assert_eq!(p("-A -t 1.2.3.4:80 -p -s rr"), Some(360));
    assert_eq!(p("-A -p -t 1.2.3.4:80"), Some(360));
    assert_eq!(p("-A -t 1.2.3.4:80 -p600"), Some(600));
    assert_eq!(p("-A -t 1.2.3.4:80 -p 600"), Some(600));
    assert_eq!(p("-A -t 1.2.3.4:80 --persistent=600"), Some(600));
    assert_eq!(p("-A -t 1.2.3.4:80 --persistent 2678400"), Some(2_678_400));
    assert_eq!(p("-A -t 1.2.3.4:80"), None);
    assert_eq!(
        err("-A -t 1.2.3.4:80 -p 1.2.3.4"),
        e2("invalid timeout value `1.2.3.4' specified")
    );
}

#[test]
fn ipv6_and_names() {
    let s = service_spec("-A -t [2001:db8::1]:80 -p -M 64");
    assert_eq!(s.key, key("[2001:db8::1]:80"));
    assert_eq!(s.netmask, Netmask::V6(64));
    assert_eq!(
        service_spec("-A -t [2001:db8::1]:80 -p -M 64abc").netmask,
        Netmask::V6(64)
    );
    // -M before an IPv6 -t is overwritten with 128.
    assert_eq!(
        service_spec("-A -M 255.255.255.0 -t [2001:db8::1]:80").netmask,
        Netmask::V6(128)
    );
    let s = service_spec("-A -t 2001:db8::1 -p");
    assert_eq!(s.key.addr.port(), 0);
    let (_, r) = server_spec("-a -t [2001:db8::1]:80 -r [2001:db8::2]:8080");
    assert_eq!(r.addr, "[2001:db8::2]:8080".parse().unwrap());
    let (_, r) = server_spec("-a -t [2001:db8::1]:80 -r 2001:db8::2");
    assert_eq!(r.addr, "[2001:db8::2]:80".parse().unwrap());
    // Service names come from /etc/services for the service's protocol.
    assert_eq!(service_spec("-A -t 1.2.3.4:http").key, key("1.2.3.4:80"));
    let (_, r) = server_spec("-a -t 1.2.3.4:https -r 10.0.0.1:http-alt");
    assert_eq!(r.addr, "10.0.0.1:8080".parse().unwrap());
    let s = service_spec("-A -u 1.2.3.4:domain");
    assert_eq!(
        s.key,
        ServiceKey {
            proto: Protocol::Udp,
            addr: "1.2.3.4:53".parse().unwrap()
        }
    );
    assert_eq!(
        err("-A -t 1.2.3.4:nosuchservice"),
        e2("illegal virtual server address[:port] specified")
    );
    assert_eq!(service_spec("-A -t localhost:80").key, key("127.0.0.1:80"));
}

#[test]
fn rvs_rejections() {
    let cases = [
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 -g",
            "-g (direct routing); rvs forwards in userspace, use -m (the default)",
        ),
        (
            "-a -t 1.2.3.4:80 -r 10.0.0.1 --ipip",
            "-i (IP-in-IP tunneling)",
        ),
        ("-A -f 1", "-f (firewall-mark services)"),
        ("-L -f 1", "-f (firewall-mark services)"),
        (
            "-A --sctp-service 1.2.3.4:80",
            "--sctp-service (SCTP services)",
        ),
        ("-A -t 1.2.3.4:80 -p --pe sip", "--pe (persistence engines)"),
        (
            "--start-daemon master",
            "--start-daemon (connection synchronisation)",
        ),
        (
            "--stop-daemon backup --syncid 3",
            "--stop-daemon (connection synchronisation)",
        ),
        ("-L --daemon", "--daemon (sync daemon information)"),
        ("-L --syncid 3", "--syncid (connection synchronisation)"),
    ];
    for (s, what) in cases {
        let (status, msg) = err(s);
        assert_eq!(status, 2, "{s}");
        assert!(
            msg.starts_with(&format!("not supported by rvs yet: {what}")),
            "{s}: {msg}"
        );
    }
    // Grammar errors come first.
    assert_eq!(
        err("-a -t 1.2.3.4:80 -r 10.0.0.1 -g -w x"),
        e2("illegal weight specified")
    );
    assert_eq!(
        err("-A -f 1 -n"),
        e2("Illegal 'numeric' option with the 'add-service' command")
    );
}

#[test]
fn other_commands() {
    assert_eq!(parse(&argv(&[])), Ok(default_list()));
    assert_eq!(parse(&line("-h")), Ok(Command::Help));
    assert_eq!(parse(&line("--help --bogus")), Ok(Command::Help));
    assert_eq!(parse(&line("-v")), Ok(Command::Version { socket: None }));
    assert_eq!(
        parse(&line("-v --socket /s")),
        Ok(Command::Version {
            socket: Some("/s".into())
        })
    );
    assert_eq!(action("-C"), Action::Clear);
    assert_eq!(action("-R"), Action::Restore);
    assert_eq!(action("-S -n"), Action::Save { numeric: true });
    assert_eq!(action("-Z"), Action::Zero(None));
    assert_eq!(
        action("-Z -t 1.2.3.4:80"),
        Action::Zero(Some(key("1.2.3.4:80")))
    );
    assert_eq!(
        action("-D -t 1.2.3.4:80"),
        Action::DeleteService(key("1.2.3.4:80"))
    );
    assert_eq!(
        action("-d -t 1.2.3.4:80 -r 10.0.0.1"),
        Action::DeleteServer {
            service: key("1.2.3.4:80"),
            server: "10.0.0.1:80".parse().unwrap()
        }
    );
    assert_eq!(
        action("--set 900 0 300"),
        Action::SetTimeouts(Timeouts {
            tcp: 900,
            tcpfin: 0,
            udp: 300
        })
    );
    match action("-L -t 1.2.3.4:80 --stats --exact --nosort") {
        Action::List { service, opts } => {
            assert_eq!(service, Some(key("1.2.3.4:80")));
            assert!(opts.stats && opts.exact && opts.nosort && !opts.numeric);
        }
        other => panic!("{other:?}"),
    }
    let i = inv("--socket /tmp/x.sock -L -n --json");
    assert_eq!(
        (i.socket, i.json),
        (Some(PathBuf::from("/tmp/x.sock")), true)
    );
    let i = inv("--socket=/tmp/y");
    assert_eq!(
        (i.socket, i.action.request()),
        (Some(PathBuf::from("/tmp/y")), Some(Request::List(None)))
    );
    assert!(inv("-L -c --json").json);
    assert!(action("-A -t 1.2.3.4:80").is_mutation());
    assert!(!action("-S").is_mutation());
}

#[test]
fn control_characters_refused_in_every_check_value() {
    for opt in [
        "--check-exec",
        "--check-http-path",
        "--check-http-host",
        "--check-http-body",
        "--check-udp-send",
        "--check-udp-expect",
        "--sorry-server",
        "--check-interval",
    ] {
        for (value, code, pos) in [
            ("/ok\necho pwned", "U+000A", 4),
            ("/a\rb", "U+000D", 3),
            ("\x1b[2J/", "U+001B", 1),
            ("/x\0", "U+0000", 3),
            ("/\tx", "U+0009", 2),
            ("/é\u{9b}31m", "U+009B", 3),
        ] {
            let e = parse(&argv(&["-A", "-t", "1.2.3.4:80", opt, value])).unwrap_err();
            let name = opt.trim_start_matches("--");
            assert_eq!(
                e.message,
                format!(
                    "invalid --{name} value: control character {code} at character {pos}; \
                     control characters (newline, tab, escape, NUL ...) are not allowed, remove it"
                ),
            );
            assert_eq!(e.status, 2);
            assert!(!e.message.contains(char::is_control));
        }
    }
    // Spaces, quotes, `$`, backslashes and non-ASCII text are fine.
    let v = "/usr/bin/probe \"$RVS_SERVER_ADDR\" 'é' \\ 日本";
    let (_, srv) = server_spec_argv(&[
        "-a",
        "-t",
        "1.2.3.4:80",
        "-r",
        "10.0.0.1",
        "--check-exec",
        v,
    ]);
    assert_eq!(srv.health.exec.as_deref(), Some(v));
}

fn server_spec_argv(words: &[&str]) -> (ServiceKey, RealServerSpec) {
    match parse(&argv(words)) {
        Ok(Command::Run(Invocation {
            action: Action::AddServer { service, server },
            ..
        })) => (service, server),
        other => panic!("{words:?}: {other:?}"),
    }
}

#[test]
fn check_interval_and_timeout_floors() {
    assert_eq!(
        err("-A -t 1.2.3.4:80 --check-interval 99ms"),
        e2("invalid --check-interval value `99ms': below the floor of 100ms (1s for exec checks)")
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 --check-interval 0"),
        e2("invalid --check-interval value `0': below the floor of 100ms (1s for exec checks)")
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 --check-timeout 9ms"),
        e2("invalid --check-timeout value `9ms': below the floor of 10ms")
    );
    let exec = "invalid --check-interval value `999ms' for an exec check: below the floor of 1s \
                (each probe starts a shell); give 1s or more";
    assert_eq!(
        err("-A -t 1.2.3.4:80 --check exec --check-exec true --check-interval 999ms"),
        e2(exec)
    );
    // In either order.
    assert_eq!(
        err("-a -t 1.2.3.4:80 -r 10.0.0.1 --check-interval 999ms --check-exec true --check exec"),
        e2(exec)
    );
    let s = service_spec("-A -t 1.2.3.4:80 --check-interval 100ms --check-timeout 10ms");
    assert_eq!(
        (s.health.interval_ms, s.health.timeout_ms),
        (Some(100), Some(10))
    );
    let s = service_spec("-A -t 1.2.3.4:80 --check exec --check-exec true --check-interval 1s");
    assert_eq!(s.health.interval_ms, Some(1000));
    assert_eq!(
        service_spec("-A -t 1.2.3.4:80 --check-jitter 0")
            .health
            .jitter_ms,
        Some(0)
    );
}
