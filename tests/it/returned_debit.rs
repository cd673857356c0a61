//! A purchase debit the bank returns after the coins were issued (paper
//! §2.1: the issuer debits the purchaser's account; real banks may give a
//! collected debit back days later): the return arrives in the bank's
//! camt.053 statement, the issuer logs `PurchaseDebitReturned`, suspends
//! the purchaser's enrollment on that account, and the audit still proves
//! conservation, with the loss on a line of its own.

use crate::util;

use bank_files::Iban;
use bank_files::camt053::{Entry, EntryKind, ReturnReason, Statement};
use ledger::{Amount, Event, EventStore, PurchaseId, Role, Seq};
use util::{System, buy, spec};

/// The purchase ids the issuer's log has settled, in order.
fn settled_purchases(system: &System) -> Vec<(PurchaseId, Amount)> {
    let core = system.core();
    let records = core.store().read(Seq(1), 10_000).expect("log");
    records
        .into_iter()
        .filter_map(|r| match r.record.event {
            Event::PurchaseSettled { purchase, amount } => Some((purchase, amount)),
            _ => None,
        })
        .collect()
}

/// The statement the bank sends the issuer: alice's debit collected, then
/// returned for insufficient funds.
fn statement_with_a_return(purchase: PurchaseId, amount: Amount) -> String {
    let issuer_account = Iban::parse("DE89 3704 0044 0532 0130 00").expect("iban");
    Statement {
        message_id: "BANK-0001".into(),
        created_at: "2026-12-08T06:00:00".into(),
        statement_id: "STMT-0001".into(),
        account: issuer_account,
        opening: Amount::from_minor(0),
        closing: Amount::from_minor(0),
        entries: vec![
            Entry {
                end_to_end_id: purchase.to_string(),
                amount,
                kind: EntryKind::Collected,
                booked_on: "2026-12-07".into(),
            },
            Entry {
                end_to_end_id: purchase.to_string(),
                amount,
                kind: EntryKind::Returned(ReturnReason::InsufficientFunds),
                booked_on: "2026-12-08".into(),
            },
        ],
    }
    .to_xml()
    .expect("a statement")
}

#[test]
fn a_returned_debit_is_logged_suspends_the_purchaser_and_shows_as_the_issuers_loss() {
    let system = System::start();
    let alice = system.member("alice", &[Role::CoinPurchaser], 10_000);
    let coins = buy(&alice, spec(&[(2, 250)]));
    let [(purchase, amount)] = settled_purchases(&system)[..] else {
        panic!("one settled purchase");
    };
    assert_eq!(amount, Amount::from_minor(500));

    // The bank's statement, read as a bank file, names the return.
    let statement = Statement::from_xml(&statement_with_a_return(purchase, amount)).expect("read");
    let core = system.core();
    let mut n_returns = 0;
    for entry in &statement.entries {
        let EntryKind::Returned(reason) = &entry.kind else {
            continue;
        };
        n_returns += 1;
        let returned = PurchaseId::from_hex(&entry.end_to_end_id).expect("a purchase id");
        let done = core
            .debit_returned(returned, &alice.account, reason.code())
            .expect("recorded");
        assert_eq!(done.amount, amount);
        assert!(done.logged_at.is_some());
        assert_eq!(done.n_suspended, 1, "alice's purchaser enrollment");
        // The same statement read again logs nothing twice.
        let again = core
            .debit_returned(returned, &alice.account, reason.code())
            .expect("idempotent");
        assert_eq!(again.logged_at, None);
    }
    assert_eq!(n_returns, 1);

    // Alice's coins stay good (they may be spent already, anywhere) ...
    for coin in &coins {
        assert!(system.is_unspent(coin.id()));
    }
    // ... but she buys nothing more until an operator approves her again.
    assert!(
        alice
            .wallet
            .buy(spec(&[(1, 100)]), alice.account.clone(), false)
            .is_err(),
        "a suspended purchaser bought coins"
    );
    // A return for a purchase never collected, or unknown, is refused.
    assert!(matches!(
        core.debit_returned(PurchaseId::from_bytes([9; 16]), &alice.account, "AM04"),
        Err(actors::ReturnedDebitError::UnknownPurchase(_))
    ));
    drop(core);

    let report = system.stop_and_audit();
    assert_eq!(report.stats.debits_returned_minor, 500);
    let text = report.to_text();
    assert!(
        text.contains("returned debits (loss)             5.00"),
        "{text}"
    );
    assert!(text.contains("the bank took back 5.00"), "{text}");
    assert_eq!(
        report.stats.events_by_kind.get("purchase_debit_returned"),
        Some(&1)
    );
}
