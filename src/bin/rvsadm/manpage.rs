//! A clap description of rvsadm's ipvsadm-compatible command line, used
//! only to generate `rvsadm.8` and the shell completions (hidden
//! `--generate`). The real parser is [`crate::request`].

use clap::{Arg, ArgAction, Command, ValueHint};
use rvs::ctl::proto::SCHEDULERS;
use rvs::docgen::{ManExtra, ManSection};

const COMMANDS: &str = "Commands";
const SERVICE: &str = "Virtual service";
const LISTING: &str = "Listing options";
const RVS: &str = "rvs options";
const HEALTH: &str = "Health checks (rvs)";

/// The rvs health-check options (-A/-E set service defaults, -a/-e override per server).
fn health_args() -> Vec<Arg> {
    vec![
        value("check", None, "KIND", "Kind of active check: tcp, http, exec, udp or none (default: tcp for TCP services, none for UDP)")
            .value_parser(["tcp", "http", "exec", "udp", "none"]),
        value("check-interval", None, "DURATION", "Time between probes, e.g. 2, 1.5s or 200ms (default 2s; at least 100ms, 1s for exec checks)"),
        value("check-timeout", None, "DURATION", "Probe timeout (default 1s; at least 10ms)"),
        value("check-rise", None, "N", "Consecutive successes that bring a down server up (default 2)"),
        value("check-fall", None, "N", "Consecutive failures that take an up server down (default 3)"),
        value("check-jitter", None, "DURATION", "Random extra delay before each probe, up to this long"),
        value("check-addr", None, "ADDRESS", "Probe this address instead of the real server's"),
        value("check-port", None, "PORT", "Probe this port instead of the real server's"),
        value("check-initial", None, "STATE", "State before the first verdict: up (default) or down until proven")
            .value_parser(["up", "down"]),
        value("check-http-path", None, "PATH", "HTTP check: path to GET (default /)"),
        value("check-http-host", None, "HOST", "HTTP check: Host header (default the probed address)"),
        value("check-http-status", None, "LO[-HI]", "HTTP check: accepted status codes (default 200-399)"),
        value("check-http-body", None, "TEXT", "HTTP check: text the response body must contain"),
        value("check-exec", None, "COMMAND", "Exec check: command run by sh -c with RVS_SERVER_ADDR and RVS_SERVER_PORT set; exit 0 means up; killed with its process group on timeout")
            .value_hint(ValueHint::CommandString),
        value("check-udp-send", None, "TEXT", "UDP check: payload to send"),
        value("check-udp-expect", None, "TEXT", "UDP check: text the reply must contain (any reply when unset)"),
        value("slow-start", None, "SECS", "Ramp the effective weight up linearly over SECS after a server comes up"),
        value("sorry-server", None, "ADDR:PORT", "Used only while no real server of the service is available (-A/-E)"),
        flag("health", None, "With -L: per real server its health state, since when, last check result, latency and reason"),
    ]
}
const UNSUPPORTED: &str = "Accepted for compatibility, rejected by rvs";

fn flag(id: &'static str, short: Option<char>, help: &'static str) -> Arg {
    let a = Arg::new(id).long(id).help(help).action(ArgAction::SetTrue);
    match short {
        Some(c) => a.short(c),
        None => a,
    }
}

fn value(id: &'static str, short: Option<char>, name: &'static str, help: &'static str) -> Arg {
    let a = Arg::new(id)
        .long(id)
        .value_name(name)
        .help(help)
        .action(ArgAction::Set);
    match short {
        Some(c) => a.short(c),
        None => a,
    }
}

