//! Accounts and float: balances, bank money, card float, and the
//! conservation equation computed from the books at every sequence number
//! (with `ledger::conservation`, the rule the issuer and auditor use).

use crate::util;
use ledger::testkit::StoreExt as _;

use ledger::{
    Amount, BalanceId, CoinBody, CoinId, CoinSpec, Event, EventStore, IssueCause, KeyEpoch,
    PurchaseId, Seq, SignatureBytes, Timestamp,
};
use projections::accounts::{PurchaseState, conservation_at};
use projections::{Accounts, AccountsModel, HistoryError, ProjectionError};
use util::{History, MemoryStore, seal_account, seal_identity};

fn open(dir: &tempfile::TempDir) -> Accounts {
    Accounts::open(dir.path().join("accounts.redb"), AccountsModel).expect("open")
}

fn history_error(e: ProjectionError) -> HistoryError {
    match e {
        ProjectionError::History { source, .. } => source,
        other => panic!("expected a history error, got {other}"),
    }
}

#[test]
fn books_match_the_world_and_conservation_holds_at_every_sequence_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let mut world = History::new();
    let accounts = open(&dir);
    let mut n_checked = 0;
    for op in util::busy_ops(400) {
        let Some(batch) = world.step(op) else {
            continue;
        };
        let first = log.append(std::slice::from_ref(batch)).expect("append")[0];
        accounts
            .apply_records(&log.read(first, usize::MAX).expect("read"))
            .expect("apply");
        let report = accounts.conservation().expect("report");
        assert!(!report.mid_batch);
        report
            .check()
            .expect("conservation after every transaction");
        n_checked += 1;
    }
    assert!(n_checked > 200, "only {n_checked} transactions");

    let mut expected: Vec<(BalanceId, Amount)> = world
        .balances
        .iter()
        .map(|(id, v)| (*id, Amount::from_minor(*v)))
        .collect();
    expected.sort();
    assert_eq!(accounts.balances().expect("balances"), expected);
    let float: Vec<_> = accounts.card_float().expect("float");
    for (lus, owed) in &float {
        assert_eq!(*owed, world.float.get(&lus.0).copied().unwrap_or(0));
    }
    let summary = accounts.summary().expect("summary");
    let unspent: u64 = world
        .unspent
        .iter()
        .map(|(b, _)| b.value.minor_units())
        .sum();
    assert_eq!(summary.outstanding, i128::from(unspent));
    let pending: u64 = world.pending.iter().map(|(_, a, ..)| a.minor_units()).sum();
    assert_eq!(summary.bank_pending, u128::from(pending));
    assert_eq!(summary.n_purchases_pending, world.pending.len() as u64);
    assert!(summary.bank_settled > 0 && summary.bank_rejected > 0 && summary.redeemed > 0);
    for (purchase, amount, ..) in &world.pending {
        assert_eq!(
            accounts.purchase(purchase).expect("purchase"),
            Some((PurchaseState::Pending, *amount))
        );
    }

    // Replayed in memory at every record, including mid-batch.
    let head = log.head().expect("head").last_seq;
    for seq in 1..=head.0 {
        let report = conservation_at(&log, Seq(seq)).expect("replay");
        assert_eq!(report.as_of, Seq(seq));
        if !report.mid_batch {
            report.check().expect("conservation between transactions");
        }
    }
    assert_eq!(
        conservation_at(&log, head).expect("replay"),
        accounts.conservation().expect("file")
    );
}

fn coin(n: u8, value: u64) -> CoinBody {
    CoinBody {
        id: CoinId::from_bytes([n; 16]),
        value: Amount::from_minor(value),
        expiry: Timestamp(100),
        epoch: KeyEpoch(1),
    }
}

fn requested(purchase: PurchaseId, amount: u64) -> Event {
    Event::PurchaseRequested {
        purchase,
        purchaser: seal_identity("alice", 1),
        bank_account: seal_account("111-0001", 2),
        spec: CoinSpec::single(Amount::from_minor(amount)).expect("spec"),
        amount: Amount::from_minor(amount),
        anonymous: false,
        authorization: SignatureBytes(vec![1; 8]),
    }
}

#[test]
fn a_batch_that_mints_from_nothing_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    log.append_events(vec![Event::CoinsIssued {
        coins: vec![coin(1, 100)],
        holder: None,
        cause: IssueCause::Change,
    }]);
    let accounts = open(&dir);
    let err = accounts.catch_up(&log).expect_err("unbalanced");
    assert!(matches!(history_error(err), HistoryError::Conservation(_)));
    assert_eq!(accounts.applied_seq().expect("seq"), Seq(0));
}

