//! P1: valid payments go through, with each of the paper's three options.
//! Over loopback HTTP, a coin holder pays a merchant server for an item it
//! collects with refresh (fresh coins into its purse), one it aggregates (a
//! credit to its balance at the issuer, after the payer made change) and
//! one it redeems (an ACH credit to its bank account). Each payment ends
//! with the payee's receipt verified by the payer, and the auditor finds
//! every cent of the purchase accounted for.

use crate::util;

use client::CollectOption;
use ledger::{Amount, Role};
use protocol::flows::PayerOutcome;
use util::{OPENING_MINOR, System, buy, item, minor, paper_spec};

const VERIFIED: PayerOutcome = PayerOutcome::Paid {
    receipt_verified: true,
};

#[test]
fn payments_with_refresh_aggregate_and_redeem_reach_the_payee() {
    let mut system = System::start();
    let shop = system.member("shop", &[Role::Merchant, Role::Redeemer], OPENING_MINOR);
    let alice = system.member("alice", &[Role::CoinPurchaser], OPENING_MINOR);
    let shop_url = system.shop(
        &shop,
        vec![
            item("book", 500, Some(CollectOption::Refresh)),
            item("tea", 250, Some(CollectOption::Aggregate)),
            item(
                "map",
                200,
                Some(CollectOption::Redeem {
                    bank_account: shop.account.clone(),
                }),
            ),
        ],
    );
    buy(&alice, paper_spec());

    // Refresh: 2 x 2.50 in, 5.00 of fresh coins to the shop's purse.
    assert_eq!(alice.wallet.pay(&shop_url, "book").expect("paid"), VERIFIED);
    assert_eq!(shop.holdings(), Amount::from_minor(500));

    // Aggregate: no exact subset of 1.25 + 3 x 2.00 makes 2.50, so the
    // wallet changes coins with the issuer first.
    assert_eq!(alice.wallet.pay(&shop_url, "tea").expect("paid"), VERIFIED);
    assert_eq!(shop.holdings(), Amount::from_minor(500), "no coins for it");

    // Redeem: a bank credit to the shop's account.
    let before = system.bank_balance(&shop.account);
    assert_eq!(alice.wallet.pay(&shop_url, "map").expect("paid"), VERIFIED);
    assert_eq!(
        system.bank_balance(&shop.account),
        before.checked_add(Amount::from_minor(200)).expect("sum")
    );

    assert_eq!(alice.holdings(), Amount::from_minor(1225 - 500 - 250 - 200));
    assert!(alice.purse.in_flight().expect("journal").is_empty());
    assert!(shop.purse.in_flight().expect("journal").is_empty());

    let report = system.stop_and_audit();
    let t = report.totals;
    assert_eq!(t.real_in, 1225);
    assert_eq!(t.aggregates, 250, "the tea is in the shop's balance");
    assert_eq!(t.real_out, 200, "the map was paid out to the bank");
    assert_eq!(
        t.outstanding,
        minor(alice.holdings()) + minor(shop.holdings()),
        "the e-money outstanding is what the purses hold"
    );
}
