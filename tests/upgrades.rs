//! State files written by earlier rvs releases: the current rvsd loads each
//! one, lists the same table, rewrites it in the current format and keeps
//! the original as `table.state.v<N>.bak`.
//!
//! The golden files in `tests/data/state-v<N>/` were written by the release
//! of that format (`table.state`, maybe `table.journal`) together with its
//! `rvsadm -S -n` (`save.txt`), made by `tests/data/gen.sh` (which says
//! how). Their services listen on 127.51.0.0/16 and on [::1] at fixed
//! ports below the ephemeral range. Their servers are hardly probed
//! (`--default-check none`, and `--check none` on the servers of the
//! services with HTTP, UDP and exec checks) except two with checks of
//! their own: a TCP connect to 127.51.2.9:9443 (nothing listens there) and
//! the exec check `test -n "$RVS_SERVER_ADDR"` every 10 s.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The format this rvsd writes.
const CURRENT: u32 = 3;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn format_of(path: &Path) -> u32 {
    let raw = std::fs::read(path).unwrap();
    assert_eq!(&raw[..8], b"RVSSTATE", "{}", path.display());
    u32::from_be_bytes(raw[8..12].try_into().unwrap())
}

/// The table as rvsadm shows it, for each golden listing: `-S -n`
/// (`save.txt`), `-L -n --thresholds` (`thresholds.txt`, which `-S` does
/// not carry) and `-L --timeout` (`timeout.txt`).
const LISTINGS: &[(&str, &[&str])] = &[
    ("save.txt", &["-S", "-n"]),
    ("thresholds.txt", &["-L", "-n", "--thresholds"]),
    ("timeout.txt", &["-L", "--timeout"]),
];

fn same_listings(d: &Daemon, files: &Path, when: &str) {
    for (name, args) in LISTINGS {
        let want = std::fs::read_to_string(files.join(name)).unwrap();
        assert_eq!(
            d.ok(args),
            want,
            "rvsadm {args:?} {when} differs from {name}; rvsd log:\n{}",
            d.log()
        );
    }
}

/// The `.bak` files in `dir`, by name.
fn backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".bak"))
        .collect();
    names.sort();
    names
}

/// The golden tables share their addresses: one rvsd at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn upgrade(name: &str, version: u32) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files = golden(name);
    let original = std::fs::read(files.join("table.state")).unwrap();
    assert_eq!(format_of(&files.join("table.state")), version);
    let save = std::fs::read_to_string(files.join("save.txt")).unwrap();
    assert!(save.lines().count() > 10, "a representative table:\n{save}");

    let mut d = Daemon::start_on(&files, NO_CHECKS);
    let state = d.state_dir.join("table.state");
    same_listings(&d, &files, "after the upgrade");
    assert_eq!(
        format_of(&state),
        CURRENT,
        "rewritten in the current format"
    );
    let bak = format!("table.state.v{version}.bak");
    if version < CURRENT {
        assert_eq!(backups(&d.state_dir), vec![bak.clone()]);
        assert_eq!(
            std::fs::read(d.state_dir.join(&bak)).unwrap(),
            original,
            "the backup holds the original bytes"
        );
        assert!(
            d.log().contains(&bak),
            "the log names the backup:\n{}",
            d.log()
        );
    } else {
        assert!(
            backups(&d.state_dir).is_empty(),
            "no backup of the current format"
        );
    }

    // The upgraded files load again, and the backup is neither rewritten
    // nor joined by another.
    assert!(d.stop().success(), "{}", d.log());
    d.restart();
    same_listings(&d, &files, "after a restart");
    assert_eq!(format_of(&state), CURRENT);
    if version < CURRENT {
        assert_eq!(backups(&d.state_dir), vec![bak.clone()]);
        assert_eq!(std::fs::read(d.state_dir.join(&bak)).unwrap(), original);
    }
}

#[test]
fn version_2_state_file_is_upgraded_and_kept_as_a_backup() {
    upgrade("state-v2", 2);
}

#[test]
fn version_3_state_file_and_journal_load_unchanged() {
    let files = golden("state-v3");
    assert!(
        std::fs::metadata(files.join("table.journal"))
            .unwrap()
            .len()
            > 28,
        "the golden journal holds records"
    );
    upgrade("state-v3", 3);
}
