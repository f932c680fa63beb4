//! The state-file loader, through its public API: the input becomes the
//! files of a `--state-dir` (see `rvs_fuzz::STORE_FILES`; parts separated by
//! `rvs_fuzz::FILE_SEP`), then `Store::new(dir).load()` runs as rvsd does at
//! start-up. Generic over the files the store keeps: a new file (a journal)
//! only needs its name in `STORE_FILES` and seeds in the corpus.
//!
//! The state file's body sits behind a 64-bit FNV-1a checksum that no
//! mutation gets past by chance: a `table.state` whose checksum field
//! (bytes 12..20) is all zero gets the right checksum filled in before it is
//! written, so the fuzzer reaches the decoder; any other value is kept, so
//! the checksum check is fuzzed too. The corpus has both kinds.
//!
//! Checks: nothing panics or aborts; a corrupt set of files is refused and
//! left byte-for-byte untouched; a table that loads saves and loads back to
//! itself.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rvs::daemon::store::Store;
use rvs_fuzz::{split_files, STORE_FILES};

/// One scratch directory per process, emptied before each input.
fn scratch() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("rvs-fuzz-state-{}", std::process::id()));
        let (input, resave) = (base.join("in"), base.join("resave"));
        std::fs::create_dir_all(&input).unwrap();
        std::fs::create_dir_all(&resave).unwrap();
        (input, resave)
    })
}

fn clear(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
}

/// Fill in a zero checksum of a state file (see the module doc).
fn fix_checksum(name: &str, part: &[u8]) -> Vec<u8> {
    let mut out = part.to_vec();
    if name == rvs::daemon::store::FILE_NAME && out.len() >= 20 && out[12..20] == [0; 8] {
        let sum = rvs_fuzz::fnv1a(&out[20..]);
        out[12..20].copy_from_slice(&sum.to_be_bytes());
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (dir, resave) = scratch();
    clear(dir);
    let parts: Vec<Vec<u8>> = split_files(data)
        .into_iter()
        .zip(STORE_FILES)
        .map(|(part, name)| fix_checksum(name, part))
        .collect();
    for (name, part) in STORE_FILES.iter().zip(&parts) {
        std::fs::write(dir.join(name), part).unwrap();
    }
    match Store::new(dir).load() {
        Ok(table) => {
            clear(resave);
            let again = Store::new(resave);
            again.save(&table).expect("a loaded table saves");
            assert_eq!(again.load().expect("a saved table loads"), table);
        }
        Err(_) => {
            for (name, part) in STORE_FILES.iter().zip(&parts) {
                let now = std::fs::read(dir.join(name)).unwrap();
                assert_eq!(&now, part, "{name} changed by a refused load");
            }
        }
    }
});
