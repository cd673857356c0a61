//! Cash-out over HTTPS with the real binary: a merchant that aggregates has
//! its balance paid to its enrolled redeem account with `merchant cash-out`;
//! nobody else can cash it out, an amount above the balance pays nothing, a
//! repeated request pays once (whatever amount the repeat names), and the
//! auditor reconciles the payouts with the bank's statement.

use crate::util;

use std::path::Path;
use std::process::Child;

use client::{ClientConfig, ErrorCode, IssuerCa, IssuerClient};
use ledger::ParticipantId;
use protocol::crypto::{PublicKey, SecretKey};
use protocol::flows::cash_out::cash_out_request;
use protocol::wire::cash_out::{CashOutAmount, CashOutId};
use util::process::{
    alice_holding_4_x_2_50, an_enrolled_shop, ok, run, serve_aggregating_bookshop,
    serve_new_issuer, terminate,
};

/// An issuer; alice holding 4 × 2.50; a shop enrolled as merchant,
/// collecting into its aggregated balance; alice buys a 5.00 book there,
/// then the shop's server stops.
struct Stage {
    issuer: Child,
    issuer_url: String,
}

fn a_shop_with_5_00_aggregated(dir: &Path) -> Stage {
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    alice_holding_4_x_2_50(dir, &issuer_url);
    an_enrolled_shop(dir, &issuer_url);
    let alice = ["--purse", "alice.purse"];
    let (shop, shop_url) = serve_aggregating_bookshop(dir);
    ok(
        dir,
        &[&["purse", "pay", &shop_url, "book"][..], &alice].concat(),
    );
    // The shop's server holds its purse: cash-out runs with it stopped.
    terminate(shop);
    Stage { issuer, issuer_url }
}

fn shop_account(dir: &Path, issuer_url: &str) -> String {
    ok(
        dir,
        &[
            "bank", "--dir", "iss", "balance", "ACH-shop", "--issuer", issuer_url,
        ],
    )
    .trim()
    .to_owned()
}

fn cash_out(dir: &Path, amount: Option<&str>) -> std::process::Output {
    let mut args = vec!["merchant", "cash-out", "--purse", "shop.purse"];
    args.extend(amount);
    run(dir, &args)
}

#[test]
fn a_merchant_cashes_out_its_aggregated_balance_once_and_nobody_else_can() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let stage = a_shop_with_5_00_aggregated(dir);
    let url = stage.issuer_url.clone();
    assert_eq!(shop_account(dir, &url), "ACH-shop 0.00");

    // A stranger's key signing a request that names the shop: refused.
    let ca = IssuerCa::read_pem(&dir.join("iss").join("tls-ca.pem")).expect("ca");
    let client = IssuerClient::new(&url, ClientConfig::pinned(ca)).expect("client");
    let descriptor = client.descriptor().expect("descriptor");
    let pk_i = PublicKey::from_ledger(&descriptor.public_key).expect("issuer key");
    let stranger = SecretKey::generate(2048).expect("key");
    let forged = cash_out_request(
        &stranger,
        ParticipantId::new("shop").expect("id"),
        descriptor.id_i,
        &pk_i,
        CashOutId([7; 16]),
        CashOutAmount::All,
    );
    let refused = client.cash_out(&forged).expect_err("a stranger's cash-out");
    assert_eq!(refused.code(), Some(ErrorCode::Refused), "{refused}");
    // Alice, registered but no merchant, asking with her own key.
    let alice = run(dir, &["merchant", "cash-out", "--purse", "alice.purse"]);
    assert!(!alice.status.success(), "{alice:?}");
    assert!(
        String::from_utf8_lossy(&alice.stderr).contains("NotEnrolled"),
        "{alice:?}"
    );
    assert_eq!(shop_account(dir, &url), "ACH-shop 0.00");

    // Above the balance: refused, nothing paid, nothing left pending.
    let above = cash_out(dir, Some("9.00"));
    assert!(!above.status.success(), "{above:?}");
    assert!(
        String::from_utf8_lossy(&above.stderr).contains("balance"),
        "{above:?}"
    );
    assert_eq!(shop_account(dir, &url), "ACH-shop 0.00");
    assert!(!dir.join("shop.purse.cash-out-pending").exists());

    // A request whose answer was lost is sent again by the next run; a
    // repeat naming another amount pays nothing more and gets the first
    // receipt.
    let pending = dir.join("shop.purse.cash-out-pending");
    let id = "0102030405060708090a0b0c0d0e0f10";
    std::fs::write(&pending, format!("{id} 2.00\n")).expect("pending");
    let first = String::from_utf8_lossy(&cash_out(dir, None).stdout).into_owned();
    assert!(first.contains("cashed out 2.00"), "{first}");
    assert_eq!(shop_account(dir, &url), "ACH-shop 2.00");
    std::fs::write(&pending, format!("{id} 3.00\n")).expect("pending");
    let repeat = cash_out(dir, None);
    let repeat_out = String::from_utf8_lossy(&repeat.stdout).into_owned();
    assert!(repeat.status.success(), "{repeat:?}");
    assert!(repeat_out.contains("cashed out 2.00"), "{repeat_out}");
    assert_eq!(shop_account(dir, &url), "ACH-shop 2.00");

    // The rest, then nothing is left to cash out.
    let rest = ok(dir, &["merchant", "cash-out", "--purse", "shop.purse"]);
    assert!(rest.contains("cashed out 3.00"), "{rest}");
    assert_eq!(shop_account(dir, &url), "ACH-shop 5.00");
    let empty = cash_out(dir, None);
    assert!(!empty.status.success(), "{empty:?}");
    assert_eq!(shop_account(dir, &url), "ACH-shop 5.00");
    // A zero amount is refused before anything is sent.
    assert!(!cash_out(dir, Some("0.00")).status.success());

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
    let audit = ok(
        dir,
        &[
            "audit",
            "--log",
            "iss/log.redb",
            "--issuer-key",
            "iss/issuer.pub",
            "--bank-statement",
            "statement.txt",
        ],
    );
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    assert!(audit.contains("bank's statement reconciles"), "{audit}");
}
