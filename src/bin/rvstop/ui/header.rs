//! Header pane: rvsd's version, uptime and link state; totals.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::units::{fmt_age, fmt_bps, fmt_count, fmt_uptime};
use crate::app::{App, Link};

pub(super) fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures::*;
    use crate::ui::testkit::*;
    use std::time::{Duration, Instant};

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
}
