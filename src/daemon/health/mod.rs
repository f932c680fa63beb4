//! Health checking: which real servers still answer.
//!
//! Active checks run one task per (service, real server): a probe every
//! interval (plus jitter), `rise` consecutive successes bring a down server
//! up, `fall` consecutive failures take an up server down. Passive checks
//! come from real traffic: `--fail-after` consecutive failed connects (or
//! connections the server reset before answering) mark a server down at
//! once (see `passive`); the server's own active check brings it back, after
//! `rise` successes counted from the take-down.
//!
//! A probe or connect that fails for lack of a local resource (descriptors,
//! socket buffers, memory, ephemeral ports) says nothing about the server:
//! it is counted and logged (rate-limited) as a local problem, never as a
//! failure of the server.
//! Every state change is logged once and recorded in the `EventLog` that
//! subscribers (rvstop) read. The data path reads only the `down` atomic.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::ctl::proto::{
    CheckKind, HealthEvent, HealthState, Protocol, RealServerSpec, ServiceKey, ServiceSpec,
};

pub(crate) mod passive;
pub(crate) mod probes;

pub(crate) use probes::{describe_io, is_local_error, local_error, local_errors, local_hint};
pub use probes::{parse_http_response, probe, Failure};

use crate::daemon::state::events::EventLog;
use crate::daemon::state::server::ServerState;

/// A health check with every default resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub jitter: Duration,
    pub target: SocketAddr,
    pub initial_up: bool,
    pub http_path: String,
    pub http_host: Option<String>,
    pub http_status: (u16, u16),
    pub http_body: Option<String>,
    pub exec: String,
    pub udp_send: String,
    pub udp_expect: Option<String>,
}

impl Check {
    /// The check in words, for listings.
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            CheckKind::Http => format!("http GET {}", self.http_path),
            CheckKind::Exec => "exec".to_string(),
            k => k.name().to_string(),
        }
    }
}

/// Resolve a server's effective check: its overrides over the service's
/// defaults over rvs's defaults (TCP services: `tcp_default`, normally a
/// TCP connect, every 2 s, timeout 1 s, fall 3, rise 2; UDP services: none
/// unless configured).
pub(crate) fn resolve(svc: &ServiceSpec, srv: &RealServerSpec, tcp_default: CheckKind) -> Check {
    let h = srv.health.over(&svc.health);
    let default_kind = match svc.key.proto {
        Protocol::Tcp => tcp_default,
        Protocol::Udp => CheckKind::None,
    };
    let target = SocketAddr::new(
        h.addr.unwrap_or(srv.addr.ip()),
        h.port.unwrap_or(srv.addr.port()),
    );
    Check {
        kind: h.kind.unwrap_or(default_kind),
        interval: Duration::from_millis(h.interval_ms.unwrap_or(2000).max(1) as u64),
        timeout: Duration::from_millis(h.timeout_ms.unwrap_or(1000).max(1) as u64),
        rise: h.rise.unwrap_or(2).max(1),
        fall: h.fall.unwrap_or(3).max(1),
        jitter: Duration::from_millis(h.jitter_ms.unwrap_or(0) as u64),
        target,
        initial_up: h.initial_up.unwrap_or(true),
        http_path: h.http_path.unwrap_or_else(|| "/".to_string()),
        http_host: h.http_host,
        http_status: h.http_status.unwrap_or((200, 399)),
        http_body: h.http_body,
        exec: h.exec.unwrap_or_default(),
        udp_send: h.udp_send.unwrap_or_default(),
        udp_expect: h.udp_expect,
    }
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Set a server up or down; on a change log it once and record an event.
/// Returns true when the state changed.
pub(crate) fn mark(
    events: &EventLog,
    svc: ServiceKey,
    addr: SocketAddr,
    state: &ServerState,
    up: bool,
    reason: &str,
) -> bool {
    let was_down = state.down.swap(!up, Relaxed);
    if was_down != up {
        return false;
    }
    let now = Instant::now();
    {
        let mut h = state.health.lock().expect("health lock");
        h.since = now;
        if up {
            h.up_since = now;
        } else {
            h.takedowns += 1;
        }
        h.reason = reason.to_string();
    }
    if up {
        state.connect_failures.store(0, Relaxed);
        state.unanswered.store(0, Relaxed);
        tracing::info!(service = %svc.addr, server = %addr, reason, "real server UP: back in rotation");
    } else {
        tracing::warn!(service = %svc.addr, server = %addr, reason, "real server DOWN: out of rotation");
    }
    events.push(HealthEvent {
        at_ms: unix_ms(),
        service: svc,
        server: addr,
        state: if up {
            HealthState::Up
        } else {
            HealthState::Down
        },
        reason: reason.to_string(),
    });
    true
}

/// What the check loop asks for each probe's verdict: the real `probe`,
/// or in tests, outcomes the test controls.
pub(crate) trait Prober {
    fn probe<'a>(
        &'a mut self,
        check: &'a Check,
    ) -> impl std::future::Future<Output = Result<String, Failure>> + Send + 'a;
}