/// rvsadm's options, described for documentation and completion.
pub fn command() -> Command {
    let commands = [
        flag("add-service", Some('A'), "Add a virtual service"),
        flag(
            "edit-service",
            Some('E'),
            "Edit a virtual service: every option not given is reset to its default",
        ),
        flag(
            "delete-service",
            Some('D'),
            "Delete a virtual service and all its real servers",
        ),
        flag("clear", Some('C'), "Delete every virtual service"),
        flag(
            "restore",
            Some('R'),
            "Read commands from standard input and apply them all or none",
        ),
        flag(
            "save",
            Some('S'),
            "Print the table as commands that -R reads back",
        ),
        flag(
            "add-server",
            Some('a'),
            "Add a real server to a virtual service",
        ),
        flag(
            "edit-server",
            Some('e'),
            "Edit a real server: every option not given is reset to its default",
        ),
        flag("delete-server", Some('d'), "Delete a real server"),
        flag(
            "list",
            Some('L'),
            "List the table, one service, the connections (-c) or the timeouts (--timeout)",
        )
        .visible_short_alias('l'),
        flag(
            "zero",
            Some('Z'),
            "Zero the counters and rates of one service or of all services",
        ),
        Arg::new("set")
            .long("set")
            .num_args(3)
            .value_names(["TCP", "TCPFIN", "UDP"])
            .help("Set the idle timeouts in seconds; 0 keeps a value unchanged"),
        flag("help", Some('h'), "Print the ipvsadm usage text"),
        flag(
            "version",
            Some('v'),
            "Print the rvsadm version and, if reachable, the rvsd version",
        ),
    ];
    let service = [
        value(
            "tcp-service",
            Some('t'),
            "HOST[:PORT]",
            "TCP virtual service; IPv6 as [ADDR]:PORT; PORT may be a service name",
        )
        .value_hint(ValueHint::Hostname),
        value(
            "udp-service",
            Some('u'),
            "HOST[:PORT]",
            "UDP virtual service; IPv6 as [ADDR]:PORT; PORT may be a service name",
        )
        .value_hint(ValueHint::Hostname),
    ];
    let options = [
        value(
            "scheduler",
            Some('s'),
            "SCHEDULER",
            "Scheduler: rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos (default wlc)",
        )
        .value_parser(SCHEDULERS.to_vec()),
        Arg::new("persistent")
            .long("persistent")
            .short('p')
            .value_name("TIMEOUT")
            .num_args(0..=1)
            .help("Persistent service; the timeout defaults to 360 seconds"),
        value(
            "netmask",
            Some('M'),
            "NETMASK",
            "Persistence granularity: IPv4 mask, or prefix length for IPv6",
        ),
        value(
            "sched-flags",
            Some('b'),
            "FLAGS",
            "Scheduler flags: flag-N, sh-fallback, sh-port, mh-fallback, mh-port",
        )
        .value_parser([
            "flag-1",
            "flag-2",
            "flag-3",
            "sh-fallback",
            "sh-port",
            "mh-fallback",
            "mh-port",
        ]),
        flag(
            "ops",
            Some('o'),
            "One-packet scheduling (UDP services only)",
        ),
        value(
            "real-server",
            Some('r'),
            "HOST[:PORT]",
            "Real server address; the port defaults to the service port",
        )
        .value_hint(ValueHint::Hostname),
        flag(
            "masquerading",
            Some('m'),
            "Masquerading (NAT); the default and only method of rvs",
        ),
        value(
            "weight",
            Some('w'),
            "WEIGHT",
            "Capacity of the real server, 0 to 2147483647 (default 1)",
        ),
        value(
            "u-threshold",
            Some('x'),
            "UTHRESHOLD",
            "Upper connection threshold (0 = none)",
        ),
        value(
            "l-threshold",
            Some('y'),
            "LTHRESHOLD",
            "Lower connection threshold (0 = none)",
        ),
    ];
    let listing = [
        flag("numeric", Some('n'), "Numeric addresses and ports"),
        flag("connection", Some('c'), "List the connection table"),
        flag("timeout", None, "List the timeouts (tcp tcpfin udp)"),
        flag("stats", None, "Statistics counters"),
        flag("rate", None, "Rate estimates"),
        flag(
            "exact",
            Some('X'),
            "Exact numbers instead of K/M/G/T abbreviations",
        ),
        flag("thresholds", None, "Threshold information"),
        flag("persistent-conn", None, "Persistent connection information"),
        flag("tun-info", None, "Tunnel information"),
        flag("nosort", None, "Do not sort services and real servers"),
        flag("sort", None, "Does nothing (sorting is the default)"),
    ];
    let rvs = [
        value(
            "socket",
            None,
            "PATH",
            "Control socket of rvsd (default: $RVS_SOCKET, else see FILES)",
        )
        .value_hint(ValueHint::FilePath),
        flag("json", None, "JSON output for -L, -L -c and -L --timeout"),
        value("generate", None, "WHAT", "Print generated documentation")
            .value_parser(rvs::docgen::TARGETS.to_vec())
            .hide(true),
    ];
    let unsupported = [
        value(
            "fwmark-service",
            Some('f'),
            "FWMARK",
            "Firewall-mark service",
        ),
        value("sctp-service", None, "HOST[:PORT]", "SCTP service"),
        flag("ipv6", Some('6'), "Firewall-mark service is IPv6"),
        flag("gatewaying", Some('g'), "Direct routing"),
        flag("ipip", Some('i'), "IP-in-IP tunneling"),
        value("tun-type", None, "TYPE", "Tunnel type: ipip, gue or gre")
            .value_parser(["ipip", "gue", "gre"]),
        value("tun-port", None, "PORT", "Tunnel destination port"),
        flag("tun-nocsum", None, "Tunnel without checksum"),
        flag("tun-csum", None, "Tunnel with checksum"),
        flag("tun-remcsum", None, "Tunnel with remote checksum"),
        value("pe", None, "ENGINE", "Persistence engine"),
        value(
            "start-daemon",
            None,
            "STATE",
            "Start a connection sync daemon (master or backup)",
        )
        .value_parser(["master", "backup"]),
        value(
            "stop-daemon",
            None,
            "STATE",
            "Stop a connection sync daemon (master or backup)",
        )
        .value_parser(["master", "backup"]),
        flag("daemon", None, "List sync daemons"),
        value("syncid", None, "SID", "Sync daemon id"),
        value("sync-maxlen", None, "LENGTH", "Maximum sync message length"),
        value(
            "mcast-interface",
            None,
            "INTERFACE",
            "Sync multicast interface",
        ),
        value("mcast-group", None, "ADDRESS", "Sync multicast group"),
        value("mcast-port", None, "PORT", "Sync UDP port"),
        value("mcast-ttl", None, "TTL", "Sync multicast TTL"),
    ];
    // Possible values are listed in the help texts: clap_mangen's own
    // rendering of them does not pass `mandoc -T lint`.
    let heading = |args: Vec<Arg>, h: Option<&'static str>| {
        args.into_iter().map(move |a| {
            let takes_values = a.get_action().takes_values();
            a.help_heading(h).hide_possible_values(takes_values)
        })
    };
    Command::new("rvsadm")
        .version(rvs::ctl::proto::RVS_VERSION)
        .about("administer the rvs userspace load balancer (ipvsadm-compatible)")
        .long_about(LONG_ABOUT)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(heading(commands.to_vec(), Some(COMMANDS)))
        .args(heading(service.to_vec(), Some(SERVICE)))
        .args(heading(options.to_vec(), None))
        .args(heading(listing.to_vec(), Some(LISTING)))
        .args(heading(rvs.to_vec(), Some(RVS)))
        .args(heading(health_args(), Some(HEALTH)))
        .args(heading(unsupported.to_vec(), Some(UNSUPPORTED)))
}

