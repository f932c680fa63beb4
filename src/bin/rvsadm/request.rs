//! ipvsadm command line → validated [`Command`] → `ctl::Request`.
//!
//! Follows ipvsadm 1.31's processing order exactly (reference §1.5): popt
//! loop with per-option errors in argv order, `--set` values, leftovers,
//! `-b` flags, the compatibility matrix, per-command checks. Only then are
//! the features rvs does not implement rejected, so grammar errors read
//! exactly as ipvsadm's. All validation lives here; `main.rs` only executes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use rvs::ctl::proto::{
    CheckKind, Forward, HealthCheck, Netmask, Protocol, RealServerSpec, Request, ServiceKey,
    ServiceSpec, Timeouts, DEFAULT_PERSISTENT_TIMEOUT, MAX_TIMEOUT,
};

use rvs::daemon::table::{
    char_code, first_control, MIN_CHECK_INTERVAL_MS, MIN_CHECK_TIMEOUT_MS, MIN_EXEC_INTERVAL_MS,
};

use crate::addr::{atoi, number_in, parse_netmask_v4, parse_service};
use crate::cli::{Opt, HEALTH_OPTIONS, MATRIX, OPTIONS, OPT_NAMES};
use crate::output::ListOpts;
use crate::popt::Popt;

/// A client-side error: message for stderr and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub status: u8,
    pub message: String,
}

fn fail<T>(message: impl Into<String>) -> Result<T, CliError> {
    Err(CliError {
        status: 2,
        message: message.into(),
    })
}

/// ``Try `prog -h' or 'prog --help' for more information.`` (exit 255).
pub fn try_help(prog: &str) -> CliError {
    CliError {
        status: 255,
        message: format!("Try `{prog} -h' or '{prog} --help' for more information."),
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // built once per command line
pub enum Command {
    /// `-h`: print the usage text.
    Help,
    /// `-v`: print versions (the daemon's if reachable).
    Version {
        socket: Option<PathBuf>,
    },
    Run(Invocation),
}

/// A command to execute against rvsd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub action: Action,
    /// `--socket` (else `RVS_SOCKET`, else the default path).
    pub socket: Option<PathBuf>,
    /// `--json` (listings only).
    pub json: bool,
}

/// The validated ipvsadm commands rvs implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DeleteService(ServiceKey),
    Clear,
    AddServer {
        service: ServiceKey,
        server: RealServerSpec,
    },
    EditServer {
        service: ServiceKey,
        server: RealServerSpec,
    },
    DeleteServer {
        service: ServiceKey,
        server: SocketAddr,
    },
    Zero(Option<ServiceKey>),
    SetTimeouts(Timeouts),
    /// `-L [svc]`.
    List {
        service: Option<ServiceKey>,
        opts: ListOpts,
    },
    /// `-L -c`.
    ListConnections {
        numeric: bool,
        persistent_conn: bool,
    },
    /// `-L --timeout`.
    ListTimeouts,
    /// `-S [-n]`.
    Save {
        numeric: bool,
    },
    /// `-R`: read commands from stdin.
    Restore,
}

impl Action {
    /// The request to send (`None` for `-R`, which builds a batch).
    pub fn request(&self) -> Option<Request> {
        Some(match self {
            Action::AddService(s) => Request::AddService(s.clone()),
            Action::EditService(s) => Request::EditService(s.clone()),
            Action::DeleteService(k) => Request::DeleteService(*k),
            Action::Clear => Request::Clear,
            Action::AddServer { service, server } => Request::AddServer {
                service: *service,
                server: server.clone(),
            },
            Action::EditServer { service, server } => Request::EditServer {
                service: *service,
                server: server.clone(),
            },
            Action::DeleteServer { service, server } => Request::DeleteServer {
                service: *service,
                server: *server,
            },
            Action::Zero(k) => Request::Zero(*k),
            Action::SetTimeouts(t) => Request::SetTimeouts(*t),
            Action::List { service, .. } => Request::List(*service),
            Action::ListConnections { .. } => Request::ListConnections,
            Action::ListTimeouts => Request::GetTimeouts,
            Action::Save { .. } => Request::List(None),
            Action::Restore => return None,
        })
    }

