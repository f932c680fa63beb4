//! The popt loop's record of a command line (ipvsadm's `ce` and `options`):
//! each option checked and stored as ipvsadm's big `switch` does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use rvs::ctl::proto::{CheckKind, HealthCheck, DEFAULT_PERSISTENT_TIMEOUT, MAX_TIMEOUT};
use rvs::daemon::table::{
    char_code, first_control, MIN_CHECK_INTERVAL_MS, MIN_CHECK_TIMEOUT_MS, MIN_EXEC_INTERVAL_MS,
};

use super::{fail, CliError};
use crate::addr::{atoi, number_in, parse_netmask_v4, parse_service};
use crate::options::{Opt, OPT_NAMES};

/// Everything the popt loop records (ipvsadm's `ce` and `options`).
pub(super) struct State {
    pub(super) cmd: Opt,
    pub(super) options: u64,
    pub(super) svc_kind: Option<Opt>,
    /// Service protocol for service-name look-ups (`-f` sets "tcp").
    pub(super) proto: Option<&'static str>,
    pub(super) svc_addr: IpAddr,
    pub(super) svc_port: u16,
    pub(super) svc_v6: bool,
    pub(super) fwmark: u32,
    /// IPv4 mask bits, or the IPv6 prefix length once the service is IPv6.
    pub(super) netmask: u32,
    pub(super) sched: String,
    pub(super) persistent: Option<u32>,
    pub(super) ops: bool,
    pub(super) sched_flags_arg: String,
    pub(super) dest_addr: IpAddr,
    pub(super) dest_port: u16,
    pub(super) dest_v6: bool,
    pub(super) fwd: Option<Opt>,
    pub(super) weight: u32,
    pub(super) u_threshold: u32,
    pub(super) l_threshold: u32,
    pub(super) tun_type: &'static str,
    pub(super) ipv6_flag: bool,
    pub(super) socket: Option<PathBuf>,
    pub(super) json: bool,
    /// rvs health options seen, by name, in order.
    pub(super) health_opts: Vec<&'static str>,
    pub(super) health: HealthCheck,
    pub(super) sorry: Option<SocketAddr>,
    pub(super) slow_start: Option<u32>,
    pub(super) health_list: bool,
}

impl State {
    pub(super) fn new(cmd: Opt) -> State {
        State {
            cmd,
            options: 0,
            svc_kind: None,
            proto: None,
            svc_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            svc_port: 0,
            svc_v6: false,
            fwmark: 0,
            netmask: u32::MAX,
            sched: String::new(),
            persistent: None,
            ops: false,
            sched_flags_arg: String::new(),
            dest_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dest_port: 0,
            dest_v6: false,
            fwd: None,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: "ipip",
            ipv6_flag: false,
            socket: None,
            json: false,
            health_opts: Vec::new(),
            health: HealthCheck::default(),
            sorry: None,
            slow_start: None,
            health_list: false,
        }
    }

