//! Validation of services, real servers and health-check settings.

use std::net::{IpAddr, SocketAddr};

use crate::ctl::proto::{
    CheckKind, ErrorKind, Forward, HealthCheck, Netmask, Protocol, RealServerSpec, ServiceKey,
    ServiceSpec, MAX_TIMEOUT, SCHED_FLAG_1, SCHED_FLAG_2, SCHED_FLAG_3,
};
use crate::daemon::sched;

use super::TableError;

pub(super) fn validate_service(spec: &ServiceSpec) -> Result<(), TableError> {
    check_settings(&spec.health)?;
    if let Some(sorry) = spec.sorry_server {
        if !is_unicast(&sorry.ip()) || sorry.port() == 0 {
            return Err(TableError::invalid(
                "sorry server must be a unicast address:port other than the service",
            ));
        }
        check_loop(&spec.key, sorry, "sorry server")?;
    }
    if !sched::exists(&spec.scheduler) {
        return Err(TableError::new(
            ErrorKind::SchedulerNotFound,
            "Scheduler or persistence engine not found",
        ));
    }
    if spec.pe.is_some() {
        return Err(TableError::not_supported("persistence engines (--pe)"));
    }
    let ip = spec.key.addr.ip();
    if !is_unicast(&ip) && !ip.is_unspecified() {
        return Err(TableError::invalid(
            "the virtual address is not unicast; give a host address or 0.0.0.0",
        ));
    }
    if spec.key.addr.port() == 0 {
        return Err(TableError::not_supported(
            "port 0 (all ports) services; rvs listens on one port per service, give the service a port",
        ));
    }
    match (spec.netmask, ip) {
        (Netmask::V6(p), IpAddr::V6(_)) if !(1..=128).contains(&p) => {
            return Err(TableError::invalid("IPv6 prefix length must be 1..128"))
        }
        (Netmask::V4(_), IpAddr::V6(_)) | (Netmask::V6(_), IpAddr::V4(_)) => {
            return Err(TableError::invalid(
                "netmask family differs from the service's",
            ))
        }
        _ => {}
    }
    if let Some(t) = spec.persistent {
        if t == 0 || t > MAX_TIMEOUT {
            return Err(TableError::invalid(
                "persistence timeout must be 1..2678400",
            ));
        }
    }
    if spec.ops && spec.key.proto != Protocol::Udp {
        return Err(TableError::invalid(
            "one-packet scheduling is only for UDP services",
        ));
    }
    let known = SCHED_FLAG_1 | SCHED_FLAG_2 | SCHED_FLAG_3;
    if spec.sched_flags & !known != 0 {
        return Err(TableError::invalid("unknown scheduler flags"));
    }
    Ok(())
}

/// Floor of the time between two probes of one server (tcp, http, udp):
/// below it probing only adds load.
pub const MIN_CHECK_INTERVAL_MS: u32 = 100;
/// Floor of the time between two exec probes: each one forks a shell.
/// keepalived's `vrrp_script` interval counts whole seconds too.
pub const MIN_EXEC_INTERVAL_MS: u32 = 1000;
/// Floor of a probe's timeout.
pub const MIN_CHECK_TIMEOUT_MS: u32 = 10;
/// Ceiling of check intervals, timeouts and jitter (one day).
pub(crate) const MAX_CHECK_DURATION_MS: u32 = 86_400_000;

/// The first control character of `s` (newline, tab, escape, NUL, DEL, the
/// C1 range ...): its 1-based character position and the character.
pub fn first_control(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| c.is_control())
        .map(|(i, c)| (i + 1, c))
}

