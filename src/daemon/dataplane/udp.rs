//! UDP forwarding: one flow per client address, each with its own upstream
//! socket connected to the chosen real server, expiring after the `udp` idle
//! limit. With one-packet scheduling (`-o`) every datagram is scheduled on
//! its own; flows are then kept per (client, real server) so that replies
//! still find their way back.
//!
//! Accounting: every flow counts as one inactive connection (the kernel
//! never marks UDP entries active); InPkts/OutPkts and bytes are counted per
//! datagram; Conns counts flows, or datagrams under `-o` — only those
//! forwarded: a datagram dropped because the UDP flow cap is reached
//! (`--max-udp-flows`, apart from the TCP cap; with more than one UDP
//! service, one may hold at most three quarters of it) counts nowhere but
//! in the rate-limited log line. A flow the real server has not answered yet
//! expires after `--udp-unreplied-timeout` (a spoofed-source flood holds
//! its flows that long, not for the whole `udp` timeout).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::sys;
use crate::daemon::sched::Dest;
use crate::daemon::service::{overload_on_bind, overload_on_unbind, ServiceRt};
use crate::daemon::state::conns::{ConnInfo, ConnState, FlowGuard};
use crate::daemon::state::counters::Counters;
use crate::daemon::state::now_ms;
use crate::daemon::state::shared::Shared;

type FlowKey = (SocketAddr, Option<SocketAddr>);

struct Flow {
    upstream: Arc<UdpSocket>,
    info: Arc<ConnInfo>,
    closed: Arc<AtomicBool>,
    dest: usize,
}

