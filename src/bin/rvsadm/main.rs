//! `rvsadm`: the ipvsadm-compatible command line of rvs.
//!
//! parse (popt emulation, [`request`]) → validated [`request::Command`] →
//! `ctl::Request` → rvsd over the control socket → render ([`output`]) →
//! exit status as ipvsadm would return it.

mod addr;
mod help;
mod manpage;
mod options;
mod output;
mod popt;
mod request;
mod restore;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rvs::ctl::client::resolve_socket;
use rvs::ctl::proto::{Request, Response, RVS_VERSION};
use rvs::ctl::{Client, CtlError};

use request::{Action, Command, Invocation};

const CLIENT_NAME: &str = "rvsadm";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let prog = argv
        .first()
        .cloned()
        .unwrap_or_else(|| CLIENT_NAME.to_string());
    if let Some(target) = generate_target(&argv) {
        return generate(target.as_deref());
    }
    let command = match request::parse(&argv) {
        Ok(c) => c,
        // Messages may quote the command line: nothing raw reaches the terminal.
        Err(e) => return fail(&output::visible(&e.message), e.status),
    };
    match command {
        Command::Help => write_stdout(&help::help_text(&prog)),
        Command::Version { socket } => version(socket),
        Command::Run(inv) if inv.action == Action::Restore => {
            restore(&prog, &resolve_socket(inv.socket))
        }
        Command::Run(inv) => run(inv),
    }
}

/// Print `message` on stderr and return `status`.
fn fail(message: &str, status: u8) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(status)
}

/// Write to stdout; a closed pipe (`rvsadm -L | head`) is not an error.
fn write_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(
            &format!("{CLIENT_NAME}: could not write to standard output: {e}"),
            1,
        ),
    }
}

/// `Some(target)` when the line is `--generate WHAT` (hidden option).
fn generate_target(argv: &[String]) -> Option<Option<String>> {
    let first = argv.get(1)?;
    if first == "--generate" {
        return Some(argv.get(2).cloned());
    }
    first
        .strip_prefix("--generate=")
        .map(|t| Some(t.to_string()))
}

fn generate(target: Option<&str>) -> ExitCode {
    let Some(target) = target else {
        return fail(
            &format!(
                "--generate: missing argument (one of: {})",
                rvs::docgen::TARGETS.join(", ")
            ),
            2,
        );
    };
    match rvs::docgen::generate(manpage::command_for(target), target, &manpage::man_extra()) {
        Ok(bytes) => write_stdout(&String::from_utf8_lossy(&bytes)),
        Err(e) => fail(&e, 2),
    }
}

/// Exit status for a failed call: cannot talk to rvsd (or it does not
/// answer) → 2; listing → 1;
/// change refused → 255 (ipvsadm's “Exit status classes”).
fn status_of(e: &CtlError, mutation: bool) -> u8 {
    match e {
        CtlError::Connect { .. }
        | CtlError::VersionMismatch { .. }
        | CtlError::Timeout { .. }
        | CtlError::Config(_) => 2,
        _ if mutation => 255,
        _ => 1,
    }
}

fn connect(socket: &Path, mutation: bool) -> Result<Client, ExitCode> {
    Client::connect(socket, CLIENT_NAME).map_err(|e| fail(&e.to_string(), status_of(&e, mutation)))
}

fn version(socket: Option<PathBuf>) -> ExitCode {
    let socket = resolve_socket(socket);
    let mut text =
        format!("{CLIENT_NAME} v{RVS_VERSION} (ipvsadm v1.31 compatible, IPVS v1.2.1)\n");
    match Client::connect(&socket, CLIENT_NAME) {
        Ok(client) => {
            let d = client.daemon();
            text += &format!(
                "rvsd v{} (protocol {}, pid {}, up {} s)\n",
                d.version, d.protocol, d.pid, d.uptime_secs
            );
        }
        Err(CtlError::Connect { .. }) => {
            text += &format!("rvsd: not reachable at {}\n", socket.display())
        }
        Err(e) => text += &format!("rvsd: {e}\n"),
    }
    write_stdout(&text)
}

fn run(inv: Invocation) -> ExitCode {
    let Some(req) = inv.action.request() else {
        unreachable!("restore is handled separately")
    };
    let mutation = inv.action.is_mutation();
    let mut client = match connect(&resolve_socket(inv.socket), mutation) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let resp = match client.call(&req) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string(), status_of(&e, mutation)),
    };
    let text = match (&inv.action, resp) {
        (_, Response::Ok) if mutation => return ExitCode::SUCCESS,
        (Action::List { service, opts }, Response::Table(t)) if inv.json => {
            let _ = service;
            output::json_list(&t, opts)
        }
        (Action::List { service, opts }, Response::Table(t)) => {
            output::render_list(&t, service.is_some(), opts)
        }
        (Action::Save { numeric }, Response::Table(t)) => {
            for w in output::save_warnings(&t) {
                eprintln!("{CLIENT_NAME}: {w}");
            }
            output::render_save(&t, *numeric)
        }
        (Action::ListConnections { .. }, Response::Connections(c)) if inv.json => {
            output::json_connections(&c)
        }
        (
            Action::ListConnections {
                numeric,
                persistent_conn,
            },
            Response::Connections(c),
        ) => output::render_connections(&c, *numeric, *persistent_conn),
        (Action::ListTimeouts, Response::Timeouts(t)) if inv.json => output::json_timeouts(&t),
        (Action::ListTimeouts, Response::Timeouts(t)) => output::render_timeouts(&t),
        (_, other) => {
            let e = CtlError::Unexpected(format!("{other:?}"));
            return fail(&e.to_string(), status_of(&e, mutation));
        }
    };
    write_stdout(&text)
}

/// `-R`: validate all of stdin, then send it as one atomic batch.
fn restore(prog: &str, socket: &Path) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        return fail(
            &format!("{CLIENT_NAME}: could not read standard input: {e}"),
            2,
        );
    }
    let lines = match restore::parse_input(prog, &String::from_utf8_lossy(&input)) {
        Ok(l) => l,
        Err(e) => return fail(&e.message(), e.error.status),
    };
    if lines.is_empty() {
        return ExitCode::SUCCESS;
    }
    let mut client = match connect(socket, true) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let batch = Request::Batch(lines.iter().map(|l| l.request.clone()).collect());
    match client.call(&batch) {
        Ok(Response::Ok) => ExitCode::SUCCESS,
        Ok(other) => fail(&CtlError::Unexpected(format!("{other:?}")).to_string(), 255),
        Err(CtlError::Remote {
            message,
            index: Some(i),
            ..
        }) => match lines.get(i as usize) {
            Some(l) => fail(
                &format!("line {}: {}: {message}", l.number, output::visible(&l.text)),
                255,
            ),
            None => fail(&message, 255),
        },
        Err(e) => fail(&e.to_string(), status_of(&e, true)),
    }
}