/// The real probe of the check's kind.
struct Real;

impl Prober for Real {
    fn probe<'a>(
        &'a mut self,
        check: &'a Check,
    ) -> impl std::future::Future<Output = Result<String, Failure>> + Send + 'a {
        probe(check)
    }
}

/// Run `check` for one real server until `stop` fires.
pub(crate) async fn run(
    check: Check,
    svc: ServiceKey,
    addr: SocketAddr,
    state: Arc<ServerState>,
    events: Arc<EventLog>,
    stop: watch::Receiver<bool>,
) {
    run_with(check, svc, addr, state, events, stop, Real).await
}

/// The check loop, its verdicts from `prober`.
async fn run_with(
    check: Check,
    svc: ServiceKey,
    addr: SocketAddr,
    state: Arc<ServerState>,
    events: Arc<EventLog>,
    mut stop: watch::Receiver<bool>,
    mut prober: impl Prober,
) {
    state.checked.store(true, Relaxed);
    state.health.lock().expect("health lock").check = check.describe();
    if !check.initial_up {
        mark(
            &events,
            svc,
            addr,
            &state,
            false,
            "waiting for the first successful check",
        );
    }
    let (mut oks, mut fails) = (0u32, 0u32);
    let mut rng = seed(addr);
    // Take-downs accounted for so far: one more means the server was taken
    // out by passive checks, and its way back starts from zero successes.
    let mut seen = takedowns(&state);
    loop {
        let jitter = if check.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_millis(next(&mut rng) % (check.jitter.as_millis() as u64 + 1))
        };
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(check.interval + jitter) => {}
        }
        let before = takedowns(&state);
        let started = Instant::now();
        let verdict = tokio::select! {
            _ = stop.changed() => break,
            v = prober.probe(&check) => v,
        };
        let latency = started.elapsed();
        let now_downs = {
            let mut h = state.health.lock().expect("health lock");
            match &verdict {
                Ok(what) => {
                    h.last_ok = Some(true);
                    h.reason = what.clone();
                }
                Err(Failure::Server(why)) => {
                    h.last_ok = Some(false);
                    h.reason = why.clone();
                }
                // Says nothing about the server: no result.
                Err(Failure::Local(why, _)) => {
                    h.last_ok = None;
                    h.reason = format!("not checked: {why} (on this host)");
                }
            }
            h.latency_us = Some(latency.as_micros() as u64);
            h.takedowns
        };
        if now_downs != seen {
            oks = 0;
        }
        match verdict {
            Ok(what) => {
                fails = 0;
                // A probe that started before a take-down does not count
                // toward the way back.
                if now_downs == before {
                    oks = oks.saturating_add(1);
                }
                if state.is_down() && oks >= check.rise {
                    mark(&events, svc, addr, &state, true, &what);
                }
            }
            Err(Failure::Server(why)) => {
                oks = 0;
                fails = fails.saturating_add(1);
                if !state.is_down() && fails >= check.fall {
                    mark(&events, svc, addr, &state, false, &why);
                }
            }
            // Neither a success nor a failure: rise and fall stay put.
            Err(Failure::Local(why, hint)) => local_error("health check", addr, &why, hint),
        }
        seen = takedowns(&state);
    }
    state.checked.store(false, Relaxed);
}

