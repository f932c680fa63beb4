//! The state file: the table on disk, written before every reply.
//!
//! Layout: 8-byte magic `RVSSTATE`, u32 BE format version, u64 BE FNV-1a
//! checksum of the body, then the body (the control codec's encoding of
//! [`StateFile`]). Writes go to a temp file that is fsynced, renamed over the
//! real file, and the directory fsynced, so a crash leaves either the old or
//! the new table. A file that fails any check is never discarded: rvsd
//! refuses to start and says how to move it aside.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ctl::codec;
use crate::ctl::proto::Timeouts;

use super::table::{Service, Table};

const MAGIC: &[u8; 8] = b"RVSSTATE";
const FORMAT_VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8;
pub const FILE_NAME: &str = "table.state";

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
        let data = match fs::read(&self.path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Table::default()),
            Err(source) => {
                return Err(StoreError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
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
        fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("state.tmp");
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            for part in parts {
                f.write_all(part)?;
            }
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        File::open(dir)?.sync_all()
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