/// Receive loop of one UDP virtual service.
pub(crate) async fn run_listener(
    sock: std::net::UdpSocket,
    slot: Arc<ArcSwap<ServiceRt>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let sock = match UdpSocket::from_std(sock) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot register UDP socket");
            return;
        }
    };
    let mut flows: HashMap<FlowKey, Flow> = HashMap::new();
    let mut slow: Vec<(Vec<u8>, SocketAddr, FlowKey)> = Vec::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = sweep.tick() => flows.retain(|_, f| !f.closed.load(Relaxed)),
            r = sock.readable() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
                // Take what is queued, a batch per recvmmsg (bounded, to
                // let the other branches in). Datagrams of live flows go on
                // at once; those that need a new flow, or meet a full
                // upstream socket, are copied and handled after the batch
                // (and so are later datagrams of their flow, to keep order).
                let rt = slot.load_full();
                for _ in 0..ROUNDS {
                    let got = BATCH_BUF.with_borrow_mut(|b| {
                        let n = recv_batch(&sock, b)?;
                        for i in 0..n {
                            let Some(client) = b.source(i) else { continue };
                            let data = b.datagram(i);
                            let Some(key) = flow_key(client, &rt) else { continue };
                            if slow.iter().any(|(_, _, k)| *k == key)
                                || !forward_on_flow(data, key, &rt, &flows)
                            {
                                slow.push((data.to_vec(), client, key));
                            }
                        }
                        Ok::<_, std::io::Error>(n)
                    });
                    for (data, client, key) in slow.drain(..) {
                        datagram(&data, client, key, &rt, &sock, &shared, &mut flows).await;
                    }
                    match got {
                        Ok(n) if n == sys::BATCH => {}
                        Ok(_) => break,
                        Err(e) => {
                            if e.kind() != std::io::ErrorKind::WouldBlock {
                                tracing::debug!(error = %e, "UDP receive failed");
                            }
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Batches taken per readiness event before looking at timers and stop.
const ROUNDS: usize = 2;

thread_local! {
    /// Datagram buffers shared by every UDP socket on this thread, used
    /// only between two awaits: a flow holds no buffer while it waits.
    static BATCH_BUF: std::cell::RefCell<sys::Batch> = std::cell::RefCell::new(sys::Batch::default());
}

/// One recvmmsg on `sock`. A short batch means the queue is empty: it
/// clears the socket's readiness like EAGAIN would (saving the call that
/// would only say so). Err(WouldBlock) when nothing was queued.
fn recv_batch(sock: &UdpSocket, b: &mut sys::Batch) -> std::io::Result<usize> {
    let mut got = 0;
    let r = sock.try_io(Interest::READABLE, || {
        got = b.recv(sock)?;
        if got < sys::BATCH {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        Ok(got)
    });
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        r => r,
    }
}

/// The flow a client's datagram belongs to; under `-o` the datagram is
/// scheduled here (and counted as a connection once forwarded, in
/// `count_in`). `None`: no server.
fn flow_key(client: SocketAddr, rt: &ServiceRt) -> Option<FlowKey> {
    if !rt.spec.ops {
        return Some((client, None));
    }
    let pick = rt.schedule(client, &[])?;
    if let Some(net) = pick.template {
        rt.release_template(net, false);
    }
    Some((client, Some(rt.dests[pick.index].addr)))
}

/// Send a datagram on its flow's upstream socket now, if the flow is live
/// and the socket takes it; false when it needs `datagram`.
fn forward_on_flow(
    data: &[u8],
    key: FlowKey,
    rt: &ServiceRt,
    flows: &HashMap<FlowKey, Flow>,
) -> bool {
    let Some(flow) = flows.get(&key).filter(|f| !f.closed.load(Relaxed)) else {
        return false;
    };
    match flow.upstream.try_send(data) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
        Ok(_) => {
            count_in(flow, data.len(), rt);
            true
        }
    }
}

fn count_in(flow: &Flow, n: usize, rt: &ServiceRt) {
    flow.info.touch();
    let dest = rt.dests.get(flow.dest).map(|d| &d.state.counters);
    for c in std::iter::once(&rt.state.counters).chain(dest) {
        c.add_in(1, n as u64);
        // Under `-o` every datagram forwarded is a connection.
        if rt.spec.ops {
            c.add_conn();
        }
    }
}

/// The slow path of a datagram: open its flow if need be, and wait for
/// room on the upstream socket.
async fn datagram(
    data: &[u8],
    client: SocketAddr,
    key: FlowKey,
    rt: &Arc<ServiceRt>,
    sock: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    flows: &mut HashMap<FlowKey, Flow>,
) {
    let live = flows.get(&key).is_some_and(|f| !f.closed.load(Relaxed));
    if !live {
        let Some(flow) = open_flow(client, key.1, rt, sock, shared).await else {
            return;
        };
        flows.insert(key, flow);
    }
    let flow = flows.get(&key).expect("inserted above");
    let sent = match flow.upstream.try_send(data) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => flow.upstream.send(data).await,
        r => r,
    };
    if sent.is_ok() {
        count_in(flow, data.len(), rt);
    }
}

/// Schedule (unless `-o` already chose `fixed`), connect an upstream socket
/// and start the task that relays replies and expires the flow.
async fn open_flow(
    client: SocketAddr,
    fixed: Option<SocketAddr>,
    rt: &Arc<ServiceRt>,
    sock: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
) -> Option<Flow> {
    // `SORRY` stands for the sorry server, used only when no real server is available.
    const SORRY: usize = usize::MAX;
    // The flow's permit first: a datagram over the cap is dropped before
    // it is scheduled, given a socket or counted anywhere.
    let mine = rt.state.live.load(Relaxed) < shared.udp_per_service.load(Relaxed);
    let permit = shared
        .budget
        .udp
        .clone()
        .try_acquire_owned()
        .ok()
        .filter(|_| mine);
    let Some(permit) = permit else {
        if let Some(n) = shared.udp_refused.hit() {
            tracing::warn!(
                service = %rt.spec.key.addr,
                dropped = n,
                service_flows = rt.state.live.load(Relaxed),
                "UDP flow cap reached (of the daemon, or the service's share): datagrams from new clients dropped (count since the last such line; --max-udp-flows, RLIMIT_NOFILE)"
            );
        }
        return None;
    };
    let (index, template) = match fixed {
        Some(addr) => (rt.dests.iter().position(|d| d.addr == addr)?, None),
        None => match rt.schedule(client, &[]) {
            Some(pick) => (pick.index, pick.template),
            None if rt.sorry.is_some() => (SORRY, None),
            None => return None,
        },
    };
    let target = |rt: &ServiceRt, i: usize| -> Dest {
        if i == SORRY {
            rt.sorry.clone().expect("sorry server configured")
        } else {
            rt.dests[i].clone()
        }
    };
    let dest = &target(rt, index);
    let local: SocketAddr = match dest.addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let release = || {
        if let Some(net) = template {
            rt.release_template(net, false);
        }
    };
    let upstream = match UdpSocket::bind(local).await {
        Ok(u) => u,
        Err(e) => {
            if let Some(n) = shared.udp_open_failed.hit() {
                tracing::warn!(error = %e, failures = n, "cannot open upstream UDP socket (count since the last such line)");
            }
            release();
            return None;
        }
    };
    if let Err(e) = upstream.connect(dest.addr).await {
        tracing::debug!(server = %dest.addr, error = %e, "UDP connect failed");
        release();
        return None;
    }
    if fixed.is_none() {
        rt.state.counters.add_conn();
        dest.state.counters.add_conn();
    }
    let upstream = Arc::new(upstream);
    let info = Arc::new(ConnInfo::new(client, dest.addr, ConnState::Udp));
    let closed = Arc::new(AtomicBool::new(false));
    let flow = Flow {
        upstream: upstream.clone(),
        info: info.clone(),
        closed: closed.clone(),
        dest: index,
    };
    // Counted here, not in the task: the next datagram of this batch
    // must see this flow in the service's share.
    let live = FlowGuard::new(shared, &rt.state);
    let (rt, sock, shared) = (rt.clone(), sock.clone(), shared.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let _live = live;
        let dest = &target(&rt, index);
        let _reg = rt.state.register(info.clone());
        dest.state.inactive.fetch_add(1, Relaxed);
        overload_on_bind(dest);
        let counters = [&rt.state.counters, &dest.state.counters];
        relay_replies(&upstream, &sock, client, &info, &counters, &shared).await;
        closed.store(true, Relaxed);
        dest.state.inactive.fetch_sub(1, Relaxed);
        overload_on_unbind(dest);
        if let Some(net) = template {
            rt.release_template(net, false);
        }
    });
    Some(flow)
}