    /// True for the commands that change the table.
    pub fn is_mutation(&self) -> bool {
        self.request().is_some_and(|r| r.is_mutation())
    }
}

fn default_list() -> Command {
    Command::Run(Invocation {
        action: Action::List {
            service: None,
            opts: ListOpts::default(),
        },
        socket: None,
        json: false,
    })
}

/// Everything the popt loop records (ipvsadm's `ce` and `options`).
struct State {
    cmd: Opt,
    options: u64,
    svc_kind: Option<Opt>,
    /// Service protocol for service-name look-ups (`-f` sets "tcp").
    proto: Option<&'static str>,
    svc_addr: IpAddr,
    svc_port: u16,
    svc_v6: bool,
    fwmark: u32,
    /// IPv4 mask bits, or the IPv6 prefix length once the service is IPv6.
    netmask: u32,
    sched: String,
    persistent: Option<u32>,
    ops: bool,
    sched_flags_arg: String,
    dest_addr: IpAddr,
    dest_port: u16,
    dest_v6: bool,
    fwd: Option<Opt>,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: &'static str,
    ipv6_flag: bool,
    socket: Option<PathBuf>,
    json: bool,
    /// rvs health options seen, by name, in order.
    health_opts: Vec<&'static str>,
    health: HealthCheck,
    sorry: Option<SocketAddr>,
    slow_start: Option<u32>,
    health_list: bool,
}

impl State {
    fn new(cmd: Opt) -> State {
        State {
            cmd,
            options: 0,
            svc_kind: None,
            proto: None,
            svc_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            svc_port: 0,
            svc_v6: false,
            fwmark: 0,
            netmask: u32::MAX,
            sched: String::new(),
            persistent: None,
            ops: false,
            sched_flags_arg: String::new(),
            dest_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dest_port: 0,
            dest_v6: false,
            fwd: None,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: "ipip",
            ipv6_flag: false,
            socket: None,
            json: false,
            health_opts: Vec::new(),
            health: HealthCheck::default(),
            sorry: None,
            slow_start: None,
            health_list: false,
        }
    }

