//! rvstop's state: the latest table pushed by rvsd, history rings for the
//! sparklines, selection, folding, sorting, filtering, prompts and the events
//! the dashboard noticed itself.
//!
//! Pure data: no I/O and no drawing. Time comes in as arguments (`now`), keys
//! come in through [`App::on_key`], which answers with an [`Action`] for the
//! event loop to carry out.
//!
//! This file holds the types and the inputs from the transport; the derived
//! views (rows, sorting, filtering, totals) are in `rows`, the keys in `keys`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rvs::ctl::proto::{Rates, Request, ServerView, ServiceKey, ServiceView, TableView, Update};

mod keys;
mod rows;

pub use rows::{addr_text, service_active, service_flags, service_inactive, service_label};

/// Samples kept per row for the sparklines (~2 minutes at the default interval).
pub const HISTORY_LEN: usize = 120;
/// Events kept for the event line.
pub const MAX_NOTICES: usize = 50;

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
                            (_, 0) => " (drained)",
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
}

#[cfg(test)]
pub mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use rvs::ctl::proto::Protocol;

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
}
