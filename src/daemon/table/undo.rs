//! Undo and journal deltas: [`Table::apply_undoable`] records how to take a
//! request back ([`Undo`], [`Table::rollback`]) and what it changed
//! ([`Table::deltas`]); [`Table::replay`] applies a journal [`Delta`].

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ctl::proto::{ErrorKind, Request, ServiceKey, Timeouts};

use super::{Change, Service, Table, TableError};

/// How to take back what [`Table::apply_undoable`] did, step by step, and
/// what it changed (for the journal: [`Table::deltas`]). Costs what the
/// change touched, never a copy of the table.
#[derive(Debug, Default)]
pub struct Undo {
    steps: Vec<UndoStep>,
    /// Services whose state before the request is already recorded (or that
    /// the request created): later edits of them need no copy.
    saved: HashSet<ServiceKey>,
}

#[derive(Debug)]
enum UndoStep {
    /// A service was appended: remove the last one.
    Added(ServiceKey),
    /// A service was changed in place: this is how it was.
    Changed(Service),
    /// A service was removed from this position.
    Removed(usize, Service),
    /// The table was cleared: all its services.
    Cleared(Vec<Service>, HashMap<ServiceKey, usize>),
    /// The timeouts were set: these were in effect.
    Timeouts(Timeouts),
}

impl Undo {
    /// Every service the request added, changed or removed (in the order
    /// of its steps, possibly repeated); `None` after a `-C`, which touched
    /// them all.
    pub fn touched(&self) -> Option<Vec<ServiceKey>> {
        let mut out = Vec::with_capacity(self.steps.len());
        for s in &self.steps {
            match s {
                UndoStep::Added(k) => out.push(*k),
                UndoStep::Changed(svc) | UndoStep::Removed(_, svc) => out.push(svc.spec.key),
                UndoStep::Cleared(..) => return None,
                UndoStep::Timeouts(_) => {}
            }
        }
        Some(out)
    }

    /// Services that the request added (each at most once; some may be gone
    /// again by its end).
    pub fn added(&self) -> impl Iterator<Item = &ServiceKey> {
        self.steps.iter().filter_map(|s| match s {
            UndoStep::Added(k) => Some(k),
            _ => None,
        })
    }
}

/// One change of the table as the journal stores it: replaying deltas needs
/// no validation (what was accepted once stays accepted), so a journal
/// written by one version replays the same in the next.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// Replace the service with this key in place, or append it.
    Put(Box<Service>),
    /// Remove the service (nothing when there is none).
    Remove(ServiceKey),
    Clear,
    Timeouts(Timeouts),
}

/// Encodes exactly like [`Delta`] without copying services.
#[derive(Serialize, Debug)]
pub enum DeltaRef<'a> {
    Put(&'a Service),
    Remove(ServiceKey),
    Clear,
    Timeouts(Timeouts),
}

impl Table {
    /// Apply `req` (a batch all or nothing) in place, recording in `undo`
    /// how to take it back ([`Table::rollback`]). On error the table is
    /// unchanged and the error names the failing request of a batch.
    pub fn apply_undoable(
        &mut self,
        req: &Request,
        undo: &mut Undo,
    ) -> Result<Change, (Option<usize>, TableError)> {
        let Request::Batch(reqs) = req else {
            return self.apply_step(req, undo).map_err(|e| (None, e));
        };
        let mark = undo.steps.len();
        for (i, r) in reqs.iter().enumerate() {
            let step = if matches!(r, Request::Batch(_)) {
                Err(TableError::new(
                    ErrorKind::Protocol,
                    "a batch cannot contain a batch",
                ))
            } else {
                self.apply_step(r, undo)
            };
            if let Err(e) = step {
                self.rollback_to(undo, mark);
                return Err((Some(i), e));
            }
        }
        Ok(Change::Table)
    }

