//! `rvsadm -S` then `-C; -R` must give back the same table (issue 19 B9):
//! the input builds a table; its `-S -n` text (rvsadm's renderer) must
//! restore, apply, and save to the same text again.
//!
//! Input, two kinds: restore text, as `rvsadm -R` reads it (applied as one
//! batch); or `ARGV\0` then command lines as typed in a shell, each word
//! ended by a NUL and each command by an empty word (so a word can hold a
//! newline, as `--check-exec $'a\nb'` does), each applied if accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs::ctl::proto::Request;
use rvs::daemon::table::Table;
use rvs_fuzz::output::render_save;
use rvs_fuzz::request::{parse, Command};
use rvs_fuzz::restore::parse_input;
use rvs_fuzz::view_of;

rvs_fuzz::no_name_lookups!();

fn requests(text: &str) -> Result<Vec<Request>, String> {
    parse_input("rvsadm", text)
        .map(|lines| lines.into_iter().map(|l| l.request).collect())
        .map_err(|e| e.message())
}

/// The table the `ARGV\0` kind of input builds, one command at a time.
fn from_command_lines(data: &[u8]) -> Table {
    let mut table = Table::default();
    for command in data
        .split(|&b| b == 0)
        .collect::<Vec<_>>()
        .split(|w| w.is_empty())
    {
        let mut argv = vec!["rvsadm".to_string()];
        argv.extend(
            command
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned()),
        );
        if let Ok(Command::Run(inv)) = parse(&argv) {
            if inv.action.is_mutation() {
                if let Some(req) = inv.action.request() {
                    let _ = table.apply(&req);
                }
            }
        }
    }
    table
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let first = if let Some(argv) = data.strip_prefix(b"ARGV\0") {
        from_command_lines(argv)
    } else {
        let Ok(reqs) = requests(&input) else {
            return;
        };
        let mut table = Table::default();
        if table.apply_batch(&reqs).is_err() {
            return;
        }
        table
    };
    let saved = render_save(&view_of(&first), true);
    let again = requests(&saved)
        .unwrap_or_else(|e| panic!("-S output does not restore: {e}\n--- -S:\n{saved}"));
    let mut second = Table::default();
    if let Err((i, e)) = second.apply_batch(&again) {
        panic!("-S output refused at request {i}: {e}\n--- -S:\n{saved}");
    }
    let resaved = render_save(&view_of(&second), true);
    // The same rules, as lines. Not their order: ipvsadm sorts with libipvs'
    // wrapping-subtraction comparators, which are not transitive (54.x.x.x
    // against 192.x.x.x wraps), so its -S order of such addresses depends on
    // the order they were added in, and rvsadm reproduces that. Every line
    // names its service, so equal sets of lines are equal tables.
    let lines = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        lines(&saved),
        lines(&resaved),
        "-S; -C; -R; -S changed the table\n--- input:\n{input}\n--- -S:\n{saved}\n--- again:\n{resaved}"
    );
});