/// `U+000A` for a character, as messages name control characters.
pub fn char_code(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// The free-text check settings, by the rvsadm option that sets them.
pub fn check_texts(h: &HealthCheck) -> [(&'static str, Option<&str>); 6] {
    [
        ("--check-http-path", h.http_path.as_deref()),
        ("--check-http-host", h.http_host.as_deref()),
        ("--check-http-body", h.http_body.as_deref()),
        ("--check-exec", h.exec.as_deref()),
        ("--check-udp-send", h.udp_send.as_deref()),
        ("--check-udp-expect", h.udp_expect.as_deref()),
    ]
}

fn ms_text(ms: u32) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn check_settings(h: &HealthCheck) -> Result<(), TableError> {
    let bad = |what: &str| Err(TableError::invalid(what));
    for (name, text) in check_texts(h) {
        if let Some((pos, c)) = text.and_then(first_control) {
            return bad(&format!(
                "{name} holds the control character {} at character {pos}; \
                 control characters (newline, tab, escape, NUL ...) are refused in check settings",
                char_code(c)
            ));
        }
    }
    if let Some(ms) = h.interval_ms {
        let floor = if h.kind == Some(CheckKind::Exec) {
            MIN_EXEC_INTERVAL_MS
        } else {
            MIN_CHECK_INTERVAL_MS
        };
        if ms < floor && floor == MIN_EXEC_INTERVAL_MS {
            return bad(&format!(
                "--check-interval {} is below the floor of {} for exec checks (each probe starts a shell); give {} or more",
                ms_text(ms),
                ms_text(floor),
                ms_text(floor)
            ));
        }
        if ms < floor {
            return bad(&format!(
                "--check-interval {} is below the floor of {} ({} for exec checks); give a longer interval",
                ms_text(ms),
                ms_text(MIN_CHECK_INTERVAL_MS),
                ms_text(MIN_EXEC_INTERVAL_MS)
            ));
        }
    }
    if h.timeout_ms.is_some_and(|ms| ms < MIN_CHECK_TIMEOUT_MS) {
        return bad(&format!(
            "--check-timeout is below the floor of {}; give a longer timeout",
            ms_text(MIN_CHECK_TIMEOUT_MS)
        ));
    }
    for (name, v) in [
        ("--check-interval", h.interval_ms),
        ("--check-timeout", h.timeout_ms),
        ("--check-jitter", h.jitter_ms),
    ] {
        if v.is_some_and(|ms| ms > MAX_CHECK_DURATION_MS) {
            return bad(&format!("{name} is above one day (86400s)"));
        }
    }
    if h.rise == Some(0) || h.fall == Some(0) {
        return bad("check rise and fall must be at least 1");
    }
    if let Some((lo, hi)) = h.http_status {
        if lo > hi || !(100..=599).contains(&lo) || !(100..=599).contains(&hi) {
            return bad("HTTP status range must be within 100-599, low to high");
        }
    }
    if h.port == Some(0) {
        return bad("check port 0");
    }
    if h.http_path.as_deref().is_some_and(|p| !p.starts_with('/')) {
        return bad("HTTP check path must start with /");
    }
    Ok(())
}

/// The effective check of one server must make sense (e.g. `exec` needs a
/// command, and an exec check inherits no interval below the exec floor).
pub(super) fn validate_check(spec: &ServiceSpec, srv: &RealServerSpec) -> Result<(), TableError> {
    let h = srv.health.over(&spec.health);
    if h.kind == Some(CheckKind::Exec) && h.exec.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(TableError::invalid(
            "an exec check needs a command (--check-exec)",
        ));
    }
    if h.kind == Some(CheckKind::Exec) && srv.health.interval_ms.is_none() {
        if let Some(ms) = h.interval_ms.filter(|&ms| ms < MIN_EXEC_INTERVAL_MS) {
            return Err(TableError::invalid(&format!(
                "the exec check of real server {} would inherit --check-interval {} from the service, \
                 below the floor of {} for exec checks (each probe starts a shell); \
                 give the server --check-interval {} or more",
                srv.addr,
                ms_text(ms),
                ms_text(MIN_EXEC_INTERVAL_MS),
                ms_text(MIN_EXEC_INTERVAL_MS)
            )));
        }
    }
    check_settings(&h)
}

/// True when a connection to `dest` would come back to the service at
/// `vip` (`local` says whether an address belongs to this host). A wildcard
/// service (0.0.0.0 or ::) listens on every address of its family, so any
/// address of this host of that family on the service's port loops: 127/8
/// and the host's IPv4 addresses for 0.0.0.0 (also written as
/// ::ffff:a.b.c.d), ::1 and the host's IPv6 addresses for ::.
pub(crate) fn loops_back(
    vip: SocketAddr,
    dest: SocketAddr,
    local: impl Fn(&IpAddr) -> bool,
) -> bool {
    if dest.port() != vip.port() {
        return false;
    }
    let ip = dest.ip().to_canonical();
    if ip == vip.ip() {
        return true;
    }
    vip.ip().is_unspecified() && ip.is_ipv4() == vip.is_ipv4() && (ip.is_loopback() || local(&ip))
}

/// Refuse a destination (real or sorry server) that would loop back to the
/// service itself.
pub(super) fn check_loop(key: &ServiceKey, dest: SocketAddr, what: &str) -> Result<(), TableError> {
    let host_addr = |ip: &IpAddr| crate::daemon::host::local_addrs().contains(ip);
    if !loops_back(key.addr, dest, host_addr) {
        return Ok(());
    }
    let why = if dest.ip().to_canonical() == key.addr.ip() {
        format!("the {what} {dest} is the virtual service itself, which would loop")
    } else {
        format!(
            "the {what} {dest} is this host on the service's port, and the virtual service {} listens on every local address, so it would loop",
            key.addr
        )
    };
    Err(TableError::invalid(&format!(
        "{why}; give another address or port"
    )))
}

pub(super) fn validate_server(key: &ServiceKey, server: &RealServerSpec) -> Result<(), TableError> {
    check_settings(&server.health)?;
    if server.forward != Forward::Masq {
        return Err(TableError::not_supported(
            "forwarding methods other than masquerading (-m)",
        ));
    }
    if server.weight > i32::MAX as u32 {
        return Err(TableError::out_of_range("weight above 2147483647"));
    }
    if server.u_threshold > i32::MAX as u32 || server.l_threshold > i32::MAX as u32 {
        return Err(TableError::out_of_range("threshold above 2147483647"));
    }
    if server.l_threshold > server.u_threshold {
        return Err(TableError::out_of_range(
            "the lower threshold (-y) is above the upper threshold (-x); give -x at least as large as -y, or -y 0",
        ));
    }
    if !is_unicast(&server.addr.ip()) {
        return Err(TableError::invalid(
            "the real server address is not unicast; give a host address",
        ));
    }
    if server.addr.port() == 0 {
        return Err(TableError::invalid(
            "the real server has port 0; give it a port (-r ADDR:PORT)",
        ));
    }
    check_loop(key, server.addr, "real server")
}

fn is_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