#[test]
fn settlements_must_follow_a_pending_request_of_the_same_amount() {
    let purchase = PurchaseId::from_bytes([5; 16]);
    let settle = |amount: u64| {
        vec![
            Event::PurchaseSettled {
                purchase,
                amount: Amount::from_minor(amount),
            },
            Event::CoinsIssued {
                coins: vec![coin(1, amount)],
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ]
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    log.append_events(settle(100));
    let err = open(&dir).catch_up(&log).expect_err("never requested");
    assert_eq!(
        history_error(err),
        HistoryError::PurchaseNotPending(purchase)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    log.append_events(vec![requested(purchase, 100)]);
    log.append_events(settle(90));
    let err = open(&dir).catch_up(&log).expect_err("other amount");
    assert_eq!(
        history_error(err),
        HistoryError::PurchaseAmountMismatch(purchase)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    log.append_events(vec![requested(purchase, 100)]);
    log.append_events(settle(100));
    let accounts = open(&dir);
    accounts.catch_up(&log).expect("valid");
    assert_eq!(
        accounts.purchase(&purchase).expect("read"),
        Some((PurchaseState::Settled, Amount::from_minor(100)))
    );
    log.append_events(settle(100));
    let err = accounts.catch_up(&log).expect_err("settled twice");
    assert_eq!(
        history_error(err),
        HistoryError::PurchaseNotPending(purchase)
    );
}

#[test]
fn a_balance_cannot_be_withdrawn_below_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let balance = BalanceId::from_bytes([3; 16]);
    log.append_events(vec![
        Event::AggregateWithdrawn {
            balance,
            amount: Amount::from_minor(1),
        },
        Event::Redeemed {
            amount: Amount::from_minor(1),
            bank_account: seal_account("111-0001", 1),
        },
    ]);
    let err = open(&dir).catch_up(&log).expect_err("overdrawn");
    assert_eq!(history_error(err), HistoryError::BalanceOverdrawn);
}

#[test]
fn a_batch_split_across_transactions_is_reported_mid_batch_and_completes_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let purchase = PurchaseId::from_bytes([6; 16]);
    log.append_events(vec![requested(purchase, 50)]);
    log.append_events(vec![
        Event::PurchaseSettled {
            purchase,
            amount: Amount::from_minor(50),
        },
        Event::CoinsIssued {
            coins: vec![coin(2, 50)],
            holder: None,
            cause: IssueCause::Purchase(purchase),
        },
    ]);
    let records = log.all();
    let accounts = open(&dir);
    accounts.apply_records(&records[..2]).expect("half a batch");
    let report = accounts.conservation().expect("report");
    assert!(report.mid_batch);
    // Mid-batch the books show money in before the coins exist.
    assert!(report.from_books.check_equation().is_err());
    drop(accounts);
    let accounts = open(&dir);
    accounts.apply_records(&records).expect("the rest");
    let report = accounts.conservation().expect("report");
    assert!(!report.mid_batch);
    report.check().expect("balanced");
    assert_eq!(report.running.outstanding, 50);
}

// Given 3.00 of coins bought, of which 1.00 is spent into a redemption,
// when their epoch is erased and its float forfeited, then the books say
// 0 outstanding and 2.00 forfeited, and the equation holds with the
// forfeited float on the stocks' side.
#[test]
fn a_forfeited_float_leaves_outstanding_for_the_forfeited_total() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let purchase = PurchaseId::from_bytes([7; 16]);
    let coin = |n: u8, value: u64| CoinBody {
        id: CoinId::from_bytes([n; 16]),
        value: Amount::from_minor(value),
        expiry: Timestamp(100),
        epoch: KeyEpoch(1),
    };
    log.append_events(vec![requested(purchase, 300)]);
    log.append_events(vec![
        Event::PurchaseSettled {
            purchase,
            amount: Amount::from_minor(300),
        },
        Event::CoinsIssued {
            coins: vec![coin(1, 100), coin(2, 200)],
            holder: None,
            cause: IssueCause::Purchase(purchase),
        },
    ]);
    log.append_events(vec![
        Event::CoinsSpent {
            coins: vec![coin(1, 100)],
            cause: ledger::SpendCause::Redeem,
        },
        Event::Redeemed {
            amount: Amount::from_minor(100),
            bank_account: seal_account("111-0001", 3),
        },
    ]);
    log.append_events(vec![
        Event::EpochErased {
            epoch: KeyEpoch(1),
            through: Seq(4),
            n_coins: 1,
            value: Amount::from_minor(100),
            digest: ledger::erasure_digest(&[coin(1, 0).id]),
        },
        Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins: 1,
            value: Amount::from_minor(200),
            digest: ledger::erasure_digest(&[coin(2, 0).id]),
        },
    ]);
    let accounts = open(&dir);
    accounts.catch_up(&log).expect("catch up");
    let summary = accounts.summary().expect("summary");
    assert_eq!((summary.outstanding, summary.forfeited), (0, 200));
    let report = accounts.conservation().expect("report");
    report.check().expect("conserved");
    assert_eq!(report.from_books.forfeited, 200);
    assert_eq!(report.running.outstanding, 0);
}
