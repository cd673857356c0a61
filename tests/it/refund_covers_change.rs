//! A refund brings back every coin the issuer issued to its holder, the
//! change of such coins included, and nothing that would tie coins bought
//! anonymously to the holder: with the real binary over HTTPS, carol buys
//! 2 × 2.50 in her name, changes one into 2 × 1.25, buys 2.00 anonymously
//! and changes it into 2 × 1.00; she loses her purse, restores it from
//! her key backup, and the refund returns 5.00 in 3 coins (the 2.50 and
//! the two 1.25s), not the 2.00 that came from the anonymous coin. The
//! audit passes afterwards.

use crate::util;

use util::process::{audit_stage, ok, open_account, serve_new_issuer, terminate};

#[test]
fn a_refund_returns_the_change_of_coins_bought_in_the_holders_name_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    open_account(dir, &issuer_url, "ACH-carol", "100.00");
    let carol = ["--dir", "carol"];
    ok(
        dir,
        &[
            &["purse", "init"][..],
            &carol,
            &[
                "--id",
                "carol",
                "--issuer",
                &issuer_url,
                "--account",
                "ACH-carol",
            ],
        ]
        .concat(),
    );
    ok(dir, &[&["purse", "register"][..], &carol].concat());
    ok(
        dir,
        &[&["purse", "enroll", "purchaser"][..], &carol].concat(),
    );
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
    ok(
        dir,
        &[&["purse", "backup", "carol.keys"][..], &carol].concat(),
    );

    ok(dir, &[&["purse", "buy", "2x2.50"][..], &carol].concat());
    ok(dir, &[&["purse", "change", "2x1.25"][..], &carol].concat());
    ok(
        dir,
        &[&["purse", "buy", "1x2.00", "--anonymous"][..], &carol].concat(),
    );
    ok(dir, &[&["purse", "change", "2x1.00"][..], &carol].concat());
    let balance = ok(dir, &[&["purse", "balance"][..], &carol].concat());
    assert!(balance.starts_with("available 7.00 (5 coins)"), "{balance}");

    std::fs::remove_file(dir.join("carol/purse.redb")).expect("lost");
    ok(
        dir,
        &["purse", "init", "--dir", "carol", "--restore", "carol.keys"],
    );
    let refunded = ok(dir, &[&["purse", "refund"][..], &carol].concat());
    assert!(
        refunded.contains("3 coin(s) revoked, 5.00 back"),
        "{refunded}"
    );

    terminate(issuer);
    let audit = audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
}