/// Send the server's replies back to the client until the flow is idle for
/// the `udp` limit.
async fn relay_replies(
    upstream: &UdpSocket,
    sock: &UdpSocket,
    client: SocketAddr,
    info: &ConnInfo,
    counters: &[&Counters; 2],
    shared: &Shared,
) {
    // Until the server answers, a flow may idle only the (shorter)
    // unreplied limit.
    let mut answered = false;
    let limit =
        |answered: bool| idle_limit_ms(answered, shared.timeouts.udp_ms(), shared.udp_unreplied_ms);
    // One timer for the flow's life, moved on only when it fires.
    let idle = tokio::time::sleep(Duration::from_millis(limit(false)));
    let mut idle = std::pin::pin!(idle);
    loop {
        tokio::select! {
            biased;
            r = upstream.readable() => {
                if let Err(e) = r {
                    tracing::debug!(client = %client, error = %e, "UDP upstream error: flow closed");
                    return;
                }
                // A batch of replies per recvmmsg, out to the client in
                // one sendmmsg; what the client socket cannot take now is
                // copied and sent after a wait.
                for _ in 0..ROUNDS {
                    let r = BATCH_BUF.with_borrow_mut(|b| {
                        let n = recv_batch(upstream, b)?;
                        let (sent, done) = b.send_to(sock, 0..n, client);
                        counted(info, counters, sent, (0..sent).map(|i| b.datagram(i).len()).sum());
                        let pending: Vec<Vec<u8>> = (done..n).map(|i| b.datagram(i).to_vec()).collect();
                        Ok::<_, std::io::Error>((n, pending))
                    });
                    match r {
                        Ok((n, pending)) => {
                            answered |= n > 0;
                            for p in pending {
                                if sock.send_to(&p, client).await.is_ok() {
                                    counted(info, counters, 1, p.len());
                                }
                            }
                            if n < sys::BATCH {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        // ICMP port unreachable and the like: end the flow so the
                        // next datagram is scheduled afresh.
                        Err(e) => {
                            tracing::debug!(client = %client, error = %e, "UDP upstream error: flow closed");
                            return;
                        }
                    }
                }
            }
            _ = &mut idle => {
                let quiet = now_ms().saturating_sub(info.last.load(Relaxed));
                match idle_left_ms(limit(answered), quiet) {
                    None => return,
                    Some(left) => idle.as_mut()
                        .reset(tokio::time::Instant::now() + Duration::from_millis(left)),
                }
            }
        }
    }
}

/// How long a flow may idle: the `udp` timeout once the server has
/// answered, until then at most the unreplied limit.
fn idle_limit_ms(answered: bool, udp_ms: u64, unreplied_ms: u64) -> u64 {
    if answered {
        udp_ms
    } else {
        udp_ms.min(unreplied_ms)
    }
}

/// When the flow's idle timer fires: `None` if it has been quiet for its
/// whole limit (it expires), else how much longer it may stay quiet.
fn idle_left_ms(limit_ms: u64, quiet_ms: u64) -> Option<u64> {
    limit_ms.checked_sub(quiet_ms).filter(|&left| left > 0)
}

fn counted(info: &ConnInfo, counters: &[&Counters; 2], datagrams: usize, bytes: usize) {
    if datagrams == 0 {
        return;
    }
    info.touch();
    for c in counters {
        c.add_out(datagrams as u64, bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::{idle_left_ms, idle_limit_ms};

    /// A flow's life as `relay_replies` runs it: the timer fires after the
    /// limit, and again after what is left, until the flow has been quiet
    /// for its whole limit. Returns when it expires (ms after its last
    /// datagram, which came at 0), the replies arriving at `replies` (ms).
    fn expires_at(udp_ms: u64, unreplied_ms: u64, replies: &[u64]) -> u64 {
        let (mut answered, mut last) = (false, 0);
        let mut fire = idle_limit_ms(false, udp_ms, unreplied_ms);
        // Bounded: a timer that keeps firing without the flow expiring
        // is a failure, not a hang.
        for _ in 0..100 {
            for &r in replies.iter().filter(|&&r| r <= fire) {
                answered = true;
                last = last.max(r);
            }
            match idle_left_ms(idle_limit_ms(answered, udp_ms, unreplied_ms), fire - last) {
                None => return fire,
                Some(left) => fire += left,
            }
        }
        panic!("the flow's idle timer fired 100 times without expiring it");
    }

    #[test]
    fn unanswered_flow_expires_after_the_unreplied_limit() {
        assert_eq!(idle_limit_ms(false, 300_000, 5_000), 5_000);
        assert_eq!(expires_at(300_000, 5_000, &[]), 5_000);
        // The unreplied limit is at most the udp timeout.
        assert_eq!(idle_limit_ms(false, 3_000, 5_000), 3_000);
        assert_eq!(expires_at(3_000, 5_000, &[]), 3_000);
    }

    #[test]
    fn answered_flow_expires_after_the_udp_timeout() {
        assert_eq!(idle_limit_ms(true, 300_000, 5_000), 300_000);
        // A reply at 1 s: the flow lives until 300 s after it.
        assert_eq!(expires_at(300_000, 5_000, &[1_000]), 301_000);
        // A reply just before the unreplied limit keeps it.
        assert_eq!(expires_at(300_000, 5_000, &[5_000]), 305_000);
    }

    #[test]
    fn timer_firing_early_waits_for_the_rest() {
        assert_eq!(idle_left_ms(5_000, 5_000), None);
        assert_eq!(idle_left_ms(5_000, 6_000), None);
        assert_eq!(idle_left_ms(5_000, 1_000), Some(4_000));
        assert_eq!(idle_left_ms(5_000, 0), Some(5_000));
    }
}
