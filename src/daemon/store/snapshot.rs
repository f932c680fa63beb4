//! The snapshot format: magic, version, checksum, then the codec's
//! encoding of the table with its id (see the module above for the layout).

use serde::{Deserialize, Serialize};

use crate::ctl::codec;
use crate::ctl::proto::Timeouts;

use super::super::table::{Service, Table};
use super::{be_u32, be_u64, fnv1a};

pub(super) const MAGIC: &[u8; 8] = b"RVSSTATE";
pub(super) const FORMAT_VERSION: u32 = 3;
/// The format before the journal: no ids, still read.
pub(super) const FORMAT_V2: u32 = 2;
pub(super) const HEADER: usize = 8 + 4 + 8;

/// Encodes exactly like [`StateFile`] without copying the table.
#[derive(Serialize)]
pub(super) struct StateRef<'a> {
    pub(super) id: u64,
    pub(super) prev: u64,
    pub(super) services: &'a [Service],
    pub(super) timeouts: Timeouts,
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

/// The snapshot header for `body`.
pub(super) fn header(body: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    header.extend_from_slice(&fnv1a(body).to_be_bytes());
    header
}

/// A snapshot: the table, its id and the id it replaced (0 for version 2).
pub(super) fn decode(data: &[u8]) -> Result<(Table, u64, u64), String> {
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
    use std::fs;

    use super::super::{Store, FILE_NAME};
    use super::*;
    use crate::ctl::proto::{Protocol, Request, ServiceKey, ServiceSpec};

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        super::super::tests::tmpdir(tag)
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
