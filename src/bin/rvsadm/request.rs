//! ipvsadm command line → validated [`Command`] → `ctl::Request`.
//!
//! Follows ipvsadm 1.31's processing order exactly (ipvsadm's “Exact processing order”): popt
//! loop with per-option errors in argv order, `--set` values, leftovers,
//! `-b` flags, the compatibility matrix, per-command checks. Only then are
//! the features rvs does not implement rejected, so grammar errors read
//! exactly as ipvsadm's. All validation lives here; `main.rs` only executes.

mod checks;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use rvs::ctl::proto::{
    Forward, Netmask, Protocol, RealServerSpec, Request, ServiceKey, ServiceSpec, Timeouts,
    MAX_TIMEOUT,
};

use crate::addr::number_in;
use crate::options::{Opt, MATRIX, OPTIONS, OPT_NAMES};
use crate::output::ListOpts;
use crate::popt::Popt;
use checks::{command_checks, health_checks, matrix_check, reject_unsupported};
use state::{parse_sched_flags, State};

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
