//! ipvsadm-exact renderings of listings (`-L` and its variants, `-L -c`,
//! `--timeout`, `-S`) and the `--json` schema. Pure functions: data in, text out.

use rvs::ctl::proto::{ConnEntry, TableView, Timeouts};

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
}

/// `-L` output. `single` = a service was named (no version header).
pub fn render_list(table: &TableView, single: bool, opts: &ListOpts) -> String {
    let _ = (table, single, opts);
    todo!()
}

/// `-S` output (`numeric` = `-n`).
pub fn render_save(table: &TableView, numeric: bool) -> String {
    let _ = (table, numeric);
    todo!()
}

/// `-L -c` output.
pub fn render_connections(conns: &[ConnEntry], numeric: bool, persistent_conn: bool) -> String {
    let _ = (conns, numeric, persistent_conn);
    todo!()
}

/// `-L --timeout` output.
pub fn render_timeouts(t: &Timeouts) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcpfin, t.udp)
}

/// `--json` for `-L` (and its variants): the documented stable schema.
pub fn json_list(table: &TableView, opts: &ListOpts) -> String {
    let _ = (table, opts);
    todo!()
}

/// `--json` for `-L -c`.
pub fn json_connections(conns: &[ConnEntry]) -> String {
    let _ = conns;
    todo!()
}

/// `--json` for `-L --timeout`.
pub fn json_timeouts(t: &Timeouts) -> String {
    let _ = t;
    todo!()
}
