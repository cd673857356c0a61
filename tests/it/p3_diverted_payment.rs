//! P3: a diverted payment is refused. Over loopback HTTP, a payer's
//! SendCoins meant for one merchant is taken by another merchant, who
//! presents it to the issuer for an order of its own: the issuer refuses
//! (the payee sealed inside is not the one asking) without spending the
//! coins, so the rightful payee is then paid with the very same bytes.

use crate::util;

use client::{ClientConfig, MerchantClient};
use ledger::{Amount, Role};
use protocol::flows::PayerOutcome;
use protocol::wire::RejectReason;
use protocol::wire::payment::PaymentResult;
use util::{OPENING_MINOR, System, buy, item, send_coins, spec};

#[test]
fn coins_sent_to_one_payee_cannot_be_collected_by_another() {
    let mut system = System::start();
    let shop = system.member("shop", &[Role::Merchant], OPENING_MINOR);
    let thief = system.member("thief", &[Role::Merchant], OPENING_MINOR);
    let alice = system.member("alice", &[Role::CoinPurchaser], OPENING_MINOR);
    let shop_url = system.shop(&shop, vec![item("book", 500, None)]);
    let thief_url = system.shop(&thief, vec![item("book", 500, None)]);
    let coins = buy(&alice, spec(&[(2, 250)]));

    let shop_client = MerchantClient::new(&shop_url, ClientConfig::default()).expect("client");
    let invoice = shop_client.invoice("book", alice.id()).expect("invoice");
    let (payer, send) = send_coins(&system, &alice, &invoice, coins);

    // The thief's server presents the payment as one to itself.
    let thief_client = MerchantClient::new(&thief_url, ClientConfig::default()).expect("client");
    let decoy = thief_client.invoice("book", alice.id()).expect("invoice");
    match thief_client.pay(&decoy.tid_py, &send) {
        Ok(PaymentResult::Rejected(statement)) => {
            assert_eq!(statement.reason, RejectReason::PayeeMismatch);
            assert!(statement.bad_coins.is_empty(), "the coins are not at fault");
        }
        Ok(PaymentResult::Paid(_)) => panic!("a diverted payment was collected"),
        // Refused before any statement (the envelope does not open for
        // that order): refused all the same.
        Err(e) => assert!(e.code().is_some(), "a typed refusal: {e}"),
    }
    assert_eq!(thief.holdings(), Amount::ZERO);

    // The rightful payee collects the same bytes.
    let result = shop_client.pay(&invoice.tid_py, &send).expect("paid");
    assert_eq!(
        payer.on_result(&result).expect("receipt checks"),
        PayerOutcome::Paid {
            receipt_verified: true
        }
    );
    assert_eq!(shop.holdings(), Amount::from_minor(500));

    let report = system.stop_and_audit();
    assert_eq!(report.totals.real_in, 500);
    assert_eq!(report.totals.outstanding, 500);
}