const LONG_ABOUT: &str = "\
rvsadm sets up, maintains and inspects the virtual-service table
of rvsd, a userspace layer-4 (TCP/UDP) load balancer. It accepts
the command line of ipvsadm(8) 1.31: the same commands, options,
defaults, error messages and exit statuses, and the same listing
and -S formats, so existing scripts and ipvsadm-save files work
unchanged.

rvsadm talks to rvsd over a Unix socket. Table changes are made by
rvsd; with -R a whole file of commands is applied atomically:
either every line takes effect or none does.

The first option must be a command. Options may be bundled (-Ln)
and short option arguments attached (-p600). Run without
arguments, rvsadm lists the table like -L.";

const SYNOPSIS: &str = r".nf
\fBrvsadm\fR \-A|\-E \fIvirtual\-service\fR [\-s \fIscheduler\fR] [\-p [\fItimeout\fR]] [\-M \fInetmask\fR] [\-b \fIsched\-flags\fR] [\-o]
\fBrvsadm\fR \-D \fIvirtual\-service\fR
\fBrvsadm\fR \-C
\fBrvsadm\fR \-R
\fBrvsadm\fR \-S [\-n]
\fBrvsadm\fR \-a|\-e \fIvirtual\-service\fR \-r \fIserver\-address\fR [\-m] [\-w \fIweight\fR] [\-x \fIupper\fR] [\-y \fIlower\fR]
\fBrvsadm\fR \-d \fIvirtual\-service\fR \-r \fIserver\-address\fR
\fBrvsadm\fR \-L|\-l [\fIvirtual\-service\fR] [\fIoptions\fR] [\-\-json]
\fBrvsadm\fR \-Z [\fIvirtual\-service\fR]
\fBrvsadm\fR \-\-set \fItcp\fR \fItcpfin\fR \fIudp\fR
\fBrvsadm\fR \-h|\-v
.fi
.PP
\fIvirtual\-service\fR is \fB\-t\fR|\fB\-u\fR \fIhost\fR[:\fIport\fR] (IPv6: [\fIaddress\fR]:\fIport\fR).
Every command also accepts \fB\-\-socket\fR \fIpath\fR.
";

