//! The control socket's path: checks before binding, binding with the
//! right mode and group, and the default state directory.

use std::path::{Path, PathBuf};

/// Check where the control socket goes, before rvsd touches any port:
/// prepare its directory ([`socket_dir`]) and refuse when a live rvsd
/// answers on it or when something other than a socket sits at the path.
pub(crate) fn check_socket_path(path: &Path, mode: u32) -> Result<(), String> {
    socket_dir(path, mode)?;
    stale_socket(path).map(|_| ())
}

/// Create the control socket: refuse when a live rvsd answers on it or the
/// path holds anything but a socket, replace a stale socket, mode `mode`,
/// group `--socket-group`.
pub(crate) fn bind_socket(
    path: &Path,
    mode: u32,
    group: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, String> {
    use std::os::unix::fs::PermissionsExt;
    socket_dir(path, mode)?;
    if stale_socket(path)? {
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
        tracing::info!(socket = %path.display(), "replaced a stale socket file");
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot bind control socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode of {}: {e}", path.display()))?;
    if let Some(gid) = group {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(|e| format!("cannot give {} to the socket group: {e}", path.display()))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("control socket: {e}"))?;
    Ok(listener)
}

/// What sits at the socket path: `Ok(false)` nothing, `Ok(true)` a stale
/// socket (safe to unlink), `Err` a live rvsd or anything that is not a
/// socket (a typo such as `--socket /var/lib/rvs/table.state` must never
/// delete the file).
fn stale_socket(path: &Path) -> Result<bool, String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    };
    let ft = meta.file_type();
    if !ft.is_socket() {
        let what = if ft.is_file() {
            format!("a regular file of {} bytes", meta.len())
        } else if ft.is_dir() {
            "a directory".to_string()
        } else if ft.is_symlink() {
            "a symbolic link".to_string()
        } else {
            "not a socket".to_string()
        };
        return Err(format!(
            "--socket {} is {what}, not a socket: refusing to replace it (point --socket at a new path, or remove the file yourself if it is not needed)",
            path.display()
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "another rvsd is already running on {} (stop it first, or start this one with --socket elsewhere)",
            path.display()
        ));
    }
    Ok(true)
}

/// Make sure the socket's directory exists and that nobody else can swap
/// the socket in it.
///
/// * A directory rvsd creates gets mode 0700, or 0711 when `--socket-mode`
///   lets group or others connect (they may traverse, not list or write).
/// * The default directories (`/run/rvs`, `$XDG_RUNTIME_DIR/rvs`,
///   `/tmp/rvs-$UID`) must be a real directory owned by rvsd's uid and not
///   writable by group or others (as ssh-agent and tmux insist): another
///   user could pre-create `/tmp/rvs-$UID` and receive our clients' commands.
/// * For an explicit `--socket` in an existing directory the operator chose,
///   a world-writable directory without the sticky bit is refused (anyone
///   could replace the socket); a sticky one such as `/tmp` is accepted.
fn socket_dir(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let dir_mode = if mode & 0o077 != 0 { 0o711 } else { 0o700 };
    let created = match std::fs::DirBuilder::new().mode(dir_mode).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(dir_mode)
                .recursive(true)
                .create(dir)
                .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
            true
        }
        Err(e) => {
            return Err(format!(
                "cannot create socket directory {}: {e}",
                dir.display()
            ))
        }
    };
    if created {
        tracing::info!(dir = %dir.display(), mode = format!("{dir_mode:o}"), "created the socket directory");
    }
    let is_default = path == crate::ctl::default_socket_path();
    let meta = if is_default {
        std::fs::symlink_metadata(dir)
    } else {
        std::fs::metadata(dir)
    }
    .map_err(|e| format!("cannot inspect socket directory {}: {e}", dir.display()))?;
    let fix = "remove it (or fix its owner and mode) or point --socket elsewhere";
    if !meta.is_dir() {
        return Err(format!(
            "socket directory {} is not a directory (a symbolic link?): {fix}",
            dir.display()
        ));
    }
    let bits = meta.mode() & 0o7777;
    if is_default {
        let uid = nix::unistd::geteuid().as_raw();
        if meta.uid() != uid {
            return Err(format!(
                "socket directory {} belongs to uid {}, not to rvsd's uid {uid}: another user may have created it to receive rvsadm's commands; {fix}",
                dir.display(),
                meta.uid()
            ));
        }
        if bits & 0o022 != 0 {
            return Err(format!(
                "socket directory {} is writable by group or others (mode {bits:04o}): anyone who can write there can replace the socket; {fix}",
                dir.display()
            ));
        }
    } else if bits & 0o002 != 0 && bits & 0o1000 == 0 {
        return Err(format!(
            "socket directory {} is writable by everyone and not sticky (mode {bits:04o}): anyone could replace the socket; {fix}",
            dir.display()
        ));
    }
    Ok(())
}

/// Default state directory: `/var/lib/rvs` as root, else `$XDG_STATE_HOME/rvs`
/// or `~/.local/state/rvs`.
pub fn default_state_dir() -> PathBuf {
    if nix::unistd::getuid().is_root() {
        return PathBuf::from("/var/lib/rvs");
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("rvs");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/rvs"),
        None => PathBuf::from(format!("/tmp/rvs-{}/state", nix::unistd::getuid().as_raw())),
    }
}
