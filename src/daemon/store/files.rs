//! File helpers: private temp files, atomic replacement, `.bak` copies,
//! reading only regular files, and the directory's `flock`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{StoreError, LOCK_NAME, MAX_STATE_BYTES};

/// Durably replace `path` with `parts`: a private temp file, fsynced,
/// renamed over it, the directory fsynced. Returns the file, open for
/// writing at its end.
pub(super) fn write_atomic(path: &Path, parts: &[&[u8]]) -> std::io::Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = create_temp(dir, &name)?;
    let written = (|| {
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()?;
    Ok(f)
}

/// Keep `data` (a format `version` snapshot of `path`) as
/// `path.v<version>.bak`, or `path.v<version>.<n>.bak` when that name holds
/// other bytes: written to a temp file, fsynced, then hard-linked to the
/// name (which fails if it exists), so a backup is never overwritten and
/// never half-written. Returns the backup's path.
pub(super) fn keep_backup(path: &Path, version: u32, data: &[u8]) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = create_temp(dir, &name)?;
    let kept = (|| {
        f.write_all(data)?;
        f.sync_all()?;
        for n in 0..100 {
            let bak = match n {
                0 => dir.join(format!("{name}.v{version}.bak")),
                n => dir.join(format!("{name}.v{version}.{n}.bak")),
            };
            match fs::hard_link(&tmp, &bak) {
                Ok(()) => return Ok(bak),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Kept by an earlier start that failed to rewrite?
                    let same = fs::symlink_metadata(&bak).is_ok_and(|m| m.is_file())
                        && fs::read(&bak).is_ok_and(|b| b == data);
                    if same {
                        return Ok(bak);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(format!(
            "{name}.v{version}.bak to {name}.v{version}.99.bak all exist; move them aside"
        )))
    })();
    let _ = fs::remove_file(&tmp);
    let bak = kept?;
    File::open(dir)?.sync_all()?;
    Ok(bak)
}

pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// An unpredictable 64-bit value: SipHash with the process's random keys
/// (from the OS) over the time, the pid and a counter. For temp file names
/// and identities, not for cryptography.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A new temp file `.NAME.RANDOM.tmp` in `dir`: `O_CREAT|O_EXCL|O_NOFOLLOW`,
/// mode 0600, so that nothing planted in the directory (a symlink, a file)
/// is ever followed or truncated.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", random_u64()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temp file name")))
}

/// What kind of file `ft` is, for messages.
fn kind_of(ft: &fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read `path` if it is a regular file of at most [`MAX_STATE_BYTES`];
/// `None` when it does not exist. Never follows a symlink, never blocks on
/// a FIFO, never reads a device.
pub(super) fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let read_err = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let not_regular = |ft: &fs::FileType| {
        let mut what = kind_of(ft).to_string();
        if ft.is_symlink() {
            if let Ok(to) = fs::read_link(path) {
                what = format!("{what} (to {})", to.display());
            }
        }
        StoreError::NotRegular {
            path: path.to_path_buf(),
            what,
        }
    };
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => {
            // Reading it fails with EISDIR: say so the usual way.
            return Err(read_err(std::io::Error::from_raw_os_error(libc::EISDIR)));
        }
        Ok(m) if !m.file_type().is_file() => return Err(not_regular(&m.file_type())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    }
    // Checked again on the open file: it may have been swapped meanwhile.
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(StoreError::NotRegular {
                path: path.to_path_buf(),
                what: "a symbolic link".into(),
            })
        }
        Err(e) => return Err(read_err(e)),
    };
    let m = f.metadata().map_err(read_err)?;
    if !m.file_type().is_file() {
        return Err(not_regular(&m.file_type()));
    }
    if m.len() > MAX_STATE_BYTES {
        return Err(StoreError::TooBig {
            path: path.to_path_buf(),
            size: m.len(),
        });
    }
    let mut data = Vec::with_capacity(m.len() as usize);
    (&mut f)
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() as u64 > MAX_STATE_BYTES {
        return Err(StoreError::TooBig {
            path: path.to_path_buf(),
            size: data.len() as u64,
        });
    }
    Ok(Some(data))
}

/// The exclusive lock on a state directory, held for rvsd's life (released
/// by the kernel when the process ends, however it ends).
#[derive(Debug)]
pub struct StateLock {
    _file: nix::fcntl::Flock<File>,
}

/// Take the lock of `dir` (creating the directory, 0700, if needed) or say
/// which rvsd holds it.
pub fn lock(dir: &Path) -> Result<StateLock, String> {
    use nix::fcntl::{Flock, FlockArg};
    create_dir(dir).map_err(|e| format!("cannot create state directory {}: {e}", dir.display()))?;
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut f) => {
            let pid = format!("{}\n", std::process::id());
            let _ = f.set_len(0);
            let _ = f.write_all(pid.as_bytes());
            Ok(StateLock { _file: f })
        }
        Err((mut f, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = f.read_to_string(&mut text);
            let who = match text.trim().parse::<u32>() {
                Ok(pid) => format!("another rvsd (pid {pid})"),
                Err(_) => "another rvsd".to_string(),
            };
            Err(format!(
                "{who} is already using the state directory {} (it holds the lock {}); stop it first, or start this one with --state-dir elsewhere",
                dir.display(),
                path.display()
            ))
        }
        Err((_, e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}
