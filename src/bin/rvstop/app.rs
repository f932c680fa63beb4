//! rvstop's state: the latest table pushed by rvsd, history rings for the
//! sparklines, selection, folding, sorting, filtering, prompts and the events
//! the dashboard noticed itself.
//!
//! Pure data: no I/O and no drawing. Time comes in as arguments (`now`), keys
//! come in through [`App::on_key`], which answers with an [`Action`] for the
//! event loop to carry out.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use rvs::ctl::proto::{
    Rates, Request, ServerView, ServiceKey, ServiceView, TableView, Update, SCHED_FLAG_1,
    SCHED_FLAG_2, SCHED_FLAG_3,
};

/// Samples kept per row for the sparklines (~2 minutes at the default interval).
pub const HISTORY_LEN: usize = 120;
/// Events kept for the event line.
pub const MAX_NOTICES: usize = 50;
/// Rows a PageUp/PageDown moves.
const PAGE: usize = 10;
/// Longest weight a prompt accepts, in digits.
const MAX_WEIGHT_DIGITS: usize = 10;
/// Largest weight rvsd accepts.
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

/// Identity of a table row, stable across updates, sorting and filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowId {
    Service(ServiceKey),
    Server(ServiceKey, SocketAddr),
}

impl RowId {
    /// The service this row belongs to.
    pub fn service(&self) -> ServiceKey {
        match self {
            RowId::Service(k) | RowId::Server(k, _) => *k,
        }
    }
}

/// Rates of one row over the last [`HISTORY_LEN`] updates, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub cps: VecDeque<u64>,
    pub inbps: VecDeque<u64>,
    pub outbps: VecDeque<u64>,
}

impl History {
    fn push(&mut self, r: &Rates) {
        for (ring, v) in [
            (&mut self.cps, r.cps),
            (&mut self.inbps, r.inbps),
            (&mut self.outbps, r.outbps),
        ] {
            if ring.len() == HISTORY_LEN {
                ring.pop_front();
            }
            ring.push_back(v);
        }
    }

    /// In + out bytes/s, oldest first.
    pub fn bps(&self) -> Vec<u64> {
        self.inbps
            .iter()
            .zip(&self.outbps)
            .map(|(i, o)| i.saturating_add(*o))
            .collect()
    }
}

/// Sort order of services, and of real servers inside each service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortMode {
    #[default]
    Address,
    Connections,
    Cps,
    Bandwidth,
}

impl SortMode {
    pub fn next(self) -> SortMode {
        match self {
            SortMode::Address => SortMode::Connections,
            SortMode::Connections => SortMode::Cps,
            SortMode::Cps => SortMode::Bandwidth,
            SortMode::Bandwidth => SortMode::Address,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortMode::Address => "address",
            SortMode::Connections => "connections",
            SortMode::Cps => "CPS",
            SortMode::Bandwidth => "bandwidth",
        }
    }
}

/// State of a real server as the dashboard shows it: rvsd's health state
/// (checks and failed connects) first, then the weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Weight > 0 and healthy: takes new connections.
    Up,
    /// Weight 0: keeps its connections, gets no new ones.
    Quiesced,
    /// Failed its health checks or connects: out of rotation.
    Down,
}

impl ServerState {
    pub fn label(self) -> &'static str {
        match self {
            ServerState::Up => "UP",
            ServerState::Quiesced => "QUIESCED",
            ServerState::Down => "DOWN",
        }
    }
}

/// The state column of a real server.
pub fn server_state(s: &ServerView) -> ServerState {
    if s.health.state == rvs::ctl::proto::HealthState::Down {
        ServerState::Down
    } else if s.spec.weight == 0 {
        ServerState::Quiesced
    } else {
        ServerState::Up
    }
}

/// Connection to rvsd as the transport last reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// No update and no error yet.
    Connecting,
    Connected,
    /// The subscription failed; the transport retries every second.
    Disconnected {
        since: Instant,
        error: String,
    },
}

/// What the status line says (until the next key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// Something the dashboard noticed by itself (server added, weight changed, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub at: Instant,
    pub text: String,
}

/// Which operator action a confirmation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    SetWeight,
    Drain,
    Enable,
}

/// A weight change waiting for y/n.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub service: ServiceKey,
    pub server: SocketAddr,
    pub from: u32,
    pub to: u32,
    pub verb: Verb,
}

impl Pending {
    /// "drain 10.0.0.1:80 of TCP 10.0.0.9:80 (weight 3 → 0)"
    pub fn describe(&self) -> String {
        let verb = match self.verb {
            Verb::SetWeight => "set weight of",
            Verb::Drain => "drain",
            Verb::Enable => "re-enable",
        };
        format!(
            "{verb} {} in {} (weight {} → {})",
            addr_text(&self.server),
            service_label(&self.service),
            self.from,
            self.to
        )
    }
}

