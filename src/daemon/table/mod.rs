//! The virtual-service table: pure validation and application of mutations.
//! No I/O, no tokio: the table task owns one `Table`, applies requests to it
//! and publishes the result to the data plane and the state file.
//!
//! Errors mimic what the kernel returns to ipvsadm (ipvsadm's “Which errno the kernel returns”), with the
//! message ipvsadm prints for that errno, so `rvsadm` shows identical text.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::ctl::proto::{
    ErrorKind, RealServerSpec, Request, ServiceKey, ServiceSpec, Timeouts, MAX_TIMEOUT,
    SCHED_FLAG_1, SCHED_FLAG_2, SCHED_FLAG_3,
};

mod undo;
mod validate;

pub use undo::{Delta, DeltaRef, Undo};

pub use validate::{
    char_code, check_texts, first_control, MIN_CHECK_INTERVAL_MS, MIN_CHECK_TIMEOUT_MS,
    MIN_EXEC_INTERVAL_MS,
};
use validate::{validate_check, validate_server, validate_service};

use crate::daemon::sched;

/// A rejected mutation: what went wrong, in ipvsadm's words where it has some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub kind: ErrorKind,
    pub message: String,
}

impl TableError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> TableError {
        TableError {
            kind,
            message: message.into(),
        }
    }
    fn service_exists() -> TableError {
        TableError::new(ErrorKind::ServiceExists, "Service already exists")
    }
    fn no_such_service() -> TableError {
        TableError::new(ErrorKind::NoSuchService, "No such service")
    }
    fn service_not_defined() -> TableError {
        TableError::new(ErrorKind::ServiceNotDefined, "Service not defined")
    }
    /// ipvsadm's exact line for EINVAL, then what rvs found wrong.
    fn invalid(why: &str) -> TableError {
        TableError::new(
            ErrorKind::Invalid,
            format!("Invalid operation.  Possibly wrong module version, address not unicast, ...\nhint: {why}"),
        )
    }
    /// ipvsadm's exact line for ERANGE, then what rvs found wrong.
    fn out_of_range(why: &str) -> TableError {
        TableError::new(
            ErrorKind::OutOfRange,
            format!("Numerical result out of range\nhint: {why}"),
        )
    }
    fn not_supported(what: &str) -> TableError {
        TableError::new(
            ErrorKind::NotSupported,
            format!("not supported by rvs yet: {what}"),
        )
    }
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One virtual service and its real servers, in kernel list order (most
/// recently added first).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub spec: ServiceSpec,
    pub servers: Vec<RealServerSpec>,
}

/// The whole table. Services keep creation order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    services: Vec<Service>,
    index: HashMap<ServiceKey, usize>,
    timeouts: Timeouts,
}

/// What a successful mutation changed, for the table task to act upon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The table changed: persist and publish it.
    Table,
    /// Counters of one service, or all, must be zeroed (not persisted).
    Zero(Option<ServiceKey>),
}

