//! W1 (the paper's withdrawal requirement): a valid coin purchase goes
//! through. Over loopback HTTP, a registered, enrolled purchaser buys the
//! paper's (2, $2.50), (1, $1.25), (3, $2): the bank debits exactly the
//! amount, the purse holds exactly the coins asked for, and the auditor
//! finds the issuer's log conserving cash with that money in.

use crate::util;

use ledger::{Amount, Role};
use util::{OPENING_MINOR, System, buy, minor, paper_spec};

#[test]
fn a_valid_purchase_is_debited_once_and_issues_exactly_the_coins_asked_for() {
    let system = System::start();
    let alice = system.member("alice", &[Role::CoinPurchaser], OPENING_MINOR);
    let spec = paper_spec();
    let total = spec.total().expect("total");

    let coins = buy(&alice, spec.clone());

    let mut got: Vec<Amount> = coins.iter().map(|c| c.value()).collect();
    let mut asked: Vec<Amount> = spec.values().collect();
    got.sort();
    asked.sort();
    assert_eq!(got, asked, "the coins are the spec's values");
    assert_eq!(alice.holdings(), Amount::from_minor(1225));
    assert_eq!(
        system.bank_balance(&alice.account),
        Amount::from_minor(OPENING_MINOR - 1225),
        "the bank debited the purchase's amount"
    );
    assert!(alice.purse.in_flight().expect("journal").is_empty());

    let report = system.stop_and_audit();
    assert_eq!(report.totals.real_in, minor(total));
    assert_eq!(report.totals.outstanding, minor(total));
    assert_eq!(report.unspent_coins, 6);
}
