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

mod files;
mod journal;
mod snapshot;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ctl::codec;

use super::table::{DeltaRef, Table, Undo};

pub(crate) use files::random_u64;
use files::{keep_backup, read_regular, write_atomic};
pub use files::{lock, StateLock};
use journal::{JOURNAL_HEADER, RECORD_HEADER};
use snapshot::{decode, StateRef, FORMAT_VERSION};

pub const FILE_NAME: &str = "table.state";
pub const JOURNAL_NAME: &str = "table.journal";
/// The journal is compacted into the snapshot once it is larger than the
/// snapshot and than this many bytes (`RVSD_JOURNAL_BYTES` overrides it,
/// for tests).
const JOURNAL_FLOOR: u64 = 256 * 1024;
/// The lock file that makes a state directory one rvsd's own.
pub const LOCK_NAME: &str = "rvsd.lock";
/// Largest state file rvsd reads (a 10,000 x 10 table is about 3 MB).
pub const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

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
        let Some(data) = read_regular(&self.journal_path)? else {
            return Ok((table, Loaded::default()));
        };
        let loaded = journal::replay(&mut table, &self.journal_path, &self.path, &data, id, prev)?;
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
        let rec = journal::record(&payload, rec_len);
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
        let header = snapshot::header(&body);
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
        let jh = journal::header(id);
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::ctl::proto::{Protocol, Request, ServiceKey, ServiceSpec, Timeouts};

    pub(super) fn tmpdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rvs-store-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    pub(super) fn add(t: &mut Table, store: &mut Store, port: u16) {
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
}
