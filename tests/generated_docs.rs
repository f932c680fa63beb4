//! man/ and completions/ are generated from the clap definitions; this test
//! fails when a committed copy is stale (run scripts/gen-docs), when
//! `mandoc -T lint` finds anything, or when a bash completion does not load.

use std::path::Path;
use std::process::Command;

const BINS: &[(&str, &str, &str)] = &[
    ("rvsd", env!("CARGO_BIN_EXE_rvsd"), "8"),
    ("rvsadm", env!("CARGO_BIN_EXE_rvsadm"), "8"),
    ("rvstop", env!("CARGO_BIN_EXE_rvstop"), "1"),
];

fn generate(exe: &str, what: &str) -> String {
    let out = Command::new(exe)
        .args(["--generate", what])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{exe} --generate {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn committed(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/gen-docs)", p.display()))
}

#[test]
fn committed_docs_are_fresh() {
    for (name, exe, sec) in BINS {
        let files = [
            (format!("man/{name}.{sec}"), "man"),
            (format!("completions/{name}.bash"), "complete-bash"),
            (format!("completions/_{name}"), "complete-zsh"),
            (format!("completions/{name}.fish"), "complete-fish"),
        ];
        for (path, what) in files {
            assert!(
                committed(&path) == generate(exe, what),
                "{path} is stale: run scripts/gen-docs and commit"
            );
        }
    }
}

#[test]
fn man_pages_pass_mandoc_lint() {
    for (name, _, sec) in BINS {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("man/{name}.{sec}"));
        let out = Command::new("mandoc")
            .args(["-T", "lint"])
            .arg(&path)
            .output()
            .expect("mandoc is installed (scripts/test installs it)");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            report.trim().is_empty(),
            "mandoc -T lint {}:\n{report}",
            path.display()
        );
    }
}

#[test]
fn man_pages_document_the_essentials() {
    let page = committed("man/rvsadm.8");
    for needle in [
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "EXAMPLES",
        "ipvsadm",
        "\\-\\-json",
    ] {
        assert!(page.contains(needle), "rvsadm.8 lacks {needle}");
    }
    let page = committed("man/rvsd.8");
    for needle in [
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "EXAMPLES",
        "\\-\\-drain\\-timeout",
    ] {
        assert!(page.contains(needle), "rvsd.8 lacks {needle}");
    }
}

#[test]
fn bash_completion_loads_in_a_real_bash() {
    for (name, _, _) in BINS {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("completions/{name}.bash"));
        let script = format!("source '{}' && complete -p {name}", path.display());
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(name),
            "{name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
