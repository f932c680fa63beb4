//! Table pane: services, their real servers beneath.

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::units::{fmt_bps, fmt_count};
use super::WIDE;
use crate::app::{
    addr_text, service_active, service_flags, service_inactive, service_label, App, Link, RowId,
    VisibleService,
};
use rvs::ctl::proto::{HealthState, ServerView};

pub(super) fn num(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).alignment(Alignment::Right))
}

pub(super) fn draw_table(frame: &mut Frame, area: Rect, app: &App) {
    let wide = area.width >= WIDE;
    let (header, widths) = columns(wide);
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for v in app.visible() {
        let key = v.view.spec.key;
        rows.push(service_row(&v, wide));
        ids.push(RowId::Service(key));
        if v.folded {
            continue;
        }
        for r in &v.servers {
            rows.push(server_row(r, wide));
            ids.push(RowId::Server(key, r.spec.addr));
        }
    }
    let empty = rows.is_empty();
    // While disconnected the numbers are the last ones seen: dim them.
    let stale = matches!(app.link, Link::Disconnected { .. });
    let table = Table::new(rows, widths)
        .style(if stale {
            Style::new().dim()
        } else {
            Style::new()
        })
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let selected = app
        .selected
        .and_then(|sel| ids.iter().position(|id| *id == sel));
    let mut state = TableState::new().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    if empty && area.height > 2 {
        let inner = Rect {
            y: area.y + 2,
            height: 1,
            ..area
        };
        frame.render_widget(Paragraph::new(empty_text(app)).centered().dim(), inner);
    }
}

/// Column titles and widths; `wide` screens get InActConn.
fn columns(wide: bool) -> (Vec<Cell<'static>>, Vec<Constraint>) {
    let mut header = vec![
        Cell::from("Service / real server"),
        Cell::from("Sched"),
        num("Weight".into()),
        Cell::from("State"),
        num("ActConn".into()),
    ];
    let mut widths = vec![
        Constraint::Fill(1),
        Constraint::Length(if wide { 6 } else { 5 }),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(7),
    ];
    if wide {
        header.push(num("InActConn".into()));
        widths.push(Constraint::Length(9));
    }
    header.extend([num("CPS".into()), num("In/s".into()), num("Out/s".into())]);
    widths.extend([
        Constraint::Length(5),
        Constraint::Length(if wide { 10 } else { 9 }),
        Constraint::Length(if wide { 10 } else { 9 }),
    ]);
    (header, widths)
}

/// "▾ TCP 10.0.0.1:80 p360", scheduler, sums over its real servers.
fn service_row(v: &VisibleService<'_>, wide: bool) -> Row<'static> {
    let s = v.view;
    let mut name = format!(
        "{} {}",
        if v.folded { "▸" } else { "▾" },
        service_label(&s.spec.key)
    );
    if v.folded {
        name.push_str(&format!(" [{}]", s.servers.len()));
    }
    let flags = service_flags(s, true);
    if !flags.is_empty() {
        name.push(' ');
        name.push_str(&flags);
    }
    let mut cells = vec![
        Cell::from(name),
        Cell::from(s.spec.scheduler.clone()),
        Cell::from(""),
        Cell::from(""),
        num(fmt_count(service_active(s))),
    ];
    if wide {
        cells.push(num(fmt_count(service_inactive(s))));
    }
    cells.extend([
        num(fmt_count(s.rates.cps)),
        num(fmt_bps(s.rates.inbps)),
        num(fmt_bps(s.rates.outbps)),
    ]);
    Row::new(cells).style(Style::new().bold())
}

/// A real server: method, weight, rvsd's state in colour, counts, rates.
fn server_row(r: &ServerView, wide: bool) -> Row<'static> {
    // rvsd's word for the state, as `rvsadm -L --health` prints it
    let state = r.health.state;
    let state_style = match state {
        HealthState::Up => Style::new().fg(Color::Green),
        HealthState::Drain => Style::new().fg(Color::Yellow),
        HealthState::Down => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    };
    let mut cells = vec![
        Cell::from(format!("  {}", addr_text(&r.spec.addr))),
        Cell::from(r.shown_forward.name()),
        num(fmt_count(u64::from(r.spec.weight))),
        Cell::from(state.name()).style(state_style),
        num(fmt_count(u64::from(r.active_conns))),
    ];
    if wide {
        cells.push(num(fmt_count(u64::from(r.inactive_conns))));
    }
    cells.extend([
        num(fmt_count(r.rates.cps)),
        num(fmt_bps(r.rates.inbps)),
        num(fmt_bps(r.rates.outbps)),
    ]);
    Row::new(cells)
}

