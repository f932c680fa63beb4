//! Who may do what on the control socket: peer credentials, the socket's
//! group, and the extra rule for exec health checks.

use crate::ctl::proto::Request;

/// Who is on the other end of a control connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) pid: Option<i32>,
}

/// Who may change the table: root, the daemon's own uid, members of `--socket-group`.
#[derive(Debug)]
pub(crate) struct Auth {
    pub(crate) daemon_uid: u32,
    pub(crate) group: Option<(String, u32)>,
}

impl Auth {
    /// Root or rvsd's own uid: may set exec checks, and may use the reserved
    /// client slots.
    pub(crate) fn is_admin(&self, peer: &Peer) -> bool {
        peer.uid == 0 || peer.uid == self.daemon_uid
    }

    pub(crate) fn may_mutate(&self, peer: &Peer) -> bool {
        if self.is_admin(peer) {
            return true;
        }
        let Some((_, gid)) = &self.group else {
            return false;
        };
        if peer.gid == *gid {
            return true;
        }
        member_of(peer.uid, *gid)
    }

    pub(crate) fn denied(&self, req: &Request) -> String {
        let who = match &self.group {
            Some((name, _)) => format!("root or group {name}"),
            None => "root (or start rvsd with --socket-group to delegate)".to_string(),
        };
        format!("permission denied: {} needs {who}", op_name(req))
    }

    /// Refusal of an exec check from a delegated (`--socket-group`) client.
    pub(crate) fn exec_denied(&self, req: &Request, peer: &Peer) -> String {
        format!(
            "permission denied: {} with an exec health check (--check exec / --check-exec): exec checks run their command as rvsd's user, so only root or rvsd's own uid ({}) may set them, not uid {}; use --check tcp, http or udp, or ask an administrator",
            op_name(req),
            self.daemon_uid,
            peer.uid
        )
    }
}

/// Does `hc` configure an exec check (kind exec, or a command)?
fn sets_exec(hc: &crate::ctl::proto::HealthCheck) -> bool {
    hc.kind == Some(crate::ctl::proto::CheckKind::Exec) || hc.exec.is_some()
}

/// Where `req` sets an exec check: `Some(None)` in the request itself,
/// `Some(Some(i))` in change `i` of a batch, `None` nowhere.
pub(crate) fn exec_check_in(req: &Request) -> Option<Option<u32>> {
    match req {
        Request::AddService(spec) | Request::EditService(spec) => {
            sets_exec(&spec.health).then_some(None)
        }
        Request::AddServer { server, .. } | Request::EditServer { server, .. } => {
            sets_exec(&server.health).then_some(None)
        }
        Request::Batch(reqs) => reqs
            .iter()
            .position(|r| exec_check_in(r).is_some())
            .map(|i| Some(i as u32)),
        _ => None,
    }
}

fn member_of(uid: u32, gid: u32) -> bool {
    use nix::unistd::{getgrouplist, Gid, Uid, User};
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    getgrouplist(&name, user.gid)
        .map(|gs| gs.contains(&Gid::from_raw(gid)))
        .unwrap_or(false)
}

/// Resolve `--socket-group NAME` to its gid.
pub(crate) fn group_gid(name: &str) -> Result<u32, String> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!(
            "--socket-group {name}: no such group (create it with groupadd {name})"
        )),
        Err(e) => Err(format!("--socket-group {name}: {e}")),
    }
}

/// The ipvsadm command a request stands for, for messages and the audit log.
pub(crate) fn op_name(req: &Request) -> &'static str {
    match req {
        Request::Hello { .. } => "hello",
        Request::AddService(_) => "add-service (-A)",
        Request::EditService(_) => "edit-service (-E)",
        Request::DeleteService(_) => "delete-service (-D)",
        Request::Clear => "flush (-C)",
        Request::AddServer { .. } => "add-server (-a)",
        Request::EditServer { .. } => "edit-server (-e)",
        Request::DeleteServer { .. } => "delete-server (-d)",
        Request::Zero(_) => "zero (-Z)",
        Request::SetTimeouts(_) => "set (--set)",
        Request::List(_) => "list (-L)",
        Request::ListConnections => "list connections (-L -c)",
        Request::GetTimeouts => "list timeouts (--timeout)",
        Request::Batch(_) => "restore (-R)",
        Request::Subscribe { .. } => "subscribe",
    }
}

pub(super) fn summary(req: &Request) -> String {
    match req {
        Request::Batch(reqs) => format!("restore (-R) of {} changes", reqs.len()),
        other => format!("{other:?}"),
    }
}
