//! A coin holder who loses her purse file gets her money back (paper
//! section 3, refund for non-anonymous holders), with the real binary as
//! separate processes over loopback: she keeps a key backup (`purse
//! backup`, mode 0600, refused when others can read it), loses the purse,
//! makes an empty one from the backup (`purse init --restore`), and `purse
//! refund` brings back exactly the value of her unspent coins; a stale copy
//! of the lost file is worthless. The purse lives in a data directory with
//! its purse.toml (issuer and default account). Then the operator opens a
//! new key epoch (`issuer epoch open`) and the auditor passes the log.

use crate::util;

use std::os::unix::fs::PermissionsExt;

use util::process::{audit_stage, ok, run, serve_new_issuer, terminate};

#[test]
fn a_lost_purse_is_restored_from_its_key_backup_and_refunded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    ok(
        dir,
        &[
            "bank",
            "--dir",
            "iss",
            "open-account",
            "ACH-carol",
            "100.00",
            "--issuer",
            &issuer_url,
        ],
    );

    // The data directory: purse.redb and purse.toml, written by init.
    ok(
        dir,
        &[
            "purse",
            "init",
            "--dir",
            "carol",
            "--id",
            "carol",
            "--issuer",
            &issuer_url,
            "--account",
            "ACH-carol",
        ],
    );
    let config = std::fs::read_to_string(dir.join("carol/purse.toml")).expect("purse.toml");
    assert!(config.contains("ACH-carol"), "{config}");
    ok(dir, &["purse", "register", "--dir", "carol"]);
    ok(dir, &["purse", "enroll", "purchaser", "--dir", "carol"]);
    ok(
        dir,
        &[
            "issuer",
            "enroll",
            "approve",
            "carol",
            "purchaser",
            "--dir",
            "iss",
        ],
    );
    ok(dir, &["purse", "backup", "carol.keys", "--dir", "carol"]);
    let mode = std::fs::metadata(dir.join("carol.keys"))
        .expect("backup")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let bought = ok(dir, &["purse", "buy", "2x2.50,1x1.25", "--dir", "carol"]);
    assert!(bought.contains("bought 6.25 in 3 coins"), "{bought}");

    // The disk is lost; a stale copy of the purse file survives elsewhere.
    std::fs::copy(dir.join("carol/purse.redb"), dir.join("stale.purse")).expect("copy");
    std::fs::remove_file(dir.join("carol/purse.redb")).expect("lost");

    // A backup others can read is refused.
    std::fs::copy(dir.join("carol.keys"), dir.join("open.keys")).expect("copy");
    std::fs::set_permissions(
        dir.join("open.keys"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let refused = run(
        dir,
        &["purse", "init", "--dir", "other", "--restore", "open.keys"],
    );
    assert!(!refused.status.success(), "a 0644 backup was accepted");

    let restored = ok(
        dir,
        &["purse", "init", "--dir", "carol", "--restore", "carol.keys"],
    );
    assert!(restored.contains("restored for carol"), "{restored}");
    let balance = ok(dir, &["purse", "balance", "--dir", "carol"]);
    assert!(balance.starts_with("available 0.00"), "{balance}");
    let refunded = ok(dir, &["purse", "refund", "--dir", "carol"]);
    assert!(
        refunded.contains("3 coin(s) revoked, 6.25 back"),
        "{refunded}"
    );
    let balance = ok(dir, &["purse", "balance", "--dir", "carol"]);
    assert!(balance.starts_with("available 6.25"), "{balance}");

    // The stale copy's coins were revoked: the issuer refuses them.
    let stale = run(
        dir,
        &["purse", "change", "1x1.25", "--purse", "stale.purse"],
    );
    let stdout = String::from_utf8_lossy(&stale.stdout);
    assert_eq!(stale.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("AlreadySpent"), "{stdout}");

    // A new key epoch, opened by the operator through the issuer's epoch
    // path (the issuer is stopped: the command runs it in-process).
    terminate(issuer);
    let epoch = ok(dir, &["issuer", "epoch", "open", "--dir", "iss"]);
    assert!(epoch.contains("key epoch 2 opened"), "{epoch}");
    let audit = audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    assert!(
        audit.contains("outstanding e-money                6.25"),
        "{audit}"
    );
}
