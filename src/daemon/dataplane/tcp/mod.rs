//! TCP forwarding (masquerading as a full proxy): accept → schedule →
//! connect (bounded, retried on other servers) → copy both ways until both
//! sides closed, passing each side's FIN on (half-close), under the idle
//! limits of `--set tcp tcpfin udp`.
//!
//! Accounting follows the kernel's director view: a connection is active
//! while established and inactive once either side has closed; `Conns`
//! counts connections bound to a server; packets are the segments the
//! kernel received from and sent to the client (`TCP_INFO` of the client
//! socket), read when the connection ends.
//!
//! [`accept`] runs the listener, [`connect`] schedules and connects (with
//! retries and the sorry server), [`relay`] moves the bytes; passive health
//! (what a connection's end says of the server) is in
//! [`crate::daemon::health::passive`].

pub(crate) mod accept;
pub(crate) mod connect;
pub(crate) mod relay;

pub(crate) use accept::run_listener;
