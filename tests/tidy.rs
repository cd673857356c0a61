//! Tidy checks that run as a test (after rust-analyzer's `tidy.rs`): every
//! Rust source file opens with a `//!` doc saying what it owns, and no source
//! file carries the markers of unfinished work.

use std::fs;
use std::path::{Path, PathBuf};

const CRATE_DIRS: &[&str] = &[
    "src",
    "ledger",
    "protocol",
    "actors",
    "projections",
    "gateway",
    "purse",
    "card-bridge",
    "replay",
    "web",
    "tests",
    "benches",
    "fuzz/fuzz_targets",
    "fuzz/src",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in CRATE_DIRS {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "tidy found only {} files: wrong root?",
        files.len()
    );
    files
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let missing: Vec<_> = all_sources()
        .into_iter()
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !first.starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! module doc: {missing:#?}"
    );
}

#[test]
fn no_source_file_has_unfinished_markers() {
    let markers = ["todo!(", "unimplemented!(", "dbg!("];
    let offenders: Vec<_> = all_sources()
        .into_iter()
        .filter(|path| !path.ends_with("tidy.rs"))
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            markers.iter().any(|m| text.contains(m))
        })
        .collect();
    assert!(offenders.is_empty(), "unfinished work in: {offenders:#?}");
}
