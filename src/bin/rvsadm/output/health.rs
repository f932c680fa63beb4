//! rvs health extensions in the outputs: the options `-S` saves after
//! ipvsadm's own, and the `-L --health` view (not an ipvsadm format, so
//! laid out with `tabled`).

use rvs::ctl::proto::{HealthCheck, HealthState, ServiceView, TableView};
use std::net::SocketAddr;
use tabled::builder::Builder;
use tabled::settings::Style;

use super::names::{addrport, Resolver};
use super::sort;

/// Quote a value for `-S`/`-R` when it holds blanks, quotes, backslashes or
/// control characters, is empty, or is the word `ipvsadm` (which `-R` drops
/// unless quoted). Inside the quotes `"` and `\` get a backslash, and control
/// characters (refused on input, but a table from an older rvsd may hold
/// them) are written as `\n`, `\r`, `\t`, `\xHH` or `\u{HHHH}`, so that
/// the line stays one line, shows nothing raw on a terminal, and reads back
/// as the same value ([`crate::restore::tokenize`]).
pub fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v != "ipvsadm"
        && !v.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"' || c == '\\');
    if plain {
        return v.to_string();
    }
    let mut q = String::with_capacity(v.len() + 2);
    q.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c);
            }
            c if c.is_control() => q.push_str(&escape_control(c)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// `\n`, `\r`, `\t`, `\xHH` (below U+0080) or `\u{HHHH}`.
pub fn escape_control(c: char) -> String {
    match c {
        '\n' => "\\n".to_string(),
        '\r' => "\\r".to_string(),
        '\t' => "\\t".to_string(),
        c if (c as u32) < 0x80 => format!("\\x{:02x}", c as u32),
        c => format!("\\u{{{:04x}}}", c as u32),
    }
}

/// `s` with its control characters escaped as [`escape_control`] does, for
/// text shown on a terminal (listings, error lines).
pub fn visible(s: &str) -> String {
    if !s.contains(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                escape_control(c)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn ms(v: u32) -> String {
    if v % 1000 == 0 {
        format!("{}s", v / 1000)
    } else {
        format!("{v}ms")
    }
}

fn sock(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// ` --check … --slow-start N[ --sorry-server A]`, or "" when nothing is set.
pub fn save_options(h: &HealthCheck, slow_start: Option<u32>, sorry: Option<SocketAddr>) -> String {
    let mut s = String::new();
    let mut put = |name: &str, v: String| {
        s.push_str(&format!(" --{name} {v}"));
    };
    if let Some(k) = h.kind {
        put("check", k.name().to_string());
    }
    if let Some(v) = h.interval_ms {
        put("check-interval", ms(v));
    }
    if let Some(v) = h.timeout_ms {
        put("check-timeout", ms(v));
    }
    if let Some(v) = h.rise {
        put("check-rise", v.to_string());
    }
    if let Some(v) = h.fall {
        put("check-fall", v.to_string());
    }
    if let Some(v) = h.jitter_ms {
        put("check-jitter", ms(v));
    }
    if let Some(v) = h.addr {
        put("check-addr", v.to_string());
    }
    if let Some(v) = h.port {
        put("check-port", v.to_string());
    }
    if let Some(v) = h.initial_up {
        put("check-initial", if v { "up" } else { "down" }.to_string());
    }
    if let Some(v) = &h.http_path {
        put("check-http-path", quote(v));
    }
    if let Some(v) = &h.http_host {
        put("check-http-host", quote(v));
    }
    if let Some((lo, hi)) = h.http_status {
        put(
            "check-http-status",
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            },
        );
    }
    if let Some(v) = &h.http_body {
        put("check-http-body", quote(v));
    }
    if let Some(v) = &h.exec {
        put("check-exec", quote(v));
    }
    if let Some(v) = &h.udp_send {
        put("check-udp-send", quote(v));
    }
    if let Some(v) = &h.udp_expect {
        put("check-udp-expect", quote(v));
    }
    if let Some(v) = slow_start {
        put("slow-start", v.to_string());
    }
    if let Some(v) = sorry {
        put("sorry-server", sock(v));
    }
    s
}

/// One line for each check setting in `table` that holds a control
/// character (refused on input; only an older rvsd can have stored one):
/// `-S` writes them escaped, and `-R` will refuse them.
pub fn save_warnings(table: &TableView) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |h: &HealthCheck, whose: String| {
        for (name, text) in rvs::daemon::table::check_texts(h) {
            if let Some((pos, c)) = text.and_then(rvs::daemon::table::first_control) {
                out.push(format!(
                    "warning: {whose}: {name} holds the control character {} at character {pos} \
                     (saved escaped); -R refuses control characters, remove it from the saved line \
                     before restoring",
                    rvs::daemon::table::char_code(c)
                ));
            }
        }
    };
    for svc in &table.services {
        let key = svc.spec.key;
        let name = format!("service {} {}", key.proto.name(), sock(key.addr));
        check(&svc.spec.health, name.clone());
        for srv in &svc.servers {
            check(
                &srv.spec.health,
                format!("real server {} of {name}", sock(srv.spec.addr)),
            );
        }
    }
    out
}

fn since(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        s => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

fn latency(us: Option<u64>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1000 => format!("{us}us"),
        Some(us) if us < 1_000_000 => format!("{:.1}ms", us as f64 / 1000.0),
        Some(us) => format!("{:.2}s", us as f64 / 1e6),
    }
}

fn service_title(svc: &ServiceView, r: &dyn Resolver) -> String {
    let key = svc.spec.key;
    let mut t = format!(
        "{} {} {}",
        key.proto.name(),
        addrport(key.addr, key.proto, r),
        svc.spec.scheduler
    );
    if let Some(sorry) = svc.spec.sorry_server {
        let state = if svc.sorry_active {
            "ACTIVE"
        } else {
            "standby"
        };
        t.push_str(&format!(" sorry {} ({state})", sock(sorry)));
    }
    t
}

/// `-L --health`: per real server its state, since when, the last check's
/// result, latency and reason.
pub fn render(table: &TableView, nosort: bool, r: &dyn Resolver) -> String {
    let mut b = Builder::default();
    b.push_record([
        "Prot LocalAddress:Port",
        "State",
        "Since",
        "Weight",
        "Check",
        "Last",
        "Latency",
        "Reason",
    ]);
    for svc in sort::services(&table.services, nosort) {
        b.push_record([
            service_title(svc, r),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
        for srv in sort::servers(svc, nosort) {
            let h = &srv.health;
            let state = if svc.sorry_active && h.state != HealthState::Drain {
                format!("{} (SORRY)", h.state.name())
            } else {
                h.state.name().to_string()
            };
            let weight = match h.effective_weight {
                Some(w) => format!("{w}/{}", srv.spec.weight),
                None => srv.spec.weight.to_string(),
            };
            let last = match h.last_ok {
                None => "-",
                Some(true) => "ok",
                Some(false) => "fail",
            };
            b.push_record([
                format!("  -> {}", addrport(srv.spec.addr, svc.spec.key.proto, r)),
                state,
                since(h.since_secs),
                weight,
                visible(&h.check),
                last.to_string(),
                latency(h.latency_us),
                visible(&h.reason),
            ]);
        }
    }
    let mut t = b.build();
    t.with(Style::blank());
    let mut out = t
        .to_string()
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs::ctl::proto::CheckKind;

    #[test]
    fn quoting_round_trips_through_the_restore_tokenizer_rules() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("ipvsadm"), "\"ipvsadm\"");
        assert_eq!(quote("$HOME/é"), "$HOME/é");
        assert_eq!(
            quote("a\nb\tc\x1b[2J\0\u{9b}"),
            "\"a\\nb\\tc\\x1b[2J\\x00\\u{009b}\""
        );
        for v in [
            "plain",
            "a b",
            "say \"hi\" \\ back",
            "",
            "ipvsadm",
            "$RVS_SERVER_ADDR é ü 日本",
            "line\none\r\n\ttab\x1b[31mred\x7f\0\u{85}\u{9b}",
            "\\x41 \\u{41} \\n",
        ] {
            let line = format!("-A -t 1.2.3.4:80 --check-exec {}", quote(v));
            assert!(!line.contains(char::is_control), "{line:?}");
            let words = crate::restore::tokenize(&line);
            assert_eq!(words.last().map(String::as_str), Some(v), "{line}");
        }
    }

    #[test]
    fn save_options_in_a_fixed_order() {
        let h = HealthCheck {
            kind: Some(CheckKind::Http),
            interval_ms: Some(200),
            fall: Some(2),
            http_path: Some("/health".into()),
            http_status: Some((200, 204)),
            exec: None,
            ..HealthCheck::default()
        };
        assert_eq!(
            save_options(&h, Some(10), Some("127.0.0.1:9000".parse().unwrap())),
            " --check http --check-interval 200ms --check-fall 2 --check-http-path /health --check-http-status 200-204 --slow-start 10 --sorry-server 127.0.0.1:9000"
        );
        assert_eq!(save_options(&HealthCheck::default(), None, None), "");
    }
}
