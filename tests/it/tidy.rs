//! Tidy checks that run as a test (after rust-analyzer's `tidy.rs`): every
//! Rust source file opens with a `//!` doc saying what it owns, and no source
//! file carries the markers of unfinished work. The text files of the
//! repository (md, rs, toml, sh, yml) describe the system as it is: no
//! account of how it was made, no reference to a document outside the
//! repository, and BENCHMARKS.md stays one short page.

use std::fs;
use std::path::{Path, PathBuf};

const CRATE_DIRS: &[&str] = &[
    "src",
    "ledger",
    "protocol",
    "actors",
    "projections",
    "client",
    "gateway",
    "purse",
    "card-bridge",
    "replay",
    "web",
    "cluster",
    "user-index",
    "bank-files",
    "pg-store",
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

/// The extensions of the text files the prose checks read.
const TEXT_EXTENSIONS: &[&str] = &["md", "rs", "toml", "sh", "yml"];

/// Directories the prose checks skip: build output, version control, what
/// the fuzzer grows locally, and binary seeds.
const SKIPPED_DIRS: &[&str] = &["target", "corpus", "artifacts", "seeds", "logs"];

fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || SKIPPED_DIRS.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            text_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| TEXT_EXTENSIONS.iter().any(|t| e == *t))
        {
            out.push(path);
        }
    }
}

/// Every text file of the repository but this one (which holds the word
/// lists), with its path relative to the root.
fn all_text_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    text_files(root, &mut files);
    let texts: Vec<(String, String)> = files
        .into_iter()
        .filter(|path| !path.ends_with("tests/it/tidy.rs"))
        .map(|path| {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            (rel, fs::read_to_string(&path).unwrap_or_default())
        })
        .collect();
    assert!(
        texts.len() > 100,
        "tidy found only {} text files: wrong root?",
        texts.len()
    );
    texts
}

/// The prose of one line: in Rust, the comment (from `//` on); elsewhere
/// the whole line. String literals in code may hold anything a program
/// prints (`record #0`, a colour `#999`).
fn prose<'a>(path: &str, line: &'a str) -> Option<&'a str> {
    if path.ends_with(".rs") {
        line.find("//").map(|at| &line[at..])
    } else {
        Some(line)
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where `word` occurs in `text` with no word character just before it.
fn word_starts<'a>(text: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(word)
        .map(|(at, _)| at)
        .filter(move |&at| at == 0 || !is_word_byte(text.as_bytes()[at - 1]))
}

/// The run of ASCII digits at the start of `s`, if any.
fn leading_digits(s: &str) -> &str {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    &s[..end]
}

/// `word` followed by a number: `Session 4`, `issue 7`, `issue #7`.
fn word_then_number(lower: &str, word: &str) -> bool {
    word_starts(lower, word).any(|at| {
        let rest = &lower[at + word.len()..];
        let rest = rest.strip_prefix('#').unwrap_or(rest);
        let digits = leading_digits(rest);
        !digits.is_empty()
            && !rest[digits.len()..]
                .bytes()
                .next()
                .is_some_and(is_word_byte)
    })
}

/// `engineer` or `engineers` as a word (not `engineering`).
fn names_engineers(lower: &str) -> bool {
    word_starts(lower, "engineer").any(|at| {
        let rest = &lower[at + "engineer".len()..];
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        !rest.bytes().next().is_some_and(is_word_byte)
    })
}

/// `#18` as an issue reference: a `#` at the start of a word (not
/// `PKCS#8`, `&#39;`), then digits, then no word character.
fn cites_issue_number(text: &str) -> bool {
    text.match_indices('#').any(|(at, _)| {
        let before_ok = at == 0
            || matches!(
                text.as_bytes()[at - 1],
                b' ' | b'\t' | b'(' | b'[' | b',' | b';'
            );
        let rest = &text[at + 1..];
        let digits = leading_digits(rest);
        before_ok
            && !digits.is_empty()
            && !rest[digits.len()..]
                .bytes()
                .next()
                .is_some_and(is_word_byte)
    })
}

/// A short commit hash cited as history: `at d18604e`, `(2b365e1)`,
/// `before 41d1a21`. Seven to twelve lowercase hex digits, at least one
/// of each kind, right after `(` or one of the words that date a change.
/// Longer hex strings (keys, fingerprints, digests) are not hashes cited.
fn cites_commit(text: &str) -> bool {
    const DATING: &[&str] = &[
        "(", "at ", "before ", "after ", "since ", "commit ", "build ", "merge ", "from ",
    ];
    DATING.iter().any(|lead| {
        text.match_indices(lead).any(|(at, _)| {
            let starts_word =
                lead.starts_with('(') || at == 0 || !is_word_byte(text.as_bytes()[at - 1]);
            let rest = &text[at + lead.len()..];
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
                .count();
            let token = &rest[..len];
            starts_word
                && (7..=12).contains(&len)
                && !rest[len..].bytes().next().is_some_and(is_word_byte)
                && token.bytes().any(|b| b.is_ascii_digit())
                && token.bytes().any(|b| b.is_ascii_alphabetic())
        })
    })
}

