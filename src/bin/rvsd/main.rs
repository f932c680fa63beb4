//! rvsd: the rvs daemon. Flags, logging, signals, then `daemon::run`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rvs::daemon::{self, DaemonConfig};

mod demo;
mod docs;

/// Rust Virtual Server daemon: holds the virtual-service table, forwards TCP
/// and UDP traffic to the real servers and serves the control socket that
/// rvsadm and rvstop talk to.
#[derive(Parser, Debug)]
#[command(
    name = "rvsd",
    version,
    about = "Rust Virtual Server daemon: a layer-4 load balancer in userspace",
    long_about = None
)]
pub struct Args {
    /// Control socket path [default: /run/rvs/rvsd.sock as root, else
    /// $XDG_RUNTIME_DIR/rvs/rvsd.sock, else /tmp/rvs-$UID/rvsd.sock]
    #[arg(long, env = "RVS_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Directory of the state file (table.state) [default: /var/lib/rvs as
    /// root, else $XDG_STATE_HOME/rvs]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace (RUST_LOG overrides)
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,

    /// Members of this group may change the table (the socket is given to it)
    #[arg(long, value_name = "NAME")]
    pub socket_group: Option<String>,

    /// Permission bits of the control socket, in octal; who can open it can list
    #[arg(long, value_name = "OCTAL", default_value = "660", value_parser = parse_mode)]
    pub socket_mode: u32,

    /// Seconds running connections may take to finish after SIGTERM/SIGINT
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub drain_timeout: u64,

    /// Cap on concurrent proxied TCP connections; lowered to what the
    /// open-files limit allows (logged at start: "connection cap N")
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Cap on concurrent UDP flows (each holds an ephemeral port), apart
    /// from the TCP cap; also lowered to what the open-files limit allows
    /// [default: half the host's ephemeral port range]
    #[arg(long, value_name = "N")]
    pub max_udp_flows: Option<usize>,

    /// Seconds a UDP flow whose real server has not answered yet may stay
    /// idle (at most the `udp` timeout of --set)
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub udp_unreplied_timeout: u64,

    /// Consecutive failed connects, or connections reset before any answer,
    /// that take a real server out of rotation
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub fail_after: u32,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default)
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Active health check of TCP services that configure none: tcp (a
    /// connect every 2 s) or none (passive checks only)
    #[arg(long, value_name = "KIND", default_value = "tcp", value_parser = ["tcp", "none"], hide_possible_values = true)]
    pub default_check: String,

    /// Demo: start two small HTTP back ends on 127.0.0.1:8081 and :8082 and
    /// balance 127.0.0.1:8080 over them (table kept in a temporary directory
    /// unless --state-dir is given)
    #[arg(long)]
    pub demo: bool,

    /// Threads that run the data plane, each with its own event loop and its
    /// own socket of every service (SO_REUSEPORT) [default: one per CPU this
    /// process may run on]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,

    /// Print a man page or shell completion script and exit
    #[arg(long, value_name = "WHAT", hide = true)]
    pub generate: Option<String>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            format!("invalid socket mode `{s}`: give octal permission bits such as 660 or 666")
        })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("rvs={level},rvsd={level},warn"))
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Raise the soft open-files limit to the hard limit: every proxied
/// connection costs two descriptors. The daemon derives its connection
/// caps from the limit in force afterwards (`daemon::dataplane::Budget`).
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised RLIMIT_NOFILE"),
            Err(e) => tracing::warn!(error = %e, "cannot raise RLIMIT_NOFILE"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read RLIMIT_NOFILE"),
    }
}

/// The signals rvsd handles, registered before the daemon starts so that
/// none of them can end it with its default action.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Needs the runtime's context.
    fn register() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Resolves at SIGTERM or SIGINT. SIGHUP (a closed terminal, or a habit of
/// "reload" scripts) is logged and ignored: rvsd logs to stderr only, so
/// there is no file to reopen, and the table is changed with rvsadm.
async fn shutdown_signal(mut s: Signals) {
    loop {
        tokio::select! {
            _ = s.term.recv() => return tracing::info!("SIGTERM received"),
            _ = s.int.recv() => return tracing::info!("SIGINT received"),
            _ = s.hup.recv() => tracing::info!(
                "SIGHUP received: ignored (rvsd has no configuration file or log file to reload; change the table with rvsadm, stop rvsd with SIGTERM)"
            ),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(what) = &args.generate {
        return generate(what);
    }
    init_logging(&args.log_level);
    raise_nofile();
    let socket = rvs::ctl::client::resolve_socket(args.socket.clone());
    let mut state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(rvs::daemon::control::default_state_dir);
    let runtime = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rvsd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let signals = match runtime.block_on(async { Signals::register() }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rvsd: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let _demo_dir;
    if args.demo {
        match runtime.block_on(demo::prepare(args.state_dir.clone(), &socket)) {
            Ok(dir) => {
                state_dir = dir.path().to_path_buf();
                _demo_dir = dir;
            }
            Err(e) => {
                eprintln!("rvsd: demo: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let cfg = DaemonConfig {
        socket,
        socket_mode: args.socket_mode,
        socket_group: args.socket_group.clone(),
        state_dir,
        drain_timeout: Duration::from_secs(args.drain_timeout),
        max_connections: args.max_connections.max(1),
        max_udp_flows: args.max_udp_flows,
        udp_unreplied_timeout: Duration::from_secs(args.udp_unreplied_timeout.max(1)),
        fail_after: args.fail_after,
        metrics_listen: args.metrics_listen,
        default_check: rvs::ctl::proto::CheckKind::parse(&args.default_check)
            .unwrap_or(rvs::ctl::proto::CheckKind::Tcp),
        worker_threads: data_plane_threads(args.worker_threads),
    };
    match runtime.block_on(daemon::run(cfg, shutdown_signal(signals))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("rvsd: {e}");
            ExitCode::from(1)
        }
    }
}

/// The control plane's runtime (control socket, table task, health
/// checks). The data plane runs on threads of its own
/// ([`rvs::daemon::dataplane::workers`]), the metrics listener on one of its own; two workers here keep health checks going
/// while the table task waits for an `fsync`.
fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rvs-ctl")
        .enable_all()
        .build()
}

/// Data-plane threads: `--worker-threads`, or one per CPU this process may
/// run on.
fn data_plane_threads(flag: Option<u16>) -> usize {
    flag.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    )
}

fn generate(what: &str) -> ExitCode {
    use clap::CommandFactory;
    use std::io::Write;
    match rvs::docgen::generate(Args::command(), what, &docs::man_extra()) {
        Ok(bytes) => match std::io::stdout().write_all(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rvsd: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("rvsd: {e}");
            ExitCode::from(2)
        }
    }
}
