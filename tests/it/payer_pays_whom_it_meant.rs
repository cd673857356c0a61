//! `purse pay` through the binary pays only the payee it was told to and
//! no more than it was told to: an invoice from another merchant id than
//! `--payee`, or dearer than `--max`, is refused before any coin is
//! reserved, with exit code 1; the same command naming the shop and its
//! price pays. Every party is its own process.

use crate::util;

use util::process::{Stage, alice_and_a_bookshop, audit_stage, ok, run, terminate};

#[test]
fn purse_pay_refuses_an_invoice_from_another_payee_or_above_its_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let Stage {
        issuer,
        shop,
        shop_url,
        ..
    } = alice_and_a_bookshop(dir);
    let pay = |extra: &[&str]| {
        let mut args = vec!["purse", "pay", &shop_url, "book", "--purse", "alice.purse"];
        args.extend_from_slice(extra);
        run(dir, &args)
    };

    for extra in [&["--payee", "bookshop-elsewhere"][..], &["--max", "4.99"]] {
        let out = pay(extra);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stdout}");
        assert!(stdout.contains("invoice refused"), "{extra:?}: {stdout}");
        let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
        assert!(
            balance.starts_with("available 10.00"),
            "{extra:?}: {balance}"
        );
    }

    let paid = ok(
        dir,
        &[
            "purse",
            "pay",
            &shop_url,
            "book",
            "--purse",
            "alice.purse",
            "--payee",
            "shop",
            "--max",
            "5.00",
        ],
    );
    assert!(paid.contains("receipt verified"), "{paid}");
    let balance = ok(dir, &["purse", "balance", "--purse", "alice.purse"]);
    assert!(balance.starts_with("available 5.00"), "{balance}");

    terminate(shop);
    terminate(issuer);
    audit_stage(dir);
}