/// Why the table is empty.
fn empty_text(app: &App) -> String {
    if app.update.is_none() {
        "waiting for rvsd …".to_string()
    } else if !app.filter.is_empty() {
        format!(
            "nothing matches the filter “{}” (Esc clears it)",
            app.filter
        )
    } else {
        "no virtual services (add one with rvsadm -A)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures::*;
    use crate::ui::testkit::*;
    use crossterm::event::KeyCode;
    use std::time::Instant;

    #[test]
    fn services_and_servers_with_numbers_at_80x24() {
        let app = sample_app();
        let s = screen(&app, 80, 24);
        let svc = line_with(&s, "TCP 10.0.0.1:80");
        assert!(svc.contains("wlc"), "{svc}");
        assert!(svc.contains("203"), "{svc}"); // 120 + 80 + 3
        let r = line_with(&s, "192.168.1.11:8080");
        for want in ["Masq", "UP", " 80 ", "12", "1.4 MiB/s", "4.3 MiB/s"] {
            assert!(r.contains(want), "{want:?} missing in {r:?}");
        }
        let q = line_with(&s, "192.168.1.13:8080");
        assert!(q.contains("DRAIN"), "{q}");
        assert!(line_with(&s, "UDP 10.0.0.2:53").contains("1.5k"));
        // no InActConn column at 80 columns
        assert!(!line_with(&s, "Service / real server").contains("InActConn"));
        assert!(s.iter().all(|l| l.chars().count() == 80));
    }

    #[test]
    fn wide_screen_has_inactive_connections_and_event_lines() {
        let app = sample_app();
        let s = screen(&app, 120, 40);
        assert!(line_with(&s, "Service / real server").contains("InActConn"));
        let r = line_with(&s, "192.168.2.1:53");
        assert!(r.contains("750"), "{r}"); // inactive = active / 2
        assert!(line_with(&s, "connected to rvsd 0.1.0").contains("now"));
        // sparkline panel titles for the selected service
        assert!(line_with(&s, "▶ TCP 10.0.0.1:80").contains("scheduler wlc"));
        assert!(text(&s).contains("conn/s  now 42"));
    }

    #[test]
    fn service_flags_short_in_the_table_long_in_the_details() {
        let mut u = sample_update();
        u.table.services[0].spec.persistent = Some(360);
        u.table.services[0].spec.sched_flags = rvs::ctl::proto::SCHED_FLAG_2;
        let mut sh = service("10.0.0.5:80", rvs::ctl::proto::Protocol::Tcp, vec![]);
        sh.spec.scheduler = "sh".into();
        sh.spec.sched_flags = rvs::ctl::proto::SCHED_FLAG_1 | rvs::ctl::proto::SCHED_FLAG_2;
        u.table.services.push(sh);
        let mut app = App::new("/s", 1000, Instant::now());
        app.ingest(u, Instant::now());
        let s = screen(&app, 120, 40);
        // scheduler flags in rvsadm's words (rvs::ctl::names), in both places
        assert!(line_with(&s, "▾ TCP 10.0.0.1:80 p360 flag-2").contains("wlc"));
        assert!(line_with(&s, "▶ TCP 10.0.0.1:80").contains("persistent 360s flag-2"));
        assert!(line_with(&s, "▾ TCP 10.0.0.5:80 sh-fallback sh-port").contains(" sh "));
    }

    #[test]
    fn folding_hides_servers() {
        let mut app = sample_app();
        app.on_key(key(KeyCode::Enter));
        let s = text(&screen(&app, 80, 24));
        assert!(s.contains("▸ TCP 10.0.0.1:80 [3]"), "{s}");
        assert!(!s.contains("192.168.1.11"), "{s}");
        assert!(s.contains("192.168.2.1:53"), "{s}");
    }

    #[test]
    fn filter_hides_non_matching() {
        let mut app = sample_app();
        app.on_key(ch('/'));
        for c in "2.1:53".chars() {
            app.on_key(ch(c));
        }
        let s = screen(&app, 80, 24);
        let all = text(&s);
        assert!(!all.contains("10.0.0.1:80"), "{all}");
        assert!(all.contains("192.168.2.1:53"), "{all}");
        assert!(s[23].contains("filter: 2.1:53"), "{}", s[23]);
        for c in "zzz".chars() {
            app.on_key(ch(c));
        }
        assert!(text(&screen(&app, 80, 24)).contains("nothing matches the filter"));
    }

    #[test]
    fn server_state_is_the_word_rvsd_sends_whatever_the_weight() {
        // rvstop does not derive the state: a server rvsd calls DRAIN (or
        // DOWN) shows so even with a weight, in the words of `rvsadm -L
        // --health` (HealthState::name).
        for (state, word) in [
            (HealthState::Up, "UP"),
            (HealthState::Drain, "DRAIN"),
            (HealthState::Down, "DOWN"),
        ] {
            let mut u = sample_update();
            let srv = &mut u.table.services[0].servers[0]; // 192.168.1.12:8080, weight 2
            srv.health.state = state;
            let mut app = App::new("/s", 1000, Instant::now());
            app.ingest(u, Instant::now());
            let s = screen(&app, 120, 40);
            let line = line_with(&s, "192.168.1.12:8080");
            assert_eq!(state.name(), word);
            assert!(line.contains(&format!(" {word} ")), "{word}: {line}");
            assert!(!line.contains("QUIESCED"), "{line}");
        }
    }
}
