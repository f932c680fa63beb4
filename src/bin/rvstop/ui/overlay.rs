//! Overlays: the help (and its key list, also in `rvstop --help`) and the
//! confirmation box.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::Text;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

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

Service flags: pN persistent N s, ops one-packet scheduling, and
scheduler flags as rvsadm -L names them (sh-fallback, flag-1, ...).
State is rvsd's, as rvsadm -L --health shows it: UP, DRAIN (weight 0),
DOWN (failed checks). w, d and e send EditServer to rvsd; they
need permission to change the table (root, or a member of rvsd's
--socket-group). A refusal shows in the status line.";

/// A rectangle of at most `w`×`h` centred in `area`.
pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    r
}

pub(super) fn draw_help(frame: &mut Frame, area: Rect) {
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

pub(super) fn draw_confirm(frame: &mut Frame, area: Rect, what: &str) {
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
    use crate::app::fixtures::*;
    use crate::ui::testkit::*;

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
}
