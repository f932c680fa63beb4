//! Drawing: `draw(frame, &App)` renders the whole screen from the state and
//! never changes it.
//!
//! ```text
//! header      rvsd version, uptime, link state; totals
//! table       services, their real servers beneath
//! details     the selected row + sparklines of conn/s and bandwidth
//! events      what the dashboard noticed (newest first)
//! status      prompts, answers, key hints
//! ```

use std::time::Duration;

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Cell, Clear, Paragraph, RenderDirection, Row, Sparkline, Table, TableState, Wrap,
};
use ratatui::Frame;

use crate::app::{
    addr_text, server_state, service_active, service_flags, service_inactive, service_label, App,
    Link, Mode, RowId, ServerState,
};

/// The keys, for the help overlay and `rvstop --help`.
pub const KEYS: &str = "\
Keys:
  ↑/↓, j/k         move the selection (PgUp/PgDn, Home/End jump)
  Enter, ←/→       fold / unfold a service's real servers
  s                cycle the sort: address, connections, CPS, bandwidth
  /                filter on addresses (Enter keeps it, Esc clears it)
  w                set the weight of the selected real server
  d                drain the selected real server (weight 0)
  e                re-enable it (last non-zero weight seen, or 1)
  y / n            confirm / cancel a change
  ?                show / hide this help
  q, Esc, Ctrl-C   quit

Service flags: pN persistent N s, ops one-packet scheduling,
f1-f3 scheduler flags. w, d and e send EditServer to rvsd; they
need permission to change the table (root, or a member of rvsd's
--socket-group). A refusal shows in the status line.";

/// Terminals at least this wide get the InActConn column.
const WIDE: u16 = 100;
/// Terminals at least this tall get bigger sparklines and more events.
const TALL: u16 = 36;

// ----- units -----

