//! The state file: the table on disk, written before every reply.
//!
//! Layout: 8-byte magic `RVSSTATE`, u32 BE format version, u64 BE FNV-1a
//! checksum of the body, then the body (the control codec's encoding of
//! [`StateFile`]). Writes go to a temp file that is fsynced, renamed over the
//! real file, and the directory fsynced, so a crash leaves either the old or
//! the new table. A file that fails any check is never discarded: rvsd
//! refuses to start and says how to move it aside.
//!
//! Hardening: the temp file has an unpredictable name and is created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600 (the table holds check commands);
//! the state file is read only when it is a regular file of at most
//! [`MAX_STATE_BYTES`]; a symlink, device or FIFO is refused, never followed.
//! [`lock`] takes an exclusive `flock` on `rvsd.lock` in the directory so
//! that two rvsd never share one table.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ctl::codec;
use crate::ctl::proto::Timeouts;

use super::table::{Service, Table};

const MAGIC: &[u8; 8] = b"RVSSTATE";
const FORMAT_VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8;
pub const FILE_NAME: &str = "table.state";
/// The lock file that makes a state directory one rvsd's own.
pub const LOCK_NAME: &str = "rvsd.lock";
/// Largest state file rvsd reads (a 10,000 x 10 table is about 3 MB).
pub const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// Encodes exactly like [`StateFile`] without copying the table.
#[derive(Serialize)]
struct StateRef<'a> {
    services: &'a [Service],
    timeouts: Timeouts,
}

#[derive(Deserialize)]
struct StateFile {
    services: Vec<Service>,
    timeouts: Timeouts,
}

/// Where the table lives on disk.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

/// Why the state file could not be used.
#[derive(Debug)]
pub enum StoreError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Corrupt {
        path: PathBuf,
        why: String,
    },
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A symlink, device, FIFO, socket or directory where the file should be.
    NotRegular {
        path: PathBuf,
        what: String,
    },
    TooBig {
        path: PathBuf,
        size: u64,
    },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Read { path, source } => write!(
                f,
                "cannot read state file {}: {source}; fix its permissions, or move it aside (mv {} {}.bad) to start with an empty table",
                path.display(),
                path.display(),
                path.display()
            ),
            StoreError::Corrupt { path, why } => write!(
                f,
                "state file {} is corrupt ({why}); it was left untouched. Inspect it, restore a backup, or move it aside (mv {} {}.bad) to start with an empty table",
                path.display(),
                path.display(),
                path.display()
            ),
            StoreError::Write { path, source } => {
                write!(f, "cannot write state file {}: {source}", path.display())
            }
            StoreError::NotRegular { path, what } => write!(
                f,
                "state file {} is {what}, not a regular file; it was left untouched and rvsd does not follow it. Put the real state file there, or move it aside (mv {} {}.bad) to start with an empty table",
                path.display(),
                path.display(),
                path.display()
            ),
            StoreError::TooBig { path, size } => write!(
                f,
                "state file {} is {size} bytes, more than the {MAX_STATE_BYTES} bytes rvsd reads; it was left untouched. Check that it is the right file, or move it aside (mv {} {}.bad) to start with an empty table",
                path.display(),
                path.display(),
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            path: dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Load the table; a missing file is an empty table.
    pub fn load(&self) -> Result<Table, StoreError> {
        let data = match read_regular(&self.path)? {
            Some(d) => d,
            None => return Ok(Table::default()),
        };
        let state = decode(&data).map_err(|why| StoreError::Corrupt {
            path: self.path.clone(),
            why,
        })?;
        Ok(Table::from_parts(state.services, state.timeouts))
    }

    /// Durably replace the file with `table`.
    pub fn save(&self, table: &Table) -> Result<(), StoreError> {
        let state = StateRef {
            services: table.services(),
            timeouts: table.timeouts(),
        };
        let body = codec::encode_body(&state).map_err(|e| StoreError::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        header.extend_from_slice(&fnv1a(&body).to_be_bytes());
        self.write_atomic(&[&header, &body])
            .map_err(|source| StoreError::Write {
                path: self.path.clone(),
                source,
            })
    }

    fn write_atomic(&self, parts: &[&[u8]]) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_dir(dir)?;
        let (tmp, mut f) = create_temp(dir, FILE_NAME)?;
        let written = (|| {
            for part in parts {
                f.write_all(part)?;
            }
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        File::open(dir)?.sync_all()
    }
}

/// Create the state directory (0700 when rvsd creates it).
fn create_dir(dir: &Path) -> std::io::Result<()> {
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
fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
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

fn decode(data: &[u8]) -> Result<StateFile, String> {
    if data.len() < HEADER || &data[..8] != MAGIC {
        return Err("not an rvs state file (bad magic)".into());
    }
    let version = u32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this rvsd reads version {FORMAT_VERSION}"
        ));
    }
    let sum = u64::from_be_bytes(data[12..20].try_into().expect("8 bytes"));
    let body = &data[HEADER..];
    if fnv1a(body) != sum {
        return Err("checksum mismatch".into());
    }
    codec::decode_body(body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::proto::{Protocol, Request, ServiceKey, ServiceSpec};

    #[test]
    fn save_load_and_corruption() {
        let dir = std::env::temp_dir().join(format!("rvs-store-test-{}", std::process::id()));
        let store = Store::new(&dir);
        let mut t = Table::default();
        let k = ServiceKey {
            proto: Protocol::Udp,
            addr: "127.0.0.1:53".parse().unwrap(),
        };
        t.apply(&Request::AddService(ServiceSpec::new(k))).unwrap();
        store.save(&t).unwrap();
        assert_eq!(store.load().unwrap(), t);
        let mut raw = fs::read(store.path()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        fs::write(store.path(), &raw).unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains("mv "),
            "{err}"
        );
        assert_eq!(
            fs::read(store.path()).unwrap(),
            raw,
            "corrupt file left untouched"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
