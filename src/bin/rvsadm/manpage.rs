//! A clap description of rvsadm's ipvsadm-compatible command line, used
//! only to generate `rvsadm.8` and the shell completions (hidden
//! `--generate`), built from the parser's option table
//! ([`crate::options::OPTIONS`]) and the help texts here. The real parser
//! is [`crate::request`].

use clap::{Arg, ArgAction, Command, ValueHint};
use rvs::ctl::proto::SCHEDULERS;
use rvs::docgen::{ManExtra, ManSection};

use crate::options::{Opt, OPTIONS};
use crate::popt::ArgKind;

/// Where an option is listed in the man page, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Commands,
    Service,
    Options,
    Listing,
    Rvs,
    Health,
    Unsupported,
}

impl Section {
    fn heading(self) -> Option<&'static str> {
        Some(match self {
            Section::Commands => "Commands",
            Section::Service => "Virtual service",
            Section::Options => return None,
            Section::Listing => "Listing options",
            Section::Rvs => "rvs options",
            Section::Health => "Health checks (rvs)",
            Section::Unsupported => "Accepted for compatibility, rejected by rvs",
        })
    }
}

/// How one option is documented: its section, the name of its value (for
/// options that take one), its help text, the values it accepts (listed in
/// completions) and what kind of value it is (for completions).
struct Doc {
    section: Section,
    value: &'static str,
    help: &'static str,
    values: &'static [&'static str],
    hint: Option<ValueHint>,
}

const fn d(section: Section, value: &'static str, help: &'static str) -> Doc {
    Doc {
        section,
        value,
        help,
        values: &[],
        hint: None,
    }
}

impl Doc {
    const fn values(self, values: &'static [&'static str]) -> Doc {
        Doc { values, ..self }
    }
    const fn hint(self, hint: ValueHint) -> Doc {
        Doc {
            hint: Some(hint),
            ..self
        }
    }
}

const MASTER_BACKUP: &[&str] = &["master", "backup"];

