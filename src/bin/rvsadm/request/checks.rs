//! The checks ipvsadm makes once the whole line is read (the compatibility
//! matrix, per-command rules), then rvs's own: which commands take the
//! health options, and the ipvsadm features rvs does not implement.

use rvs::ctl::proto::CheckKind;
use rvs::daemon::table::MIN_EXEC_INTERVAL_MS;

use super::state::{ms_text, State};
use super::{fail, CliError};
use crate::options::{Opt, OPT_NAMES};

/// Generic `+`/`x`/`1` check over one matrix row, in index order.
pub(super) fn matrix_check(
    row: &[u8],
    set: impl Fn(usize) -> bool,
    names: &[&str],
    what: &str,
) -> Result<(), CliError> {
    let mut first_one: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        if !set(j) {
            if rule == b'+' {
                return fail(format!(
                    "You need to supply the '{}' option for the {what}",
                    names[j]
                ));
            }
        } else if rule == b'x' {
            return fail(format!("Illegal '{}' option with the {what}", names[j]));
        } else if rule == b'1' {
            match first_one {
                None => first_one = Some(j),
                Some(f) => {
                    return fail(format!(
                        "The option '{}' conflicts with the '{}' option in the {what}",
                        names[j], names[f]
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Which commands take the rvs health options.
pub(super) fn health_checks(st: &State, cmd_name: &str) -> Result<(), CliError> {
    for name in &st.health_opts {
        let ok = match *name {
            "health" => st.cmd == Opt::List,
            "sorry-server" => matches!(st.cmd, Opt::AddService | Opt::EditService),
            _ => matches!(
                st.cmd,
                Opt::AddService | Opt::EditService | Opt::AddServer | Opt::EditServer
            ),
        };
        if !ok {
            return fail(format!(
                "Illegal '{name}' option with the '{cmd_name}' command"
            ));
        }
    }
    if st.health.kind == Some(CheckKind::Exec) {
        if let Some(ms) = st
            .health
            .interval_ms
            .filter(|&ms| ms < MIN_EXEC_INTERVAL_MS)
        {
            return fail(format!(
                "invalid --check-interval value `{}' for an exec check: below the floor of {} \
                 (each probe starts a shell); give {} or more",
                ms_text(ms),
                ms_text(MIN_EXEC_INTERVAL_MS),
                ms_text(MIN_EXEC_INTERVAL_MS)
            ));
        }
    }
    if st.health_list && (st.has(1) || st.has(12) || st.has(13)) {
        return fail("options conflicts in the list command");
    }
    Ok(())
}

/// Steps 7–10 of ipvsadm's processing order, with rvs's `-m` default.
pub(super) fn command_checks(st: &mut State) -> Result<(), CliError> {
    match st.cmd {
        Opt::AddService | Opt::EditService => {
            if st.fwmark == 0 && st.svc_port == 0 && st.persistent.is_none() {
                return fail("Zero port specified for non-persistent service");
            }
            if st.ops && st.fwmark == 0 && st.proto != Some("udp") {
                return fail("One-Packet Scheduling is only for UDP virtual services");
            }
            if st.sched.is_empty() {
                st.sched = "wlc".to_string();
            }
        }
        Opt::AddServer | Opt::EditServer => {
            let fwd = *st.fwd.get_or_insert(Opt::Masquerading);
            if st.fwmark == 0 && matches!(fwd, Opt::Gatewaying | Opt::Ipip) {
                st.dest_port = st.svc_port;
            }
            // rvs proxies, so a masqueraded server may be of the other family
            // (an IPv6 service in front of IPv4 servers); ipvsadm refuses that.
            if st.dest_v6 != st.svc_v6 && !matches!(fwd, Opt::Ipip | Opt::Masquerading) {
                return fail("Different address family is allowed only for tunneling servers");
            }
            let tun_set = |j: usize| st.has(j);
            if (29..=33).any(tun_set) && fwd != Opt::Ipip {
                return fail("Tunnel options conflict with forward method");
            }
            if fwd == Opt::Ipip {
                let row: &[u8] = match st.tun_type {
                    "gue" => b"+111",
                    "gre" => b"x11x",
                    _ => b"xxxx",
                };
                let what = format!("'{}' tunnel type", st.tun_type);
                matrix_check(row, |j| st.has(30 + j), &OPT_NAMES[30..], &what)?;
            }
        }
        Opt::List => {
            let any = |idx: &[usize]| idx.iter().any(|&i| st.has(i));
            if (any(&[1, 12, 13]) && any(&[14, 15, 16])) || (any(&[12, 13]) && st.has(17)) {
                return fail("options conflicts in the list command");
            }
        }
        _ => {}
    }
    Ok(())
}

fn unsupported<T>(what: &str, advice: &str) -> Result<T, CliError> {
    fail(format!("not supported by rvs yet: {what}; {advice}"))
}

/// Features ipvsadm has and rvs does not (yet): rejected after the grammar
/// checks, before anything is sent to the daemon.
pub(super) fn reject_unsupported(st: &State) -> Result<(), CliError> {
    const USERSPACE: &str = "rvs forwards in userspace, use -m (the default)";
    const NO_SYNC: &str = "rvs has no connection synchronisation daemon";
    match st.cmd {
        Opt::StartDaemon => {
            return unsupported("--start-daemon (connection synchronisation)", NO_SYNC)
        }
        Opt::StopDaemon => {
            return unsupported("--stop-daemon (connection synchronisation)", NO_SYNC)
        }
        _ => {}
    }
    match st.svc_kind {
        Some(Opt::Fwmark) => {
            return unsupported(
                "-f (firewall-mark services)",
                "use -t or -u with address:port",
            )
        }
        Some(Opt::Sctp) => return unsupported("--sctp-service (SCTP services)", "use -t or -u"),
        _ => {}
    }
    if st.ipv6_flag {
        return unsupported(
            "-6 (IPv6 firewall-mark services)",
            "use -t or -u with [address]:port",
        );
    }
    match st.fwd {
        Some(Opt::Gatewaying) => return unsupported("-g (direct routing)", USERSPACE),
        Some(Opt::Ipip) => return unsupported("-i (IP-in-IP tunneling)", USERSPACE),
        _ => {}
    }
    for (i, name) in [
        (29, "--tun-type"),
        (30, "--tun-port"),
        (31, "--tun-nocsum"),
        (32, "--tun-csum"),
        (33, "--tun-remcsum"),
    ] {
        if st.has(i) {
            return unsupported(&format!("{name} (tunneling)"), USERSPACE);
        }
    }
    if st.has(22) {
        return unsupported(
            "--pe (persistence engines)",
            "use -p for client-address persistence",
        );
    }
    if st.has(13) {
        return unsupported("--daemon (sync daemon information)", NO_SYNC);
    }
    for (i, name) in [
        (19, "--syncid"),
        (11, "--mcast-interface"),
        (24, "--mcast-group"),
        (25, "--mcast-port"),
        (26, "--mcast-ttl"),
        (27, "--sync-maxlen"),
    ] {
        if st.has(i) {
            return unsupported(&format!("{name} (connection synchronisation)"), NO_SYNC);
        }
    }
    Ok(())
}
