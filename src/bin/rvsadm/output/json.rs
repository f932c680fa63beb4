//! `--json` (an rvs extension): the stable schema documented in
//! `doc/json.md`.

use super::names::ntop;
use super::{sched_flag_names, sort, ListOpts};
use rvs::ctl::proto::{
    ConnEntry, HealthCheck, Netmask, Rates, ServerView, ServiceView, Stats, TableView, Timeouts,
    SCHED_FLAG_3,
};
use serde::Serialize;
use std::net::SocketAddr;

/// The IPVS version rvs reports, as ipvsadm prints it.
const IPVS_VERSION: &str = "1.2.1";

#[derive(Serialize)]
struct JsonList {
    version: &'static str,
    services: Vec<JsonService>,
}

#[derive(Serialize)]
struct JsonService {
    protocol: &'static str,
    address: String,
    port: u16,
    scheduler: String,
    persistent: Option<u32>,
    netmask: String,
    sched_flags: Vec<&'static str>,
    ops: bool,
    pe: Option<String>,
    /// rvs: health-check defaults as configured (unset fields are null).
    health_check: HealthCheck,
    slow_start: Option<u32>,
    sorry_server: Option<String>,
    sorry_active: bool,
    stats: JsonStats,
    rates: JsonRates,
    servers: Vec<JsonServer>,
}

#[derive(Serialize)]
struct JsonServer {
    address: String,
    port: u16,
    forward: &'static str,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    active_conns: u32,
    inactive_conns: u32,
    persist_conns: u32,
    /// rvs: per-server health-check overrides as configured.
    health_check: HealthCheck,
    slow_start: Option<u32>,
    health: JsonHealth,
    stats: JsonStats,
    rates: JsonRates,
}

/// rvs: live health of a real server.
#[derive(Serialize)]
struct JsonHealth {
    /// "UP", "DOWN" or "DRAIN".
    state: &'static str,
    since_secs: u64,
    check: String,
    last_ok: Option<bool>,
    latency_us: Option<u64>,
    reason: String,
    effective_weight: Option<u32>,
}

#[derive(Serialize)]
struct JsonStats {
    conns: u64,
    inpkts: u64,
    outpkts: u64,
    inbytes: u64,
    outbytes: u64,
}

#[derive(Serialize)]
struct JsonRates {
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
}

#[derive(Serialize)]
struct JsonConnections {
    connections: Vec<JsonConnection>,
}

#[derive(Serialize)]
struct JsonConnection {
    protocol: &'static str,
    client: JsonEndpoint,
    #[serde(rename = "virtual")]
    virt: JsonEndpoint,
    destination: JsonEndpoint,
    state: String,
    expires: u32,
    template: bool,
}

#[derive(Serialize)]
struct JsonEndpoint {
    address: String,
    port: u16,
}

#[derive(Serialize)]
struct JsonTimeouts {
    tcp: u32,
    tcpfin: u32,
    udp: u32,
}

impl From<&Stats> for JsonStats {
    fn from(s: &Stats) -> Self {
        JsonStats {
            conns: s.conns,
            inpkts: s.inpkts,
            outpkts: s.outpkts,
            inbytes: s.inbytes,
            outbytes: s.outbytes,
        }
    }
}

impl From<&Rates> for JsonRates {
    fn from(r: &Rates) -> Self {
        JsonRates {
            cps: r.cps,
            inpps: r.inpps,
            outpps: r.outpps,
            inbps: r.inbps,
            outbps: r.outbps,
        }
    }
}

impl From<SocketAddr> for JsonEndpoint {
    fn from(a: SocketAddr) -> Self {
        JsonEndpoint {
            address: ntop(a.ip()),
            port: a.port(),
        }
    }
}

/// Every set scheduler flag by name: the listing's words, plus `flag-3` for sh/mh.
pub(super) fn json_sched_flags(sched: &str, flags: u32) -> Vec<&'static str> {
    let mut names = sched_flag_names(sched, flags);
    if flags & SCHED_FLAG_3 != 0 && !names.contains(&"flag-3") {
        names.push("flag-3");
    }
    names
}

fn json_service(svc: &ServiceView, nosort: bool) -> JsonService {
    let spec = &svc.spec;
    JsonService {
        protocol: spec.key.proto.name(),
        address: ntop(spec.key.addr.ip()),
        port: spec.key.addr.port(),
        scheduler: spec.scheduler.clone(),
        persistent: spec.persistent,
        netmask: match spec.netmask {
            Netmask::V4(m) => m.to_string(),
            Netmask::V6(p) => p.to_string(),
        },
        sched_flags: json_sched_flags(&spec.scheduler, spec.sched_flags),
        ops: spec.ops,
        pe: spec.pe.clone(),
        health_check: spec.health.clone(),
        slow_start: spec.slow_start,
        sorry_server: spec
            .sorry_server
            .map(|a| SocketAddr::new(a.ip(), a.port()).to_string()),
        sorry_active: svc.sorry_active,
        stats: (&svc.stats).into(),
        rates: (&svc.rates).into(),
        servers: sort::servers(svc, nosort)
            .into_iter()
            .map(json_server)
            .collect(),
    }
}