const EXIT_STATUS: &str = r".TP
.B 0
Success, including an empty listing, \-h and \-v.
.TP
.B 1
A listing failed, e.g. \-L of a service that does not exist (No such service).
.TP
.B 2
The command line is invalid, asks for a feature rvs does not support yet, or
rvsd cannot be reached or runs an incompatible version.
Nothing was changed.
.TP
.B 255
The command line does not start with a command, an option is unknown or lacks
its argument, or rvsd refused a change (its message is printed).
";

const FILES: &str = r".TP
.I /run/rvs/rvsd.sock
Control socket of rvsd when run as root.
.TP
.I $XDG_RUNTIME_DIR/rvs/rvsd.sock
Control socket for other users;
\fI/tmp/rvs\-UID/rvsd.sock\fR without XDG_RUNTIME_DIR.
.TP
.I /etc/services
Service names accepted as ports and printed in listings without \-n.
";

const ENVIRONMENT: &str = r".TP
.B RVS_SOCKET
Path of the control socket, used when \-\-socket is not given.
.TP
.B XDG_RUNTIME_DIR
Directory of the default socket for users other than root.
";

const EXAMPLES: &str = r"Each ipvsadm command line works unchanged with rvsadm.
Each example shows the ipvsadm command and its rvsadm equivalent.
.PP
Add a TCP service with round-robin scheduling.
.PP
.RS 4
.nf
ipvsadm \-A \-t 10.0.0.1:80 \-s rr
rvsadm \-A \-t 10.0.0.1:80 \-s rr
.fi
.RE
.PP
Add a real server with weight 2 (-m is the default of rvsadm).
.PP
.RS 4
.nf
ipvsadm \-a \-t 10.0.0.1:80 \-r 192.168.1.2:8080 \-m \-w 2
rvsadm \-a \-t 10.0.0.1:80 \-r 192.168.1.2:8080 \-w 2
.fi
.RE
.PP
Make the service persistent for 600 seconds.
.PP
.RS 4
.nf
ipvsadm \-E \-t 10.0.0.1:80 \-s wlc \-p 600
rvsadm \-E \-t 10.0.0.1:80 \-s wlc \-p 600
.fi
.RE
.PP
An IPv6 UDP service hashed on the client address and port.
.PP
.RS 4
.nf
ipvsadm \-A \-u [2001:db8::1]:53 \-s sh \-b sh\-port
rvsadm \-A \-u [2001:db8::1]:53 \-s sh \-b sh\-port
.fi
.RE
.PP
List the table numerically with counters.
.PP
.RS 4
.nf
ipvsadm \-L \-n \-\-stats
rvsadm \-L \-n \-\-stats
.fi
.RE
.PP
Zero the counters of one service.
.PP
.RS 4
.nf
ipvsadm \-Z \-t 10.0.0.1:80
rvsadm \-Z \-t 10.0.0.1:80
.fi
.RE
.PP
Save the table.
.PP
.RS 4
.nf
ipvsadm\-save \-n > rules
rvsadm \-S \-n > rules
.fi
.RE
.PP
Replace the table with the saved one.
.PP
.RS 4
.nf
ipvsadm\-restore < rules
rvsadm \-C; rvsadm \-R < rules
.fi
.RE
.PP
Machine-readable listing for scripts (rvs extension).
.PP
.RS 4
.nf
ipvsadm \-L \-n
rvsadm \-L \-n \-\-json
.fi
.RE
";

