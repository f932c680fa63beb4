//! Status line: prompts, answers, key hints.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{addr_text, App, Mode};

pub(super) fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
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

#[cfg(test)]
mod tests {
    use crate::app::fixtures::*;
    use crate::ui::testkit::*;
    use crossterm::event::KeyCode;

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
}
