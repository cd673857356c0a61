//! The user index: who holds which non-anonymous coins, their accounts and
//! balances, and the logged law-enforcement lookup. Identities reach it
//! sealed (with a different nonce each time, as real OAEP ciphertexts
//! differ) and are opened by the injected unsealer.

use crate::util;
use ledger::testkit::StoreExt as _;

use ledger::{
    Amount, CoinBody, CoinId, Event, IssueCause, KeyEpoch, SealedIdentity, Seq, SpendCause,
    Timestamp,
};
use projections::user_index::DisclosureError;
use projections::{CoinState, ProjectionError, UnsealError, UserIndex, UserIndexModel};
use util::{History, MemoryStore, TestUnsealer, participant, seal_identity};

fn open(dir: &tempfile::TempDir) -> UserIndex {
    UserIndex::open(
        dir.path().join("users.redb"),
        UserIndexModel::new(TestUnsealer),
    )
    .expect("open")
}

fn coin(n: u8, value: u64) -> CoinBody {
    CoinBody {
        id: CoinId::from_bytes([n; 16]),
        value: Amount::from_minor(value),
        expiry: Timestamp(100),
        epoch: KeyEpoch(1),
    }
}

fn issued_to(who: Option<&str>, nonce: u8, coins: Vec<CoinBody>) -> Event {
    Event::CoinsIssued {
        coins,
        holder: who.map(|p| seal_identity(p, nonce)),
        cause: IssueCause::Refund,
    }
}

#[test]
fn coins_issued_to_a_participant_are_listed_and_spent_ones_leave_the_unspent_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    log.append_events(vec![issued_to(
        Some("alice"),
        1,
        vec![coin(1, 10), coin(2, 20)],
    )]);
    log.append_events(vec![issued_to(Some("alice"), 2, vec![coin(3, 30)])]);
    log.append_events(vec![issued_to(Some("bob"), 3, vec![coin(4, 40)])]);
    log.append_events(vec![issued_to(None, 0, vec![coin(5, 50)])]);
    log.append_events(vec![Event::CoinsSpent {
        coins: vec![coin(2, 20), coin(5, 50)],
        cause: SpendCause::Redeem,
    }]);
    log.append_events(vec![Event::CoinsRevoked {
        coins: vec![coin(3, 30)],
    }]);
    let index = open(&dir);
    index.catch_up(&log).expect("catch up");

    let alice = participant(0);
    let all = index.coins_of(&alice).expect("coins");
    assert_eq!(
        all.len(),
        3,
        "three coins issued to alice under three different seals"
    );
    let states: Vec<_> = all.iter().map(|e| (e.body.id, e.state)).collect();
    assert!(states.contains(&(coin(1, 0).id, CoinState::Unspent)));
    assert!(
        states
            .iter()
            .any(|(id, s)| *id == coin(2, 0).id && matches!(s, CoinState::Spent { .. }))
    );
    assert!(
        states
            .iter()
            .any(|(id, s)| *id == coin(3, 0).id && matches!(s, CoinState::Revoked { .. }))
    );
    assert_eq!(
        index.unspent_coins_of(&alice).expect("unspent"),
        vec![coin(1, 10)]
    );
    assert_eq!(
        index.unspent_coins_of(&participant(1)).expect("unspent"),
        vec![coin(4, 40)]
    );
    assert!(index.coins_of(&participant(2)).expect("coins").is_empty());
}

#[test]
fn who_withdrew_returns_the_identity_with_the_event_to_log_and_the_log_records_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    log.append_events(vec![issued_to(Some("carol"), 9, vec![coin(7, 10)])]);
    log.append_events(vec![issued_to(None, 0, vec![coin(8, 10)])]);
    let index = open(&dir);
    index.catch_up(&log).expect("catch up");

    let disclosure = index
        .who_withdrew(&coin(7, 0).id, "district-court", "case 42")
        .expect("known");
    assert_eq!(disclosure.participant, participant(2));
    assert_eq!(
        disclosure.event,
        Event::IdentityDisclosed {
            coin: coin(7, 0).id,
            requester: "district-court".into(),
            reason: "case 42".into(),
        }
    );
    // The event names the coin, the requester and the reason: not the identity.
    assert!(!format!("{:?}", disclosure.event).contains("carol"));
    let seq = log.append_events(vec![disclosure.event]);
    index.catch_up(&log).expect("catch up");
    assert_eq!(
        index.disclosures().expect("disclosures"),
        vec![(seq, coin(7, 0).id)]
    );

    assert!(matches!(
        index.who_withdrew(&coin(8, 0).id, "district-court", "case 42"),
        Err(DisclosureError::NotAttributed(_))
    ));
    assert!(matches!(
        index.who_withdrew(&coin(9, 0).id, "district-court", "case 42"),
        Err(DisclosureError::NotAttributed(_))
    ));
    assert!(matches!(
        index.who_withdrew(&coin(7, 0).id, "", "case 42"),
        Err(DisclosureError::BadText)
    ));
    assert!(matches!(
        index.who_withdrew(&coin(7, 0).id, "court", &"x".repeat(300)),
        Err(DisclosureError::BadText)
    ));
}