/// 999, 1.2k, 12k, 1.2M, ... (SI, for counts).
pub fn fmt_count(n: u64) -> String {
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    if n < 1000 {
        return n.to_string();
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if v < 9.95 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

/// 512 B/s, 1.5 KiB/s, 12 MiB/s, ... (binary units, bytes per second).
pub fn fmt_bps(n: u64) -> String {
    const UNITS: [&str; 6] = ["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s", "PiB/s"];
    if n < 1024 {
        return format!("{n} B/s");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v < 9.95 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

/// 45s, 12m05s, 3h07m, 2d04h.
pub fn fmt_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Age of an event: now, 12s, 5m, 2h, 3d.
pub fn fmt_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "now".to_string(),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

// ----- the screen -----

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let tall = area.height >= TALL;
    let [header, table, details, events, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(if tall { 9 } else { 5 }),
        Constraint::Length(if tall { 4 } else { 1 }),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app);
    draw_table(frame, table, app);
    draw_details(frame, details, app);
    draw_events(frame, events, app);
    draw_status(frame, status, app);
    match &app.mode {
        Mode::Help => draw_help(frame, area),
        Mode::Confirm(p) => draw_confirm(frame, area, &p.describe()),
        _ => {}
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let first = match (&app.link, &app.update) {
        (Link::Disconnected { since, error }, _) => Line::from(vec![
            Span::styled(" rvstop ", Style::new().bold().reversed()),
            Span::styled(
                format!(
                    " disconnected — retrying ({}): {error}",
                    fmt_age(app.now.saturating_duration_since(*since))
                ),
                Style::new().fg(Color::Red).bold(),
            ),
        ]),
        (_, None) => Line::from(vec![
            Span::styled(" rvstop ", Style::new().bold().reversed()),
            Span::raw(format!(" connecting to rvsd at {} …", app.socket)),
        ]),
        (_, Some(u)) => Line::from(vec![
            Span::styled(" rvstop ", Style::new().bold().reversed()),
            Span::raw(format!(
                " rvsd {}  pid {}  up {}  every {} ms  {}",
                u.daemon.version,
                u.daemon.pid,
                fmt_uptime(u.daemon.uptime_secs),
                app.interval_ms,
                app.socket
            )),
        ]),
    };
    let t = app.totals();
    let live = app
        .update
        .as_ref()
        .map(|u| u.live_connections)
        .unwrap_or_default();
    let second = Line::from(vec![
        Span::raw(format!(" services {}  ", t.services)),
        Span::raw("ActiveConn ").dim(),
        Span::raw(fmt_count(t.active)).bold(),
        Span::raw("  CPS ").dim(),
        Span::raw(fmt_count(t.cps)).bold(),
        Span::raw("  In ").dim(),
        Span::raw(fmt_bps(t.inbps)).bold(),
        Span::raw("  Out ").dim(),
        Span::raw(fmt_bps(t.outbps)).bold(),
        Span::raw("  InActConn ").dim(),
        Span::raw(fmt_count(t.inactive)),
        Span::raw(format!("  servers {}", t.servers)).dim(),
        Span::raw("  live ").dim(),
        Span::raw(fmt_count(live)),
    ]);
    frame.render_widget(Paragraph::new(vec![first, second]), area);
}

fn num(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).alignment(Alignment::Right))
}

fn draw_table(frame: &mut Frame, area: Rect, app: &App) {
    let wide = area.width >= WIDE;
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

    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for v in app.visible() {
        let s = v.view;
        let key = s.spec.key;
        let mut name = format!(
            "{} {}",
            if v.folded { "▸" } else { "▾" },
            service_label(&key)
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
        rows.push(Row::new(cells).style(Style::new().bold()));
        ids.push(RowId::Service(key));
        if v.folded {
            continue;
        }
        for r in &v.servers {
            let state = server_state(r);
            let state_style = match state {
                ServerState::Up => Style::new().fg(Color::Green),
                ServerState::Quiesced => Style::new().fg(Color::Yellow),
                ServerState::Down => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            };
            let mut cells = vec![
                Cell::from(format!("  {}", addr_text(&r.spec.addr))),
                Cell::from(r.shown_forward.name()),
                num(fmt_count(u64::from(r.spec.weight))),
                Cell::from(state.label()).style(state_style),
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
            rows.push(Row::new(cells));
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
        let text = if app.update.is_none() {
            "waiting for rvsd …".to_string()
        } else if !app.filter.is_empty() {
            format!(
                "nothing matches the filter “{}” (Esc clears it)",
                app.filter
            )
        } else {
            "no virtual services (add one with rvsadm -A)".to_string()
        };
        let inner = Rect {
            y: area.y + 2,
            height: 1,
            ..area
        };
        frame.render_widget(Paragraph::new(text).centered().dim(), inner);
    }
}

fn draw_details(frame: &mut Frame, area: Rect, app: &App) {
    let [title, sparks] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let Some(sel) = app.selected else {
        frame.render_widget(Paragraph::new(" nothing selected").dim(), title);
        return;
    };
    let text = match sel {
        RowId::Service(k) => match app.find_service(&k) {
            Some(s) => {
                let flags = service_flags(s, false);
                format!(
                    " ▶ {}  scheduler {}{}{}  {} real servers  {} connections so far",
                    service_label(&k),
                    s.spec.scheduler,
                    if flags.is_empty() { "" } else { "  " },
                    flags,
                    s.servers.len(),
                    fmt_count(s.stats.conns)
                )
            }
            None => format!(" ▶ {}", service_label(&k)),
        },
        RowId::Server(k, a) => match app.find_server(&k, &a) {
            Some(r) => format!(
                " ▶ {} in {}  {} weight {} {}  {} connections so far",
                addr_text(&a),
                service_label(&k),
                r.shown_forward.name(),
                r.spec.weight,
                server_state(r).label(),
                fmt_count(r.stats.conns)
            ),
            None => format!(" ▶ {} in {}", addr_text(&a), service_label(&k)),
        },
    };
    frame.render_widget(Paragraph::new(text).bold(), title);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(sparks);
    let Some(h) = app.history(&sel) else {
        return;
    };
    let cps: Vec<u64> = h.cps.iter().copied().collect();
    let bps = h.bps();
    spark(
        frame,
        left,
        format!(
            " conn/s  now {}  peak {} ",
            fmt_count(cps.last().copied().unwrap_or(0)),
            fmt_count(cps.iter().copied().max().unwrap_or(0))
        ),
        &cps,
        Color::Cyan,
    );
    spark(
        frame,
        right,
        format!(
            " in+out  now {}  peak {} ",
            fmt_bps(bps.last().copied().unwrap_or(0)),
            fmt_bps(bps.iter().copied().max().unwrap_or(0))
        ),
        &bps,
        Color::Magenta,
    );
}

/// A sparkline with the newest sample at the right edge.
fn spark(frame: &mut Frame, area: Rect, title: String, data: &[u64], color: Color) {
    let newest_first: Vec<u64> = data.iter().rev().copied().collect();
    let w = Sparkline::default()
        .block(Block::bordered().title(title))
        .data(newest_first)
        .direction(RenderDirection::RightToLeft)
        .style(Style::new().fg(color));
    frame.render_widget(w, area);
}

fn draw_events(frame: &mut Frame, area: Rect, app: &App) {
    if app.notices.is_empty() {
        frame.render_widget(Paragraph::new(" no events yet").dim(), area);
        return;
    }
    let item = |n: &crate::app::Notice| {
        vec![
            Span::raw(format!(
                "{:>4} ",
                fmt_age(app.now.saturating_duration_since(n.at))
            ))
            .dim(),
            Span::raw(n.text.clone()),
        ]
    };
    let lines: Vec<Line> = if area.height == 1 {
        let mut spans = vec![Span::raw(" events").dim()];
        for n in app.notices.iter().take(3) {
            spans.push(Span::raw(" │ ").dim());
            spans.extend(item(n));
        }
        vec![Line::from(spans)]
    } else {
        app.notices
            .iter()
            .take(area.height as usize)
            .map(|n| {
                let mut spans = vec![Span::raw(" ")];
                spans.extend(item(n));
                Line::from(spans)
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let prompt = Style::new().fg(Color::Black).bg(Color::Yellow);
    let line = match &app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled(format!(" filter: {}▏", app.filter), prompt),
            Span::raw("  Enter keeps it, Esc clears it").dim(),
        ]),
        Mode::Weight {
            server,
            from,
            input,
            ..
        } => Line::from(vec![
            Span::styled(
                format!(
                    " new weight for {} (now {from}): {input}▏",
                    addr_text(server)
                ),
                prompt,
            ),
            Span::raw("  Enter ok, Esc cancels").dim(),
        ]),
        Mode::Confirm(p) => Line::from(Span::styled(format!(" {}? [y/n]", p.describe()), prompt)),
        Mode::Normal | Mode::Help => match &app.status {
            Some(s) if s.error => Line::from(Span::styled(
                format!(" {}", s.text),
                Style::new().fg(Color::White).bg(Color::Red).bold(),
            )),
            Some(s) => Line::from(Span::raw(format!(" {}", s.text)).green()),
            None => {
                let mut spans = vec![Span::raw(format!(
                    " q quit  ? help  ⏎ fold  s sort:{}  / filter",
                    app.sort.label()
                ))];
                if !app.filter.is_empty() {
                    spans.push(Span::styled(format!(":{}", app.filter), prompt));
                }
                spans.push(Span::raw("  w weight  d drain  e enable"));
                Line::from(spans).dim()
            }
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A rectangle of at most `w`×`h` centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    r
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let text = Text::from(KEYS);
    let h = text.lines.len() as u16 + 2;
    let w = text.width() as u16 + 4;
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" rvstop help — any key closes ")),
        r,
    );
}

fn draw_confirm(frame: &mut Frame, area: Rect, what: &str) {
    let body = format!("{what}?\n\ny: yes   n/Esc: no");
    let w = (what.chars().count() as u16 + 5).clamp(30, area.width.saturating_sub(4));
    let r = centered(area, w, 6);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: true })
            .centered()
            .block(Block::bordered().title(" confirm ").yellow()),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{ch, key, sample_app, sample_update};
    use crossterm::event::KeyCode;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::time::Instant;

    /// Render `app` at `w`×`h` and return the screen as lines of text.
    fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    fn text(lines: &[String]) -> String {
        lines.join("\n")
    }

    fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
    }

    #[test]
    fn units() {
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1500), "1.5k");
        assert_eq!(fmt_count(12_345), "12k");
        assert_eq!(fmt_count(2_500_000), "2.5M");
        assert_eq!(fmt_count(7_000_000_000), "7.0G");
        assert_eq!(fmt_bps(0), "0 B/s");
        assert_eq!(fmt_bps(1023), "1023 B/s");
        assert_eq!(fmt_bps(1536), "1.5 KiB/s");
        assert_eq!(fmt_bps(1_500_000), "1.4 MiB/s");
        assert_eq!(fmt_bps(200 * 1024 * 1024), "200 MiB/s");
        assert_eq!(fmt_uptime(3_725), "1h02m");
        assert_eq!(fmt_uptime(59), "59s");
        assert_eq!(fmt_uptime(90_000), "1d01h");
        assert_eq!(fmt_age(Duration::from_secs(75)), "1m");
    }

    #[test]
    fn header_shows_version_and_totals() {
        let app = sample_app();
        for (w, h) in [(80, 24), (120, 40)] {
            let s = screen(&app, w, h);
            assert!(s[0].contains("rvsd 0.1.0"), "{}", s[0]);
            assert!(s[0].contains("up 1h02m"), "{}", s[0]);
            assert!(s[1].contains("services 2"), "{}", s[1]);
            // 120 + 80 + 3 + 1500 active connections, 492 conn/s
            assert!(s[1].contains("ActiveConn 1.7k"), "{}", s[1]);
            assert!(s[1].contains("CPS 492"), "{}", s[1]);
            assert!(s[1].contains("In 1.4 MiB/s"), "{}", s[1]);
        }
    }

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
        assert!(q.contains("QUIESCED"), "{q}");
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
        let mut app = App::new("/s", 1000, Instant::now());
        app.ingest(u, Instant::now());
        let s = screen(&app, 120, 40);
        assert!(line_with(&s, "▾ TCP 10.0.0.1:80 p360 f2").contains("wlc"));
        assert!(line_with(&s, "▶ TCP 10.0.0.1:80").contains("persistent 360s flag-2"));
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
    fn help_overlay() {
        let mut app = sample_app();
        app.on_key(ch('?'));
        for (w, h) in [(80, 24), (120, 40)] {
            let s = text(&screen(&app, w, h));
            assert!(s.contains("rvstop help"), "{s}");
            assert!(s.contains("drain the selected real server"), "{s}");
            assert!(s.contains("q, Esc, Ctrl-C"), "{s}");
        }
        app.on_key(ch('x'));
        assert!(!text(&screen(&app, 80, 24)).contains("rvstop help"));
    }

    #[test]
    fn disconnected_banner_keeps_the_last_table() {
        let mut app = sample_app();
        let t0 = Instant::now();
        app.disconnected("could not connect to rvsd".into(), t0);
        app.tick(t0 + Duration::from_secs(3));
        let s = screen(&app, 80, 24);
        assert!(
            s[0].contains("disconnected — retrying (3s): could not connect"),
            "{}",
            s[0]
        );
        assert!(text(&s).contains("192.168.1.11:8080"));
        assert!(text(&s).contains("disconnected from rvsd"));
    }

    #[test]
    fn waiting_before_the_first_update() {
        let app = App::new("/run/rvs/rvsd.sock", 1000, Instant::now());
        let s = screen(&app, 80, 24);
        assert!(s[0].contains("connecting to rvsd at /run/rvs/rvsd.sock"));
        assert!(text(&s).contains("waiting for rvsd"));
    }

    #[test]
    fn prompts_and_refusals_in_the_status_line() {
        let mut app = sample_app();
        app.on_key(ch('j'));
        app.on_key(ch('w'));
        app.on_key(ch('4'));
        let s = screen(&app, 80, 24);
        assert!(
            s[23].contains("new weight for 192.168.1.11:8080 (now 1): 4"),
            "{}",
            s[23]
        );
        app.on_key(key(KeyCode::Enter));
        let s = text(&screen(&app, 80, 24));
        assert!(s.contains("confirm"), "{s}");
        assert!(s.contains("[y/n]"), "{s}");
        let crate::app::Action::Send { what, .. } = app.on_key(ch('y')) else {
            panic!("expected a request")
        };
        app.action_done(&what, Err("permission denied: uid 1000".into()));
        let s = screen(&app, 120, 40);
        assert!(
            s[39]
                .contains("refused: permission denied: uid 1000 — set weight of 192.168.1.11:8080"),
            "{}",
            s[39]
        );
    }

    #[test]
    fn selection_moves_the_details_and_tiny_screens_do_not_panic() {
        let mut app = sample_app();
        app.on_key(ch('j'));
        let s = text(&screen(&app, 80, 24));
        assert!(
            s.contains("▶ 192.168.1.11:8080 in TCP 10.0.0.1:80  Masq weight 1 UP"),
            "{s}"
        );
        for (w, h) in [(1, 1), (20, 5), (40, 10), (200, 60)] {
            screen(&app, w, h);
        }
        let mut u = sample_update();
        u.table.services.clear();
        app.ingest(u, Instant::now());
        assert!(text(&screen(&app, 80, 24)).contains("no virtual services"));
    }
}