/// Input mode: what keys mean right now.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    Help,
    /// Typing the filter text (kept in [`App::filter`]).
    Filter,
    /// Typing a new weight for a real server.
    Weight {
        service: ServiceKey,
        server: SocketAddr,
        from: u32,
        input: String,
    },
    /// Waiting for y/n.
    Confirm(Pending),
}

/// What the event loop must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per key press
pub enum Action {
    None,
    Quit,
    /// Send this request on the operator connection; `what` names it for
    /// the status line when the answer comes back.
    Send {
        request: Request,
        what: String,
    },
}

/// A service as shown: folded or not, its visible real servers sorted.
pub struct VisibleService<'a> {
    pub view: &'a ServiceView,
    pub folded: bool,
    pub servers: Vec<&'a ServerView>,
}

/// Sums over the whole table for the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub services: usize,
    pub servers: usize,
    pub active: u64,
    pub inactive: u64,
    pub cps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// The dashboard's whole state.
#[derive(Debug)]
pub struct App {
    /// Socket path, for messages.
    pub socket: String,
    pub interval_ms: u32,
    /// Latest update (kept while disconnected, shown as stale).
    pub update: Option<Update>,
    pub link: Link,
    /// Time of the last `ingest`/`tick`, used for ages.
    pub now: Instant,
    pub selected: Option<RowId>,
    pub folded: HashSet<ServiceKey>,
    pub sort: SortMode,
    pub filter: String,
    pub mode: Mode,
    pub status: Option<Status>,
    /// Newest first.
    pub notices: VecDeque<Notice>,
    history: HashMap<RowId, History>,
    last_weight: HashMap<(ServiceKey, SocketAddr), u32>,
}

/// "TCP 10.0.0.1:80"
pub fn service_label(key: &ServiceKey) -> String {
    format!("{} {}", key.proto.name(), addr_text(&key.addr))
}

/// "10.0.0.1:80" or "[::1]:80"
pub fn addr_text(addr: &SocketAddr) -> String {
    addr.to_string()
}

/// A service's options: "persistent 360s ops flag-1", or in `short` form
/// for the table "p360 ops f1".
pub fn service_flags(s: &ServiceView, short: bool) -> String {
    let mut out = Vec::new();
    if let Some(t) = s.spec.persistent {
        out.push(if short {
            format!("p{t}")
        } else {
            format!("persistent {t}s")
        });
    }
    if s.spec.ops {
        out.push("ops".to_string());
    }
    for (bit, n) in [(SCHED_FLAG_1, 1), (SCHED_FLAG_2, 2), (SCHED_FLAG_3, 3)] {
        if s.spec.sched_flags & bit != 0 {
            out.push(if short {
                format!("f{n}")
            } else {
                format!("flag-{n}")
            });
        }
    }
    out.join(" ")
}

/// Active connections of a service: the sum over its real servers.
pub fn service_active(s: &ServiceView) -> u64 {
    s.servers.iter().map(|r| u64::from(r.active_conns)).sum()
}

/// Inactive connections of a service: the sum over its real servers.
pub fn service_inactive(s: &ServiceView) -> u64 {
    s.servers.iter().map(|r| u64::from(r.inactive_conns)).sum()
}

fn bandwidth(r: &Rates) -> u64 {
    r.inbps.saturating_add(r.outbps)
}

fn service_cmp(sort: SortMode, a: &ServiceView, b: &ServiceView) -> Ordering {
    let by_addr = (a.spec.key.addr, a.spec.key.proto).cmp(&(b.spec.key.addr, b.spec.key.proto));
    let primary = match sort {
        SortMode::Address => Ordering::Equal,
        SortMode::Connections => service_active(b).cmp(&service_active(a)),
        SortMode::Cps => b.rates.cps.cmp(&a.rates.cps),
        SortMode::Bandwidth => bandwidth(&b.rates).cmp(&bandwidth(&a.rates)),
    };
    primary.then(by_addr)
}

fn server_cmp(sort: SortMode, a: &ServerView, b: &ServerView) -> Ordering {
    let by_addr = a.spec.addr.cmp(&b.spec.addr);
    let primary = match sort {
        SortMode::Address => Ordering::Equal,
        SortMode::Connections => b.active_conns.cmp(&a.active_conns),
        SortMode::Cps => b.rates.cps.cmp(&a.rates.cps),
        SortMode::Bandwidth => bandwidth(&b.rates).cmp(&bandwidth(&a.rates)),
    };
    primary.then(by_addr)
}

