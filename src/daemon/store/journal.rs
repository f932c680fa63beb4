//! The journal format: a header naming the snapshot it continues, then
//! checksummed records of [`Delta`]s (see the module above for the layout).

use std::path::Path;

use crate::ctl::codec;

use super::super::table::{Delta, Table};
use super::{be_u32, be_u64, fnv1a, Fnv, Loaded, Store, StoreError};

pub(super) const JOURNAL_MAGIC: &[u8; 8] = b"RVSJOURN";
pub(super) const JOURNAL_VERSION: u32 = 1;
pub(super) const JOURNAL_HEADER: usize = 8 + 4 + 8 + 8;
/// Record header: u32 length, u64 checksum.
pub(super) const RECORD_HEADER: usize = 4 + 8;

/// The journal header for a journal continuing snapshot `id`.
pub(super) fn header(id: u64) -> Vec<u8> {
    let mut jh = Vec::with_capacity(JOURNAL_HEADER);
    jh.extend_from_slice(JOURNAL_MAGIC);
    jh.extend_from_slice(&JOURNAL_VERSION.to_be_bytes());
    jh.extend_from_slice(&id.to_be_bytes());
    jh.extend_from_slice(&fnv1a(&jh).to_be_bytes());
    jh
}

/// One record: u32 BE length, u64 BE FNV-1a of length and payload, the payload.
pub(super) fn record(payload: &[u8], rec_len: u64) -> Vec<u8> {
    let mut rec = Vec::with_capacity(rec_len as usize);
    rec.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    let mut sum = Fnv::new();
    sum.write(&rec[..4]);
    sum.write(payload);
    rec.extend_from_slice(&sum.0.to_be_bytes());
    rec.extend_from_slice(payload);
    rec
}

/// Replay the journal `data` (read from `jp`) onto `table`, the snapshot
/// `id` read from `snapshot` (which replaced snapshot `prev`).
pub(super) fn replay(
    table: &mut Table,
    jp: &Path,
    snapshot: &Path,
    data: &[u8],
    id: u64,
    prev: u64,
) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
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
            return Ok(loaded);
        }
        return Err(Store::corrupt(
            jp,
            format!(
                "the journal continues snapshot {of:016x}, but {} is {}",
                snapshot.display(),
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
        let deltas: Vec<Delta> = codec::decode_body(&rest[RECORD_HEADER..end]).map_err(|e| {
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
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::tests::{add, tmpdir};
    use super::*;

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
}
