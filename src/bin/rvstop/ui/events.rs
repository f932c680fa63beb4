//! Events pane: what the dashboard noticed, newest first.

use ratatui::layout::Rect;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::units::fmt_age;
use crate::app::App;

pub(super) fn draw_events(frame: &mut Frame, area: Rect, app: &App) {
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