fn json_server(srv: &ServerView) -> JsonServer {
    JsonServer {
        address: ntop(srv.spec.addr.ip()),
        port: srv.spec.addr.port(),
        forward: srv.shown_forward.name(),
        weight: srv.spec.weight,
        u_threshold: srv.spec.u_threshold,
        l_threshold: srv.spec.l_threshold,
        active_conns: srv.active_conns,
        inactive_conns: srv.inactive_conns,
        persist_conns: srv.persist_conns,
        health_check: srv.spec.health.clone(),
        slow_start: srv.spec.slow_start,
        health: JsonHealth {
            state: srv.health.state.name(),
            since_secs: srv.health.since_secs,
            check: srv.health.check.clone(),
            last_ok: srv.health.last_ok,
            latency_us: srv.health.latency_us,
            reason: srv.health.reason.clone(),
            effective_weight: srv.health.effective_weight,
        },
        stats: (&srv.stats).into(),
        rates: (&srv.rates).into(),
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(value).expect("JSON serialization of plain data cannot fail");
    s.push('\n');
    s
}

/// `--json` for `-L` (and its variants): the documented stable schema.
pub fn json_list(table: &TableView, opts: &ListOpts) -> String {
    let services = sort::services(&table.services, opts.nosort)
        .into_iter()
        .map(|s| json_service(s, opts.nosort))
        .collect();
    to_json(&JsonList {
        version: IPVS_VERSION,
        services,
    })
}

/// `--json` for `-L -c`.
pub fn json_connections(conns: &[ConnEntry]) -> String {
    let connections = conns
        .iter()
        .map(|c| JsonConnection {
            protocol: c.proto.name(),
            client: c.client.into(),
            virt: c.virt.into(),
            destination: c.dest.into(),
            state: c.state.clone(),
            expires: c.expires,
            template: c.template,
        })
        .collect();
    to_json(&JsonConnections { connections })
}

/// `--json` for `-L --timeout`.
pub fn json_timeouts(t: &Timeouts) -> String {
    to_json(&JsonTimeouts {
        tcp: t.tcp,
        tcpfin: t.tcpfin,
        udp: t.udp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::*;

    #[test]
    fn json_list_schema() {
        let hc = serde_json::json!({"kind": null, "interval_ms": null, "timeout_ms": null, "rise": null, "fall": null,
                          "jitter_ms": null, "addr": null, "port": null, "initial_up": null,
                          "http_path": null, "http_host": null, "http_status": null, "http_body": null,
                          "exec": null, "udp_send": null, "udp_expect": null});
        let v: serde_json::Value =
            serde_json::from_str(&json_list(&sample(), &ListOpts::default())).unwrap();
        assert_eq!(v["version"], "1.2.1");
        let services = v["services"].as_array().unwrap();
        assert_eq!(services.len(), 4);
        let tls = &services[1];
        assert_eq!(
            *tls,
            serde_json::json!({
                "protocol": "TCP", "address": "192.168.100.10", "port": 443, "scheduler": "sh",
                "persistent": 1800, "netmask": "255.255.255.0", "sched_flags": ["sh-fallback"],
                "ops": false, "pe": null,
                "health_check": hc.clone(), "slow_start": null, "sorry_server": null, "sorry_active": false,
                "stats": {"conns": 100_000_000_000u64, "inpkts": 99_999_999_999_999u64,
                          "outpkts": 100_000_000_000_000u64, "inbytes": u64::MAX, "outbytes": 0},
                "rates": {"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0},
                "servers": [{
                    "address": "10.0.0.1", "port": 443, "forward": "Route", "weight": 1,
                    "u_threshold": 0, "l_threshold": 0, "active_conns": 3, "inactive_conns": 1,
                    "persist_conns": 7,
                    "health_check": hc.clone(), "slow_start": null,
                    "health": {"state": "UP", "since_secs": 75, "check": "tcp", "last_ok": true,
                               "latency_us": 180, "reason": "connected", "effective_weight": null},
                    "stats": {"conns": 0, "inpkts": 0, "outpkts": 0, "inbytes": 0, "outbytes": 0},
                    "rates": {"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0}
                }]
            })
        );
        assert_eq!(services[0]["servers"][0]["address"], "10.0.0.1");
        assert_eq!(services[0]["persistent"], serde_json::Value::Null);
        assert_eq!(services[0]["netmask"], "255.255.255.255");
        assert_eq!(services[2]["protocol"], "UDP");
        assert_eq!(services[3]["address"], "2001:db8::10");
        assert_eq!(services[3]["netmask"], "64");
        assert_eq!(services[3]["pe"], "sip");
        let unsorted: serde_json::Value = serde_json::from_str(&json_list(
            &sample(),
            &ListOpts {
                nosort: true,
                ..ListOpts::default()
            },
        ))
        .unwrap();
        assert_eq!(
            unsorted["services"][0]["servers"][0]["address"],
            "2001:db8::2"
        );
    }

    #[test]
    fn json_connections_schema() {
        let v: serde_json::Value =
            serde_json::from_str(&json_connections(&sample_conns())).unwrap();
        assert_eq!(
            v["connections"][3],
            serde_json::json!({
                "protocol": "TCP",
                "client": {"address": "192.168.1.0", "port": 0},
                "virtual": {"address": "10.0.0.1", "port": 80},
                "destination": {"address": "192.168.10.2", "port": 80},
                "state": "NONE", "expires": 1799, "template": true
            })
        );
        assert_eq!(v["connections"][5]["client"]["address"], "2001:db8::64");
        assert!(json_connections(&[]).contains("\"connections\": []"));
    }
}