    /// The rvs health-check options (long only, outside the matrix).
    fn health_option(&mut self, opt: Opt, a: String) -> Result<(), CliError> {
        let name = opt.long_name();
        if self.health_opts.contains(&name) {
            return fail(format!("multiple '{name}' options specified"));
        }
        self.health_opts.push(name);
        // Before anything echoes the value: a control character would reach
        // the terminal here, and later every `-L --health` and `-S`.
        if let Some((pos, c)) = first_control(&a) {
            return fail(format!(
                "invalid --{name} value: control character {} at character {pos}; \
                 control characters (newline, tab, escape, NUL ...) are not allowed, remove it",
                char_code(c)
            ));
        }
        let bad = |what: &str| fail(format!("invalid --{name} value `{a}': {what}"));
        let h = &mut self.health;
        match opt {
            Opt::Check => match CheckKind::parse(&a) {
                Some(k) => h.kind = Some(k),
                None => return bad("use tcp, http, exec, udp or none"),
            },
            Opt::CheckInterval | Opt::CheckTimeout | Opt::CheckJitter => {
                let Some(ms) = parse_duration_ms(&a) else {
                    return bad("give a duration such as 2, 1.5s or 200ms");
                };
                match opt {
                    Opt::CheckInterval => h.interval_ms = Some(ms),
                    Opt::CheckTimeout => h.timeout_ms = Some(ms),
                    _ => h.jitter_ms = Some(ms),
                }
                if opt == Opt::CheckInterval && ms < MIN_CHECK_INTERVAL_MS {
                    return bad(&format!(
                        "below the floor of {} ({} for exec checks)",
                        ms_text(MIN_CHECK_INTERVAL_MS),
                        ms_text(MIN_EXEC_INTERVAL_MS)
                    ));
                }
                if opt == Opt::CheckTimeout && ms < MIN_CHECK_TIMEOUT_MS {
                    return bad(&format!(
                        "below the floor of {}",
                        ms_text(MIN_CHECK_TIMEOUT_MS)
                    ));
                }
            }
            Opt::CheckRise | Opt::CheckFall => {
                let Some(n) = number_in(&a, 1, 1000) else {
                    return bad("give a count from 1 to 1000");
                };
                if opt == Opt::CheckRise {
                    h.rise = Some(n as u32);
                } else {
                    h.fall = Some(n as u32);
                }
            }
            Opt::CheckAddr => match a
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                Ok(ip) => h.addr = Some(ip),
                Err(_) => return bad("give an IPv4 or IPv6 address"),
            },
            Opt::CheckPort => match number_in(&a, 1, 65535) {
                Some(p) => h.port = Some(p as u16),
                None => return bad("give a port from 1 to 65535"),
            },
            Opt::CheckInitial => match a.as_str() {
                "up" => h.initial_up = Some(true),
                "down" => h.initial_up = Some(false),
                _ => return bad("use up or down"),
            },
            Opt::CheckHttpPath if a.starts_with('/') => h.http_path = Some(a),
            Opt::CheckHttpPath => return bad("the path must start with /"),
            Opt::CheckHttpHost => h.http_host = Some(a),
            Opt::CheckHttpStatus => {
                let (lo, hi) = a.split_once('-').unwrap_or((&a, &a));
                match (number_in(lo, 100, 599), number_in(hi, 100, 599)) {
                    (Some(lo), Some(hi)) if lo <= hi => {
                        h.http_status = Some((lo as u16, hi as u16))
                    }
                    _ => return bad("give a status or a range such as 200 or 200-399"),
                }
            }
            Opt::CheckHttpBody => h.http_body = Some(a),
            Opt::CheckExec if a.trim().is_empty() => return bad("the command is empty"),
            Opt::CheckExec => h.exec = Some(a),
            Opt::CheckUdpSend => h.udp_send = Some(a),
            Opt::CheckUdpExpect => h.udp_expect = Some(a),
            Opt::SlowStart => match number_in(&a, 0, 86_400) {
                Some(n) => self.slow_start = Some(n as u32),
                None => return bad("give seconds from 0 to 86400"),
            },
            Opt::SorryServer => match parse_service(&a, self.proto) {
                Some(p) if p.port.is_some_and(|p| p != 0) => {
                    self.sorry = Some(SocketAddr::new(p.addr, p.port.unwrap_or(0)))
                }
                _ => return bad("give address:port ([v6]:port for IPv6)"),
            },
            Opt::Health => self.health_list = true,
            _ => {}
        }
        Ok(())
    }

    pub(super) fn has(&self, index: usize) -> bool {
        self.options & (1 << index) != 0
    }

    /// ipvsadm's `set_option`: each matrix option at most once.
    fn set_option(&mut self, opt: Opt) -> Result<(), CliError> {
        if let Some(i) = opt.index() {
            if self.has(i) {
                return fail(format!("multiple '{}' options specified", OPT_NAMES[i]));
            }
            self.options |= 1 << i;
        }
        Ok(())
    }

    /// rvs extensions, accepted anywhere on the line.
    pub(super) fn extension(&mut self, opt: Opt, arg: Option<String>) -> Result<(), CliError> {
        match opt {
            Opt::Socket if self.socket.is_some() => fail("multiple 'socket' options specified"),
            Opt::Socket => {
                self.socket = arg.map(PathBuf::from);
                Ok(())
            }
            Opt::Json if self.json => fail("multiple 'json' options specified"),
            _ => {
                self.json = true;
                Ok(())
            }
        }
    }

    /// One option after the command (ipvsadm's big `switch`).
    pub(super) fn option(&mut self, opt: Opt, arg: Option<String>) -> Result<(), CliError> {
        if matches!(opt, Opt::Socket | Opt::Json) {
            return self.extension(opt, arg);
        }
        if opt.is_health() {
            return self.health_option(opt, arg.unwrap_or_default());
        }
        self.set_option(opt)?;
        let absent = arg.is_none();
        let a = arg.unwrap_or_default();
        let num = |min: i64, max: i64, msg: &str| -> Result<u32, CliError> {
            match number_in(&a, min, max) {
                Some(n) => Ok(n as u32),
                None => fail(msg),
            }
        };
        match opt {
            Opt::Tcp | Opt::Udp | Opt::Sctp => {
                self.svc_kind = Some(opt);
                self.proto = Some(match opt {
                    Opt::Tcp => "tcp",
                    Opt::Udp => "udp",
                    _ => "sctp",
                });
                let Some(p) = parse_service(&a, self.proto) else {
                    return fail("illegal virtual server address[:port] specified");
                };
                self.svc_addr = p.addr;
                self.svc_v6 = p.addr.is_ipv6();
                if self.svc_v6 {
                    self.netmask = 128;
                }
                if let Some(port) = p.port {
                    self.svc_port = port;
                }
            }
            Opt::Fwmark => {
                self.svc_kind = Some(opt);
                self.proto = Some("tcp");
                self.svc_v6 = false;
                self.fwmark = match number_in(&a, 1, i64::from(u32::MAX)) {
                    Some(n) => n as u32,
                    None => return fail(format!("invalid fwmark value `{a}' specified")),
                };
            }
            Opt::Scheduler => {
                let mut s = a;
                while s.len() > 15 {
                    s.pop();
                }
                self.sched = s;
            }
            Opt::Persistent => {
                self.persistent = Some(if absent {
                    DEFAULT_PERSISTENT_TIMEOUT
                } else {
                    num(
                        1,
                        i64::from(MAX_TIMEOUT),
                        &format!("invalid timeout value `{a}' specified"),
                    )?
                });
            }
            Opt::Netmask if self.svc_v6 => {
                let n = atoi(&a);
                if !(1..=128).contains(&n) {
                    return fail("illegal ipv6 netmask specified");
                }
                self.netmask = n as u32;
            }
            Opt::Netmask => match parse_netmask_v4(&a) {
                Some(m) => self.netmask = u32::from(m),
                None => return fail("illegal virtual server persistent mask specified"),
            },
            Opt::RealServer => {
                let Some(p) = parse_service(&a, self.proto) else {
                    return fail("illegal real server address[:port] specified");
                };
                self.dest_addr = p.addr;
                self.dest_v6 = p.addr.is_ipv6();
                self.dest_port = p.port.unwrap_or(self.svc_port);
            }
            Opt::Gatewaying | Opt::Ipip | Opt::Masquerading => self.fwd = Some(opt),
            Opt::Weight => self.weight = num(0, i64::from(i32::MAX), "illegal weight specified")?,
            Opt::UThreshold => {
                self.u_threshold = num(0, i64::from(i32::MAX), "illegal u_threshold specified")?
            }
            Opt::LThreshold => {
                self.l_threshold = num(0, i64::from(i32::MAX), "illegal l_threshold specified")?
            }
            Opt::SyncId => {
                num(0, 255, "illegal syncid specified")?;
            }
            Opt::Ipv6 => {
                if self.fwmark == 0 {
                    return fail("-6 used before -f\n");
                }
                self.ipv6_flag = true;
                self.svc_v6 = true;
                self.netmask = 128;
            }
            Opt::Ops => self.ops = true,
            Opt::SchedFlags => self.sched_flags_arg = a,
            Opt::McastGroup => {
                if a.contains(':') {
                    if !a.parse::<Ipv6Addr>().is_ok_and(|g| g.is_multicast()) {
                        return fail(format!("invalid IPv6 mcast-group `{a}'"));
                    }
                } else if !a.parse::<Ipv4Addr>().is_ok_and(|g| g.is_multicast()) {
                    return fail(format!("invalid IPv4 mcast-group `{a}'"));
                }
            }
            Opt::McastPort => {
                num(1, 65535, "illegal mcast-port specified")?;
            }
            Opt::McastTtl => {
                num(1, 255, "illegal mcast-ttl specified")?;
            }
            Opt::SyncMaxlen => {
                num(1, 65507, "illegal sync-maxlen specified")?;
            }
            Opt::TunType => {
                self.tun_type = match a.as_str() {
                    "ipip" => "ipip",
                    "gue" => "gue",
                    "gre" => "gre",
                    _ => return fail("illegal tunnel type specified"),
                }
            }
            Opt::TunPort => {
                num(1, 65535, "illegal tunnel port specified")?;
            }
            // Flags with no value, `--pe` (rejected later) and `--sort` (no-op).
            _ => {}
        }
        Ok(())
    }
}

/// ipvsadm's `parse_sched_flags`.
pub(super) fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, CliError> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        let Some((bit, only)) = rvs::ctl::names::sched_flag_by_name(flag) else {
            return fail(format!("invalid scheduler flag `{flag}'"));
        };
        if only.is_some_and(|s| s != sched) {
            return fail(format!("incompatible scheduler flag `{flag}'"));
        }
        flags |= bit;
    }
    Ok(flags)
}

/// `1500ms`, `2s`: a duration as `-S` writes it.
pub fn ms_text(ms: u32) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `2`, `1.5`, `2s`, `1.5s` (seconds) or `200ms` → milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u32> {
    let (num, scale) = match s.strip_suffix("ms") {
        Some(n) => (n, 1.0),
        None => (s.strip_suffix('s').unwrap_or(s), 1000.0),
    };
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 || v * scale > 86_400_000.0 {
        return None;
    }
    Some((v * scale).round() as u32)
}
