//! Derived views of the state: the rows as shown (sorted, filtered, folded),
//! lookups, totals, and the text of labels and flags. A server's state is not
//! derived here: rvsd sends it (`health.state`) and rvstop prints its
//! `name()`, the word `rvsadm -L --health` prints.

use std::cmp::Ordering;
use std::net::SocketAddr;

use rvs::ctl::names::sched_flag_names;
use rvs::ctl::proto::{Rates, ServerView, ServiceKey, ServiceView};

use super::{App, History, RowId, SortMode, Totals, VisibleService};

/// "TCP 10.0.0.1:80"
pub fn service_label(key: &ServiceKey) -> String {
    format!("{} {}", key.proto.name(), addr_text(&key.addr))
}

/// "10.0.0.1:80" or "[::1]:80"
pub fn addr_text(addr: &SocketAddr) -> String {
    addr.to_string()
}

/// A service's options: "persistent 360s ops sh-fallback", or in `short`
/// form for the table "p360 ops sh-fallback". Scheduler flags are named as
/// `rvsadm -L` names them, in both forms.
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
    out.extend(
        sched_flag_names(&s.spec.scheduler, s.spec.sched_flags)
            .into_iter()
            .map(String::from),
    );
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
    pub(super) fn fix_selection(&mut self, old_index: Option<usize>) {
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
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

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
}
