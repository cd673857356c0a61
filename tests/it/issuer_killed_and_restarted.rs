//! The issuer killed (SIGKILL, no chance to close anything) and restarted:
//! its log is repaired by the next start, coins bought before the crash
//! spend once after it, a coin spent before the crash stays spent, and the
//! auditor passes the log. Every party is its own process.

use crate::util;

use util::process::{
    SERVE_ISSUER, Stage, alice_and_a_bookshop, audit_stage, kill_hard, ok, run, spawn, terminate,
    wait_healthy,
};

#[test]
fn coins_survive_an_issuer_crash_and_spend_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let Stage {
        issuer,
        shop,
        ip,
        shop_url,
    } = alice_and_a_bookshop(dir);
    ok(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );

    // Crash, and come back on the same address.
    kill_hard(issuer);
    let down = run(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(!down.status.success(), "paid with the issuer down");
    let issuer = spawn(dir, &SERVE_ISSUER);
    wait_healthy(ip);

    // The payment cut off by the crash is finished (or reclaimed) by
    // resuming; then the rest of the coins pay once more and no further.
    ok(dir, &["purse", "resume", "--purse", "alice.purse"]);
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    let paid_again = balance.starts_with("available 5.00");
    if paid_again {
        ok(
            dir,
            &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
        );
    }
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(balance.starts_with("available 0.00"), "{balance}");
    let broke = run(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    assert!(!broke.status.success(), "paid with no money left");

    terminate(shop);
    terminate(issuer);
    let audit = audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    assert!(
        audit.contains("real money in                     10.00"),
        "{audit}"
    );
    assert!(
        audit.contains("outstanding e-money               10.00"),
        "{audit}"
    );
}

#[test]
fn an_auditor_reads_a_crashed_issuers_log_without_writing_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let Stage {
        issuer,
        shop,
        shop_url,
        ..
    } = alice_and_a_bookshop(dir);
    ok(
        dir,
        &["purse", "pay", &shop_url, "book", "--purse", "alice.purse"],
    );
    terminate(shop);
    // The issuer dies with its log open: redb marks such a file as needing
    // a repair, which only a writable open performs.
    kill_hard(issuer);
    let log = dir.join("iss/log.redb");
    let before = std::fs::read(&log).expect("the crashed log");

    // Killed, the issuer could not sign its last records: an auditor of a
    // crashed log accepts an unsigned tail as long as the issuer may leave
    // one (it seals every 4,096 records), and refuses it otherwise.
    let strict = run(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
        ],
    );
    let strict_out = String::from_utf8_lossy(&strict.stdout).to_string();
    if !strict.status.success() {
        assert!(strict_out.contains("unsigned_records"), "{strict_out}");
    }
    let audit = ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
            "--allow-unsigned-tail",
            "4096",
        ],
    );
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    assert!(audit.contains("was not closed cleanly"), "{audit}");
    assert!(
        audit.contains("real money in                     10.00"),
        "{audit}"
    );
    assert_eq!(
        std::fs::read(&log).expect("the log after the audit"),
        before,
        "the auditor wrote the evidence"
    );
}
