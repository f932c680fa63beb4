//! The state-file loader, through its public API: the input becomes the
//! files of a `--state-dir` (the snapshot and the journal: see
//! `rvs_fuzz::STORE_FILES`; parts separated by `rvs_fuzz::FILE_SEP`), then
//! `Store::new(dir).load()` runs as rvsd does at start-up.
//!
//! Each file's contents sit behind 64-bit FNV-1a checksums that no mutation
//! gets past by chance: a checksum field that is all zero gets the right
//! value filled in before the file is written (see [`fix_checksums`]), so
//! the fuzzer reaches the decoder behind it; any other value is kept, so
//! the checks themselves are fuzzed too. The corpus has both kinds.
//!
//! Checks: nothing panics or aborts; a set of files that is refused is left
//! byte-for-byte untouched.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rvs::daemon::store::Store;
use rvs_fuzz::{split_files, STORE_FILES};

/// One scratch directory per process, emptied before each input.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rvs-fuzz-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn clear(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// Fill in zero checksum fields (see the module doc): the snapshot's
/// (bytes 12..20, FNV-1a of the body), the journal header's (bytes 20..28,
/// FNV-1a of bytes 0..20) and each journal record's (a u32 BE length, then
/// FNV-1a of those 4 bytes and the payload).
fn fix_checksums(name: &str, part: &[u8]) -> Vec<u8> {
    let mut out = part.to_vec();
    let zero = |b: &[u8]| b == [0; 8];
    match name {
        "table.state" if out.len() >= 20 && zero(&out[12..20]) => {
            let sum = rvs_fuzz::fnv1a(&out[20..]);
            out[12..20].copy_from_slice(&sum.to_be_bytes());
        }
        "table.journal" if out.len() >= 28 => {
            if zero(&out[20..28]) {
                let sum = rvs_fuzz::fnv1a(&out[..20]);
                out[20..28].copy_from_slice(&sum.to_be_bytes());
            }
            let mut at = 28;
            while out.len() - at >= 12 {
                let len = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
                let end = at + 12 + len;
                if end > out.len() {
                    break;
                }
                if zero(&out[at + 4..at + 12]) {
                    let mut rec = out[at..at + 4].to_vec();
                    rec.extend_from_slice(&out[at + 12..end]);
                    let sum = rvs_fuzz::fnv1a(&rec);
                    out[at + 4..at + 12].copy_from_slice(&sum.to_be_bytes());
                }
                at = end;
            }
        }
        _ => {}
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    clear(dir);
    let parts: Vec<Vec<u8>> = split_files(data)
        .into_iter()
        .zip(STORE_FILES)
        .map(|(part, name)| fix_checksums(name, part))
        .collect();
    for (name, part) in STORE_FILES.iter().zip(&parts) {
        std::fs::write(dir.join(name), part).unwrap();
    }
    // `load` takes `&self` or `&mut self` and returns the table alone or
    // with what it replayed, depending on the store's version: only
    // success or refusal matters here.
    if Store::new(dir).load().is_err() {
        for (name, part) in STORE_FILES.iter().zip(&parts) {
            let now = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(&now, part, "{name} changed by a refused load");
        }
    }
});
