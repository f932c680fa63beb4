//! One virtual service as the data plane runs it ([`ServiceRt`]: its
//! servers, scheduler and persistence templates), overload marking, and the
//! published [`Snapshot`] of all services that listings and the tick read.
//!
//! The table task builds a new [`ServiceRt`] for every service whose
//! definition changed and stores it in that service's listener slot
//! (`ArcSwap`): each new connection loads the slot once and never takes the
//! table owner's lock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::ctl::proto::{
    ConnEntry, HealthState, HealthView, Netmask, RealServerSpec, ServerView, ServiceKey,
    ServiceSpec, ServiceView, Timeouts,
};

use crate::daemon::sched::{self, Dest, PickCtx, Scheduler};
use crate::daemon::state::conns::{ServiceState, Template};
use crate::daemon::state::now_ms;
use crate::daemon::state::server::{effective_weight, ServerState};
use crate::daemon::state::shared::SharedTimeouts;

/// Immutable runtime of one service, replaced whenever its definition or
/// real servers change.
#[derive(Debug)]
pub(crate) struct ServiceRt {
    pub(crate) spec: ServiceSpec,
    pub(crate) servers: Vec<RealServerSpec>,
    /// Same order as `servers` (kernel order).
    pub(crate) dests: Vec<Dest>,
    pub(crate) sched: Box<dyn Scheduler>,
    pub(crate) state: Arc<ServiceState>,
    /// `--sorry-server`, used only while no real server is available.
    pub(crate) sorry: Option<Dest>,
}

/// The result of scheduling one new connection.
#[derive(Debug)]
pub(crate) struct Pick {
    pub(crate) index: usize,
    /// The template this connection is attached to (persistent services).
    pub(crate) template: Option<TemplateRef>,
}

/// Names the template a connection is attached to. A template replaced in
/// the meantime (its server failed or left) is not touched by the release of
/// a connection that was attached to the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TemplateRef {
    net: IpAddr,
    id: u64,
}

impl ServiceRt {
    pub(crate) fn build(
        spec: ServiceSpec,
        servers: Vec<RealServerSpec>,
        state: Arc<ServiceState>,
        mut server_state: impl FnMut(&SocketAddr) -> Arc<ServerState>,
        prev: Option<&ServiceRt>,
    ) -> ServiceRt {
        let dests: Vec<Dest> = servers
            .iter()
            .map(|s| {
                let last = prev
                    .and_then(|p| p.dests.iter().find(|d| d.addr == s.addr))
                    .map(|d| d.last_weight)
                    .unwrap_or(s.weight);
                let st = server_state(&s.addr);
                let weight = effective_weight(&spec, s, &st);
                Dest {
                    addr: s.addr,
                    weight,
                    last_weight: if weight > 0 { weight } else { last },
                    u_threshold: s.u_threshold,
                    l_threshold: s.l_threshold,
                    state: st,
                }
            })
            .collect();
        let threads = state.counters.threads();
        let sorry = spec
            .sorry_server
            .map(|addr| Dest::with_state(addr, 1, Arc::new(ServerState::new(threads))));
        // Edits keep scheduler state (rr cursor, wrr weight, lblc tables),
        // as the kernel's update hooks do; -E changing the scheduler starts fresh.
        let sched = match prev {
            Some(p) if p.spec.scheduler == spec.scheduler => {
                sched::rebuild(p.sched.as_ref(), &spec.scheduler, spec.sched_flags, &dests)
            }
            _ => sched::build(&spec.scheduler, spec.sched_flags, &dests),
        }
        .expect("scheduler name validated by the table");
        ServiceRt {
            spec,
            servers,
            dests,
            sched,
            state,
            sorry,
        }
    }

    /// True when no real server can take a new connection.
    pub(crate) fn none_available(&self) -> bool {
        !self
            .dests
            .iter()
            .any(|d| d.weight > 0 && !d.state.is_down() && !d.state.is_overloaded())
    }

