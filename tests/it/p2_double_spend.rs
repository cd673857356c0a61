//! P2: a double spend is detected. Over loopback HTTP, coins a holder has
//! already paid with are offered again, to the same merchant and to a
//! second one, straight through the protocol (the purse would refuse):
//! the issuer refuses every copy as already spent, naming only those coins,
//! no merchant gains anything, and the auditor finds the log conserving
//! cash with the coins spent once.

use crate::util;

use client::{ClientConfig, MerchantClient};
use ledger::{Amount, Coin, Role};
use protocol::flows::PayerOutcome;
use protocol::wire::RejectReason;
use util::{OPENING_MINOR, System, buy, item, send_coins, spec};

#[test]
fn coins_paid_once_are_refused_everywhere_after() {
    let mut system = System::start();
    let shop = system.member("shop", &[Role::Merchant], OPENING_MINOR);
    let other = system.member("othershop", &[Role::Merchant], OPENING_MINOR);
    let alice = system.member("alice", &[Role::CoinPurchaser], OPENING_MINOR);
    let shop_url = system.shop(&shop, vec![item("book", 500, None)]);
    let other_url = system.shop(&other, vec![item("book", 500, None)]);
    let coins = buy(&alice, spec(&[(2, 250)]));
    let ours: Vec<_> = coins.iter().map(Coin::id).collect();

    // The honest payment.
    let shop_client = MerchantClient::new(&shop_url, ClientConfig::default()).expect("client");
    let invoice = shop_client.invoice("book", alice.id()).expect("invoice");
    let (payer, send) = send_coins(&system, &alice, &invoice, coins.clone());
    let result = shop_client.pay(&invoice.tid_py, &send).expect("paid");
    assert!(matches!(
        payer.on_result(&result).expect("checks"),
        PayerOutcome::Paid { .. }
    ));

    // The same coins again, to the same shop and to another.
    for url in [&shop_url, &other_url] {
        let client = MerchantClient::new(url, ClientConfig::default()).expect("client");
        let invoice = client.invoice("book", alice.id()).expect("invoice");
        let (payer, send) = send_coins(&system, &alice, &invoice, coins.clone());
        let result = client.pay(&invoice.tid_py, &send).expect("answered");
        match payer.on_result(&result).expect("the statement checks") {
            PayerOutcome::Rejected {
                reason, bad_coins, ..
            } => {
                assert_eq!(reason, RejectReason::AlreadySpent, "at {url}");
                assert!(!bad_coins.is_empty());
                assert!(bad_coins.iter().all(|c| ours.contains(c)), "only ours");
            }
            other => panic!("a double spend went through at {url}: {other:?}"),
        }
    }
    assert_eq!(shop.holdings(), Amount::from_minor(500), "paid once");
    assert_eq!(other.holdings(), Amount::ZERO, "nothing for the copy");

    let report = system.stop_and_audit();
    assert_eq!(report.totals.real_in, 500);
    assert_eq!(
        report.totals.outstanding, 500,
        "the shop's fresh coins only"
    );
}
