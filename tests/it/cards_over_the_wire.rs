//! Cards over the wire, with the real binary: while the issuer serves,
//! `varietycash card` loads a card from alice's purse, moves value to
//! another card, unloads it back into her purse and clears with the
//! issuer, every step through the issuer's gateway (its card agency route,
//! signed with the operator key, over TLS pinned to its authority). The
//! issuer is never stopped: alice buys more coins from it in between, and
//! the audit of its log passes afterwards.

use crate::util;

use std::path::Path;

use util::process::{alice_holding_4_x_2_50, audit_stage, ok, serve_new_issuer, terminate};

const CARD: &str = "00000000000000e1";
const OTHER: &str = "00000000000000e2";

fn card(dir: &Path, args: &[&str]) -> String {
    ok(dir, &[&["card", "--dir", "cards"][..], args].concat())
}

fn card_balance(dir: &Path, id: &str) -> String {
    card(dir, &["show", "--card", id])
        .lines()
        .find_map(|l| l.trim().strip_prefix("balance"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn cards_load_transfer_unload_and_clear_through_a_serving_issuer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    alice_holding_4_x_2_50(dir, &issuer_url);
    card(dir, &["issue", "--card", CARD]);
    card(dir, &["issue", "--card", OTHER]);
    let purse = ["--purse", "alice.purse"];

    let loaded = card(
        dir,
        &[
            &["from-purse", "--card", CARD, "5.00", "--issuer-dir", "iss"][..],
            &purse,
        ]
        .concat(),
    );
    assert!(loaded.contains("loaded onto"), "{loaded}");
    assert_eq!(card_balance(dir, CARD), "5.00");

    // The issuer kept serving: alice buys from it between card steps.
    ok(
        dir,
        &[
            &["purse", "buy", "1x2.50", "--account", "ACH-alice"][..],
            &purse,
        ]
        .concat(),
    );

    let moved = card(
        dir,
        &[
            "transfer",
            "--from",
            CARD,
            "--to",
            OTHER,
            "2.00",
            "--issuer-dir",
            "iss",
        ],
    );
    assert!(moved.contains("moved from"), "{moved}");
    assert_eq!(card_balance(dir, OTHER), "2.00");

    let unloaded = card(
        dir,
        &[
            &["to-purse", "--card", OTHER, "2.00", "--issuer-dir", "iss"][..],
            &purse,
        ]
        .concat(),
    );
    assert!(unloaded.contains("unloaded from"), "{unloaded}");
    let balance = ok(dir, &[&["purse", "balance"][..], &purse].concat());
    assert!(balance.starts_with("available 9.50"), "{balance}");

    let cleared = card(dir, &["clear"]);
    assert!(!cleared.is_empty(), "{cleared}");

    terminate(issuer);
    let audit = audit_stage(dir);
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
}
