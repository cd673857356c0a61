//! A participant's life over HTTPS with the real binary: the operator
//! refuses an enrollment (for good), suspends a participant (its purchases,
//! refunds and registration are refused, and as a payee its shop is paid
//! nothing, the payer keeping its money), reinstates it, revokes a merchant
//! (its cash-out refused, reinstating refused); a participant changes its
//! key with a request its old key signed, after which the old key opens
//! nothing. Each refusal is a typed error; the audit passes afterwards.

use crate::util;

use std::path::Path;
use std::process::Output;

use util::process::{
    alice_holding_4_x_2_50, an_enrolled_shop, ok, run, serve_aggregating_bookshop,
    serve_new_issuer, terminate,
};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must fail with `code` (the gateway's typed error)
/// in its message.
fn refused_with(dir: &Path, args: &[&str], code: &str) {
    let out = run(dir, args);
    assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
    assert!(
        stderr(&out).contains(code),
        "{args:?}: expected {code}, got:\n{}",
        stderr(&out)
    );
}

fn operator(dir: &Path, args: &[&str]) -> String {
    ok(dir, &[args, &["--dir", "iss"]].concat())
}

/// What the purse can spend: `available X.XX (N coins)`.
fn available(dir: &Path, purse: &str) -> String {
    let line = ok(dir, &["purse", "balance", "--purse", purse]);
    line.split(',').next().unwrap_or_default().to_owned()
}

#[test]
fn the_operator_refuses_suspends_and_revokes_and_a_key_changes_under_the_old_keys_signature() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    alice_holding_4_x_2_50(dir, &issuer_url);
    an_enrolled_shop(dir, &issuer_url);
    let alice = ["--purse", "alice.purse"];

    // Bob asks to purchase; the operator refuses, for good.
    util::process::open_account(dir, &issuer_url, "ACH-bob", "50.00");
    let bob = ["--purse", "bob.purse"];
    ok(
        dir,
        &[
            &["purse", "init"][..],
            &bob,
            &["--id", "bob", "--issuer", &issuer_url],
        ]
        .concat(),
    );
    ok(dir, &[&["purse", "register"][..], &bob].concat());
    let enroll_bob = [
        &["purse", "enroll", "purchaser", "--account", "ACH-bob"][..],
        &bob,
    ]
    .concat();
    ok(dir, &enroll_bob);
    let refused = operator(dir, &["issuer", "enroll", "refuse", "bob", "purchaser"]);
    assert!(refused.contains("refused: bob as purchaser"), "{refused}");
    refused_with(dir, &enroll_bob, "EnrollmentRefused");
    refused_with(
        dir,
        &[
            "issuer",
            "enroll",
            "approve",
            "bob",
            "purchaser",
            "--dir",
            "iss",
        ],
        "NotEnrolled",
    );
    refused_with(
        dir,
        &[
            &["purse", "buy", "1x2.50", "--account", "ACH-bob"][..],
            &bob,
        ]
        .concat(),
        "NotEnrolled",
    );

    // Alice suspended: no purchase, no refund, no fresh certificate.
    let before = available(dir, "alice.purse");
    operator(dir, &["issuer", "participant", "suspend", "alice"]);
    let buy = [
        &["purse", "buy", "1x2.50", "--account", "ACH-alice"][..],
        &alice,
    ]
    .concat();
    refused_with(dir, &buy, "Suspended");
    refused_with(
        dir,
        &[&["purse", "refund"][..], &alice].concat(),
        "Suspended",
    );
    refused_with(
        dir,
        &[&["purse", "register"][..], &alice].concat(),
        "Suspended",
    );
    assert_eq!(available(dir, "alice.purse"), before);
    // Reinstated: what was refused while she was suspended stayed in her
    // purse's journal, and is finished now (the purchase, the refund).
    operator(dir, &["issuer", "participant", "reinstate", "alice"]);
    let resumed = ok(dir, &[&["purse", "resume"][..], &alice].concat());
    assert!(resumed.contains("finished 2"), "{resumed}");
    ok(dir, &buy);

    // The shop suspended: as a payee it is paid nothing, and alice keeps
    // her money (the wallet takes the coins back through the issuer at
    // once).
    let (shop, shop_url) = serve_aggregating_bookshop(dir);
    let pay = [
        &["purse", "pay", &shop_url, "book", "--payee", "shop"][..],
        &alice,
    ]
    .concat();
    let before = available(dir, "alice.purse");
    operator(dir, &["issuer", "participant", "suspend", "shop"]);
    let paid = run(dir, &pay);
    assert!(!paid.status.success(), "paid a suspended shop: {paid:?}");
    assert!(
        String::from_utf8_lossy(&paid.stdout).contains("Suspended"),
        "{paid:?}"
    );
    assert_eq!(available(dir, "alice.purse"), before);
    operator(dir, &["issuer", "participant", "reinstate", "shop"]);
    ok(dir, &pay);
    terminate(shop);

    // The shop revoked: its cash-out refused, and revocation is final.
    operator(dir, &["issuer", "participant", "revoke", "shop"]);
    refused_with(
        dir,
        &["merchant", "cash-out", "--purse", "shop.purse"],
        "Revoked",
    );
    refused_with(
        dir,
        &["issuer", "participant", "reinstate", "shop", "--dir", "iss"],
        "Revoked",
    );

    // Alice changes her key, signed by the old one. A copy of her purse
    // from before the change still holds the old key: it opens nothing.
    std::fs::copy(dir.join("alice.purse"), dir.join("alice-old.purse")).expect("copy");
    let changed = ok(dir, &[&["purse", "change-key"][..], &alice].concat());
    assert!(changed.contains("key changed"), "{changed}");
    ok(dir, &buy);
    refused_with(
        dir,
        &[
            "purse",
            "buy",
            "1x2.50",
            "--account",
            "ACH-alice",
            "--purse",
            "alice-old.purse",
        ],
        "Refused",
    );
    refused_with(
        dir,
        &["purse", "change-key", "--purse", "alice-old.purse"],
        "Refused",
    );
    // Her new key changes again; the old purse's stale request is gone.
    ok(dir, &[&["purse", "change-key"][..], &alice].concat());
    ok(dir, &buy);

    terminate(issuer);
    let audit = util::process::audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
}