    /// Choose a real server for a new connection from `client`, honouring
    /// persistence templates; `skip` lists servers that just failed.
    pub(crate) fn schedule(&self, client: SocketAddr, skip: &[usize]) -> Option<Pick> {
        let Some(timeout) = self.spec.persistent else {
            let ctx = PickCtx {
                client,
                vip: self.spec.key.addr,
                skip,
            };
            return self.sched.pick(&self.dests, &ctx).map(|index| Pick {
                index,
                template: None,
            });
        };
        let net = mask(client.ip(), &self.spec.netmask);
        let now = now_ms();
        let mut templates = self.state.templates.lock().expect("templates lock");
        if let Some(t) = templates.get_mut(&net) {
            let live = t.expires_ms > now || t.refs > 0;
            let found = self.dests.iter().position(|d| d.addr == t.dest);
            match found {
                Some(i) if live && !skip.contains(&i) && !self.dests[i].state.is_down() => {
                    t.expires_ms = now + timeout as u64 * 1000;
                    t.refs += 1;
                    return Some(Pick {
                        index: i,
                        template: Some(TemplateRef { net, id: t.id }),
                    });
                }
                _ => {
                    templates.remove(&net);
                }
            }
        }
        let ctx = PickCtx {
            client,
            vip: self.spec.key.addr,
            skip,
        };
        let index = self.sched.pick(&self.dests, &ctx)?;
        let server = self.dests[index].state.clone();
        server.persist.fetch_add(1, Relaxed);
        let id = self.state.next_conn.fetch_add(1, Relaxed);
        templates.insert(
            net,
            Template {
                id,
                dest: self.dests[index].addr,
                server,
                expires_ms: now + timeout as u64 * 1000,
                refs: 1,
                assured: false,
            },
        );
        Some(Pick {
            index,
            template: Some(TemplateRef { net, id }),
        })
    }

    /// A connection attached to a template ended (or failed to connect).
    pub(crate) fn release_template(&self, r: TemplateRef, assured: bool) {
        let mut templates = self.state.templates.lock().expect("templates lock");
        if let Some(t) = templates.get_mut(&r.net).filter(|t| t.id == r.id) {
            t.refs = t.refs.saturating_sub(1);
            t.assured |= assured;
        }
    }

    /// A connect through a template failed: forget the template so the
    /// client is scheduled afresh. Other connections attached to it keep
    /// running; their release no longer finds it.
    pub(crate) fn drop_template(&self, r: TemplateRef) {
        let mut templates = self.state.templates.lock().expect("templates lock");
        if templates.get(&r.net).is_some_and(|t| t.id == r.id) {
            templates.remove(&r.net);
        }
    }

    /// Drop expired templates (called from the periodic tick).
    pub(crate) fn expire_templates(&self) {
        let now = now_ms();
        let mut templates = self.state.templates.lock().expect("templates lock");
        templates.retain(|_, t| t.expires_ms > now || t.refs > 0);
    }

    /// The listing view of this service.
    pub(crate) fn view(&self, local: &dyn Fn(&IpAddr) -> bool) -> ServiceView {
        let now = self.state.counters.snapshot();
        let servers = self
            .servers
            .iter()
            .zip(&self.dests)
            .map(|(spec, d)| {
                let c = d.state.counters.snapshot();
                let health = {
                    let h = d.state.health.lock().expect("health lock");
                    HealthView {
                        state: if d.state.is_down() {
                            HealthState::Down
                        } else if spec.weight == 0 {
                            HealthState::Drain
                        } else {
                            HealthState::Up
                        },
                        since_secs: h.since.elapsed().as_secs(),
                        check: h.check.clone(),
                        last_ok: h.last_ok,
                        latency_us: h.latency_us,
                        reason: h.reason.clone(),
                        effective_weight: (d.weight != spec.weight).then_some(d.weight),
                    }
                };
                ServerView {
                    health,
                    spec: spec.clone(),
                    shown_forward: if local(&spec.addr.ip()) {
                        crate::ctl::proto::Forward::Local
                    } else {
                        spec.forward
                    },
                    active_conns: d.state.active(),
                    inactive_conns: d.state.inactive(),
                    persist_conns: d.state.persist.load(Relaxed),
                    stats: d.state.est.since_zero(c),
                    rates: d.state.est.rates(),
                }
            })
            .collect();
        ServiceView {
            spec: self.spec.clone(),
            stats: self.state.est.since_zero(now),
            rates: self.state.est.rates(),
            servers,
            sorry_active: self.sorry.is_some() && self.none_available(),
        }
    }

    /// `-L -c` entries of this service: templates first, then connections.
    pub(crate) fn connections(&self, timeouts: &SharedTimeouts, out: &mut Vec<ConnEntry>) {
        let now = now_ms();
        let proto = self.spec.key.proto;
        let vip = self.spec.key.addr;
        for (net, t) in self.state.templates.lock().expect("templates lock").iter() {
            out.push(ConnEntry {
                proto,
                client: SocketAddr::new(*net, 0),
                virt: vip,
                dest: t.dest,
                state: if t.assured { "ASSURED" } else { "NONE" }.to_string(),
                expires: (t.expires_ms.saturating_sub(now) / 1000) as u32,
                template: true,
            });
        }
        for part in &self.state.conns {
            let part = part.lock().expect("conns lock");
            for c in part.values() {
                let idle = now.saturating_sub(c.last.load(Relaxed));
                let left = c.idle_limit_ms(timeouts).saturating_sub(idle);
                out.push(ConnEntry {
                    proto,
                    client: c.client,
                    virt: vip,
                    dest: c.dest,
                    state: c.state().name().to_string(),
                    expires: left.div_ceil(1000) as u32,
                    template: false,
                });
            }
        }
    }
}