impl Table {
    /// Rebuild a table from its persisted parts.
    pub fn from_parts(services: Vec<Service>, timeouts: Timeouts) -> Table {
        let index = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.spec.key, i))
            .collect();
        Table {
            services,
            index,
            timeouts,
        }
    }

    /// What the data plane takes for granted of a table read from disk
    /// (a file can hold what no request would have been allowed to make:
    /// a scheduler this rvsd lacks, a key twice). Other settings that a
    /// newer rvs refuses on input are left alone: an old table keeps
    /// running, and `-E` says what to fix.
    pub fn check_loaded(&self) -> Result<(), String> {
        let known_flags = SCHED_FLAG_1 | SCHED_FLAG_2 | SCHED_FLAG_3;
        if self.index.len() != self.services.len() {
            return Err("a virtual service appears twice".into());
        }
        for svc in &self.services {
            let key = &svc.spec.key;
            let name = format!("{} {}", key.proto.name(), key.addr);
            if !sched::exists(&svc.spec.scheduler) {
                return Err(format!(
                    "{name} uses the scheduler {:?}, which this rvsd does not have",
                    svc.spec.scheduler
                ));
            }
            if svc.spec.sched_flags & !known_flags != 0 {
                return Err(format!("{name} has unknown scheduler flags"));
            }
            if key.addr.port() == 0 {
                return Err(format!("{name} has port 0"));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = svc.servers.iter().find(|s| !seen.insert(s.addr)) {
                return Err(format!("{name} lists real server {} twice", dup.addr));
            }
        }
        Ok(())
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.index.get(key).map(|&i| &self.services[i])
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Validate and apply one mutation. On error the table is unchanged.
    pub fn apply(&mut self, req: &Request) -> Result<Change, TableError> {
        match req {
            Request::AddService(spec) => self.add_service(spec),
            Request::EditService(spec) => self.edit_service(spec),
            Request::DeleteService(key) => self.delete_service(key),
            Request::Clear => {
                self.services.clear();
                self.index.clear();
                Ok(Change::Table)
            }
            Request::AddServer { service, server } => self.add_server(service, server),
            Request::EditServer { service, server } => self.edit_server(service, server),
            Request::DeleteServer { service, server } => self.delete_server(service, server),
            Request::Zero(key) => match key {
                Some(k) if !self.index.contains_key(k) => Err(TableError::no_such_service()),
                _ => Ok(Change::Zero(*key)),
            },
            Request::SetTimeouts(t) => self.set_timeouts(t),
            Request::Batch(reqs) => self.apply_batch(reqs).map_err(|(_, e)| e),
            Request::Hello { .. }
            | Request::List(_)
            | Request::ListConnections
            | Request::GetTimeouts
            | Request::Subscribe { .. } => {
                Err(TableError::new(ErrorKind::Protocol, "not a table change"))
            }
        }
    }

    /// Apply a batch all or nothing. On error returns the failing index and
    /// leaves the table untouched.
    pub fn apply_batch(&mut self, reqs: &[Request]) -> Result<Change, (usize, TableError)> {
        let mut next = self.clone();
        next.apply_all(reqs)?;
        *self = next;
        Ok(Change::Table)
    }

    /// Apply a batch in order, stopping at the first error. Not atomic on its
    /// own: for a scratch copy that is thrown away on error (the table task
    /// works on one), which saves cloning a large table twice.
    pub fn apply_all(&mut self, reqs: &[Request]) -> Result<Change, (usize, TableError)> {
        for (i, req) in reqs.iter().enumerate() {
            if matches!(req, Request::Batch(_)) {
                return Err((
                    i,
                    TableError::new(ErrorKind::Protocol, "a batch cannot contain a batch"),
                ));
            }
            self.apply(req).map_err(|e| (i, e))?;
        }
        Ok(Change::Table)
    }

    fn add_service(&mut self, spec: &ServiceSpec) -> Result<Change, TableError> {
        if self.index.contains_key(&spec.key) {
            return Err(TableError::service_exists());
        }
        validate_service(spec)?;
        self.index.insert(spec.key, self.services.len());
        self.services.push(Service {
            spec: spec.clone(),
            servers: Vec::new(),
        });
        Ok(Change::Table)
    }

    fn edit_service(&mut self, spec: &ServiceSpec) -> Result<Change, TableError> {
        let i = *self
            .index
            .get(&spec.key)
            .ok_or_else(TableError::no_such_service)?;
        validate_service(spec)?;
        for srv in &self.services[i].servers {
            validate_check(spec, srv)?;
        }
        self.services[i].spec = spec.clone();
        Ok(Change::Table)
    }

    fn delete_service(&mut self, key: &ServiceKey) -> Result<Change, TableError> {
        self.remove_service(key)?;
        Ok(Change::Table)
    }

    /// Remove a service; returns where it was and what it was.
    fn remove_service(&mut self, key: &ServiceKey) -> Result<(usize, Service), TableError> {
        let i = self
            .index
            .remove(key)
            .ok_or_else(TableError::no_such_service)?;
        let svc = self.services.remove(i);
        for s in &self.services[i..] {
            *self.index.get_mut(&s.spec.key).expect("indexed") -= 1;
        }
        Ok((i, svc))
    }

    fn service_mut(&mut self, key: &ServiceKey) -> Result<&mut Service, TableError> {
        let i = *self
            .index
            .get(key)
            .ok_or_else(TableError::service_not_defined)?;
        Ok(&mut self.services[i])
    }

    fn add_server(
        &mut self,
        key: &ServiceKey,
        server: &RealServerSpec,
    ) -> Result<Change, TableError> {
        let svc = self.service_mut(key)?;
        if svc.servers.iter().any(|s| s.addr == server.addr) {
            return Err(TableError::new(
                ErrorKind::DestinationExists,
                "Destination already exists",
            ));
        }
        validate_server(key, server)?;
        validate_check(&svc.spec, server)?;
        svc.servers.insert(0, server.clone());
        Ok(Change::Table)
    }

    fn edit_server(
        &mut self,
        key: &ServiceKey,
        server: &RealServerSpec,
    ) -> Result<Change, TableError> {
        let svc = self.service_mut(key)?;
        let pos = svc
            .servers
            .iter()
            .position(|s| s.addr == server.addr)
            .ok_or_else(no_such_destination)?;
        validate_server(key, server)?;
        validate_check(&svc.spec, server)?;
        svc.servers[pos] = server.clone();
        Ok(Change::Table)
    }

    fn delete_server(&mut self, key: &ServiceKey, addr: &SocketAddr) -> Result<Change, TableError> {
        let svc = self.service_mut(key)?;
        let pos = svc
            .servers
            .iter()
            .position(|s| s.addr == *addr)
            .ok_or_else(no_such_destination)?;
        svc.servers.remove(pos);
        Ok(Change::Table)
    }

    fn set_timeouts(&mut self, t: &Timeouts) -> Result<Change, TableError> {
        for v in [t.tcp, t.tcpfin, t.udp] {
            if v > MAX_TIMEOUT {
                return Err(TableError::invalid("timeout above 2678400 s"));
            }
        }
        let keep = |new: u32, old: u32| if new == 0 { old } else { new };
        self.timeouts = Timeouts {
            tcp: keep(t.tcp, self.timeouts.tcp),
            tcpfin: keep(t.tcpfin, self.timeouts.tcpfin),
            udp: keep(t.udp, self.timeouts.udp),
        };
        Ok(Change::Table)
    }
}

fn no_such_destination() -> TableError {
    TableError::new(ErrorKind::NoSuchDestination, "No such destination")
}

#[cfg(test)]
mod tests {
    use super::validate::loops_back;
    use super::*;
    use crate::ctl::proto::{CheckKind, Protocol};
    use std::net::IpAddr;

    pub(super) fn key(s: &str) -> ServiceKey {
        ServiceKey {
            proto: Protocol::Tcp,
            addr: s.parse().unwrap(),
        }
    }

    pub(super) fn server(s: &str, w: u32) -> RealServerSpec {
        RealServerSpec {
            weight: w,
            ..RealServerSpec::new(s.parse().unwrap())
        }
    }

    #[test]
    fn add_list_order_and_errors() {
        let mut t = Table::default();
        let k = key("10.0.0.1:80");
        t.apply(&Request::AddService(ServiceSpec::new(k))).unwrap();
        assert_eq!(
            t.apply(&Request::AddService(ServiceSpec::new(k)))
                .unwrap_err()
                .message,
            "Service already exists"
        );
        t.apply(&Request::AddServer {
            service: k,
            server: server("10.0.1.1:80", 1),
        })
        .unwrap();
        t.apply(&Request::AddServer {
            service: k,
            server: server("10.0.1.2:80", 2),
        })
        .unwrap();
        let addrs: Vec<_> = t
            .service(&k)
            .unwrap()
            .servers
            .iter()
            .map(|s| s.addr.to_string())
            .collect();
        assert_eq!(
            addrs,
            ["10.0.1.2:80", "10.0.1.1:80"],
            "most recently added first"
        );
        let e = t
            .apply(&Request::AddServer {
                service: k,
                server: server("10.0.1.2:80", 2),
            })
            .unwrap_err();
        assert_eq!(e.message, "Destination already exists");
        let e = t.apply(&Request::DeleteServer {
            service: key("10.0.0.9:80"),
            server: "10.0.1.2:80".parse().unwrap(),
        });
        assert_eq!(e.unwrap_err().message, "Service not defined");
        let e = t
            .apply(&Request::EditServer {
                service: k,
                server: server("10.0.1.9:80", 1),
            })
            .unwrap_err();
        assert_eq!(e.message, "No such destination");
        let e = t
            .apply(&Request::DeleteService(key("10.0.0.9:80")))
            .unwrap_err();
        assert_eq!(e.message, "No such service");
    }

    #[test]
    fn thresholds_and_scheduler_checked() {
        let mut t = Table::default();
        let k = key("10.0.0.1:80");
        let mut spec = ServiceSpec::new(k);
        spec.scheduler = "bogus".into();
        assert_eq!(
            t.apply(&Request::AddService(spec)).unwrap_err().kind,
            ErrorKind::SchedulerNotFound
        );
        t.apply(&Request::AddService(ServiceSpec::new(k))).unwrap();
        let mut s = server("10.0.1.1:80", 1);
        s.l_threshold = 5;
        let e = t
            .apply(&Request::AddServer {
                service: k,
                server: s,
            })
            .unwrap_err();
        assert!(e.message.starts_with("Numerical result out of range"));
    }

    #[test]
    fn batch_is_atomic_and_delete_reindexes() {
        let mut t = Table::default();
        let (a, b, c) = (key("10.0.0.1:80"), key("10.0.0.2:80"), key("10.0.0.3:80"));
        for k in [a, b, c] {
            t.apply(&Request::AddService(ServiceSpec::new(k))).unwrap();
        }
        let before = t.clone();
        let batch = vec![
            Request::DeleteService(a),
            Request::AddService(ServiceSpec::new(b)),
        ];
        assert_eq!(t.apply_batch(&batch).unwrap_err().0, 1);
        assert_eq!(t, before);
        t.apply(&Request::DeleteService(a)).unwrap();
        assert!(t.service(&c).is_some());
        t.apply(&Request::AddServer {
            service: c,
            server: server("10.0.1.1:80", 1),
        })
        .unwrap();
        assert_eq!(t.service(&c).unwrap().servers.len(), 1);
    }

    #[test]
    fn set_timeouts_zero_keeps() {
        let mut t = Table::default();
        t.apply(&Request::SetTimeouts(Timeouts {
            tcp: 0,
            tcpfin: 30,
            udp: 0,
        }))
        .unwrap();
        assert_eq!(
            t.timeouts(),
            Timeouts {
                tcp: 900,
                tcpfin: 30,
                udp: 300
            }
        );
    }

    #[test]
    fn wildcard_services_loop_through_every_local_address() {
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        let host: IpAddr = "192.0.2.7".parse().unwrap();
        let local = |ip: &IpAddr| *ip == host;
        let l = |vip: &str, dest: &str| loops_back(sa(vip), sa(dest), local);
        assert!(l("127.0.0.1:80", "127.0.0.1:80"));
        assert!(!l("127.0.0.1:80", "127.0.0.2:80"), "another address");
        assert!(l("0.0.0.0:80", "127.0.0.1:80"));
        assert!(l("0.0.0.0:80", "127.9.8.7:80"), "all of 127/8");
        assert!(l("0.0.0.0:80", "192.0.2.7:80"), "an address of this host");
        assert!(l("0.0.0.0:80", "[::ffff:127.0.0.1]:80"), "v4-mapped");
        assert!(!l("0.0.0.0:80", "127.0.0.1:81"), "another port");
        assert!(!l("0.0.0.0:80", "198.51.100.1:80"), "another host");
        assert!(!l("0.0.0.0:80", "[::1]:80"), "0.0.0.0 is IPv4 only");
        assert!(l("[::]:80", "[::1]:80"));
        assert!(!l("[::]:80", "127.0.0.1:80"), ":: is bound IPv6-only");
        assert!(!l("[::]:80", "[2001:db8::1]:80"));
    }

    #[test]
    fn self_loops_refused_for_real_and_sorry_servers() {
        let mut t = Table::default();
        let k = key("0.0.0.0:80");
        t.apply(&Request::AddService(ServiceSpec::new(k))).unwrap();
        let e = t
            .apply(&Request::AddServer {
                service: k,
                server: server("127.0.0.1:80", 1),
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("listens on every local address"), "{e}");
        let mut spec = ServiceSpec::new(k);
        spec.sorry_server = Some("127.0.0.5:80".parse().unwrap());
        let e = t.apply(&Request::EditService(spec)).unwrap_err();
        assert!(e.message.contains("sorry server 127.0.0.5:80"), "{e}");
        assert!(t.service(&k).unwrap().servers.is_empty());
        assert_eq!(t.service(&k).unwrap().spec.sorry_server, None);
    }

    #[test]
    fn control_characters_and_too_frequent_checks_refused() {
        let mut t = Table::default();
        let k = key("10.0.0.1:80");
        let mut spec = ServiceSpec::new(k);
        spec.health.http_host = Some("a\x1b[2Jb".into());
        let e = t.apply(&Request::AddService(spec.clone())).unwrap_err();
        assert!(
            e.message
                .contains("--check-http-host holds the control character U+001B at character 2"),
            "{e}"
        );
        spec.health.http_host = None;
        spec.health.interval_ms = Some(99);
        let e = t.apply(&Request::AddService(spec.clone())).unwrap_err();
        assert!(e.message.contains("below the floor of 100ms"), "{e}");
        spec.health.interval_ms = Some(500);
        t.apply(&Request::AddService(spec.clone())).unwrap();
        // An exec check on a server inherits the service's 500 ms: too often.
        let mut s = server("10.0.1.1:80", 1);
        s.health.kind = Some(CheckKind::Exec);
        s.health.exec = Some("true".into());
        let e = t
            .apply(&Request::AddServer {
                service: k,
                server: s.clone(),
            })
            .unwrap_err();
        assert!(
            e.message
                .contains("would inherit --check-interval 500ms from the service"),
            "{e}"
        );
        s.health.interval_ms = Some(1000);
        s.health.exec = Some("true\nreboot".into());
        let e = t
            .apply(&Request::AddServer {
                service: k,
                server: s.clone(),
            })
            .unwrap_err();
        assert!(
            e.message
                .contains("--check-exec holds the control character U+000A at character 5"),
            "{e}"
        );
        s.health.exec = Some("true".into());
        t.apply(&Request::AddServer {
            service: k,
            server: s,
        })
        .unwrap();
        spec.health.timeout_ms = Some(5);
        let e = t.apply(&Request::EditService(spec)).unwrap_err();
        assert!(e.message.contains("below the floor of 10ms"), "{e}");
    }
}
