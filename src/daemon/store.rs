//! The table on disk: a snapshot (`table.state`) and a journal of the
//! changes since (`table.journal`). Every change is appended to the journal
//! and fsynced before the reply, so it costs what it changed, not the size
//! of the table; when the journal outgrows the snapshot (and at start and
//! clean shutdown) both are rewritten ("compaction").
//!
//! Snapshot: 8-byte magic `RVSSTATE`, u32 BE format version, u64 BE FNV-1a
//! checksum of the body, then the body (the control codec's encoding of
//! [`StateFile`]: a random id, the id of the snapshot it replaced, the
//! table). Version 2 (rvs before the journal: no ids) is still read, and
//! rewritten as version 3 at start; before that first rewrite the original
//! bytes are kept as `table.state.v2.bak` (never overwritten: if that name
//! holds other bytes, `table.state.v2.1.bak`, ...). Snapshots are written to a temp file
//! that is fsynced, renamed over the real file, and the directory fsynced,
//! so a crash leaves either the old or the new snapshot.
//!
//! Journal: magic `RVSJOURN`, u32 BE version 1, u64 BE id of the snapshot
//! it continues, u64 BE FNV-1a of those 20 bytes; then records, each a u32
//! BE length, a u64 BE FNV-1a of length and payload, and the payload (the
//! codec's encoding of the [`Delta`]s of one request). Loading replays the
//! complete records onto the snapshot. A torn last record (a crash while
//! appending: never acknowledged) is dropped with a log line; a bad record
//! anywhere else, or a journal that belongs to another snapshot, stops
//! rvsd like any corrupt file. A journal left over from a compaction that
//! crashed between the two renames continues the *previous* snapshot, whose
//! changes the new snapshot already holds: it is set aside as stale.
//!
//! A file that fails any check is never discarded: rvsd refuses to start
//! and says how to move it aside.
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

use super::table::{Delta, DeltaRef, Service, Table, Undo};

const MAGIC: &[u8; 8] = b"RVSSTATE";
const FORMAT_VERSION: u32 = 3;
/// The format before the journal: no ids, still read.
const FORMAT_V2: u32 = 2;
const HEADER: usize = 8 + 4 + 8;
pub const FILE_NAME: &str = "table.state";
pub const JOURNAL_NAME: &str = "table.journal";
const JOURNAL_MAGIC: &[u8; 8] = b"RVSJOURN";
const JOURNAL_VERSION: u32 = 1;
const JOURNAL_HEADER: usize = 8 + 4 + 8 + 8;
/// Record header: u32 length, u64 checksum.
const RECORD_HEADER: usize = 4 + 8;
/// The journal is compacted into the snapshot once it is larger than the
/// snapshot and than this many bytes (`RVSD_JOURNAL_BYTES` overrides it,
/// for tests).
const JOURNAL_FLOOR: u64 = 256 * 1024;
/// The lock file that makes a state directory one rvsd's own.
pub const LOCK_NAME: &str = "rvsd.lock";
/// Largest state file rvsd reads (a 10,000 x 10 table is about 3 MB).
pub const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// Encodes exactly like [`StateFile`] without copying the table.
#[derive(Serialize)]
struct StateRef<'a> {
    id: u64,
    prev: u64,
    services: &'a [Service],
    timeouts: Timeouts,
}

/// Format version 3.
#[derive(Deserialize)]
struct StateFile {
    /// Random, never 0: the journal names the snapshot it continues.
    id: u64,
    /// The id of the snapshot this one replaced (0: none).
    prev: u64,
    services: Vec<Service>,
    timeouts: Timeouts,
}

/// Format version 2.
#[derive(Deserialize)]
struct StateFileV2 {
    services: Vec<Service>,
    timeouts: Timeouts,
}

/// Where the table lives on disk, and the open journal.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    journal_path: PathBuf,
    /// Id of the snapshot on disk (0: none, or version 2).
    id: u64,
    /// Open for appending after a compaction; `None` until the first one
    /// and after a failed append (the next change compacts first).
    journal: Option<File>,
    /// Bytes in the journal (header included).
    journal_len: u64,
    /// Bytes of the snapshot on disk.
    snapshot_len: u64,
    floor: u64,
    /// An older-format snapshot as loaded (version, bytes): kept as
    /// `table.state.v<N>.bak` before the first rewrite.
    upgrade: Option<(u32, Vec<u8>)>,
}