/// A connection was bound to `dest`: set OVERLOAD when the upper threshold
/// is reached (ipvsadm's “Upper/lower thresholds and the OVERLOAD flag”).
pub(crate) fn overload_on_bind(dest: &Dest) {
    let s = &dest.state;
    if dest.u_threshold != 0 && s.active() + s.inactive() >= dest.u_threshold {
        s.overloaded.store(true, Relaxed);
    }
}

/// A connection left `dest`: clear OVERLOAD below the lower threshold, or
/// below 75 % of the upper one when no lower threshold is set.
pub(crate) fn overload_on_unbind(dest: &Dest) {
    let s = &dest.state;
    let total = s.active() as u64 + s.inactive() as u64;
    let (u, l) = (dest.u_threshold as u64, dest.l_threshold as u64);
    let clear = if l != 0 {
        total < l
    } else if u != 0 {
        total * 4 < u * 3
    } else {
        true
    };
    if clear {
        s.overloaded.store(false, Relaxed);
    }
}

/// Apply a persistence netmask to a client address.
pub(crate) fn mask(ip: IpAddr, m: &Netmask) -> IpAddr {
    match (ip, m) {
        (IpAddr::V4(a), Netmask::V4(m)) => IpAddr::V4((u32::from(a) & u32::from(*m)).into()),
        (IpAddr::V6(a), Netmask::V6(p)) => {
            let bits = u128::from(a);
            let keep = if *p == 0 {
                0
            } else {
                u128::MAX << (128 - (*p as u32).min(128))
            };
            IpAddr::V6((bits & keep).into())
        }
        (IpAddr::V4(a), Netmask::V6(_)) => IpAddr::V4(a),
        (IpAddr::V6(a), Netmask::V4(_)) => IpAddr::V6(a),
    }
}

/// What all readers (control socket listings, the tick) see of the data plane.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Creation order.
    pub(crate) services: Vec<Arc<ServiceRt>>,
    pub(crate) by_key: HashMap<ServiceKey, usize>,
    pub(crate) timeouts: Timeouts,
}

impl Snapshot {
    pub(crate) fn get(&self, key: &ServiceKey) -> Option<&Arc<ServiceRt>> {
        self.by_key.get(key).map(|&i| &self.services[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releasing_a_replaced_template_leaves_the_new_one_alone() {
        use crate::ctl::proto::{Protocol, RealServerSpec, ServiceKey, ServiceSpec};
        let key = ServiceKey {
            proto: Protocol::Tcp,
            addr: "127.0.0.1:80".parse().unwrap(),
        };
        let spec = ServiceSpec {
            persistent: Some(60),
            scheduler: "rr".into(),
            ..ServiceSpec::new(key)
        };
        let servers = vec![
            RealServerSpec::new("127.0.0.2:80".parse().unwrap()),
            RealServerSpec::new("127.0.0.3:80".parse().unwrap()),
        ];
        let rt = ServiceRt::build(
            spec,
            servers,
            Arc::new(ServiceState::new(1)),
            |_| Arc::new(ServerState::new(1)),
            None,
        );
        let client: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let first = rt.schedule(client, &[]).unwrap();
        let second = rt.schedule(client, &[]).unwrap();
        assert_eq!(first.index, second.index, "the template pins the client");
        // The first connection's connect fails: the template goes and the
        // client is scheduled afresh, skipping that server.
        rt.drop_template(first.template.unwrap());
        let third = rt.schedule(client, &[first.index]).unwrap();
        assert_ne!(third.index, first.index);
        // The second connection (attached to the old template) ends: the new
        // template must keep its one reference.
        rt.release_template(second.template.unwrap(), true);
        let templates = rt.state.templates.lock().unwrap();
        let t = templates.values().next().unwrap();
        assert_eq!((t.refs, t.assured), (1, false));
        assert_eq!(rt.dests[third.index].state.persist.load(Relaxed), 1);
        assert_eq!(rt.dests[first.index].state.persist.load(Relaxed), 0);
    }

    #[test]
    fn masks() {
        let ip: IpAddr = "192.168.7.9".parse().unwrap();
        assert_eq!(
            mask(ip, &Netmask::V4("255.255.255.0".parse().unwrap())),
            "192.168.7.0".parse::<IpAddr>().unwrap()
        );
        let ip6: IpAddr = "2001:db8::1234".parse().unwrap();
        assert_eq!(
            mask(ip6, &Netmask::V6(64)),
            "2001:db8::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(mask(ip6, &Netmask::V6(128)), ip6);
    }
}