/// The documentation of every option of [`OPTIONS`]. The match has no
/// catch-all: an option added to the parser does not compile until it is
/// documented here, and the man page and completions follow from it.
fn doc(opt: Opt) -> Doc {
    use Opt::*;
    use Section::{
        Commands as C, Health as H, Listing as L, Options as O, Rvs as R, Service as S,
        Unsupported as U,
    };
    match opt {
        AddService => d(C, "", "Add a virtual service"),
        EditService => d(C, "", "Edit a virtual service: every option not given is reset to its default"),
        DeleteService => d(C, "", "Delete a virtual service and all its real servers"),
        Clear => d(C, "", "Delete every virtual service"),
        Restore => d(C, "", "Read commands from standard input and apply them all or none"),
        Save => d(C, "", "Print the table as commands that -R reads back"),
        AddServer => d(C, "", "Add a real server to a virtual service"),
        EditServer => d(C, "", "Edit a real server: every option not given is reset to its default"),
        DeleteServer => d(C, "", "Delete a real server"),
        List => d(C, "", "List the table (-l is the same), one service, the connections (-c) or the timeouts (--timeout)"),
        Zero => d(C, "", "Zero the counters and rates of one service or of all services"),
        Set => d(C, "", "Set the idle timeouts in seconds; 0 keeps a value unchanged"),
        Help => d(C, "", "Print the ipvsadm usage text"),
        Version => d(C, "", "Print the rvsadm version and, if reachable, the rvsd version"),
        Tcp => d(S, "HOST[:PORT]", "TCP virtual service; IPv6 as [ADDR]:PORT; PORT may be a service name")
            .hint(ValueHint::Hostname),
        Udp => d(S, "HOST[:PORT]", "UDP virtual service; IPv6 as [ADDR]:PORT; PORT may be a service name")
            .hint(ValueHint::Hostname),
        Scheduler => d(O, "SCHEDULER", "Scheduler: rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos (default wlc)")
            .values(SCHEDULERS),
        Persistent => d(O, "TIMEOUT", "Persistent service; the timeout defaults to 360 seconds"),
        Netmask => d(O, "NETMASK", "Persistence granularity: IPv4 mask, or prefix length for IPv6"),
        SchedFlags => d(O, "FLAGS", "Scheduler flags: flag-N, sh-fallback, sh-port, mh-fallback, mh-port")
            .values(&rvs::ctl::names::SCHED_FLAG_WORD_LIST),
        Ops => d(O, "", "One-packet scheduling (UDP services only)"),
        RealServer => d(O, "HOST[:PORT]", "Real server address; the port defaults to the service port")
            .hint(ValueHint::Hostname),
        Masquerading => d(O, "", "Masquerading (NAT); the default and only method of rvs"),
        Weight => d(O, "WEIGHT", "Capacity of the real server, 0 to 2147483647 (default 1)"),
        UThreshold => d(O, "UTHRESHOLD", "Upper connection threshold (0 = none)"),
        LThreshold => d(O, "LTHRESHOLD", "Lower connection threshold (0 = none)"),
        Numeric => d(L, "", "Numeric addresses and ports"),
        Connection => d(L, "", "List the connection table"),
        Timeout => d(L, "", "List the timeouts (tcp tcpfin udp)"),
        Stats => d(L, "", "Statistics counters"),
        Rate => d(L, "", "Rate estimates"),
        Exact => d(L, "", "Exact numbers instead of K/M/G/T abbreviations"),
        Thresholds => d(L, "", "Threshold information"),
        PersistentConn => d(L, "", "Persistent connection information"),
        TunInfo => d(L, "", "Tunnel information"),
        NoSort => d(L, "", "Do not sort services and real servers"),
        Sort => d(L, "", "Does nothing (sorting is the default)"),
        Socket => d(R, "PATH", "Control socket of rvsd (default: $RVS_SOCKET, else see FILES)")
            .hint(ValueHint::FilePath),
        Json => d(R, "", "JSON output for -L, -L -c and -L --timeout"),
        Check => d(H, "KIND", "Kind of active check: tcp, http, exec, udp or none (default: tcp for TCP services, none for UDP)")
            .values(&["tcp", "http", "exec", "udp", "none"]),
        CheckInterval => d(H, "DURATION", "Time between probes, e.g. 2, 1.5s or 200ms (default 2s; at least 100ms, 1s for exec checks)"),
        CheckTimeout => d(H, "DURATION", "Probe timeout (default 1s; at least 10ms)"),
        CheckRise => d(H, "N", "Consecutive successes that bring a down server up (default 2)"),
        CheckFall => d(H, "N", "Consecutive failures that take an up server down (default 3)"),
        CheckJitter => d(H, "DURATION", "Random extra delay before each probe, up to this long"),
        CheckAddr => d(H, "ADDRESS", "Probe this address instead of the real server's")
            .hint(ValueHint::Hostname),
        CheckPort => d(H, "PORT", "Probe this port instead of the real server's"),
        CheckInitial => d(H, "STATE", "State before the first verdict: up (default) or down until proven")
            .values(&["up", "down"]),
        CheckHttpPath => d(H, "PATH", "HTTP check: path to GET (default /)"),
        CheckHttpHost => d(H, "HOST", "HTTP check: Host header (default the probed address)")
            .hint(ValueHint::Hostname),
        CheckHttpStatus => d(H, "LO[-HI]", "HTTP check: accepted status codes (default 200-399)"),
        CheckHttpBody => d(H, "TEXT", "HTTP check: text the response body must contain"),
        CheckExec => d(H, "COMMAND", "Exec check: command run by sh -c with RVS_SERVER_ADDR and RVS_SERVER_PORT set; exit 0 means up; killed with its process group on timeout")
            .hint(ValueHint::CommandString),
        CheckUdpSend => d(H, "TEXT", "UDP check: payload to send"),
        CheckUdpExpect => d(H, "TEXT", "UDP check: text the reply must contain (any reply when unset)"),
        SlowStart => d(H, "SECS", "Ramp the effective weight up linearly over SECS after a server comes up"),
        SorryServer => d(H, "ADDR:PORT", "Used only while no real server of the service is available (-A/-E)")
            .hint(ValueHint::Hostname),
        Health => d(H, "", "With -L: per real server its health state, since when, last check result, latency and reason"),
        Fwmark => d(U, "FWMARK", "Firewall-mark service"),
        Sctp => d(U, "HOST[:PORT]", "SCTP service"),
        Ipv6 => d(U, "", "Firewall-mark service is IPv6"),
        Gatewaying => d(U, "", "Direct routing"),
        Ipip => d(U, "", "IP-in-IP tunneling"),
        TunType => d(U, "TYPE", "Tunnel type: ipip, gue or gre").values(&["ipip", "gue", "gre"]),
        TunPort => d(U, "PORT", "Tunnel destination port"),
        TunNocsum => d(U, "", "Tunnel without checksum"),
        TunCsum => d(U, "", "Tunnel with checksum"),
        TunRemcsum => d(U, "", "Tunnel with remote checksum"),
        Pe => d(U, "ENGINE", "Persistence engine"),
        StartDaemon => d(U, "STATE", "Start a connection sync daemon (master or backup)").values(MASTER_BACKUP),
        StopDaemon => d(U, "STATE", "Stop a connection sync daemon (master or backup)").values(MASTER_BACKUP),
        Daemon => d(U, "", "List sync daemons"),
        SyncId => d(U, "SID", "Sync daemon id"),
        SyncMaxlen => d(U, "LENGTH", "Maximum sync message length"),
        McastInterface => d(U, "INTERFACE", "Sync multicast interface"),
        McastGroup => d(U, "ADDRESS", "Sync multicast group"),
        McastPort => d(U, "PORT", "Sync UDP port"),
        McastTtl => d(U, "TTL", "Sync multicast TTL"),
    }
}