/// Why a line tells how the project was made, if it does.
fn story_in(line: &str) -> Option<&'static str> {
    let lower = line.to_ascii_lowercase();
    const PHRASES: &[(&str, &str)] = &[
        ("../shared", "a path outside the repository"),
        ("/work/shared", "a path outside the repository"),
        ("helper branch", "a helper branch"),
        ("helper session", "a helper session"),
        ("this round", "a round of work"),
        ("previous round", "a round of work"),
        ("before the fix", "a fix as history"),
        ("before that fix", "a fix as history"),
        ("after the fix", "a fix as history"),
        ("after that fix", "a fix as history"),
        ("now does", "a change as history"),
    ];
    if let Some((_, why)) = PHRASES.iter().find(|(p, _)| lower.contains(p)) {
        return Some(why);
    }
    if word_then_number(&lower, "session ") {
        return Some("a session number");
    }
    if word_then_number(&lower, "issue ") {
        return Some("an issue number");
    }
    if names_engineers(&lower) {
        return Some("the people who made it");
    }
    if cites_issue_number(line) {
        return Some("an issue reference");
    }
    if cites_commit(line) {
        return Some("a commit hash as history");
    }
    None
}

#[test]
fn the_word_lists_catch_the_story_and_spare_the_system() {
    for story in [
        "Session 4 measured this.",
        "built on other engineers' builds",
        "See issue 7.",
        "fixed in issue #18",
        "as asked in #18, the",
        "(#18)",
        "the design in ../shared/DESIGN.md",
        "on the helper branch",
        "at d18604e the ledger",
        "| before (2b365e1) | 3.70 |",
        "before this round",
        "before the fix it panicked",
        "(before that fix, 256 did)",
        "the purse now does it",
    ] {
        assert!(story_in(story).is_some(), "not caught: {story}");
    }
    for system in [
        "issues 1,000,000 coins",
        "the issuer issues coins; an issue of coins",
        "payments engineering",
        "PKCS#8 DER",
        "&#39;",
        "the session key K",
        "session 0x1f",
        "fingerprint 53b878ee5ea07e7e",
        "key 0123456789abcdef",
        "the last round in full",
        "a round trip at 0.3 ms",
        "SHA-256 of deadbeef0011223344",
        "## 3. Payment",
    ] {
        assert_eq!(story_in(system), None, "false positive: {system}");
    }
}

#[test]
fn no_text_file_tells_how_the_project_was_made() {
    let mut offenders = Vec::new();
    for (path, text) in all_text_files() {
        for (n, line) in text.lines().enumerate() {
            let Some(prose) = prose(&path, line) else {
                continue;
            };
            if let Some(why) = story_in(prose) {
                offenders.push(format!("{path}:{}: {why}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "describe the system as it is (the history is in git):\n{}",
        offenders.join("\n")
    );
}

/// The documents of `docs/` every file may cite; a citation of one that
/// does not exist (a renamed or removed document) fails.
#[test]
fn every_cited_document_is_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for (path, text) in all_text_files() {
        for (n, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("docs/") {
                if at > 0 && is_word_byte(line.as_bytes()[at - 1]) {
                    continue;
                }
                let cited: String = line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
                    .collect();
                let cited = cited.trim_end_matches('.');
                if cited.ends_with(".md") && !root.join(cited).is_file() {
                    missing.push(format!("{path}:{}: {cited}", n + 1));
                }
            }
            for gone in ["PROTOCOLS.md", "DESIGN.md", "STYLE.md"] {
                if line.contains(gone) {
                    missing.push(format!("{path}:{}: {gone}", n + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "cited documents that are not in the repository:\n{}",
        missing.join("\n")
    );
}

/// BENCHMARKS.md is one current page: method, machine, figures, targets.
/// Past runs live in git.
const BENCHMARKS_BYTES_MAX: u64 = 10 * 1024;

#[test]
fn benchmarks_md_is_one_short_page() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
    assert!(
        len <= BENCHMARKS_BYTES_MAX,
        "BENCHMARKS.md is {len} bytes, above {BENCHMARKS_BYTES_MAX}: keep the current figures, \
         leave past runs to git"
    );
}