fn takedowns(state: &ServerState) -> u64 {
    state.health.lock().expect("health lock").takedowns
}

fn seed(addr: SocketAddr) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    t ^ (addr.port() as u64) << 17 ^ 0x9E37_79B9_7F4A_7C15
}

fn next(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    //! The check loop on tokio's paused clock, its probes' outcomes set by
    //! the test: no sockets, no real time.
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32};
    use tokio::time::Instant as TokioInstant;

    const INTERVAL: Duration = Duration::from_secs(2);

    /// Probes that pass while `ok` is set, counting how many ran.
    #[derive(Clone, Default)]
    struct Script {
        ok: Arc<AtomicBool>,
        probes: Arc<AtomicU32>,
    }

    impl Prober for Script {
        fn probe<'a>(
            &'a mut self,
            _check: &'a Check,
        ) -> impl std::future::Future<Output = Result<String, Failure>> + Send + 'a {
            let ok = self.ok.load(Relaxed);
            self.probes.fetch_add(1, Relaxed);
            async move {
                if ok {
                    Ok("scripted pass".to_string())
                } else {
                    Err(Failure::Server("scripted failure".to_string()))
                }
            }
        }
    }

    fn check(rise: u32, fall: u32, initial_up: bool) -> Check {
        Check {
            kind: CheckKind::Tcp,
            interval: INTERVAL,
            timeout: Duration::from_secs(1),
            rise,
            fall,
            jitter: Duration::ZERO,
            target: "127.0.0.1:9".parse().unwrap(),
            initial_up,
            http_path: "/".to_string(),
            http_host: None,
            http_status: (200, 399),
            http_body: None,
            exec: String::new(),
            udp_send: String::new(),
            udp_expect: None,
        }
    }

    struct Harness {
        script: Script,
        state: Arc<ServerState>,
        events: Arc<EventLog>,
        svc: ServiceKey,
        addr: SocketAddr,
        _stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Harness {
        /// Start the loop; the first probe is due one interval from now.
        async fn start(check: Check, ok: bool) -> Harness {
            let script = Script::default();
            script.ok.store(ok, Relaxed);
            let state = Arc::new(ServerState::new(1));
            let events = Arc::new(EventLog::default());
            let svc = ServiceKey {
                proto: Protocol::Tcp,
                addr: "127.0.0.1:80".parse().unwrap(),
            };
            let addr = check.target;
            let (stop, rx) = watch::channel(false);
            let task = tokio::spawn(run_with(
                check,
                svc,
                addr,
                state.clone(),
                events.clone(),
                rx,
                script.clone(),
            ));
            // Let the loop reach its first sleep.
            while !state.checked.load(Relaxed) {
                tokio::task::yield_now().await;
            }
            tokio::task::yield_now().await;
            Harness {
                script,
                state,
                events,
                svc,
                addr,
                _stop: stop,
                task,
            }
        }

        /// Move the paused clock one interval on and wait for that probe,
        /// answered `ok`, to be judged.
        async fn probe(&self, ok: bool) {
            self.script.ok.store(ok, Relaxed);
            let before = self.script.probes.load(Relaxed);
            tokio::time::advance(INTERVAL).await;
            for _ in 0..100 {
                if self.script.probes.load(Relaxed) > before {
                    // The verdict is judged in the same poll as the probe.
                    return;
                }
                tokio::task::yield_now().await;
            }
            panic!("no probe ran one interval after the last");
        }

        fn down(&self) -> bool {
            self.state.is_down()
        }

        /// Every event so far, as (state, reason).
        fn events(&self) -> Vec<(HealthState, String)> {
            self.events
                .since(0)
                .0
                .into_iter()
                .map(|e| {
                    assert_eq!((e.service, e.server), (self.svc, self.addr));
                    (e.state, e.reason)
                })
                .collect()
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fall_failures_take_down_rise_successes_bring_back() {
        let t0 = TokioInstant::now();
        let h = Harness::start(check(2, 3, true), false).await;
        assert!(!h.down(), "initial_up: up before any probe");
        h.probe(false).await;
        h.probe(false).await;
        assert!(!h.down(), "two failures of fall 3 leave it up");
        assert!(h.events().is_empty());
        h.probe(false).await;
        assert!(h.down(), "the third failure in a row takes it down");
        assert_eq!(t0.elapsed(), INTERVAL * 3, "down after interval x fall");
        {
            let info = h.state.health.lock().unwrap();
            assert_eq!(info.takedowns, 1);
            assert_eq!(info.last_ok, Some(false));
            assert_eq!(info.reason, "scripted failure");
        }
        assert_eq!(
            h.events(),
            vec![(HealthState::Down, "scripted failure".to_string())]
        );

        // More failures while down change nothing.
        h.probe(false).await;
        assert_eq!(h.events().len(), 1);

        let back = TokioInstant::now();
        h.probe(true).await;
        assert!(h.down(), "one success of rise 2 leaves it down");
        h.probe(true).await;
        assert!(!h.down(), "the second success in a row brings it up");
        assert_eq!(back.elapsed(), INTERVAL * 2, "up after interval x rise");
        assert_eq!(h.state.health.lock().unwrap().last_ok, Some(true));
        assert_eq!(
            h.events(),
            vec![
                (HealthState::Down, "scripted failure".to_string()),
                (HealthState::Up, "scripted pass".to_string()),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_not_in_a_row_do_not_take_down() {
        let h = Harness::start(check(2, 3, true), true).await;
        for ok in [true, false, true, false, false, true, false, false, true] {
            h.probe(ok).await;
            assert!(!h.down(), "a success breaks every run of failures");
        }
        assert!(h.events().is_empty());
        // And a success between failures of a down server does not let
        // it back: rise counts successes in a row.
        for _ in 0..3 {
            h.probe(false).await;
        }
        assert!(h.down());
        for ok in [true, false, true, false, true] {
            h.probe(ok).await;
            assert!(h.down(), "no two successes in a row yet");
        }
        h.probe(true).await;
        assert!(!h.down());
        assert_eq!(h.events().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn initial_down_waits_for_rise_successes() {
        let h = Harness::start(check(3, 2, false), true).await;
        assert!(h.down(), "initial_up off: down before any probe");
        assert_eq!(
            h.events(),
            vec![(
                HealthState::Down,
                "waiting for the first successful check".to_string()
            )]
        );
        h.probe(true).await;
        h.probe(true).await;
        assert!(h.down());
        h.probe(true).await;
        assert!(!h.down(), "up after rise (3) successes");
        assert_eq!(h.events()[1].0, HealthState::Up);
    }

    #[tokio::test(start_paused = true)]
    async fn passive_take_down_counts_rise_afresh() {
        let h = Harness::start(check(2, 3, true), true).await;
        for _ in 0..5 {
            h.probe(true).await;
        }
        // What passive health does after --fail-after failed connects.
        assert!(mark(
            &h.events,
            h.svc,
            h.addr,
            &h.state,
            false,
            "3 failed connects"
        ));
        h.probe(true).await;
        assert!(
            h.down(),
            "successes before the take-down do not count toward rise"
        );
        h.probe(true).await;
        assert!(!h.down(), "rise successes after the take-down bring it up");
        assert_eq!(
            h.events(),
            vec![
                (HealthState::Down, "3 failed connects".to_string()),
                (HealthState::Up, "scripted pass".to_string()),
            ]
        );
    }
}
