//! P4: the payer receives an issuer-signed statement and verifies it. Over
//! loopback HTTP, a refused payment (coins already spent) comes back
//! through the merchant as the issuer's signed statement: it verifies under
//! the issuer's key, not under another key, and not once altered; the
//! purse marks exactly the named coins bad, with the statement as proof.

use crate::util;

use client::{ClientConfig, MerchantClient};
use ledger::{Amount, Coin, Role};
use protocol::flows::PayerOutcome;
use protocol::flows::issuer::verify_reject;
use protocol::wire::RejectReason;
use protocol::wire::payment::PaymentResult;
use purse::CoinState;
use util::{OPENING_MINOR, System, buy, item, send_coins, spec};

#[test]
fn a_refused_payer_holds_a_statement_only_the_issuer_could_sign() {
    let mut system = System::start();
    let shop = system.member("shop", &[Role::Merchant], OPENING_MINOR);
    let alice = system.member("alice", &[Role::CoinPurchaser], OPENING_MINOR);
    let shop_url = system.shop(&shop, vec![item("book", 500, None)]);
    let coins = buy(&alice, spec(&[(2, 250)]));
    let pk_i = system.info.key().expect("issuer key");

    // The coins are spent once, through the protocol.
    let client = MerchantClient::new(&shop_url, ClientConfig::default()).expect("client");
    let invoice = client.invoice("book", alice.id()).expect("invoice");
    let (_, send) = send_coins(&system, &alice, &invoice, coins.clone());
    client.pay(&invoice.tid_py, &send).expect("paid");

    // Offered again: the statement comes back through the merchant.
    let invoice = client.invoice("book", alice.id()).expect("invoice");
    let (payer, send) = send_coins(&system, &alice, &invoice, coins.clone());
    let result = client.pay(&invoice.tid_py, &send).expect("answered");
    let PaymentResult::Rejected(statement) = &result else {
        panic!("expected the issuer's statement, got {result:?}");
    };
    verify_reject(&pk_i, statement).expect("signed by the issuer");
    let other_key = shop
        .purse
        .profile()
        .expect("profile")
        .public_key()
        .expect("key");
    assert!(
        verify_reject(&other_key, statement).is_err(),
        "no other key verifies it"
    );
    let mut altered = statement.clone();
    altered.reason = RejectReason::Expired;
    assert!(verify_reject(&pk_i, &altered).is_err(), "altered, it fails");
    assert!(
        payer.on_result(&PaymentResult::Rejected(altered)).is_err(),
        "the payer refuses an altered statement"
    );
    assert!(matches!(
        payer.on_result(&result).expect("the payer verifies it"),
        PayerOutcome::Rejected {
            reason: RejectReason::AlreadySpent,
            ..
        }
    ));

    // Through the wallet: its purse (which still thinks it holds the coins)
    // marks the named coins bad, on the statement's word.
    let ours: Vec<_> = coins.iter().map(Coin::id).collect();
    let outcome = alice.wallet.pay(&shop_url, "book").expect("answered");
    assert!(
        matches!(outcome, PayerOutcome::Rejected { .. }),
        "{outcome:?}"
    );
    let bad: Vec<_> = alice
        .purse
        .coins()
        .expect("coins")
        .into_iter()
        .filter(|c| matches!(c.state, CoinState::Bad(_)))
        .map(|c| c.coin.id())
        .collect();
    assert!(!bad.is_empty(), "the named coins are bad");
    assert!(bad.iter().all(|c| ours.contains(c)));
    assert_eq!(shop.holdings(), Amount::from_minor(500));

    let report = system.stop_and_audit();
    assert_eq!(report.totals.real_in, 500);
}