    /// The rvs health-check options (long only, outside the matrix).
    fn health_option(&mut self, opt: Opt, a: String) -> Result<(), CliError> {
        let name = HEALTH_OPTIONS
            .iter()
            .find(|(o, _)| *o == opt)
            .map(|(_, n)| *n)
            .unwrap_or("?");
        if self.health_opts.contains(&name) {
            return fail(format!("multiple '{name}' options specified"));
        }
        self.health_opts.push(name);
        // Before anything echoes the value: a control character would reach
        // the terminal here, and later every `-L --health` and `-S`.
        if let Some((pos, c)) = first_control(&a) {
            return fail(format!(
                "invalid --{name} value: control character {} at character {pos}; \
                 control characters (newline, tab, escape, NUL ...) are not allowed, remove it",
                char_code(c)
            ));
        }
        let bad = |what: &str| fail(format!("invalid --{name} value `{a}': {what}"));
        let h = &mut self.health;
        match opt {
            Opt::Check => match CheckKind::parse(&a) {
                Some(k) => h.kind = Some(k),
                None => return bad("use tcp, http, exec, udp or none"),
            },
            Opt::CheckInterval | Opt::CheckTimeout | Opt::CheckJitter => {
                let Some(ms) = parse_duration_ms(&a) else {
                    return bad("give a duration such as 2, 1.5s or 200ms");
                };
                match opt {
                    Opt::CheckInterval => h.interval_ms = Some(ms),
                    Opt::CheckTimeout => h.timeout_ms = Some(ms),
                    _ => h.jitter_ms = Some(ms),
                }
                if opt == Opt::CheckInterval && ms < MIN_CHECK_INTERVAL_MS {
                    return bad(&format!(
                        "below the floor of {} ({} for exec checks)",
                        ms_text(MIN_CHECK_INTERVAL_MS),
                        ms_text(MIN_EXEC_INTERVAL_MS)
                    ));
                }
                if opt == Opt::CheckTimeout && ms < MIN_CHECK_TIMEOUT_MS {
                    return bad(&format!(
                        "below the floor of {}",
                        ms_text(MIN_CHECK_TIMEOUT_MS)
                    ));
                }
            }
            Opt::CheckRise | Opt::CheckFall => {
                let Some(n) = number_in(&a, 1, 1000) else {
                    return bad("give a count from 1 to 1000");
                };
                if opt == Opt::CheckRise {
                    h.rise = Some(n as u32);
                } else {
                    h.fall = Some(n as u32);
                }
            }
            Opt::CheckAddr => match a
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                Ok(ip) => h.addr = Some(ip),
                Err(_) => return bad("give an IPv4 or IPv6 address"),
            },
            Opt::CheckPort => match number_in(&a, 1, 65535) {
                Some(p) => h.port = Some(p as u16),
                None => return bad("give a port from 1 to 65535"),
            },
            Opt::CheckInitial => match a.as_str() {
                "up" => h.initial_up = Some(true),
                "down" => h.initial_up = Some(false),
                _ => return bad("use up or down"),
            },
            Opt::CheckHttpPath if a.starts_with('/') => h.http_path = Some(a),
            Opt::CheckHttpPath => return bad("the path must start with /"),
            Opt::CheckHttpHost => h.http_host = Some(a),
            Opt::CheckHttpStatus => {
                let (lo, hi) = a.split_once('-').unwrap_or((&a, &a));
                match (number_in(lo, 100, 599), number_in(hi, 100, 599)) {
                    (Some(lo), Some(hi)) if lo <= hi => {
                        h.http_status = Some((lo as u16, hi as u16))
                    }
                    _ => return bad("give a status or a range such as 200 or 200-399"),
                }
            }
            Opt::CheckHttpBody => h.http_body = Some(a),
            Opt::CheckExec if a.trim().is_empty() => return bad("the command is empty"),
            Opt::CheckExec => h.exec = Some(a),
            Opt::CheckUdpSend => h.udp_send = Some(a),
            Opt::CheckUdpExpect => h.udp_expect = Some(a),
            Opt::SlowStart => match number_in(&a, 0, 86_400) {
                Some(n) => self.slow_start = Some(n as u32),
                None => return bad("give seconds from 0 to 86400"),
            },
            Opt::SorryServer => match parse_service(&a, self.proto) {
                Some(p) if p.port.is_some_and(|p| p != 0) => {
                    self.sorry = Some(SocketAddr::new(p.addr, p.port.unwrap_or(0)))
                }
                _ => return bad("give address:port ([v6]:port for IPv6)"),
            },
            Opt::Health => self.health_list = true,
            _ => {}
        }
        Ok(())
    }

    fn has(&self, index: usize) -> bool {
        self.options & (1 << index) != 0
    }

    /// ipvsadm's `set_option`: each matrix option at most once.
    fn set_option(&mut self, opt: Opt) -> Result<(), CliError> {
        if let Some(i) = opt.index() {
            if self.has(i) {
                return fail(format!("multiple '{}' options specified", OPT_NAMES[i]));
            }
            self.options |= 1 << i;
        }
        Ok(())
    }

    /// rvs extensions, accepted anywhere on the line.
    fn extension(&mut self, opt: Opt, arg: Option<String>) -> Result<(), CliError> {
        match opt {
            Opt::Socket if self.socket.is_some() => fail("multiple 'socket' options specified"),
            Opt::Socket => {
                self.socket = arg.map(PathBuf::from);
                Ok(())
            }
            Opt::Json if self.json => fail("multiple 'json' options specified"),
            _ => {
                self.json = true;
                Ok(())
            }
        }
    }

    /// One option after the command (ipvsadm's big `switch`).
    fn option(&mut self, opt: Opt, arg: Option<String>) -> Result<(), CliError> {
        if matches!(opt, Opt::Socket | Opt::Json) {
            return self.extension(opt, arg);
        }
        if HEALTH_OPTIONS.iter().any(|(o, _)| *o == opt) {
            return self.health_option(opt, arg.unwrap_or_default());
        }
        self.set_option(opt)?;
        let absent = arg.is_none();
        let a = arg.unwrap_or_default();
        let num = |min: i64, max: i64, msg: &str| -> Result<u32, CliError> {
            match number_in(&a, min, max) {
                Some(n) => Ok(n as u32),
                None => fail(msg),
            }
        };
        match opt {
            Opt::Tcp | Opt::Udp | Opt::Sctp => {
                self.svc_kind = Some(opt);
                self.proto = Some(match opt {
                    Opt::Tcp => "tcp",
                    Opt::Udp => "udp",
                    _ => "sctp",
                });
                let Some(p) = parse_service(&a, self.proto) else {
                    return fail("illegal virtual server address[:port] specified");
                };
                self.svc_addr = p.addr;
                self.svc_v6 = p.addr.is_ipv6();
                if self.svc_v6 {
                    self.netmask = 128;
                }
                if let Some(port) = p.port {
                    self.svc_port = port;
                }
            }
            Opt::Fwmark => {
                self.svc_kind = Some(opt);
                self.proto = Some("tcp");
                self.svc_v6 = false;
                self.fwmark = match number_in(&a, 1, i64::from(u32::MAX)) {
                    Some(n) => n as u32,
                    None => return fail(format!("invalid fwmark value `{a}' specified")),
                };
            }
            Opt::Scheduler => {
                let mut s = a;
                while s.len() > 15 {
                    s.pop();
                }
                self.sched = s;
            }
            Opt::Persistent => {
                self.persistent = Some(if absent {
                    DEFAULT_PERSISTENT_TIMEOUT
                } else {
                    num(
                        1,
                        i64::from(MAX_TIMEOUT),
                        &format!("invalid timeout value `{a}' specified"),
                    )?
                });
            }
            Opt::Netmask if self.svc_v6 => {
                let n = atoi(&a);
                if !(1..=128).contains(&n) {
                    return fail("illegal ipv6 netmask specified");
                }
                self.netmask = n as u32;
            }
            Opt::Netmask => match parse_netmask_v4(&a) {
                Some(m) => self.netmask = u32::from(m),
                None => return fail("illegal virtual server persistent mask specified"),
            },
            Opt::RealServer => {
                let Some(p) = parse_service(&a, self.proto) else {
                    return fail("illegal real server address[:port] specified");
                };
                self.dest_addr = p.addr;
                self.dest_v6 = p.addr.is_ipv6();
                self.dest_port = p.port.unwrap_or(self.svc_port);
            }
            Opt::Gatewaying | Opt::Ipip | Opt::Masquerading => self.fwd = Some(opt),
            Opt::Weight => self.weight = num(0, i64::from(i32::MAX), "illegal weight specified")?,
            Opt::UThreshold => {
                self.u_threshold = num(0, i64::from(i32::MAX), "illegal u_threshold specified")?
            }
            Opt::LThreshold => {
                self.l_threshold = num(0, i64::from(i32::MAX), "illegal l_threshold specified")?
            }
            Opt::SyncId => {
                num(0, 255, "illegal syncid specified")?;
            }
            Opt::Ipv6 => {
                if self.fwmark == 0 {
                    return fail("-6 used before -f\n");
                }
                self.ipv6_flag = true;
                self.svc_v6 = true;
                self.netmask = 128;
            }
            Opt::Ops => self.ops = true,
            Opt::SchedFlags => self.sched_flags_arg = a,
            Opt::McastGroup => {
                if a.contains(':') {
                    if !a.parse::<Ipv6Addr>().is_ok_and(|g| g.is_multicast()) {
                        return fail(format!("invalid IPv6 mcast-group `{a}'"));
                    }
                } else if !a.parse::<Ipv4Addr>().is_ok_and(|g| g.is_multicast()) {
                    return fail(format!("invalid IPv4 mcast-group `{a}'"));
                }
            }
            Opt::McastPort => {
                num(1, 65535, "illegal mcast-port specified")?;
            }
            Opt::McastTtl => {
                num(1, 255, "illegal mcast-ttl specified")?;
            }
            Opt::SyncMaxlen => {
                num(1, 65507, "illegal sync-maxlen specified")?;
            }
            Opt::TunType => {
                self.tun_type = match a.as_str() {
                    "ipip" => "ipip",
                    "gue" => "gue",
                    "gre" => "gre",
                    _ => return fail("illegal tunnel type specified"),
                }
            }
            Opt::TunPort => {
                num(1, 65535, "illegal tunnel port specified")?;
            }
            // Flags with no value, `--pe` (rejected later) and `--sort` (no-op).
            _ => {}
        }
        Ok(())
    }
}

