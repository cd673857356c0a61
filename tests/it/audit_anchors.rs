//! The auditor's anchors against a cut or unsigned log, through the
//! binary: a live issuer's log audited against the head its gateway
//! publishes (`--expect-head URL`, over TLS pinned to the issuer's
//! authority, accepting the newest records unsigned),
//! then the stopped issuer's log against the head file it left, every
//! record signed, with the bank's exported statement reconciled.

use crate::util;

use util::process::{alice_and_a_bookshop, ok, run, terminate};

#[test]
fn a_live_and_a_stopped_issuers_log_are_held_to_their_published_heads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let stage = alice_and_a_bookshop(dir);
    ok(
        dir,
        &[
            "purse",
            "pay",
            &stage.shop_url,
            "book",
            "--purse",
            "alice.purse",
        ],
    );
    let head_url = format!("https://127.0.0.1:{}/v1/log/head", stage.ip);
    let live = ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
            "--expect-head",
            &head_url,
            "--allow-unsigned-tail",
            "4096",
            "--skip-integrity-check",
        ],
    );
    assert!(live.contains("AUDIT PASSED"), "{live}");
    assert!(
        live.contains("held to the issuer's published head"),
        "{live}"
    );
    // The head is fetched over TLS pinned to the issuer's authority: plain
    // HTTP to the same gateway is refused, never read.
    let unpinned = run(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
            "--expect-head",
            &head_url.replace("https://", "http://"),
            "--allow-unsigned-tail",
            "4096",
            "--skip-integrity-check",
            "--insecure-http",
        ],
    );
    assert!(!unpinned.status.success(), "a head read over plain HTTP");

    terminate(stage.shop);
    terminate(stage.issuer);
    ok(
        dir,
        &[
            "bank",
            "export",
            "--bank",
            "iss/bank.redb",
            "--out",
            "statement.txt",
        ],
    );
    let stopped = ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
            "--expect-head",
            "iss/signed-head.txt",
            "--bank-statement",
            "statement.txt",
        ],
    );
    assert!(stopped.contains("AUDIT PASSED"), "{stopped}");
    assert!(stopped.contains("records after it unsigned)"), "{stopped}");
    assert!(
        stopped.contains("(0 records after it unsigned)"),
        "{stopped}"
    );
    assert!(stopped.contains("bank's statement reconciles"), "{stopped}");
}