    /// One request (not a batch); validates before changing anything.
    fn apply_step(&mut self, req: &Request, undo: &mut Undo) -> Result<Change, TableError> {
        let touched = match req {
            Request::EditService(spec) => Some(spec.key),
            Request::AddServer { service, .. }
            | Request::EditServer { service, .. }
            | Request::DeleteServer { service, .. } => Some(*service),
            _ => None,
        };
        match req {
            Request::AddService(spec) => {
                let change = self.add_service(spec)?;
                undo.saved.insert(spec.key);
                undo.steps.push(UndoStep::Added(spec.key));
                Ok(change)
            }
            Request::DeleteService(key) => {
                let (i, svc) = self.remove_service(key)?;
                undo.steps.push(UndoStep::Removed(i, svc));
                Ok(Change::Table)
            }
            Request::Clear => {
                let services = std::mem::take(&mut self.services);
                let index = std::mem::take(&mut self.index);
                undo.steps.push(UndoStep::Cleared(services, index));
                undo.saved.clear();
                Ok(Change::Table)
            }
            Request::SetTimeouts(t) => {
                let before = self.timeouts;
                let change = self.set_timeouts(t)?;
                undo.steps.push(UndoStep::Timeouts(before));
                Ok(change)
            }
            req => {
                let before = touched
                    .filter(|k| !undo.saved.contains(k))
                    .and_then(|k| self.service(&k).cloned());
                let change = self.apply(req)?;
                if let Some(svc) = before {
                    undo.saved.insert(svc.spec.key);
                    undo.steps.push(UndoStep::Changed(svc));
                }
                Ok(change)
            }
        }
    }

    /// Take back everything `undo` recorded.
    pub fn rollback(&mut self, mut undo: Undo) {
        self.rollback_to(&mut undo, 0);
    }

    fn rollback_to(&mut self, undo: &mut Undo, mark: usize) {
        while undo.steps.len() > mark {
            match undo.steps.pop().expect("a step") {
                UndoStep::Added(key) => {
                    self.index.remove(&key);
                    let last = self.services.pop();
                    debug_assert_eq!(last.map(|s| s.spec.key), Some(key));
                }
                UndoStep::Changed(svc) => {
                    let i = self.index[&svc.spec.key];
                    self.services[i] = svc;
                }
                UndoStep::Removed(i, svc) => {
                    self.services.insert(i, svc);
                    for (j, s) in self.services.iter().enumerate().skip(i) {
                        self.index.insert(s.spec.key, j);
                    }
                }
                UndoStep::Cleared(services, index) => {
                    self.services = services;
                    self.index = index;
                }
                UndoStep::Timeouts(t) => self.timeouts = t,
            }
        }
        // Rebuilt from the steps that remain.
        undo.saved = undo
            .steps
            .iter()
            .filter_map(|s| match s {
                UndoStep::Added(k) => Some(*k),
                UndoStep::Changed(svc) => Some(svc.spec.key),
                _ => None,
            })
            .collect();
    }