/// ipvsadm's `parse_sched_flags`.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, CliError> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        let Some((bit, only)) = rvs::ctl::names::sched_flag_by_name(flag) else {
            return fail(format!("invalid scheduler flag `{flag}'"));
        };
        if only.is_some_and(|s| s != sched) {
            return fail(format!("incompatible scheduler flag `{flag}'"));
        }
        flags |= bit;
    }
    Ok(flags)
}

/// Generic `+`/`x`/`1` check over one matrix row, in index order.
fn matrix_check(
    row: &[u8],
    set: impl Fn(usize) -> bool,
    names: &[&str],
    what: &str,
) -> Result<(), CliError> {
    let mut first_one: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        if !set(j) {
            if rule == b'+' {
                return fail(format!(
                    "You need to supply the '{}' option for the {what}",
                    names[j]
                ));
            }
        } else if rule == b'x' {
            return fail(format!("Illegal '{}' option with the {what}", names[j]));
        } else if rule == b'1' {
            match first_one {
                None => first_one = Some(j),
                Some(f) => {
                    return fail(format!(
                        "The option '{}' conflicts with the '{}' option in the {what}",
                        names[j], names[f]
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Parse a whole command line (`argv[0]` = program name as invoked).
pub fn parse(argv: &[String]) -> Result<Command, CliError> {
    let prog = argv.first().map(String::as_str).unwrap_or("rvsadm");
    let args = argv.get(1..).unwrap_or(&[]);
    if args.is_empty() {
        return Ok(default_list());
    }
    let mut popt = Popt::new(OPTIONS, args);
    let mut pre = State::new(Opt::List);
    // The first option must be a command (rvs extensions may precede it).
    let first = loop {
        match popt.next_opt() {
            Some(Ok(f)) if matches!(f.id, Opt::Socket | Opt::Json) => pre.extension(f.id, f.arg)?,
            Some(Ok(f)) if f.id.is_command() => break f,
            None if popt.leftovers().is_empty() => {
                let mut cmd = default_list();
                if let Command::Run(inv) = &mut cmd {
                    inv.socket = pre.socket;
                    inv.json = pre.json;
                }
                return Ok(cmd);
            }
            _ => return Err(try_help(prog)),
        }
    };
    match first.id {
        Opt::Help => return Ok(Command::Help),
        Opt::Version => {
            return Ok(Command::Version {
                socket: pre.socket.or_else(|| peek_socket(popt.remaining())),
            })
        }
        Opt::StartDaemon | Opt::StopDaemon => {
            let a = first.arg.as_deref().unwrap_or("");
            if a != "master" && a != "backup" {
                return fail(if first.id == Opt::StartDaemon {
                    "illegal start-daemon parameter specified"
                } else {
                    "illegal start_daemon specified"
                });
            }
        }
        _ => {}
    }
    let mut st = State {
        socket: pre.socket,
        json: pre.json,
        ..State::new(first.id)
    };
    while let Some(found) = popt.next_opt() {
        match found {
            Err(e) => {
                return Err(CliError {
                    status: 255,
                    message: format!("{}: {}", e.bad, e.message),
                })
            }
            Ok(f) if f.id.is_command() => return fail(format!("invalid option `{}'", f.word)),
            Ok(f) => st.option(f.id, f.arg)?,
        }
    }
    let mut leftovers = popt.leftovers().iter();
    let mut timeouts = None;
    if st.cmd == Opt::Set {
        let vals: Vec<&String> = leftovers.by_ref().take(3).collect();
        if vals.len() < 3 {
            return fail("--set option requires 3 timeout values");
        }
        let mut t = [0u32; 3];
        for (slot, v) in t.iter_mut().zip(&vals) {
            *slot = match number_in(v, 0, i64::from(MAX_TIMEOUT)) {
                Some(n) => n as u32,
                None => return fail(format!("invalid timeout value `{v}' specified")),
            };
        }
        timeouts = Some(Timeouts {
            tcp: t[0],
            tcpfin: t[1],
            udp: t[2],
        });
    }
    if let Some(extra) = leftovers.next() {
        return fail(format!("unexpected argument {extra}"));
    }
    let sched_flags = parse_sched_flags(&st.sched, &st.sched_flags_arg)?;
    let (row, cmd_name) = st.cmd.command_row().expect("a command");
    matrix_check(
        MATRIX[row],
        |j| st.has(j),
        &OPT_NAMES,
        &format!("'{cmd_name}' command"),
    )?;
    if st.json && st.cmd != Opt::List {
        return fail(format!(
            "Illegal 'json' option with the '{cmd_name}' command"
        ));
    }
    health_checks(&st, cmd_name)?;
    command_checks(&mut st)?;
    reject_unsupported(&st)?;
    let action = build(&st, sched_flags, timeouts);
    Ok(Command::Run(Invocation {
        action,
        socket: st.socket,
        json: st.json,
    }))
}

/// Which commands take the rvs health options.
fn health_checks(st: &State, cmd_name: &str) -> Result<(), CliError> {
    for name in &st.health_opts {
        let ok = match *name {
            "health" => st.cmd == Opt::List,
            "sorry-server" => matches!(st.cmd, Opt::AddService | Opt::EditService),
            _ => matches!(
                st.cmd,
                Opt::AddService | Opt::EditService | Opt::AddServer | Opt::EditServer
            ),
        };
        if !ok {
            return fail(format!(
                "Illegal '{name}' option with the '{cmd_name}' command"
            ));
        }
    }
    if st.health.kind == Some(CheckKind::Exec) {
        if let Some(ms) = st
            .health
            .interval_ms
            .filter(|&ms| ms < MIN_EXEC_INTERVAL_MS)
        {
            return fail(format!(
                "invalid --check-interval value `{}' for an exec check: below the floor of {} \
                 (each probe starts a shell); give {} or more",
                ms_text(ms),
                ms_text(MIN_EXEC_INTERVAL_MS),
                ms_text(MIN_EXEC_INTERVAL_MS)
            ));
        }
    }
    if st.health_list && (st.has(1) || st.has(12) || st.has(13)) {
        return fail("options conflicts in the list command");
    }
    Ok(())
}

/// `1500ms`, `2s`: a duration as `-S` writes it.
pub fn ms_text(ms: u32) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `2`, `1.5`, `2s`, `1.5s` (seconds) or `200ms` → milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u32> {
    let (num, scale) = match s.strip_suffix("ms") {
        Some(n) => (n, 1.0),
        None => (s.strip_suffix('s').unwrap_or(s), 1000.0),
    };
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 || v * scale > 86_400_000.0 {
        return None;
    }
    Some((v * scale).round() as u32)
}

/// `--socket` after `-v` (ipvsadm stops parsing at `-v`; rvs still wants
/// the path to ask the daemon for its version).
fn peek_socket(rest: &[String]) -> Option<PathBuf> {
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        if w == "--" {
            break;
        }
        if w == "--socket" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = w.strip_prefix("--socket=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// Steps 7–10 of ipvsadm's processing order, with rvs's `-m` default.
fn command_checks(st: &mut State) -> Result<(), CliError> {
    match st.cmd {
        Opt::AddService | Opt::EditService => {
            if st.fwmark == 0 && st.svc_port == 0 && st.persistent.is_none() {
                return fail("Zero port specified for non-persistent service");
            }
            if st.ops && st.fwmark == 0 && st.proto != Some("udp") {
                return fail("One-Packet Scheduling is only for UDP virtual services");
            }
            if st.sched.is_empty() {
                st.sched = "wlc".to_string();
            }
        }
        Opt::AddServer | Opt::EditServer => {
            let fwd = *st.fwd.get_or_insert(Opt::Masquerading);
            if st.fwmark == 0 && matches!(fwd, Opt::Gatewaying | Opt::Ipip) {
                st.dest_port = st.svc_port;
            }
            // rvs proxies, so a masqueraded server may be of the other family
            // (an IPv6 service in front of IPv4 servers); ipvsadm refuses that.
            if st.dest_v6 != st.svc_v6 && !matches!(fwd, Opt::Ipip | Opt::Masquerading) {
                return fail("Different address family is allowed only for tunneling servers");
            }
            let tun_set = |j: usize| st.has(j);
            if (29..=33).any(tun_set) && fwd != Opt::Ipip {
                return fail("Tunnel options conflict with forward method");
            }
            if fwd == Opt::Ipip {
                let row: &[u8] = match st.tun_type {
                    "gue" => b"+111",
                    "gre" => b"x11x",
                    _ => b"xxxx",
                };
                let what = format!("'{}' tunnel type", st.tun_type);
                matrix_check(row, |j| st.has(30 + j), &OPT_NAMES[30..], &what)?;
            }
        }
        Opt::List => {
            let any = |idx: &[usize]| idx.iter().any(|&i| st.has(i));
            if (any(&[1, 12, 13]) && any(&[14, 15, 16])) || (any(&[12, 13]) && st.has(17)) {
                return fail("options conflicts in the list command");
            }
        }
        _ => {}
    }
    Ok(())
}

fn unsupported<T>(what: &str, advice: &str) -> Result<T, CliError> {
    fail(format!("not supported by rvs yet: {what}; {advice}"))
}

/// Features ipvsadm has and rvs does not (yet): rejected after the grammar
/// checks, before anything is sent to the daemon.
fn reject_unsupported(st: &State) -> Result<(), CliError> {
    const USERSPACE: &str = "rvs forwards in userspace, use -m (the default)";
    const NO_SYNC: &str = "rvs has no connection synchronisation daemon";
    match st.cmd {
        Opt::StartDaemon => {
            return unsupported("--start-daemon (connection synchronisation)", NO_SYNC)
        }
        Opt::StopDaemon => {
            return unsupported("--stop-daemon (connection synchronisation)", NO_SYNC)
        }
        _ => {}
    }
    match st.svc_kind {
        Some(Opt::Fwmark) => {
            return unsupported(
                "-f (firewall-mark services)",
                "use -t or -u with address:port",
            )
        }
        Some(Opt::Sctp) => return unsupported("--sctp-service (SCTP services)", "use -t or -u"),
        _ => {}
    }
    if st.ipv6_flag {
        return unsupported(
            "-6 (IPv6 firewall-mark services)",
            "use -t or -u with [address]:port",
        );
    }
    match st.fwd {
        Some(Opt::Gatewaying) => return unsupported("-g (direct routing)", USERSPACE),
        Some(Opt::Ipip) => return unsupported("-i (IP-in-IP tunneling)", USERSPACE),
        _ => {}
    }
    for (i, name) in [
        (29, "--tun-type"),
        (30, "--tun-port"),
        (31, "--tun-nocsum"),
        (32, "--tun-csum"),
        (33, "--tun-remcsum"),
    ] {
        if st.has(i) {
            return unsupported(&format!("{name} (tunneling)"), USERSPACE);
        }
    }
    if st.has(22) {
        return unsupported(
            "--pe (persistence engines)",
            "use -p for client-address persistence",
        );
    }
    if st.has(13) {
        return unsupported("--daemon (sync daemon information)", NO_SYNC);
    }
    for (i, name) in [
        (19, "--syncid"),
        (11, "--mcast-interface"),
        (24, "--mcast-group"),
        (25, "--mcast-port"),
        (26, "--mcast-ttl"),
        (27, "--sync-maxlen"),
    ] {
        if st.has(i) {
            return unsupported(&format!("{name} (connection synchronisation)"), NO_SYNC);
        }
    }
    Ok(())
}

/// The validated state as an [`Action`].
fn build(st: &State, sched_flags: u32, timeouts: Option<Timeouts>) -> Action {
    let proto = if st.svc_kind == Some(Opt::Udp) {
        Protocol::Udp
    } else {
        Protocol::Tcp
    };
    let key = ServiceKey {
        proto,
        addr: SocketAddr::new(st.svc_addr, st.svc_port),
    };
    let service = st.svc_kind.map(|_| key);
    let spec = || ServiceSpec {
        key,
        scheduler: st.sched.clone(),
        persistent: st.persistent,
        netmask: if st.svc_v6 {
            Netmask::V6(st.netmask.min(128) as u8)
        } else {
            Netmask::V4(Ipv4Addr::from(st.netmask))
        },
        sched_flags,
        ops: st.ops,
        pe: None,
        health: st.health.clone(),
        sorry_server: st.sorry,
        slow_start: st.slow_start,
    };
    let dest = SocketAddr::new(st.dest_addr, st.dest_port);
    let server = || RealServerSpec {
        addr: dest,
        forward: Forward::Masq,
        weight: st.weight,
        u_threshold: st.u_threshold,
        l_threshold: st.l_threshold,
        health: st.health.clone(),
        slow_start: st.slow_start,
    };
    match st.cmd {
        Opt::AddService => Action::AddService(spec()),
        Opt::EditService => Action::EditService(spec()),
        Opt::DeleteService => Action::DeleteService(key),
        Opt::Clear => Action::Clear,
        Opt::AddServer => Action::AddServer {
            service: key,
            server: server(),
        },
        Opt::EditServer => Action::EditServer {
            service: key,
            server: server(),
        },
        Opt::DeleteServer => Action::DeleteServer {
            service: key,
            server: dest,
        },
        Opt::Zero => Action::Zero(service),
        Opt::Set => Action::SetTimeouts(timeouts.unwrap_or_default()),
        Opt::Save => Action::Save { numeric: st.has(0) },
        Opt::Restore => Action::Restore,
        _ if st.has(1) => Action::ListConnections {
            numeric: st.has(0),
            persistent_conn: st.has(17),
        },
        _ if st.has(12) => Action::ListTimeouts,
        _ => Action::List {
            service,
            opts: ListOpts {
                numeric: st.has(0),
                exact: st.has(20),
                stats: st.has(14),
                rate: st.has(15),
                thresholds: st.has(16),
                persistent_conn: st.has(17),
                tun_info: st.has(28),
                nosort: st.has(18),
                health: st.health_list,
            },
        },
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
