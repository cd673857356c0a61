//! The purse passphrase through the binary: a purse made by `purse init`
//! and its key backup hold no identity or private key in the clear; every
//! purse command needs the passphrase, from `VC_PURSE_PASSPHRASE` or a
//! terminal, and without either says which variable to set; a wrong one is
//! a clear error that loses nothing (the same purse opens with the right
//! one and restores from its backup).

use crate::util;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use util::process::{BIN, ok, serve_new_issuer, terminate};

/// Runs a purse command with this passphrase (`None`: the variable unset),
/// standard input not a terminal.
fn with_passphrase(dir: &Path, passphrase: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .args(args)
        .env("VC_PURSE_KDF", "insecure-fast")
        .env_remove("VC_PURSE_PASSPHRASE")
        .stdin(Stdio::null());
    if let Some(passphrase) = passphrase {
        command.env("VC_PURSE_PASSPHRASE", passphrase);
    }
    command.output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_purse_needs_its_passphrase_and_a_wrong_one_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    ok(
        dir,
        &[
            "purse",
            "init",
            "--dir",
            "dora",
            "--id",
            "dora-the-holder",
            "--issuer",
            &issuer_url,
        ],
    );
    ok(dir, &["purse", "register", "--dir", "dora"]);
    ok(dir, &["purse", "backup", "dora.keys", "--dir", "dora"]);
    for file in ["dora/purse.redb", "dora.keys"] {
        let bytes = std::fs::read(dir.join(file)).expect("read");
        assert!(
            !contains(&bytes, b"dora-the-holder"),
            "{file} shows its owner's identity"
        );
        assert!(
            !contains(&bytes, issuer_url.as_bytes()),
            "{file} shows the issuer record"
        );
    }

    let missing = with_passphrase(dir, None, &["purse", "balance", "--dir", "dora"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("VC_PURSE_PASSPHRASE"),
        "{}",
        stderr(&missing)
    );

    let wrong = with_passphrase(dir, Some("not it"), &["purse", "balance", "--dir", "dora"]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("wrong passphrase"),
        "{}",
        stderr(&wrong)
    );
    let restore = with_passphrase(
        dir,
        Some("not it"),
        &["purse", "init", "--dir", "other", "--restore", "dora.keys"],
    );
    assert!(!restore.status.success());
    assert!(
        stderr(&restore).contains("wrong passphrase"),
        "{}",
        stderr(&restore)
    );
    assert!(!dir.join("other/purse.redb").exists());

    // The right one still opens both.
    let right = with_passphrase(
        dir,
        Some(util::PASSPHRASE),
        &["purse", "balance", "--dir", "dora"],
    );
    assert!(right.status.success(), "{}", stderr(&right));
    ok(
        dir,
        &["purse", "init", "--dir", "other", "--restore", "dora.keys"],
    );
    terminate(issuer);
}
