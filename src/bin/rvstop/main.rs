//! rvstop: a terminal dashboard for rvsd. Flags, terminal set-up and
//! restore, and the one event loop; state lives in `app`, drawing in `ui`,
//! everything that waits on the outside world in `transport`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};

mod app;
mod transport;
mod ui;

use app::{Action, App};
use transport::Event;

/// How often the screen is redrawn without news (ages in the event line).
const TICK: Duration = Duration::from_millis(500);

const LONG_ABOUT: &str = "\
Live terminal dashboard for rvsd, the Rust Virtual Server daemon.

rvstop subscribes to rvsd's control socket and shows, refreshed every \
--interval: the daemon's version and uptime with totals (active connections, \
connections per second, inbound and outbound bandwidth), the virtual services \
with their real servers beneath (forwarding method, weight, state, active and \
inactive connections, connections per second, bytes per second in and out), \
sparklines of connections/s and bandwidth for the selected row, and a line of \
events rvstop noticed itself (servers added or removed, weights changed, \
connection to rvsd lost or regained).

Operators can change the weight of a real server, drain it (weight 0) or \
re-enable it; every change asks for confirmation and goes to rvsd as an \
EditServer request on a second connection, so it needs the same permission as \
`rvsadm -e`.

When rvsd stops, rvstop keeps the last table on screen, says \"disconnected — \
retrying\" and resumes as soon as rvsd is back.";

/// Terminal dashboard for rvsd: services, real servers, rates and events.
#[derive(Parser, Debug)]
#[command(
    name = "rvstop",
    version,
    long_about = LONG_ABOUT,
    after_help = "Press ? in rvstop for the keys.",
    after_long_help = ui::KEYS
)]
struct Args {
    /// Control socket of rvsd [default: $RVS_SOCKET, else /run/rvs/rvsd.sock
    /// as root, else $XDG_RUNTIME_DIR/rvs/rvsd.sock, else /tmp/rvs-$UID/rvsd.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Refresh interval in milliseconds (100 to 60000)
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(100..=60_000)
    )]
    interval: u32,

    /// Print a man page or shell completion script and exit
    #[arg(
        long,
        value_name = "WHAT",
        hide = true,
        value_parser = ["man", "complete-bash", "complete-zsh", "complete-fish"]
    )]
    generate: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(what) = &args.generate {
        return generate(what);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "rvstop: needs a terminal (stdin and stdout); use `rvsadm -L -n --stats` in scripts"
        );
        return ExitCode::from(2);
    }
    let socket = rvs::ctl::client::resolve_socket(args.socket.clone());
    let (tx, rx) = mpsc::channel();
    // Before any other thread exists, so that they all inherit the mask.
    if let Err(e) = transport::spawn_signals(tx.clone()) {
        eprintln!("rvstop: {e}");
        return ExitCode::from(1);
    }
    let (act_tx, act_rx) = mpsc::channel();
    transport::spawn_actions(socket.clone(), act_rx, tx.clone());
    let latest = std::sync::Arc::new(transport::Latest::default());
    transport::spawn_subscription(socket.clone(), args.interval, latest.clone(), tx.clone());

    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            eprintln!("rvstop: cannot set up the terminal: {e}");
            return ExitCode::from(1);
        }
    };
    // ratatui's hook restores the terminal and prints the panic; a panic on
    // any thread then ends the process instead of leaving a dead screen.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hook(info);
        std::process::exit(101);
    }));
    transport::spawn_input(tx);

    let mut app = App::new(socket.display().to_string(), args.interval, Instant::now());
    let result = run(&mut terminal, &mut app, &rx, &latest, &act_tx);
    ratatui::restore();
    match result {
        Ok(None) => ExitCode::SUCCESS,
        // the shell's convention for "ended by signal N"
        Ok(Some(sig)) => ExitCode::from(128u8.wrapping_add(sig as u8)),
        Err(e) => {
            eprintln!("rvstop: {e}");
            ExitCode::from(1)
        }
    }
}

/// The event loop: draw, wait for one event (or a tick), apply it.
/// `Ok(Some(n))` when signal `n` ended it.
fn run(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    rx: &mpsc::Receiver<Event>,
    latest: &transport::Latest,
    actions: &mpsc::Sender<(rvs::ctl::proto::Request, String)>,
) -> Result<Option<i32>, String> {
    loop {
        terminal
            .draw(|f| ui::draw(f, app))
            .map_err(|e| format!("cannot draw: {e}"))?;
        let event = match rx.recv_timeout(TICK) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                app.tick(Instant::now());
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("internal: every event source ended".into())
            }
        };
        let now = Instant::now();
        match event {
            Event::Key(k) => match app.on_key(k) {
                Action::None => {}
                Action::Quit => return Ok(None),
                Action::Send { request, what } => {
                    if actions.send((request, what.clone())).is_err() {
                        app.action_done(&what, Err("internal: the action thread ended".into()));
                    }
                }
            },
            Event::Resize => terminal
                .autoresize()
                .map_err(|e| format!("cannot resize: {e}"))?,
            Event::InputError(e) => return Err(format!("cannot read the terminal: {e}")),
            Event::Update => {
                if let Some(u) = latest.take() {
                    app.ingest(u, now)
                }
            }
            Event::Disconnected(e) => app.disconnected(e, now),
            Event::ActionDone { what, result } => app.action_done(&what, result),
            Event::Signal(sig) => return Ok(Some(sig)),
        }
        app.tick(now);
    }
}

/// `--generate`: man page (section 1) or a shell completion script on stdout.
fn generate(what: &str) -> ExitCode {
    use rvs::docgen::{ManExtra, ManSection};
    use std::io::Write;
    let keys: String = ui::KEYS
        .lines()
        .map(|l| {
            let l = l.replace('\\', "\\e");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let extra = ManExtra {
        section: "1".into(),
        date: "2025-01-01".into(),
        manual: "User Commands".into(),
        synopsis: None,
        sections: vec![
            ManSection::new("KEYS", format!(".nf\n{keys}.fi\n")),
            ManSection::new(
                "ENVIRONMENT",
                ".TP\n.B RVS_SOCKET\nControl socket of rvsd when \\-\\-socket is not given.\n",
            ),
            ManSection::new(
                "EXIT STATUS",
                ".TP\n.B 0\nQuit by the user.\n.TP\n.B 2\nInvalid command line, or no terminal.\n",
            ),
            ManSection::new("SEE ALSO", ".BR rvsd (8),\n.BR rvsadm (8)\n"),
        ],
    };
    match rvs::docgen::generate(Args::command(), what, &extra) {
        Ok(bytes) => match std::io::stdout().write_all(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rvstop: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("rvstop: {e}");
            ExitCode::from(2)
        }
    }
}