/// The clap argument of one [`OPTIONS`] entry with a long name; entries with
/// a short name only (`-l`) become visible aliases of the same option.
fn arg(long: &'static str, short: Option<char>, kind: ArgKind, opt: Opt, doc: &Doc) -> Arg {
    let mut a = Arg::new(long).long(long).help(doc.help);
    if let Some(c) = short {
        a = a.short(c);
    }
    for alias in OPTIONS.iter().filter(|o| o.id == opt && o.long.is_none()) {
        if let Some(c) = alias.short {
            a = a.visible_short_alias(c);
        }
    }
    a = match kind {
        // `--set tcp tcpfin udp`: popt reads the three values as leftovers.
        ArgKind::None if opt == Opt::Set => a.num_args(3).value_names(["TCP", "TCPFIN", "UDP"]),
        ArgKind::None => a.action(ArgAction::SetTrue),
        ArgKind::Required => a.value_name(doc.value).action(ArgAction::Set),
        ArgKind::Optional => a.value_name(doc.value).num_args(0..=1),
    };
    if !doc.values.is_empty() {
        a = a.value_parser(doc.values.to_vec());
    }
    if a.get_action().takes_values() {
        // Values without a hint are numbers, names and texts: no file names.
        a = a.value_hint(doc.hint.unwrap_or(ValueHint::Other));
    }
    // Possible values are listed in the help texts: clap_mangen's own
    // rendering of them does not pass `mandoc -T lint`.
    let takes_values = a.get_action().takes_values();
    a.help_heading(doc.section.heading())
        .hide_possible_values(takes_values)
}

/// [`command`] as one `--generate` target needs it. clap's bash completion
/// offers file names for host names, so there addresses complete to nothing;
/// zsh reads a `:` in a value name (`HOST[:PORT]`) as the end of the name.
pub fn command_for(target: &str) -> Command {
    let cmd = command();
    match target {
        "complete-bash" => cmd.mut_args(|a| match a.get_value_hint() {
            ValueHint::Hostname => a.value_hint(ValueHint::Other),
            _ => a,
        }),
        "complete-zsh" => cmd.mut_args(|a| {
            // Leaked once per `--generate` run: clap keeps `&'static str`s.
            let names: Vec<&'static str> = a
                .get_value_names()
                .unwrap_or_default()
                .iter()
                .map(|n| &*n.replace(':', "\\:").leak())
                .collect();
            if names.is_empty() {
                a
            } else {
                a.value_names(names)
            }
        }),
        _ => cmd,
    }
}