impl App {
    pub fn new(socket: impl Into<String>, interval_ms: u32, now: Instant) -> App {
        App {
            socket: socket.into(),
            interval_ms,
            update: None,
            link: Link::Connecting,
            now,
            selected: None,
            folded: HashSet::new(),
            sort: SortMode::default(),
            filter: String::new(),
            mode: Mode::Normal,
            status: None,
            notices: VecDeque::new(),
            history: HashMap::new(),
            last_weight: HashMap::new(),
        }
    }

    // ----- inputs from the transport -----

    /// Take a pushed update: diff it against the previous table for the event
    /// line, extend the history rings, keep the selection on its row.
    pub fn ingest(&mut self, update: Update, now: Instant) {
        self.now = now;
        let old_index = self.selected_index();
        if self.link != Link::Connected {
            let again = if self.update.is_some() { "re" } else { "" };
            self.notice(format!(
                "{again}connected to rvsd {} (pid {})",
                update.daemon.version, update.daemon.pid
            ));
        }
        self.link = Link::Connected;
        for ev in &update.events {
            self.notice(format!(
                "{} {} in {} {}: {}",
                ev.server,
                ev.state.name(),
                ev.service.proto.name(),
                ev.service.addr,
                ev.reason
            ));
        }
        if let Some(old) = self.update.take() {
            self.diff(&old.table, &update.table);
        }
        let mut seen = HashSet::new();
        for s in &update.table.services {
            let key = s.spec.key;
            seen.insert(RowId::Service(key));
            self.history
                .entry(RowId::Service(key))
                .or_default()
                .push(&s.rates);
            for r in &s.servers {
                let id = RowId::Server(key, r.spec.addr);
                seen.insert(id);
                self.history.entry(id).or_default().push(&r.rates);
                if r.spec.weight > 0 {
                    self.last_weight.insert((key, r.spec.addr), r.spec.weight);
                }
            }
        }
        self.history.retain(|id, _| seen.contains(id));
        self.folded
            .retain(|k| update.table.services.iter().any(|s| s.spec.key == *k));
        self.update = Some(update);
        self.fix_selection(old_index);
    }

    /// The subscription failed (or could not be opened); the transport retries.
    pub fn disconnected(&mut self, error: String, now: Instant) {
        self.now = now;
        match &mut self.link {
            Link::Disconnected { error: e, .. } => *e = error,
            Link::Connected => {
                self.notice(format!("disconnected from rvsd: {error}"));
                self.link = Link::Disconnected { since: now, error };
            }
            Link::Connecting => {
                self.link = Link::Disconnected { since: now, error };
            }
        }
    }

    /// The answer to an operator action.
    pub fn action_done(&mut self, what: &str, result: Result<(), String>) {
        self.status = Some(match result {
            Ok(()) => Status {
                text: format!("done: {what}"),
                error: false,
            },
            // the reason first: it must survive a narrow status line
            Err(e) => Status {
                text: format!("refused: {e} — {what}"),
                error: true,
            },
        });
    }