/// Counts for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Journal records replayed onto the snapshot.
    pub replayed: usize,
    /// Bytes of a torn last record that were dropped.
    pub torn: usize,
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
    let mut h = Fnv::new();
    h.write(data);
    h.0
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        let floor = std::env::var("RVSD_JOURNAL_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(JOURNAL_FLOOR);
        Store {
            path: dir.join(FILE_NAME),
            journal_path: dir.join(JOURNAL_NAME),
            id: 0,
            journal: None,
            journal_len: 0,
            snapshot_len: 0,
            floor,
            upgrade: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    fn corrupt(path: &Path, why: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }

    /// Load the table: the snapshot (a missing one is an empty table) and
    /// the journal replayed onto it. Writes nothing: call [`Store::compact`]
    /// once the table is live.
    pub fn load(&mut self) -> Result<(Table, Loaded), StoreError> {
        let (table, loaded) = self.load_unchecked()?;
        if let Err(why) = table.check_loaded() {
            let path = if loaded.replayed > 0 {
                &self.journal_path
            } else {
                &self.path
            };
            return Err(Store::corrupt(path, why));
        }
        Ok((table, loaded))
    }

    fn load_unchecked(&mut self) -> Result<(Table, Loaded), StoreError> {
        let (mut table, id, prev) = match read_regular(&self.path)? {
            None => (Table::default(), 0, 0),
            Some(data) => {
                self.snapshot_len = data.len() as u64;
                let (state, id, prev) =
                    decode(&data).map_err(|why| Store::corrupt(&self.path, why))?;
                let version = be_u32(&data[8..12]);
                if version != FORMAT_VERSION {
                    self.upgrade = Some((version, data));
                }
                (state, id, prev)
            }
        };
        self.id = id;
        let mut loaded = Loaded::default();
        let Some(data) = read_regular(&self.journal_path)? else {
            return Ok((table, loaded));
        };
        let jp = &self.journal_path;
        if data.len() < JOURNAL_HEADER || &data[..8] != JOURNAL_MAGIC {
            return Err(Store::corrupt(jp, "not an rvs journal (bad magic)"));
        }
        let version = be_u32(&data[8..12]);
        if version != JOURNAL_VERSION {
            return Err(Store::corrupt(
                jp,
                format!("journal version {version}, this rvsd reads version {JOURNAL_VERSION}"),
            ));
        }
        if be_u64(&data[20..28]) != fnv1a(&data[..20]) {
            return Err(Store::corrupt(jp, "journal header checksum mismatch"));
        }
        let of = be_u64(&data[12..20]);
        let records = &data[JOURNAL_HEADER..];
        if of != id || id == 0 {
            if (of == prev && prev != 0) || records.is_empty() {
                // Left by a compaction that crashed before replacing it
                // (the snapshot holds its changes), or empty: nothing lost.
                tracing::warn!(journal = %jp.display(), "journal does not continue the snapshot and holds nothing it lacks: replaced");
                return Ok((table, loaded));
            }
            return Err(Store::corrupt(
                jp,
                format!(
                    "the journal continues snapshot {of:016x}, but {} is {}",
                    self.path.display(),
                    if id == 0 {
                        "missing or has no id".to_string()
                    } else {
                        format!("snapshot {id:016x}")
                    }
                ),
            ));
        }
        let mut at = 0usize;
        while at < records.len() {
            let rest = &records[at..];
            let offset = JOURNAL_HEADER + at;
            let len = if rest.len() >= RECORD_HEADER {
                be_u32(&rest[..4]) as usize
            } else {
                usize::MAX
            };
            if rest.len() < RECORD_HEADER || rest.len() - RECORD_HEADER < len {
                loaded.torn = rest.len();
                break;
            }
            let end = RECORD_HEADER + len;
            let sum = be_u64(&rest[4..12]);
            let mut check = Fnv::new();
            check.write(&rest[..4]);
            check.write(&rest[RECORD_HEADER..end]);
            if check.0 != sum {
                if end == rest.len() {
                    // The last record, written when rvsd died: unacknowledged.
                    loaded.torn = rest.len();
                    break;
                }
                return Err(Store::corrupt(
                    jp,
                    format!(
                        "journal record {} at byte {offset}: checksum mismatch",
                        loaded.replayed + 1
                    ),
                ));
            }
            let deltas: Vec<Delta> =
                codec::decode_body(&rest[RECORD_HEADER..end]).map_err(|e| {
                    Store::corrupt(
                        jp,
                        format!(
                            "journal record {} at byte {offset}: {e}",
                            loaded.replayed + 1
                        ),
                    )
                })?;
            for d in deltas {
                table.replay(d);
            }
            loaded.replayed += 1;
            at += end;
        }
        if loaded.torn > 0 {
            tracing::warn!(
                journal = %jp.display(),
                bytes = loaded.torn,
                replayed = loaded.replayed,
                "dropped a torn last journal record (written when rvsd stopped, never acknowledged)"
            );
        }
        Ok((table, loaded))
    }

    /// Durably record the change `undo` describes (already applied to
    /// `table`): one journal record, or a compaction when the journal has
    /// outgrown the snapshot.
    pub fn record(&mut self, table: &Table, undo: &Undo) -> Result<(), StoreError> {
        let deltas: Vec<DeltaRef> = table.deltas(undo);
        let payload = codec::encode_body(&deltas)
            .map_err(|e| self.write_err(std::io::Error::other(e.to_string())))?;
        let rec_len = (RECORD_HEADER + payload.len()) as u64;
        let limit = self.floor.max(self.snapshot_len);
        if self.journal.is_none()
            || payload.len() > u32::MAX as usize
            || self.journal_len + rec_len > limit
        {
            return self.compact(table);
        }
        let mut rec = Vec::with_capacity(rec_len as usize);
        rec.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        let mut sum = Fnv::new();
        sum.write(&rec[..4]);
        sum.write(&payload);
        rec.extend_from_slice(&sum.0.to_be_bytes());
        rec.extend_from_slice(&payload);
        let f = self.journal.as_mut().expect("journal open");
        let written = f.write_all(&rec).and_then(|()| f.sync_data());
        if let Err(e) = written {
            // Take the partial record back; if even that fails, the next
            // change rewrites everything first.
            let undone = f.set_len(self.journal_len).is_ok()
                && std::io::Seek::seek(f, std::io::SeekFrom::Start(self.journal_len)).is_ok();
            if !undone {
                self.journal = None;
            }
            return Err(StoreError::Write {
                path: self.journal_path.clone(),
                source: e,
            });
        }
        self.journal_len += rec_len;
        Ok(())
    }

    fn write_err(&self, source: std::io::Error) -> StoreError {
        StoreError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Write `table` as a new snapshot and start an empty journal after it.
    pub fn compact(&mut self, table: &Table) -> Result<(), StoreError> {
        let id = loop {
            let id = random_u64();
            if id != 0 && id != self.id {
                break id;
            }
        };
        let state = StateRef {
            id,
            prev: self.id,
            services: table.services(),
            timeouts: table.timeouts(),
        };
        let body = codec::encode_body(&state)
            .map_err(|e| self.write_err(std::io::Error::other(e.to_string())))?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        header.extend_from_slice(&fnv1a(&body).to_be_bytes());
        if let Some((version, old)) = &self.upgrade {
            // Never rewrite an older format without a copy of it.
            let bak = keep_backup(&self.path, *version, old).map_err(|e| self.write_err(e))?;
            tracing::info!(backup = %bak.display(), "state file {} is format {version}: rewriting it in format {FORMAT_VERSION}; the original is kept in {}", self.path.display(), bak.display());
            self.upgrade = None;
        }
        write_atomic(&self.path, &[&header, &body]).map_err(|e| self.write_err(e))?;
        // From here the snapshot holds everything: the old journal is stale.
        self.id = id;
        self.snapshot_len = (header.len() + body.len()) as u64;
        self.journal = None;
        let mut jh = Vec::with_capacity(JOURNAL_HEADER);
        jh.extend_from_slice(JOURNAL_MAGIC);
        jh.extend_from_slice(&JOURNAL_VERSION.to_be_bytes());
        jh.extend_from_slice(&id.to_be_bytes());
        jh.extend_from_slice(&fnv1a(&jh).to_be_bytes());
        let f = write_atomic(&self.journal_path, &[&jh]).map_err(|source| StoreError::Write {
            path: self.journal_path.clone(),
            source,
        })?;
        self.journal = Some(f);
        self.journal_len = jh.len() as u64;
        Ok(())
    }

    /// Compact if the journal holds any record (clean shutdown).
    pub fn compact_if_needed(&mut self, table: &Table) -> Result<(), StoreError> {
        if self.journal.is_some() && self.journal_len <= JOURNAL_HEADER as u64 {
            return Ok(());
        }
        self.compact(table)
    }
}

/// Durably replace `path` with `parts`: a private temp file, fsynced,
/// renamed over it, the directory fsynced. Returns the file, open for
/// writing at its end.
fn write_atomic(path: &Path, parts: &[&[u8]]) -> std::io::Result<File> {
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
fn keep_backup(path: &Path, version: u32, data: &[u8]) -> std::io::Result<PathBuf> {
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

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Streaming FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
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

/// A snapshot: the table, its id and the id it replaced (0 for version 2).
fn decode(data: &[u8]) -> Result<(Table, u64, u64), String> {
    if data.len() < HEADER || &data[..8] != MAGIC {
        return Err("not an rvs state file (bad magic)".into());
    }
    let version = be_u32(&data[8..12]);
    if version != FORMAT_VERSION && version != FORMAT_V2 {
        return Err(format!(
            "format version {version}, this rvsd reads versions {FORMAT_V2} and {FORMAT_VERSION}"
        ));
    }
    let sum = be_u64(&data[12..20]);
    let body = &data[HEADER..];
    if fnv1a(body) != sum {
        return Err("checksum mismatch".into());
    }
    if version == FORMAT_V2 {
        let s: StateFileV2 = codec::decode_body(body).map_err(|e| e.to_string())?;
        return Ok((Table::from_parts(s.services, s.timeouts), 0, 0));
    }
    let s: StateFile = codec::decode_body(body).map_err(|e| e.to_string())?;
    if s.id == 0 {
        return Err("snapshot id 0".into());
    }
    Ok((Table::from_parts(s.services, s.timeouts), s.id, s.prev))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::proto::{Protocol, Request, ServiceKey, ServiceSpec};

    fn tmpdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rvs-store-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn add(t: &mut Table, store: &mut Store, port: u16) {
        let k = ServiceKey {
            proto: Protocol::Udp,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        };
        let mut undo = Undo::default();
        t.apply_undoable(&Request::AddService(ServiceSpec::new(k)), &mut undo)
            .unwrap();
        store.record(t, &undo).unwrap();
    }

    #[test]
    fn save_load_and_corruption() {
        let dir = tmpdir("snap");
        let mut store = Store::new(&dir);
        let mut t = Table::default();
        store.compact(&t).unwrap();
        add(&mut t, &mut store, 53);
        store.compact(&t).unwrap();
        assert_eq!(Store::new(&dir).load().unwrap(), (t, Loaded::default()));
        let mut raw = fs::read(store.path()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        fs::write(store.path(), &raw).unwrap();
        let err = Store::new(&dir).load().unwrap_err().to_string();
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

    /// Found by the state_file fuzz target: a checksummed file naming a
    /// scheduler this rvsd lacks loaded, and the data plane then panicked.
    #[test]
    fn a_table_the_data_plane_cannot_run_is_refused_at_load() {
        let dir = tmpdir("unknown-sched");
        let mut store = Store::new(&dir);
        let mut spec = ServiceSpec::new(ServiceKey {
            proto: Protocol::Tcp,
            addr: "127.0.0.1:18080".parse().unwrap(),
        });
        spec.scheduler = "zz".into();
        let t = Table::from_parts(
            vec![super::super::table::Service {
                spec,
                servers: vec![],
            }],
            Timeouts::default(),
        );
        store.compact(&t).unwrap();
        let raw = fs::read(store.path()).unwrap();
        let err = Store::new(&dir).load().unwrap_err().to_string();
        assert!(
            err.contains("is corrupt") && err.contains("scheduler \"zz\"") && err.contains("mv "),
            "{err}"
        );
        assert_eq!(fs::read(store.path()).unwrap(), raw, "left untouched");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn journal_replays_drops_a_torn_tail_and_refuses_a_bad_middle() {
        let dir = tmpdir("journal");
        let mut store = Store::new(&dir);
        let mut t = Table::default();
        store.compact(&t).unwrap();
        let snapshot = fs::read(store.path()).unwrap();
        let mut tables = vec![t.clone()];
        for port in 1..=5 {
            add(&mut t, &mut store, port);
            tables.push(t.clone());
        }
        assert_eq!(fs::read(store.path()).unwrap(), snapshot, "no rewrite");
        let journal = fs::read(store.journal_path()).unwrap();
        let (got, loaded) = Store::new(&dir).load().unwrap();
        assert_eq!(got, t);
        assert_eq!(loaded.replayed, 5);
        // Every possible crash point while appending the last record.
        let last_start = {
            let mut at = JOURNAL_HEADER;
            for _ in 0..4 {
                at += RECORD_HEADER + be_u32(&journal[at..]) as usize;
            }
            at
        };
        for cut in last_start + 1..journal.len() {
            fs::write(store.journal_path(), &journal[..cut]).unwrap();
            let (got, loaded) = Store::new(&dir).load().unwrap();
            assert_eq!(got, tables[4], "cut at {cut}");
            assert_eq!(loaded.torn, cut - last_start);
        }
        // A complete last record with a bad byte: torn too.
        let mut bad = journal.clone();
        let n = bad.len() - 1;
        bad[n] ^= 1;
        fs::write(store.journal_path(), &bad).unwrap();
        assert_eq!(Store::new(&dir).load().unwrap().0, tables[4]);
        // A bad byte in an earlier record: refused, file untouched.
        let mut bad = journal.clone();
        bad[JOURNAL_HEADER + RECORD_HEADER + 2] ^= 1;
        fs::write(store.journal_path(), &bad).unwrap();
        let err = Store::new(&dir).load().unwrap_err().to_string();
        assert!(
            err.contains("journal record 1 at byte 28: checksum mismatch")
                && err.contains("left untouched")
                && err.contains(&format!("mv {}", store.journal_path().display())),
            "{err}"
        );
        assert_eq!(fs::read(store.journal_path()).unwrap(), bad);
        // A journal of another snapshot: refused.
        fs::write(store.journal_path(), &journal).unwrap();
        let mut other = Store::new(&dir);
        other.load().unwrap();
        other.compact(&Table::default()).unwrap();
        let after = fs::read(store.path()).unwrap();
        fs::write(store.journal_path(), &journal).unwrap();
        fs::write(store.path(), &after).unwrap();
        let mut third = Store::new(&dir);
        // `after` replaced the snapshot `journal` continues: stale, ignored.
        assert_eq!(third.load().unwrap(), (Table::default(), Loaded::default()));
        third.compact(&Table::default()).unwrap();
        fs::write(store.journal_path(), &journal).unwrap();
        let err = Store::new(&dir).load().unwrap_err().to_string();
        assert!(err.contains("the journal continues snapshot"), "{err}");
        // Snapshot gone, journal with records: refused, not replayed on nothing.
        fs::remove_file(store.path()).unwrap();
        let err = Store::new(&dir).load().unwrap_err().to_string();
        assert!(err.contains("is missing or has no id"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn version_2_file_loads() {
        let dir = tmpdir("v2");
        fs::create_dir_all(&dir).unwrap();
        let mut t = Table::default();
        let k = ServiceKey {
            proto: Protocol::Tcp,
            addr: "127.0.0.1:80".parse().unwrap(),
        };
        t.apply(&Request::AddService(ServiceSpec::new(k))).unwrap();
        #[derive(Serialize)]
        struct V2<'a> {
            services: &'a [Service],
            timeouts: Timeouts,
        }
        let body = codec::encode_body(&V2 {
            services: t.services(),
            timeouts: t.timeouts(),
        })
        .unwrap();
        let mut raw = MAGIC.to_vec();
        raw.extend_from_slice(&2u32.to_be_bytes());
        raw.extend_from_slice(&fnv1a(&body).to_be_bytes());
        raw.extend_from_slice(&body);
        fs::write(dir.join(FILE_NAME), &raw).unwrap();
        let bak = dir.join("table.state.v2.bak");
        fs::write(&bak, b"someone else's").unwrap();
        let mut store = Store::new(&dir);
        assert_eq!(store.load().unwrap().0, t);
        store.compact(&t).unwrap();
        let new = fs::read(dir.join(FILE_NAME)).unwrap();
        assert_eq!(be_u32(&new[8..12]), 3);
        assert_eq!(Store::new(&dir).load().unwrap().0, t);
        // The original is kept, and an existing backup is not overwritten.
        assert_eq!(fs::read(&bak).unwrap(), b"someone else's");
        assert_eq!(fs::read(dir.join("table.state.v2.1.bak")).unwrap(), raw);
        // Kept once: the next compaction writes no other backup.
        store.compact(&t).unwrap();
        assert!(!dir.join("table.state.v2.2.bak").exists());
        // The same bytes again (a start that failed to rewrite): reused.
        fs::write(dir.join(FILE_NAME), &raw).unwrap();
        let mut again = Store::new(&dir);
        again.load().unwrap();
        again.compact(&t).unwrap();
        assert!(!dir.join("table.state.v2.2.bak").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