/// rvsadm's options for documentation and completion, generated from the
/// parser's table [`OPTIONS`] and [`doc`]: by section, then in table order.
/// The hidden `--generate` (handled in `main.rs`) is not described.
pub fn command() -> Command {
    let mut args: Vec<(Section, Arg)> = OPTIONS
        .iter()
        .filter_map(|o| {
            let long = o.long?;
            let doc = doc(o.id);
            Some((doc.section, arg(long, o.short, o.arg, o.id, &doc)))
        })
        .collect();
    args.sort_by_key(|(section, _)| *section);
    Command::new("rvsadm")
        .version(rvs::ctl::proto::RVS_VERSION)
        .about("administer the rvs userspace load balancer (ipvsadm-compatible)")
        .long_about(LONG_ABOUT)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(args.into_iter().map(|(_, a)| a))
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
    use std::collections::BTreeSet;

    /// Options the command line takes that are not in [`OPTIONS`] and must
    /// not be documented or completed: `--generate` is handled by `main.rs`
    /// before parsing, to build the man page and completions themselves.
    const HIDDEN: &[&str] = &["--generate"];

    /// Every spelling the parser accepts: `--long` and `-s`.
    fn parser_options() -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for o in OPTIONS {
            all.extend(o.long.map(|l| format!("--{l}")));
            all.extend(o.short.map(|c| format!("-{c}")));
        }
        all
    }

    fn committed(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Words of `text` that look like options (`-x`, `--long-name`).
    fn option_words(text: &str) -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| {
                let name = w.strip_prefix("--").or_else(|| w.strip_prefix('-'));
                name.is_some_and(|n| n.starts_with(|c: char| c.is_ascii_alphanumeric()))
            })
            .map(str::to_string)
            .collect()
    }

    /// The OPTIONS section of the man page, roff escapes removed: every
    /// option word in it, and those of the `.TP` headers (the documented ones).
    fn man_options(page: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let plain = page
            .replace("\\-", "-")
            .replace("\\fB", " ")
            .replace("\\fI", " ")
            .replace("\\fR", " ");
        // From OPTIONS to the first section of `man_extra` (clap writes a
        // section per help heading in between).
        let start = plain.find("\n.SH OPTIONS\n").expect("an OPTIONS section");
        let first_extra = format!("\n.SH \"{}\"\n", man_extra().sections[0].title);
        let end = plain
            .find(&first_extra)
            .expect("the sections after OPTIONS");
        let section = &plain[start..end];
        let mut headers = BTreeSet::new();
        let mut lines = section.lines();
        while let Some(l) = lines.next() {
            if l == ".TP" {
                // Value names (`<LO[-HI]>`) are not options.
                let header = lines.next().unwrap_or("");
                let names = header.split('<').map(|p| p.rsplit('>').next().unwrap_or(p));
                headers.extend(names.flat_map(option_words));
            }
        }
        (option_words(section), headers)
    }

    /// Options a completion script offers, by shell.
    fn completed(shell: &str, text: &str) -> BTreeSet<String> {
        match shell {
            "bash" => {
                let line = text
                    .lines()
                    .find(|l| l.trim_start().starts_with("opts=\"-"))
                    .expect("the top-level opts line");
                option_words(line)
            }
            "zsh" => text
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix('\''))
                .filter_map(|l| {
                    let end = l.find(['=', '+', '['])?;
                    Some(l[..end].to_string())
                })
                .filter(|w| w.starts_with('-'))
                .collect(),
            _ => {
                let mut all = BTreeSet::new();
                for l in text
                    .lines()
                    .filter(|l| l.starts_with("complete -c rvsadm "))
                {
                    let words: Vec<&str> = l.split(' ').collect();
                    for pair in words.windows(2) {
                        match pair[0] {
                            "-s" => all.insert(format!("-{}", pair[1])),
                            "-l" => all.insert(format!("--{}", pair[1])),
                            _ => false,
                        };
                    }
                }
                all
            }
        }
    }

    #[test]
    fn hidden_options_are_not_in_the_table() {
        let parser = parser_options();
        for h in HIDDEN {
            assert!(!parser.contains(*h), "{h} is in OPTIONS");
        }
    }

    /// The committed man page (kept fresh by tests/generated_docs.rs)
    /// documents exactly the options the parser accepts.
    #[test]
    fn man_page_documents_every_parser_option() {
        let parser = parser_options();
        let (mentioned, documented) = man_options(&committed("man/rvsadm.8"));
        let missing: Vec<_> = parser.difference(&mentioned).collect();
        assert!(
            missing.is_empty(),
            "man/rvsadm.8 does not document {missing:?}: describe them in manpage.rs, run scripts/gen-docs"
        );
        let unknown: Vec<_> = documented.difference(&parser).collect();
        assert!(
            unknown.is_empty(),
            "man/rvsadm.8 documents {unknown:?}, which the parser does not accept"
        );
    }

    /// Each committed completion offers exactly the parser's options, and no
    /// hidden one.
    #[test]
    fn completions_offer_every_parser_option_and_no_other() {
        let parser = parser_options();
        for (shell, path) in [
            ("bash", "completions/rvsadm.bash"),
            ("zsh", "completions/_rvsadm"),
            ("fish", "completions/rvsadm.fish"),
        ] {
            let offered = completed(shell, &committed(path));
            let missing: Vec<_> = parser.difference(&offered).collect();
            assert!(
                missing.is_empty(),
                "{path} does not offer {missing:?}: run scripts/gen-docs"
            );
            let unknown: Vec<_> = offered.difference(&parser).collect();
            assert!(
                unknown.is_empty(),
                "{path} offers {unknown:?}, which the parser does not accept (hidden: {HIDDEN:?})"
            );
        }
    }

    /// Options whose values may name files: the socket, and the exec check's
    /// command (bash completes a command as a file name).
    const FILE_VALUES: &[&str] = &["--socket", "--check-exec"];

    /// Options a completion script completes with file names.
    fn file_completed(shell: &str, text: &str) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        match shell {
            "bash" => {
                let mut current = None;
                for l in text.lines().map(str::trim) {
                    if let Some(opt) = l.strip_suffix(')').filter(|o| o.starts_with('-')) {
                        current = Some(opt.to_string());
                    } else if l.contains("compgen -f") {
                        all.extend(current.clone());
                    }
                }
            }
            "zsh" => {
                for l in text.lines().map(str::trim) {
                    if l.ends_with(":_files' \\") || l.ends_with(":_default' \\") {
                        all.extend(completed("zsh", l));
                    }
                }
            }
            _ => {
                for l in text.lines() {
                    let files = l.contains(" -F") || !l.contains(" -f");
                    if l.contains(" -r") && files {
                        all.extend(completed("fish", l));
                    }
                }
            }
        }
        all
    }

    /// Only paths complete to file names: no address, number or name does.
    #[test]
    fn completions_offer_file_names_only_for_paths() {
        let socket = OPTIONS.iter().find(|o| o.id == Opt::Socket).unwrap();
        assert_eq!(socket.short, None, "FILE_VALUES lists long names only");
        for (shell, path) in [
            ("bash", "completions/rvsadm.bash"),
            ("zsh", "completions/_rvsadm"),
            ("fish", "completions/rvsadm.fish"),
        ] {
            let files = file_completed(shell, &committed(path));
            let wrong: Vec<_> = files
                .iter()
                .filter(|o| !FILE_VALUES.contains(&o.as_str()))
                .collect();
            assert!(
                wrong.is_empty(),
                "{path} completes file names for {wrong:?}"
            );
        }
    }

    /// Addresses complete to host names where the shell knows them.
    #[test]
    fn addresses_complete_host_names_in_zsh_and_fish() {
        let zsh = committed("completions/_rvsadm");
        let fish = committed("completions/rvsadm.fish");
        for name in [
            "tcp-service",
            "udp-service",
            "real-server",
            "check-addr",
            "sorry-server",
        ] {
            let spec = format!("'--{name}=[");
            let line = zsh.lines().find(|l| l.starts_with(&spec)).unwrap();
            assert!(line.ends_with(":_hosts' \\"), "zsh --{name}: {line}");
            let flag = format!(" -l {name} ");
            let line = fish.lines().find(|l| l.contains(&flag)).unwrap();
            assert!(
                line.contains("__fish_print_hostnames"),
                "fish --{name}: {line}"
            );
        }
    }

    /// The generated definition has one argument per long option of the table.
    #[test]
    fn clap_definition_follows_the_table() {
        let cmd = command();
        let longs: BTreeSet<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        let table: BTreeSet<&str> = OPTIONS.iter().filter_map(|o| o.long).collect();
        assert_eq!(longs, table);
    }

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