    /// Time passes (ages in the event line).
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
    }

    fn notice(&mut self, text: String) {
        self.notices.push_front(Notice { at: self.now, text });
        self.notices.truncate(MAX_NOTICES);
    }

    fn diff(&mut self, old: &TableView, new: &TableView) {
        let find = |t: &TableView, k: &ServiceKey| -> Option<usize> {
            t.services.iter().position(|s| s.spec.key == *k)
        };
        let mut notes = Vec::new();
        for s in &new.services {
            let label = service_label(&s.spec.key);
            let Some(i) = find(old, &s.spec.key) else {
                notes.push(format!("service {label} added"));
                continue;
            };
            let o = &old.services[i];
            if o.spec.scheduler != s.spec.scheduler {
                notes.push(format!(
                    "scheduler of {label}: {} → {}",
                    o.spec.scheduler, s.spec.scheduler
                ));
            }
            for r in &s.servers {
                let addr = addr_text(&r.spec.addr);
                match o.servers.iter().find(|x| x.spec.addr == r.spec.addr) {
                    None => notes.push(format!("real server {addr} added to {label}")),
                    Some(x) if x.spec.weight != r.spec.weight => {
                        let what = match (x.spec.weight, r.spec.weight) {
                            (_, 0) => " (quiesced)",
                            (0, _) => " (re-enabled)",
                            _ => "",
                        };
                        notes.push(format!(
                            "weight of {addr} in {label}: {} → {}{what}",
                            x.spec.weight, r.spec.weight
                        ));
                    }
                    Some(_) => {}
                }
            }
            for x in &o.servers {
                if !s.servers.iter().any(|r| r.spec.addr == x.spec.addr) {
                    notes.push(format!(
                        "real server {} removed from {label}",
                        addr_text(&x.spec.addr)
                    ));
                }
            }
        }
        for o in &old.services {
            if find(new, &o.spec.key).is_none() {
                notes.push(format!("service {} removed", service_label(&o.spec.key)));
            }
        }
        for n in notes {
            self.notice(n);
        }
    }

    // ----- derived views -----

    fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }

    /// Services and real servers to show, sorted and filtered. A service
    /// whose address matches the filter shows all its servers; otherwise only
    /// its matching servers, and it is hidden when none match.
    pub fn visible(&self) -> Vec<VisibleService<'_>> {
        let Some(u) = &self.update else {
            return Vec::new();
        };
        let mut out: Vec<VisibleService<'_>> = Vec::new();
        for s in &u.table.services {
            let own = self.matches(&service_label(&s.spec.key));
            let mut servers: Vec<&ServerView> = s
                .servers
                .iter()
                .filter(|r| own || self.matches(&addr_text(&r.spec.addr)))
                .collect();
            if !own && servers.is_empty() {
                continue;
            }
            servers.sort_by(|a, b| server_cmp(self.sort, a, b));
            out.push(VisibleService {
                view: s,
                folded: self.folded.contains(&s.spec.key),
                servers,
            });
        }
        out.sort_by(|a, b| service_cmp(self.sort, a.view, b.view));
        out
    }

    /// Visible rows in display order.
    pub fn rows(&self) -> Vec<RowId> {
        let mut rows = Vec::new();
        for v in self.visible() {
            let key = v.view.spec.key;
            rows.push(RowId::Service(key));
            if !v.folded {
                rows.extend(v.servers.iter().map(|r| RowId::Server(key, r.spec.addr)));
            }
        }
        rows
    }

    pub fn selected_index(&self) -> Option<usize> {
        let sel = self.selected?;
        self.rows().iter().position(|r| *r == sel)
    }

    pub fn history(&self, row: &RowId) -> Option<&History> {
        self.history.get(row)
    }

    pub fn find_service(&self, key: &ServiceKey) -> Option<&ServiceView> {
        self.update
            .as_ref()?
            .table
            .services
            .iter()
            .find(|s| s.spec.key == *key)
    }

    pub fn find_server(&self, key: &ServiceKey, addr: &SocketAddr) -> Option<&ServerView> {
        self.find_service(key)?
            .servers
            .iter()
            .find(|r| r.spec.addr == *addr)
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let Some(u) = &self.update else {
            return t;
        };
        for s in &u.table.services {
            t.services += 1;
            t.servers += s.servers.len();
            t.active += service_active(s);
            t.inactive += service_inactive(s);
            t.cps += s.rates.cps;
            t.inbps += s.rates.inbps;
            t.outbps += s.rates.outbps;
        }
        t
    }

    /// Weight `e` restores: the last non-zero weight seen, or 1.
    pub fn enable_weight(&self, key: &ServiceKey, addr: &SocketAddr) -> u32 {
        self.last_weight.get(&(*key, *addr)).copied().unwrap_or(1)
    }

    /// Keep the selection on a visible row: the same row if it still shows,
    /// else the row now at its old position.
    fn fix_selection(&mut self, old_index: Option<usize>) {
        let rows = self.rows();
        if let Some(sel) = self.selected {
            if rows.contains(&sel) {
                return;
            }
        }
        self.selected = if rows.is_empty() {
            None
        } else {
            Some(rows[old_index.unwrap_or(0).min(rows.len() - 1)])
        };
    }

    // ----- keys -----

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// Handle one key; the answer tells the event loop what to do.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'))
        {
            return Action::Quit;
        }
        match std::mem::take(&mut self.mode) {
            Mode::Normal => self.key_normal(key),
            Mode::Help => Action::None, // any key closes the help
            Mode::Filter => {
                self.key_filter(key);
                Action::None
            }
            Mode::Weight {
                service,
                server,
                from,
                input,
            } => {
                self.key_weight(key, service, server, from, input);
                Action::None
            }
            Mode::Confirm(p) => self.key_confirm(key, p),
        }
    }

    fn move_by(&mut self, delta: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            self.selected = None;
            return;
        }
        let cur = self.selected_index();
        let next = match cur {
            None => 0,
            Some(i) => (i as isize + delta).clamp(0, rows.len() as isize - 1) as usize,
        };
        self.selected = Some(rows[next]);
    }

    fn set_folded(&mut self, fold: Option<bool>) {
        let Some(sel) = self.selected else {
            return;
        };
        let key = sel.service();
        let fold = fold.unwrap_or(!self.folded.contains(&key));
        if fold {
            self.folded.insert(key);
            self.selected = Some(RowId::Service(key));
        } else {
            self.folded.remove(&key);
        }
    }

    /// The selected real server, or a status message saying why there is none.
    fn selected_server(&mut self) -> Option<(ServiceKey, SocketAddr, u32)> {
        match self.selected {
            Some(RowId::Server(k, a)) => match self.find_server(&k, &a) {
                Some(r) => Some((k, a, r.spec.weight)),
                None => {
                    self.error("that real server is gone");
                    None
                }
            },
            _ => {
                self.error("select a real server first (w, d and e act on real servers)");
                None
            }
        }
    }

    fn key_normal(&mut self, key: KeyEvent) -> Action {
        self.status = None;
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc => {
                if self.filter.is_empty() {
                    return Action::Quit;
                }
                let old = self.selected_index();
                self.filter.clear();
                self.fix_selection(old);
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(PAGE as isize)),
            KeyCode::PageDown => self.move_by(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
            KeyCode::Enter | KeyCode::Char(' ') => self.set_folded(None),
            KeyCode::Left | KeyCode::Char('h') => self.set_folded(Some(true)),
            KeyCode::Right | KeyCode::Char('l') => self.set_folded(Some(false)),
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.info(format!("sort: {}", self.sort.label()));
            }
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('w') => {
                if let Some((service, server, from)) = self.selected_server() {
                    self.mode = Mode::Weight {
                        service,
                        server,
                        from,
                        input: String::new(),
                    };
                }
            }
            KeyCode::Char('d') => {
                if let Some((service, server, from)) = self.selected_server() {
                    if from == 0 {
                        self.info(format!("{} is already drained", addr_text(&server)));
                    } else {
                        self.mode = Mode::Confirm(Pending {
                            service,
                            server,
                            from,
                            to: 0,
                            verb: Verb::Drain,
                        });
                    }
                }
            }
            KeyCode::Char('e') => {
                if let Some((service, server, from)) = self.selected_server() {
                    if from != 0 {
                        self.info(format!(
                            "{} is already enabled (weight {from})",
                            addr_text(&server)
                        ));
                    } else {
                        self.mode = Mode::Confirm(Pending {
                            service,
                            server,
                            from,
                            to: self.enable_weight(&service, &server),
                            verb: Verb::Enable,
                        });
                    }
                }
            }
            _ => {}
        }
        Action::None
    }

    fn key_filter(&mut self, key: KeyEvent) {
        let old = self.selected_index();
        match key.code {
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Enter => {}
            KeyCode::Backspace => {
                self.filter.pop();
                self.mode = Mode::Filter;
            }
            KeyCode::Up => {
                self.move_by(-1);
                self.mode = Mode::Filter;
            }
            KeyCode::Down => {
                self.move_by(1);
                self.mode = Mode::Filter;
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(c);
                self.mode = Mode::Filter;
            }
            _ => self.mode = Mode::Filter,
        }
        self.fix_selection(old);
    }

    fn key_weight(
        &mut self,
        key: KeyEvent,
        service: ServiceKey,
        server: SocketAddr,
        from: u32,
        mut input: String,
    ) {
        match key.code {
            KeyCode::Esc => {
                self.info("cancelled");
                return;
            }
            KeyCode::Enter => match input.parse::<u32>() {
                Ok(to) if to <= MAX_WEIGHT => {
                    self.status = None;
                    self.mode = Mode::Confirm(Pending {
                        service,
                        server,
                        from,
                        to,
                        verb: Verb::SetWeight,
                    });
                    return;
                }
                _ => self.error(format!("weight must be a number from 0 to {MAX_WEIGHT}")),
            },
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char(c) if c.is_ascii_digit() && input.len() < MAX_WEIGHT_DIGITS => {
                input.push(c);
            }
            _ => {}
        }
        self.mode = Mode::Weight {
            service,
            server,
            from,
            input,
        };
    }

    fn key_confirm(&mut self, key: KeyEvent, p: Pending) -> Action {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                let Some(r) = self.find_server(&p.service, &p.server) else {
                    self.error(format!(
                        "{} is no longer in {}",
                        addr_text(&p.server),
                        service_label(&p.service)
                    ));
                    return Action::None;
                };
                let mut spec = r.spec.clone();
                spec.weight = p.to;
                let what = p.describe();
                self.info(format!("sending: {what}"));
                Action::Send {
                    request: Request::EditServer {
                        service: p.service,
                        server: spec,
                    },
                    what,
                }
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                self.info("cancelled");
                Action::None
            }
            _ => {
                self.mode = Mode::Confirm(p);
                Action::None
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use rvs::ctl::proto::{
        DaemonInfo, Forward, Protocol, RealServerSpec, ServiceSpec, Stats, PROTOCOL_VERSION,
    };

    pub fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    pub fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    pub fn server(addr: &str, weight: u32, active: u32, cps: u64, bps: u64) -> ServerView {
        let mut spec = RealServerSpec::new(addr.parse().unwrap());
        spec.weight = weight;
        spec.u_threshold = 7;
        ServerView {
            spec,
            shown_forward: Forward::Masq,
            active_conns: active,
            inactive_conns: active / 2,
            persist_conns: 0,
            stats: Stats::default(),
            rates: Rates {
                cps,
                inpps: 0,
                outpps: 0,
                inbps: bps,
                outbps: bps * 3,
            },
            health: rvs::ctl::proto::HealthView {
                state: if weight == 0 {
                    rvs::ctl::proto::HealthState::Drain
                } else {
                    rvs::ctl::proto::HealthState::Up
                },
                since_secs: 60,
                check: "tcp".into(),
                last_ok: Some(true),
                latency_us: Some(150),
                reason: "connected".into(),
                effective_weight: None,
            },
        }
    }

    pub fn service(addr: &str, proto: Protocol, servers: Vec<ServerView>) -> ServiceView {
        let key = ServiceKey {
            proto,
            addr: addr.parse().unwrap(),
        };
        let mut rates = Rates::default();
        for r in &servers {
            rates.cps += r.rates.cps;
            rates.inbps += r.rates.inbps;
            rates.outbps += r.rates.outbps;
        }
        ServiceView {
            spec: ServiceSpec::new(key),
            stats: Stats::default(),
            rates,
            servers,
            sorry_active: false,
        }
    }

    /// Two services: a web VIP with three servers and a DNS VIP with one.
    pub fn sample_update() -> Update {
        Update {
            daemon: DaemonInfo {
                protocol: PROTOCOL_VERSION,
                version: "0.1.0".to_string(),
                pid: 4242,
                uptime_secs: 3_725,
            },
            table: TableView {
                services: vec![
                    service(
                        "10.0.0.1:80",
                        Protocol::Tcp,
                        vec![
                            server("192.168.1.12:8080", 2, 120, 30, 2048),
                            server("192.168.1.11:8080", 1, 80, 12, 1_500_000),
                            server("192.168.1.13:8080", 0, 3, 0, 0),
                        ],
                    ),
                    service(
                        "10.0.0.2:53",
                        Protocol::Udp,
                        vec![server("192.168.2.1:53", 5, 1500, 450, 90)],
                    ),
                ],
            },
            live_connections: 1703,
            events: Vec::new(),
        }
    }

    pub fn sample_app() -> App {
        let now = Instant::now();
        let mut app = App::new("/tmp/rvsd.sock", 1000, now);
        app.ingest(sample_update(), now);
        app
    }

    pub fn skey(s: &str, proto: Protocol) -> ServiceKey {
        ServiceKey {
            proto,
            addr: s.parse().unwrap(),
        }
    }

    fn web() -> ServiceKey {
        skey("10.0.0.1:80", Protocol::Tcp)
    }

    #[test]
    fn rows_sorted_by_address_and_selection_starts_at_top() {
        let app = sample_app();
        let rows = app.rows();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0], RowId::Service(web()));
        assert_eq!(
            rows[1],
            RowId::Server(web(), "192.168.1.11:8080".parse().unwrap())
        );
        assert_eq!(
            rows[3],
            RowId::Server(web(), "192.168.1.13:8080".parse().unwrap())
        );
        assert_eq!(app.selected, Some(rows[0]));
    }

    #[test]
    fn moving_clamps_at_both_ends() {
        let mut app = sample_app();
        assert_eq!(app.on_key(key(KeyCode::Up)), Action::None);
        assert_eq!(app.selected_index(), Some(0));
        app.on_key(ch('j'));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.selected_index(), Some(2));
        app.on_key(ch('k'));
        assert_eq!(app.selected_index(), Some(1));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.selected_index(), Some(5));
        app.on_key(ch('j'));
        assert_eq!(app.selected_index(), Some(5));
        app.on_key(key(KeyCode::Home));
        assert_eq!(app.selected_index(), Some(0));
    }

    #[test]
    fn enter_folds_and_unfolds() {
        let mut app = sample_app();
        app.on_key(ch('j')); // a server of the web service
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.selected, Some(RowId::Service(web())));
        assert_eq!(app.rows().len(), 3);
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.rows().len(), 6);
    }

    #[test]
    fn sort_cycles_and_orders_by_connections() {
        let mut app = sample_app();
        let labels: Vec<_> = (0..4)
            .map(|_| {
                app.on_key(ch('s'));
                app.sort
            })
            .collect();
        assert_eq!(
            labels,
            [
                SortMode::Connections,
                SortMode::Cps,
                SortMode::Bandwidth,
                SortMode::Address
            ]
        );
        app.on_key(ch('s'));
        assert_eq!(app.status.as_ref().unwrap().text, "sort: connections");
        let rows = app.rows();
        // the UDP service has 1500 active connections: first now
        assert_eq!(rows[0].service(), skey("10.0.0.2:53", Protocol::Udp));
        assert_eq!(
            rows[3],
            RowId::Server(web(), "192.168.1.12:8080".parse().unwrap())
        );
        // bandwidth: the web service (1.5 MB/s in) comes first
        app.on_key(ch('s'));
        app.on_key(ch('s'));
        assert_eq!(app.sort, SortMode::Bandwidth);
        assert_eq!(app.rows()[0], RowId::Service(web()));
        assert_eq!(
            app.rows()[1],
            RowId::Server(web(), "192.168.1.11:8080".parse().unwrap())
        );
    }

    #[test]
    fn filter_matches_addresses_and_esc_clears() {
        let mut app = sample_app();
        app.on_key(ch('/'));
        for c in "1.13".chars() {
            app.on_key(ch(c));
        }
        assert_eq!(app.mode, Mode::Filter);
        assert_eq!(app.rows().len(), 2); // web service + the one matching server
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.filter, "1.13");
        assert_eq!(app.rows().len(), 2);
        // Esc in normal mode clears the filter before it quits
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None);
        assert_eq!(app.rows().len(), 6);
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
        // the filter also matches the protocol + service address
        app.on_key(ch('/'));
        for c in "udp".chars() {
            app.on_key(ch(c));
        }
        assert_eq!(app.rows().len(), 2);
        app.on_key(key(KeyCode::Esc));
        assert!(app.filter.is_empty());
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn quit_keys() {
        let mut app = sample_app();
        assert_eq!(app.on_key(ch('q')), Action::Quit);
        app.mode = Mode::Filter;
        assert_eq!(
            app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Quit
        );
    }

    #[test]
    fn weight_prompt_builds_a_full_edit_server_request() {
        let mut app = sample_app();
        app.on_key(ch('j')); // 192.168.1.11:8080, weight 1
        app.on_key(ch('w'));
        assert!(matches!(app.mode, Mode::Weight { .. }));
        for c in "x25".chars() {
            app.on_key(ch(c)); // letters are ignored
        }
        app.on_key(key(KeyCode::Backspace));
        app.on_key(ch('7'));
        app.on_key(key(KeyCode::Enter));
        let Mode::Confirm(p) = &app.mode else {
            panic!("expected a confirmation, got {:?}", app.mode)
        };
        assert_eq!((p.from, p.to, p.verb), (1, 27, Verb::SetWeight));
        // anything but y/n keeps asking
        assert_eq!(app.on_key(ch('x')), Action::None);
        let Action::Send { request, what } = app.on_key(ch('y')) else {
            panic!("expected a request")
        };
        let mut spec = RealServerSpec::new("192.168.1.11:8080".parse().unwrap());
        spec.weight = 27;
        spec.u_threshold = 7; // copied from the current spec
        assert_eq!(
            request,
            Request::EditServer {
                service: web(),
                server: spec
            }
        );
        assert!(what.contains("1 → 27"), "{what}");
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn bad_weight_stays_in_the_prompt() {
        let mut app = sample_app();
        app.on_key(ch('j'));
        app.on_key(ch('w'));
        app.on_key(key(KeyCode::Enter));
        assert!(app.status.as_ref().unwrap().error);
        assert!(matches!(app.mode, Mode::Weight { .. }));
        for c in "9999999999".chars() {
            app.on_key(ch(c));
        }
        app.on_key(key(KeyCode::Enter));
        assert!(matches!(app.mode, Mode::Weight { .. }));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn drain_then_enable_restores_the_last_weight() {
        let mut app = sample_app();
        app.on_key(ch('j'));
        app.on_key(ch('j')); // 192.168.1.12:8080, weight 2
        app.on_key(ch('d'));
        assert!(matches!(app.mode, Mode::Confirm(Pending { to: 0, .. })));
        assert_eq!(app.on_key(ch('n')), Action::None);
        assert_eq!(app.status.as_ref().unwrap().text, "cancelled");
        app.on_key(ch('d'));
        let Action::Send {
            request: Request::EditServer { server, .. },
            ..
        } = app.on_key(ch('y'))
        else {
            panic!("expected EditServer")
        };
        assert_eq!(server.weight, 0);
        // the daemon applies it
        let mut u = sample_update();
        u.table.services[0].servers[0].spec.weight = 0;
        app.ingest(u, Instant::now());
        assert!(app.notices[0].text.contains("2 → 0 (quiesced)"));
        app.on_key(ch('e'));
        let Action::Send {
            request: Request::EditServer { server, .. },
            ..
        } = app.on_key(ch('Y'))
        else {
            panic!("expected EditServer")
        };
        assert_eq!(server.weight, 2);
    }

    #[test]
    fn enable_without_history_uses_one_and_actions_need_a_server() {
        let mut app = sample_app();
        app.on_key(ch('e'));
        assert!(app.status.as_ref().unwrap().error);
        assert_eq!(app.mode, Mode::Normal);
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        app.on_key(ch('j')); // 192.168.1.13:8080, weight 0 since the start
        app.on_key(ch('e'));
        assert!(matches!(app.mode, Mode::Confirm(Pending { to: 1, .. })));
    }

    #[test]
    fn refusal_shows_in_the_status() {
        let mut app = sample_app();
        app.action_done("drain x", Err("permission denied".into()));
        let s = app.status.clone().unwrap();
        assert!(s.error);
        assert!(s.text.contains("permission denied"));
    }

    #[test]
    fn health_state_and_events_from_rvsd() {
        let now = Instant::now();
        let mut app = App::new("/s", 1000, now);
        let mut u = sample_update();
        let svc = u.table.services[0].spec.key;
        let srv = &mut u.table.services[0].servers[0];
        srv.health.state = rvs::ctl::proto::HealthState::Down;
        assert_eq!(server_state(srv), ServerState::Down);
        let addr = srv.spec.addr;
        u.events.push(rvs::ctl::proto::HealthEvent {
            at_ms: 0,
            service: svc,
            server: addr,
            state: rvs::ctl::proto::HealthState::Down,
            reason: "HTTP 503".into(),
        });
        app.ingest(u, now);
        assert!(
            app.notices
                .iter()
                .any(|n| n.text.contains("DOWN") && n.text.contains("HTTP 503")),
            "{:?}",
            app.notices.iter().map(|n| &n.text).collect::<Vec<_>>()
        );
    }

    #[test]
    fn notices_for_changes_and_link() {
        let now = Instant::now();
        let mut app = App::new("/s", 1000, now);
        app.disconnected("no socket".into(), now);
        assert!(app.notices.is_empty());
        app.ingest(sample_update(), now);
        assert!(app.notices[0].text.starts_with("connected to rvsd 0.1.0"));
        let mut u = sample_update();
        u.table.services[0].servers.remove(2);
        u.table.services[1]
            .servers
            .push(server("192.168.2.2:53", 1, 0, 0, 0));
        u.table
            .services
            .push(service("10.0.0.3:443", Protocol::Tcp, vec![]));
        app.ingest(u.clone(), now);
        let texts: Vec<_> = app.notices.iter().map(|n| n.text.as_str()).collect();
        assert!(texts.contains(&"real server 192.168.1.13:8080 removed from TCP 10.0.0.1:80"));
        assert!(texts.contains(&"real server 192.168.2.2:53 added to UDP 10.0.0.2:53"));
        assert!(texts.contains(&"service TCP 10.0.0.3:443 added"));
        app.disconnected("gone".into(), now);
        app.disconnected("still gone".into(), now);
        assert!(app.notices[0]
            .text
            .starts_with("disconnected from rvsd: gone"));
        assert!(matches!(&app.link, Link::Disconnected { error, .. } if error == "still gone"));
        app.ingest(u, now);
        assert!(app.notices[0].text.starts_with("reconnected"));
        assert_eq!(app.link, Link::Connected);
    }

    #[test]
    fn history_rings_are_bounded_and_follow_rows() {
        let mut app = sample_app();
        for _ in 0..HISTORY_LEN + 5 {
            app.ingest(sample_update(), Instant::now());
        }
        let h = app.history(&RowId::Service(web())).unwrap();
        assert_eq!(h.cps.len(), HISTORY_LEN);
        assert_eq!(h.bps()[0], 2048 * 4 + 1_500_000 * 4);
        let mut u = sample_update();
        u.table.services.remove(0);
        app.ingest(u, Instant::now());
        assert!(app.history(&RowId::Service(web())).is_none());
        // the selection moved to a row that still exists
        assert_eq!(
            app.selected,
            Some(RowId::Service(skey("10.0.0.2:53", Protocol::Udp)))
        );
    }

    #[test]
    fn state_is_weight_derived() {
        assert_eq!(
            server_state(&server("1.2.3.4:1", 0, 0, 0, 0)),
            ServerState::Quiesced
        );
        assert_eq!(
            server_state(&server("1.2.3.4:1", 3, 0, 0, 0)),
            ServerState::Up
        );
    }
}
