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
//!
//! One file per pane; `units` formats numbers, `overlay` the help and the
//! confirmation boxes.

use ratatui::layout::{Constraint, Layout};
use ratatui::Frame;

use crate::app::{App, Mode};

mod details;
mod events;
mod header;
mod overlay;
mod status;
mod table;
mod units;

pub use overlay::KEYS;

/// Terminals at least this wide get the InActConn column.
const WIDE: u16 = 100;
/// Terminals at least this tall get bigger sparklines and more events.
const TALL: u16 = 36;
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
    header::draw_header(frame, header, app);
    table::draw_table(frame, table, app);
    details::draw_details(frame, details, app);
    events::draw_events(frame, events, app);
    status::draw_status(frame, status, app);
    match &app.mode {
        Mode::Help => overlay::draw_help(frame, area),
        Mode::Confirm(p) => overlay::draw_confirm(frame, area, &p.describe()),
        _ => {}
    }
}

/// Rendering to a test terminal, for the tests of every pane.
#[cfg(test)]
pub(crate) mod testkit {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    /// Render `app` at `w`×`h` and return the screen as lines of text.
    pub fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
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

    pub fn text(lines: &[String]) -> String {
        lines.join("\n")
    }

    pub fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
    }
}
