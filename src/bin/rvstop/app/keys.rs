//! Keys: [`App::on_key`] and one handler per input mode.

use std::net::SocketAddr;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use rvs::ctl::proto::{Request, ServiceKey};

use super::{addr_text, service_label, Action, App, Mode, Pending, RowId, Status, Verb};

/// Rows a PageUp/PageDown moves.
const PAGE: usize = 10;
/// Longest weight a prompt accepts, in digits.
const MAX_WEIGHT_DIGITS: usize = 10;
/// Largest weight rvsd accepts.
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

impl App {
    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// Handle one key; the answer tells the event loop what to do.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'))
        {
            return Action::Quit;
        }
        match std::mem::take(&mut self.mode) {
            Mode::Normal => self.key_normal(key),
            Mode::Help => Action::None, // any key closes the help
            Mode::Filter => {
                self.key_filter(key);
                Action::None
            }
            Mode::Weight {
                service,
                server,
                from,
                input,
            } => {
                self.key_weight(key, service, server, from, input);
                Action::None
            }
            Mode::Confirm(p) => self.key_confirm(key, p),
        }
    }

    fn move_by(&mut self, delta: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            self.selected = None;
            return;
        }
        let cur = self.selected_index();
        let next = match cur {
            None => 0,
            Some(i) => (i as isize + delta).clamp(0, rows.len() as isize - 1) as usize,
        };
        self.selected = Some(rows[next]);
    }

    fn set_folded(&mut self, fold: Option<bool>) {
        let Some(sel) = self.selected else {
            return;
        };
        let key = sel.service();
        let fold = fold.unwrap_or(!self.folded.contains(&key));
        if fold {
            self.folded.insert(key);
            self.selected = Some(RowId::Service(key));
        } else {
            self.folded.remove(&key);
        }
    }

    /// The selected real server, or a status message saying why there is none.
    fn selected_server(&mut self) -> Option<(ServiceKey, SocketAddr, u32)> {
        match self.selected {
            Some(RowId::Server(k, a)) => match self.find_server(&k, &a) {
                Some(r) => Some((k, a, r.spec.weight)),
                None => {
                    self.error("that real server is gone");
                    None
                }
            },
            _ => {
                self.error("select a real server first (w, d and e act on real servers)");
                None
            }
        }
    }

    fn key_normal(&mut self, key: KeyEvent) -> Action {
        self.status = None;
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc => {
                if self.filter.is_empty() {
                    return Action::Quit;
                }
                let old = self.selected_index();
                self.filter.clear();
                self.fix_selection(old);
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(PAGE as isize)),
            KeyCode::PageDown => self.move_by(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
            KeyCode::Enter | KeyCode::Char(' ') => self.set_folded(None),
            KeyCode::Left | KeyCode::Char('h') => self.set_folded(Some(true)),
            KeyCode::Right | KeyCode::Char('l') => self.set_folded(Some(false)),
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.info(format!("sort: {}", self.sort.label()));
            }
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('w') => {
                if let Some((service, server, from)) = self.selected_server() {
                    self.mode = Mode::Weight {
                        service,
                        server,
                        from,
                        input: String::new(),
                    };
                }
            }
            KeyCode::Char('d') => {
                if let Some((service, server, from)) = self.selected_server() {
                    if from == 0 {
                        self.info(format!("{} is already drained", addr_text(&server)));
                    } else {
                        self.mode = Mode::Confirm(Pending {
                            service,
                            server,
                            from,
                            to: 0,
                            verb: Verb::Drain,
                        });
                    }
                }
            }
            KeyCode::Char('e') => {
                if let Some((service, server, from)) = self.selected_server() {
                    if from != 0 {
                        self.info(format!(
                            "{} is already enabled (weight {from})",
                            addr_text(&server)
                        ));
                    } else {
                        self.mode = Mode::Confirm(Pending {
                            service,
                            server,
                            from,
                            to: self.enable_weight(&service, &server),
                            verb: Verb::Enable,
                        });
                    }
                }
            }
            _ => {}
        }
        Action::None
    }

    fn key_filter(&mut self, key: KeyEvent) {
        let old = self.selected_index();
        match key.code {
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Enter => {}
            KeyCode::Backspace => {
                self.filter.pop();
                self.mode = Mode::Filter;
            }
            KeyCode::Up => {
                self.move_by(-1);
                self.mode = Mode::Filter;
            }
            KeyCode::Down => {
                self.move_by(1);
                self.mode = Mode::Filter;
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(c);
                self.mode = Mode::Filter;
            }
            _ => self.mode = Mode::Filter,
        }
        self.fix_selection(old);
    }

    fn key_weight(
        &mut self,
        key: KeyEvent,
        service: ServiceKey,
        server: SocketAddr,
        from: u32,
        mut input: String,
    ) {
        match key.code {
            KeyCode::Esc => {
                self.info("cancelled");
                return;
            }
            KeyCode::Enter => match input.parse::<u32>() {
                Ok(to) if to <= MAX_WEIGHT => {
                    self.status = None;
                    self.mode = Mode::Confirm(Pending {
                        service,
                        server,
                        from,
                        to,
                        verb: Verb::SetWeight,
                    });
                    return;
                }
                _ => self.error(format!("weight must be a number from 0 to {MAX_WEIGHT}")),
            },
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char(c) if c.is_ascii_digit() && input.len() < MAX_WEIGHT_DIGITS => {
                input.push(c);
            }
            _ => {}
        }
        self.mode = Mode::Weight {
            service,
            server,
            from,
            input,
        };
    }

    fn key_confirm(&mut self, key: KeyEvent, p: Pending) -> Action {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                let Some(r) = self.find_server(&p.service, &p.server) else {
                    self.error(format!(
                        "{} is no longer in {}",
                        addr_text(&p.server),
                        service_label(&p.service)
                    ));
                    return Action::None;
                };
                let mut spec = r.spec.clone();
                spec.weight = p.to;
                let what = p.describe();
                self.info(format!("sending: {what}"));
                Action::Send {
                    request: Request::EditServer {
                        service: p.service,
                        server: spec,
                    },
                    what,
                }
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                self.info("cancelled");
                Action::None
            }
            _ => {
                self.mode = Mode::Confirm(p);
                Action::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::SortMode;
    use super::*;
    use rvs::ctl::proto::{Protocol, RealServerSpec};
    use std::time::Instant;

    #[test]
    fn moving_clamps_at_both_ends() {
        let mut app = sample_app();
        assert_eq!(app.on_key(key(KeyCode::Up)), Action::None);
        assert_eq!(app.selected_index(), Some(0));
        app.on_key(ch('j'));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.selected_index(), Some(2));
        app.on_key(ch('k'));
        assert_eq!(app.selected_index(), Some(1));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.selected_index(), Some(5));
        app.on_key(ch('j'));
        assert_eq!(app.selected_index(), Some(5));
        app.on_key(key(KeyCode::Home));
        assert_eq!(app.selected_index(), Some(0));
    }

    #[test]
    fn enter_folds_and_unfolds() {
        let mut app = sample_app();
        app.on_key(ch('j')); // a server of the web service
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.selected, Some(RowId::Service(web())));
        assert_eq!(app.rows().len(), 3);
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.rows().len(), 6);
    }

    #[test]
    fn sort_cycles_and_orders_by_connections() {
        let mut app = sample_app();
        let labels: Vec<_> = (0..4)
            .map(|_| {
                app.on_key(ch('s'));
                app.sort
            })
            .collect();
        assert_eq!(
            labels,
            [
                SortMode::Connections,
                SortMode::Cps,
                SortMode::Bandwidth,
                SortMode::Address
            ]
        );
        app.on_key(ch('s'));
        assert_eq!(app.status.as_ref().unwrap().text, "sort: connections");
        let rows = app.rows();
        // the UDP service has 1500 active connections: first now
        assert_eq!(rows[0].service(), skey("10.0.0.2:53", Protocol::Udp));
        assert_eq!(
            rows[3],
            RowId::Server(web(), "192.168.1.12:8080".parse().unwrap())
        );
        // bandwidth: the web service (1.5 MB/s in) comes first
        app.on_key(ch('s'));
        app.on_key(ch('s'));
        assert_eq!(app.sort, SortMode::Bandwidth);
        assert_eq!(app.rows()[0], RowId::Service(web()));
        assert_eq!(
            app.rows()[1],
            RowId::Server(web(), "192.168.1.11:8080".parse().unwrap())
        );
    }

    #[test]
    fn filter_matches_addresses_and_esc_clears() {
        let mut app = sample_app();
        app.on_key(ch('/'));
        for c in "1.13".chars() {
            app.on_key(ch(c));
        }
        assert_eq!(app.mode, Mode::Filter);
        assert_eq!(app.rows().len(), 2); // web service + the one matching server
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.filter, "1.13");
        assert_eq!(app.rows().len(), 2);
        // Esc in normal mode clears the filter before it quits
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None);
        assert_eq!(app.rows().len(), 6);
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
        // the filter also matches the protocol + service address
        app.on_key(ch('/'));
        for c in "udp".chars() {
            app.on_key(ch(c));
        }
        assert_eq!(app.rows().len(), 2);
        app.on_key(key(KeyCode::Esc));
        assert!(app.filter.is_empty());
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn quit_keys() {
        let mut app = sample_app();
        assert_eq!(app.on_key(ch('q')), Action::Quit);
        app.mode = Mode::Filter;
        assert_eq!(
            app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Quit
        );
    }

    #[test]
    fn weight_prompt_builds_a_full_edit_server_request() {
        let mut app = sample_app();
        app.on_key(ch('j')); // 192.168.1.11:8080, weight 1
        app.on_key(ch('w'));
        assert!(matches!(app.mode, Mode::Weight { .. }));
        for c in "x25".chars() {
            app.on_key(ch(c)); // letters are ignored
        }
        app.on_key(key(KeyCode::Backspace));
        app.on_key(ch('7'));
        app.on_key(key(KeyCode::Enter));
        let Mode::Confirm(p) = &app.mode else {
            panic!("expected a confirmation, got {:?}", app.mode)
        };
        assert_eq!((p.from, p.to, p.verb), (1, 27, Verb::SetWeight));
        // anything but y/n keeps asking
        assert_eq!(app.on_key(ch('x')), Action::None);
        let Action::Send { request, what } = app.on_key(ch('y')) else {
            panic!("expected a request")
        };
        let mut spec = RealServerSpec::new("192.168.1.11:8080".parse().unwrap());
        spec.weight = 27;
        spec.u_threshold = 7; // copied from the current spec
        assert_eq!(
            request,
            Request::EditServer {
                service: web(),
                server: spec
            }
        );
        assert!(what.contains("1 → 27"), "{what}");
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn bad_weight_stays_in_the_prompt() {
        let mut app = sample_app();
        app.on_key(ch('j'));
        app.on_key(ch('w'));
        app.on_key(key(KeyCode::Enter));
        assert!(app.status.as_ref().unwrap().error);
        assert!(matches!(app.mode, Mode::Weight { .. }));
        for c in "9999999999".chars() {
            app.on_key(ch(c));
        }
        app.on_key(key(KeyCode::Enter));
        assert!(matches!(app.mode, Mode::Weight { .. }));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn drain_then_enable_restores_the_last_weight() {
        let mut app = sample_app();
        app.on_key(ch('j'));
        app.on_key(ch('j')); // 192.168.1.12:8080, weight 2
        app.on_key(ch('d'));
        assert!(matches!(app.mode, Mode::Confirm(Pending { to: 0, .. })));
        assert_eq!(app.on_key(ch('n')), Action::None);
        assert_eq!(app.status.as_ref().unwrap().text, "cancelled");
        app.on_key(ch('d'));
        let Action::Send {
            request: Request::EditServer { server, .. },
            ..
        } = app.on_key(ch('y'))
        else {
            panic!("expected EditServer")
        };
        assert_eq!(server.weight, 0);
        // the daemon applies it
        let mut u = sample_update();
        u.table.services[0].servers[0].spec.weight = 0;
        app.ingest(u, Instant::now());
        assert!(app.notices[0].text.contains("2 → 0 (drained)"));
        app.on_key(ch('e'));
        let Action::Send {
            request: Request::EditServer { server, .. },
            ..
        } = app.on_key(ch('Y'))
        else {
            panic!("expected EditServer")
        };
        assert_eq!(server.weight, 2);
    }

    #[test]
    fn enable_without_history_uses_one_and_actions_need_a_server() {
        let mut app = sample_app();
        app.on_key(ch('e'));
        assert!(app.status.as_ref().unwrap().error);
        assert_eq!(app.mode, Mode::Normal);
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        app.on_key(ch('j')); // 192.168.1.13:8080, weight 0 since the start
        app.on_key(ch('e'));
        assert!(matches!(app.mode, Mode::Confirm(Pending { to: 1, .. })));
    }
}
