//! Details pane: the selected row in one line, sparklines of conn/s and
//! bandwidth beneath.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Paragraph, RenderDirection, Sparkline};
use ratatui::Frame;

use super::units::{fmt_bps, fmt_count};
use crate::app::{addr_text, service_flags, service_label, App, RowId};

pub(super) fn draw_details(frame: &mut Frame, area: Rect, app: &App) {
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
                r.health.state.name(),
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
pub(super) fn spark(frame: &mut Frame, area: Rect, title: String, data: &[u64], color: Color) {
    let newest_first: Vec<u64> = data.iter().rev().copied().collect();
    let w = Sparkline::default()
        .block(Block::bordered().title(title))
        .data(newest_first)
        .direction(RenderDirection::RightToLeft)
        .style(Style::new().fg(color));
    frame.render_widget(w, area);
}

#[cfg(test)]
mod tests {
    use crate::app::fixtures::*;
    use crate::ui::testkit::*;
    use std::time::Instant;

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
