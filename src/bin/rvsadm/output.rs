//! ipvsadm-exact renderings of listings (`-L` and its variants, `-L -c`,
//! `--timeout`, `-S`) and the `--json` output. Pure functions: data in, text out.
//!
//! The text formats reproduce ipvsadm 1.31 byte for byte (see
//! ipvsadm's output formats), including its sort order quirks, column
//! truncation, number abbreviation and trailing spaces. The `--json` schema
//! is documented in `doc/json.md`.

mod conns;
#[cfg(test)]
mod fixtures;
mod health;
mod json;
mod list;
mod names;
mod rdns;
mod save;
mod sort;

pub use conns::render_connections;
pub use health::{save_warnings, visible};
pub use json::{json_connections, json_list, json_timeouts};
pub use list::{render_list, render_timeouts};
pub use save::render_save;

use rvs::ctl::proto::{Netmask, SCHED_FLAG_1, SCHED_FLAG_2, SCHED_FLAG_3};

/// Which listing variant `-L` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListOpts {
    pub numeric: bool,
    pub exact: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub tun_info: bool,
    pub nosort: bool,
    /// `--health` (rvs extension): the health view instead of ipvsadm's.
    pub health: bool,
}

// Scheduler flag words as ipvsadm prints them (`-L` and `-b`), shared with rvstop.
use rvs::ctl::names::sched_flag_names;

fn any_sched_flag(flags: u32) -> bool {
    flags & (SCHED_FLAG_1 | SCHED_FLAG_2 | SCHED_FLAG_3) != 0
}

/// `-M`/`mask` text when the mask groups anything, else `None`.
fn mask_text(mask: &Netmask) -> Option<String> {
    if mask.is_host() {
        return None;
    }
    Some(match mask {
        Netmask::V4(m) => m.to_string(),
        Netmask::V6(p) => p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use json::json_sched_flags;

    #[test]
    fn sched_flags_words() {
        assert_eq!(
            sched_flag_names("sh", SCHED_FLAG_1 | SCHED_FLAG_2),
            ["sh-fallback", "sh-port"]
        );
        assert_eq!(sched_flag_names("mh", SCHED_FLAG_2), ["mh-port"]);
        assert_eq!(
            sched_flag_names("wlc", SCHED_FLAG_1 | SCHED_FLAG_3),
            ["flag-1", "flag-3"]
        );
        assert_eq!(json_sched_flags("sh", SCHED_FLAG_3), ["flag-3"]);
    }
}
