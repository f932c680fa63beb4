//! UDP forwarding: one flow per client address, each with its own upstream
//! socket connected to the chosen real server, expiring after the `udp` idle
//! limit. With one-packet scheduling (`-o`) every datagram is scheduled on
//! its own; flows are then kept per (client, real server) so that replies
//! still find their way back.
//!
//! Accounting: every flow counts as one inactive connection (the kernel
//! never marks UDP entries active); InPkts/OutPkts and bytes are counted per
//! datagram; Conns counts flows, or datagrams under `-o`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::dataplane::Shared;
use super::runtime::{
    now_ms, overload_on_bind, overload_on_unbind, ConnInfo, ConnState, ServiceRt,
};
use super::sched::Dest;
use super::stats::Counters;

type FlowKey = (SocketAddr, Option<SocketAddr>);

struct Flow {
    upstream: Arc<UdpSocket>,
    info: Arc<ConnInfo>,
    closed: Arc<AtomicBool>,
    dest: usize,
}

/// Receive loop of one UDP virtual service.
pub async fn run_listener(
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
    let mut buf = vec![0u8; 65536];
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
                // Take what is queued (bounded, to let the other branches in).
                let rt = slot.load_full();
                for _ in 0..BATCH {
                    match sock.try_recv_from(&mut buf) {
                        Ok((n, client)) => {
                            datagram(&buf[..n], client, &rt, &sock, &shared, &mut flows).await;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "UDP receive failed");
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Datagrams taken per readiness event before looking at timers and stop.
const BATCH: usize = 64;

thread_local! {
    /// Receive buffer for replies, shared by every flow on this thread: a
    /// flow holds no buffer while it waits.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; 65536].into_boxed_slice());
}

async fn datagram(
    data: &[u8],
    client: SocketAddr,
    rt: &Arc<ServiceRt>,
    sock: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    flows: &mut HashMap<FlowKey, Flow>,
) {
    let key: FlowKey = if rt.spec.ops {
        let Some(pick) = rt.schedule(client, &[]) else {
            return;
        };
        if let Some(net) = pick.template {
            rt.release_template(net, false);
        }
        rt.state.counters.conns.fetch_add(1, Relaxed);
        rt.dests[pick.index]
            .state
            .counters
            .conns
            .fetch_add(1, Relaxed);
        (client, Some(rt.dests[pick.index].addr))
    } else {
        (client, None)
    };
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
        flow.info.touch();
        let dest = rt.dests.get(flow.dest).map(|d| &d.state.counters);
        for c in std::iter::once(&rt.state.counters).chain(dest) {
            c.inpkts.fetch_add(1, Relaxed);
            c.inbytes.fetch_add(data.len() as u64, Relaxed);
        }
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
    let upstream = match UdpSocket::bind(local).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open upstream UDP socket");
            return None;
        }
    };
    if let Err(e) = upstream.connect(dest.addr).await {
        tracing::debug!(server = %dest.addr, error = %e, "UDP connect failed");
        return None;
    }
    if fixed.is_none() {
        rt.state.counters.conns.fetch_add(1, Relaxed);
        dest.state.counters.conns.fetch_add(1, Relaxed);
    }
    let permit = shared.conn_limit.clone().try_acquire_owned().ok()?;
    let upstream = Arc::new(upstream);
    let info = Arc::new(ConnInfo::new(client, dest.addr, ConnState::Udp));
    let closed = Arc::new(AtomicBool::new(false));
    let flow = Flow {
        upstream: upstream.clone(),
        info: info.clone(),
        closed: closed.clone(),
        dest: index,
    };
    let (rt, sock, shared) = (rt.clone(), sock.clone(), shared.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let dest = &target(&rt, index);
        let _reg = rt.state.register(info.clone());
        shared.live.fetch_add(1, Relaxed);
        dest.state.inactive.fetch_add(1, Relaxed);
        overload_on_bind(dest);
        let counters = [&rt.state.counters, &dest.state.counters];
        relay_replies(&upstream, &sock, client, &info, &counters, &shared).await;
        closed.store(true, Relaxed);
        dest.state.inactive.fetch_sub(1, Relaxed);
        overload_on_unbind(dest);
        shared.live.fetch_sub(1, Relaxed);
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
    // One timer for the flow's life, moved on only when it fires.
    let idle = tokio::time::sleep(Duration::from_millis(shared.timeouts.udp_ms()));
    let mut idle = std::pin::pin!(idle);
    loop {
        tokio::select! {
            biased;
            r = upstream.readable() => {
                if let Err(e) = r {
                    tracing::debug!(client = %client, error = %e, "UDP upstream error: flow closed");
                    return;
                }
                for _ in 0..BATCH {
                    match relay_one(upstream, sock, client, info, counters) {
                        Ok(Some(pending)) => {
                            // The client socket is full: wait for it with this datagram.
                            let n = pending.len();
                            if sock.send_to(&pending, client).await.is_ok() {
                                counted(info, counters, n);
                            }
                        }
                        Ok(None) => {}
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
                let limit = shared.timeouts.udp_ms();
                let quiet = now_ms().saturating_sub(info.last.load(Relaxed));
                if quiet >= limit {
                    return;
                }
                idle.as_mut()
                    .reset(tokio::time::Instant::now() + Duration::from_millis(limit - quiet));
            }
        }
    }
}

/// Pass one queued reply on to the client. Returns the datagram when the
/// client socket cannot take it now (to be sent after a wait).
fn relay_one(
    upstream: &UdpSocket,
    sock: &UdpSocket,
    client: SocketAddr,
    info: &ConnInfo,
    counters: &[&Counters; 2],
) -> std::io::Result<Option<Vec<u8>>> {
    SCRATCH.with_borrow_mut(|buf| {
        let n = upstream.try_recv(buf)?;
        match sock.try_send_to(&buf[..n], client) {
            Ok(_) => {
                counted(info, counters, n);
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Some(buf[..n].to_vec())),
            Err(_) => Ok(None),
        }
    })
}

fn counted(info: &ConnInfo, counters: &[&Counters; 2], n: usize) {
    info.touch();
    for c in counters {
        c.outpkts.fetch_add(1, Relaxed);
        c.outbytes.fetch_add(n as u64, Relaxed);
    }
}