#[test]
fn enrollment_and_purchases_record_accounts_balances_and_purchasers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let mut world = History::new();
    world.run(&util::busy_ops(300), &log);
    let index = open(&dir);
    index.catch_up(&log).expect("catch up");
    for (i, account) in util::ACCOUNTS.iter().enumerate() {
        if let Some(found) = index.bank_account_of(&participant(i)).expect("account") {
            assert_eq!(found.as_str(), *account);
        }
    }
    // Every merchant balance the world opened is owned by someone in the index.
    let owners: Vec<_> = (0..3)
        .filter_map(|i| index.balance_of(&participant(i)).expect("balance"))
        .collect();
    assert!(!owners.is_empty());
    assert!(
        owners
            .iter()
            .all(|b| world.balances.iter().any(|(id, _)| id == b))
    );
    // Every held unspent coin of the world is listed under its holder.
    for i in 0..3 {
        let mut expected: Vec<_> = world
            .unspent
            .iter()
            .filter(|(_, h)| *h == Some(i))
            .map(|(b, _)| *b)
            .collect();
        expected.sort_by_key(|b| b.id);
        assert_eq!(
            index.unspent_coins_of(&participant(i)).expect("unspent"),
            expected
        );
    }
    for r in log.all() {
        if let Event::PurchaseRequested { purchase, .. } = r.record.event {
            assert!(index.purchaser_of(&purchase).expect("purchaser").is_some());
        }
    }
}

#[test]
fn an_identity_that_does_not_unseal_stops_the_index_at_that_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    log.append_events(vec![issued_to(Some("alice"), 1, vec![coin(1, 10)])]);
    log.append_events(vec![Event::CoinsIssued {
        coins: vec![coin(2, 10)],
        holder: Some(
            SealedIdentity::from_sealed_bytes(b"not sealed for us".to_vec()).expect("short"),
        ),
        cause: IssueCause::Refund,
    }]);
    let index = open(&dir);
    let err = index.catch_up(&log).expect_err("undecryptable");
    assert!(matches!(
        err,
        ProjectionError::Unseal {
            seq: Seq(2),
            source: UnsealError::Undecryptable
        }
    ));
    assert_eq!(
        index.applied_seq().expect("seq"),
        Seq(0),
        "one catch-up transaction, rolled back"
    );
}

// Given alice holding an unspent and a spent coin of epoch 1 and an
// unspent coin of epoch 2, when epoch 1's float is forfeited, then its
// unspent coin is gone from her holdings and from the holder table (no
// identity can be found for it any more), and the rest stays.
#[test]
fn a_forfeited_coin_leaves_its_holders_holdings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let later = CoinBody {
        epoch: KeyEpoch(2),
        ..coin(6, 60)
    };
    log.append_events(vec![issued_to(
        Some("alice"),
        1,
        vec![coin(1, 10), coin(2, 20), later],
    )]);
    log.append_events(vec![Event::CoinsSpent {
        coins: vec![coin(2, 20)],
        cause: SpendCause::Redeem,
    }]);
    log.append_events(vec![Event::FloatForfeited {
        epoch: KeyEpoch(1),
        n_coins: 1,
        value: Amount::from_minor(10),
        digest: ledger::erasure_digest(&[coin(1, 0).id]),
    }]);
    let index = open(&dir);
    index.catch_up(&log).expect("catch up");
    let alice = participant(0);
    let held: Vec<CoinId> = index
        .coins_of(&alice)
        .expect("coins")
        .iter()
        .map(|e| e.body.id)
        .collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(!held.contains(&coin(1, 0).id), "the forfeited coin is gone");
    assert_eq!(
        index.unspent_coins_of(&alice).expect("unspent"),
        vec![later]
    );
    assert!(matches!(
        index.who_withdrew(&coin(1, 0).id, "court", "case 1"),
        Err(DisclosureError::NotAttributed(_))
    ));
}