    /// What the request recorded in `undo` changed, as journal deltas that
    /// turn the table before it into this one. Each service in its final
    /// state, at most once between removals (so a restore of 110,000 lines
    /// writes each service once); services that did not survive the request
    /// are left out (their removals are no-ops on replay).
    pub fn deltas<'a>(&'a self, undo: &Undo) -> Vec<DeltaRef<'a>> {
        let mut out = Vec::new();
        let mut put: HashSet<ServiceKey> = HashSet::new();
        let mut timeouts = false;
        for step in &undo.steps {
            let key = match step {
                UndoStep::Added(k) => *k,
                UndoStep::Changed(svc) => svc.spec.key,
                UndoStep::Removed(_, svc) => {
                    put.remove(&svc.spec.key);
                    out.push(DeltaRef::Remove(svc.spec.key));
                    continue;
                }
                UndoStep::Cleared(..) => {
                    put.clear();
                    out.push(DeltaRef::Clear);
                    continue;
                }
                UndoStep::Timeouts(_) => {
                    if !timeouts {
                        timeouts = true;
                        out.push(DeltaRef::Timeouts(self.timeouts));
                    }
                    continue;
                }
            };
            if let Some(svc) = self.service(&key) {
                if put.insert(key) {
                    out.push(DeltaRef::Put(svc));
                }
            }
        }
        out
    }

    /// Replay one journal delta (no validation: it was validated when applied).
    pub fn replay(&mut self, delta: Delta) {
        match delta {
            Delta::Put(svc) => match self.index.get(&svc.spec.key) {
                Some(&i) => self.services[i] = *svc,
                None => {
                    self.index.insert(svc.spec.key, self.services.len());
                    self.services.push(*svc);
                }
            },
            Delta::Remove(key) => {
                let _ = self.remove_service(&key);
            }
            Delta::Clear => {
                self.services.clear();
                self.index.clear();
            }
            Delta::Timeouts(t) => self.timeouts = t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{key, server};
    use super::*;
    use crate::ctl::proto::ServiceSpec;

    /// Random batches over a few keys: rolling back restores the table
    /// exactly, and replaying the recorded deltas on the old table gives
    /// the new one (order, contents, timeouts).
    #[test]
    fn undo_and_deltas_match_the_applied_requests() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let keys: Vec<ServiceKey> = (1..=5).map(|i| key(&format!("10.0.0.{i}:80"))).collect();
        let mut table = Table::default();
        let mut applied = 0;
        for round in 0..2000 {
            let n = 1 + rnd(12) as usize;
            // Mostly requests that succeed where they stand in the batch.
            let mut scratch = table.clone();
            let mut reqs: Vec<Request> = Vec::new();
            while reqs.len() < n {
                let r = {
                    let k = keys[rnd(keys.len() as u64) as usize];
                    let srv = server(&format!("10.0.1.{}:80", 1 + rnd(4)), rnd(5) as u32);
                    match rnd(20) {
                        0..=4 => Request::AddService(ServiceSpec::new(k)),
                        5 => {
                            let mut spec = ServiceSpec::new(k);
                            spec.scheduler = "rr".into();
                            Request::EditService(spec)
                        }
                        6..=7 => Request::DeleteService(k),
                        8 if rnd(4) == 0 => Request::Clear,
                        9..=12 => Request::AddServer {
                            service: k,
                            server: srv,
                        },
                        13..=14 => Request::EditServer {
                            service: k,
                            server: srv,
                        },
                        15..=16 => Request::DeleteServer {
                            service: k,
                            server: srv.addr,
                        },
                        17 => Request::SetTimeouts(Timeouts {
                            tcp: 1 + rnd(100) as u32,
                            tcpfin: 0,
                            udp: 7,
                        }),
                        _ => Request::Zero(Some(k)),
                    }
                };
                if scratch.apply(&r).is_ok() || rnd(30) == 0 {
                    reqs.push(r);
                }
            }
            let req = if n == 1 && round % 2 == 0 {
                reqs[0].clone()
            } else {
                Request::Batch(reqs)
            };
            let before = table.clone();
            let mut undo = Undo::default();
            if table.apply_undoable(&req, &mut undo).is_err() {
                assert_eq!(table, before, "round {round}: failed request left a trace");
                continue;
            }
            applied += 1;
            let after = table.clone();
            let deltas: Vec<u8> = crate::ctl::codec::encode_body(&table.deltas(&undo)).unwrap();
            let deltas: Vec<Delta> = crate::ctl::codec::decode_body(&deltas).unwrap();
            let mut replayed = before.clone();
            for d in deltas {
                replayed.replay(d);
            }
            assert_eq!(replayed, after, "round {round}: replay of {req:?}");
            if rnd(3) == 0 {
                table.rollback(undo);
                assert_eq!(table, before, "round {round}: rollback of {req:?}");
            }
        }
        assert!(applied > 500, "only {applied} requests applied");
    }
}