const DIFFERENCES: &str = r"rvs forwards connections in userspace, so masquerading (\-m) is the only
forwarding method and is the default (ipvsadm defaults to \-g).
The following are parsed exactly as ipvsadm parses them and then rejected with
\(lqnot supported by rvs yet\(rq and exit status 2:
\-g, \-i and the \-\-tun\-* options, \-f, \-6, \-\-sctp\-service, \-\-pe,
\-\-start\-daemon, \-\-stop\-daemon, \-\-daemon, \-\-syncid, \-\-mcast\-* and \-\-sync\-maxlen.
.PP
\-R validates the whole input before sending it and applies it atomically:
a bad line changes nothing, and an error is reported as
\(lqline N: text: message\(rq.
Lines starting with # are skipped.
.PP
Health\-check texts (\-\-check\-exec, \-\-check\-http\-*, \-\-check\-udp\-*,
\-\-sorry\-server) may not hold control characters (newline, tab, escape, NUL ...);
the error names the option and the character's position.
\-S writes a value with blanks, quotes or backslashes in double quotes, with
\(rs\(dq and \(rs\(rs inside; \-R reads it back unchanged.
A control character that a table from an older rvsd holds is written as
\(rsn, \(rsr, \(rst, \(rsxHH or \(rsu{HHHH} (with a warning on standard error),
and \-R refuses it.
.PP
A real server or sorry server that is the virtual service itself is refused;
for a service on 0.0.0.0 or :: that means any address of this host of that
family (127.0.0.0/8, ::1 included) on the service's port.
.PP
\-v prints the rvsadm version and the version, protocol, pid and uptime of rvsd,
or that rvsd is not reachable.
Other commands print one line naming the socket and exit 2 when rvsd
cannot be reached.
.PP
\-\-socket and \-\-json are rvs extensions; \-\-json is allowed with \-L,
\-L \-c and \-L \-\-timeout only.
";

const SEE_ALSO: &str = r".BR rvsd (8),
.BR rvstop (1),
.BR ipvsadm (8)
";

/// The man page sections clap cannot generate.
pub fn man_extra() -> ManExtra {
    ManExtra {
        section: "8".into(),
        date: "2025-01-01".into(),
        manual: "System Manager's Manual".into(),
        synopsis: Some(SYNOPSIS.into()),
        sections: vec![
            ManSection::new("EXIT STATUS", EXIT_STATUS),
            ManSection::new("FILES", FILES),
            ManSection::new("ENVIRONMENT", ENVIRONMENT),
            ManSection::new("EXAMPLES", EXAMPLES),
            ManSection::new("DIFFERENCES FROM IPVSADM", DIFFERENCES),
            ManSection::new("SEE ALSO", SEE_ALSO),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_target_generates() {
        for t in rvs::docgen::TARGETS {
            let out = rvs::docgen::generate(command(), t, &man_extra()).unwrap();
            assert!(!out.is_empty(), "{t}");
        }
        let man = String::from_utf8(rvs::docgen::generate(command(), "man", &man_extra()).unwrap())
            .unwrap();
        assert!(man.contains("\n.TH RVSADM 8 "));
        for s in [
            "EXIT STATUS",
            "FILES",
            "ENVIRONMENT",
            "EXAMPLES",
            "DIFFERENCES FROM IPVSADM",
            "SEE ALSO",
        ] {
            assert!(man.contains(&format!(".SH \"{s}\"")), "{s}");
        }
    }
}
