//! W2: no coins without a settled debit. Over loopback HTTP, a purchaser
//! whose account cannot cover the purchase gets the issuer's signed refusal
//! (the bank rejected the debit) and no coins; the auditor finds no money
//! in and no e-money out in the issuer's log.

use crate::util;

use client::PurchaseOutcome;
use ledger::{Amount, Role};
use protocol::wire::RejectReason;
use util::{System, paper_spec};

#[test]
fn a_purchase_the_bank_refuses_issues_no_coins() {
    let system = System::start();
    // 5.00 in the bank, 12.25 asked.
    let bob = system.member("bob", &[Role::CoinPurchaser], 500);

    let outcome = bob
        .wallet
        .buy(paper_spec(), bob.account.clone(), false)
        .expect("the purchase runs to an answer");
    let PurchaseOutcome::Rejected(statement) = outcome else {
        panic!("expected the bank's refusal, got {outcome:?}");
    };
    assert!(
        matches!(statement.reason, RejectReason::BankRejected(_)),
        "{:?}",
        statement.reason
    );
    assert_eq!(bob.holdings(), Amount::ZERO, "no coins without a debit");
    assert_eq!(
        system.bank_balance(&bob.account),
        Amount::from_minor(500),
        "nothing was debited"
    );
    assert!(bob.purse.in_flight().expect("journal").is_empty());

    let report = system.stop_and_audit();
    assert_eq!(report.totals.real_in, 0);
    assert_eq!(report.totals.outstanding, 0);
    assert_eq!(report.unspent_coins, 0);
}
