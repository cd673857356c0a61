//! Every file a party keeps is its owner's alone, whatever the umask: the
//! demo (an issuer with its log, projections, sessions, registry and bank;
//! purses and a key backup; a merchant; the card bridge; the auditor) run
//! by the binary under `umask 000`, then every file it left is 0600 and
//! every directory 0700. Public keys are the one exception: they are made
//! to be handed out.
//!
//! The issuer's files, the log aside, hold no card id of the demo's cards.
//!
//! Checked to fail when files are made with the standard library's and
//! redb's defaults instead of `ledger::private_file` (mode 0666 under this
//! umask; the card bridge then even refuses its own key file).

use crate::util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files that are public by design, by name.
const PUBLIC_FILES: [&str; 2] = ["issuer.pub", "index.pub"];

fn walk(dir: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.is_dir() {
            dirs.push(path.clone());
            walk(&path, files, dirs);
        } else {
            files.push(path);
        }
    }
}

#[test]
fn under_umask_000_every_file_the_parties_create_is_0600_and_every_directory_0700() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("demo");
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" demo --dir \"$1\"")
        .arg(env!("CARGO_BIN_EXE_varietycash"))
        .arg(&dir)
        .env("VC_PURSE_PASSPHRASE", util::PASSPHRASE)
        .env("VC_PURSE_KDF", "insecure-fast")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("AUDIT PASSED"), "{stdout}");

    let mut files = Vec::new();
    let mut dirs = vec![dir.clone()];
    walk(&dir, &mut files, &mut dirs);
    let mode = |p: &Path| {
        std::fs::symlink_metadata(p)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    let mut wrong = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if PUBLIC_FILES.contains(&name) {
            continue;
        }
        if mode(file) != 0o600 {
            wrong.push(format!("{:o} {}", mode(file), file.display()));
        }
    }
    for d in &dirs {
        if mode(d) != 0o700 {
            wrong.push(format!("{:o} {}/", mode(d), d.display()));
        }
    }
    // The run must have made what this test means to check.
    for expected in [
        "issuer/sessions.redb",
        "issuer/registry.redb",
        "issuer/registry.key",
        "issuer/bank.redb",
        "issuer/log.redb",
        "issuer/user-index.pub",
        "bookshop.purse",
        "carol.keys",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(expected)),
            "the demo made no {expected}: {files:#?}"
        );
    }
    assert!(
        files
            .iter()
            .any(|f| f.components().any(|c| c.as_os_str() == "cards")),
        "the demo made no card files: {files:#?}"
    );
    // The issuer's files name no card: its card agency's file keys card
    // ids by HMAC and seals its values under the registry key. The log
    // names the card of each committed load and unload for the auditor.
    let demo_cards = [[0xb0u8; 8], [0xa1u8; 8]];
    let mut issuer_files = 0;
    for file in files
        .iter()
        .filter(|f| f.parent().is_some_and(|p| p.ends_with("issuer")) && !f.ends_with("log.redb"))
    {
        let bytes = std::fs::read(file).expect("read");
        for card in &demo_cards {
            assert!(
                !bytes.windows(card.len()).any(|w| w == card),
                "{} holds a card id in the clear",
                file.display()
            );
        }
        issuer_files += 1;
    }
    assert!(
        files.iter().any(|f| f.ends_with("issuer/card-agency.redb")),
        "the demo made no card agency file"
    );
    assert!(
        issuer_files >= 8,
        "only {issuer_files} issuer files checked"
    );
    eprintln!(
        "files (umask 000): {} files and {} directories checked",
        files.len(),
        dirs.len()
    );
    assert!(
        wrong.is_empty(),
        "open to group or others:\n{}",
        wrong.join("\n")
    );
}
