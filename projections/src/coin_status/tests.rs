//! Unit tests of the pure coin-status apply over an in-memory state: given a
//! state, when a record is applied, then the tables say what they should.

use ledger::{
    Amount, CoinBody, CoinId, Event, IssueCause, KeyEpoch, Record, Seq, SpendCause, Timestamp, TxId,
};

use super::*;
use crate::error::{HistoryError, ProjectionError};
use crate::state::MemoryState;

fn body(n: u8, value: u64, epoch: u32) -> CoinBody {
    CoinBody {
        id: CoinId::from_bytes([n; 16]),
        value: Amount::from_minor(value),
        expiry: Timestamp(100),
        epoch: KeyEpoch(epoch),
    }
}

fn record(seq: u64, event: Event) -> Record {
    Record {
        seq: Seq(seq),
        tx: TxId::from_bytes([seq as u8; 16]),
        at: Timestamp(seq),
        batch_index: 0,
        batch_len: 1,
        event,
    }
}

fn given(events: Vec<Event>) -> MemoryState {
    let mut state = MemoryState::new(CoinStatusModel::TABLES);
    for (i, e) in events.into_iter().enumerate() {
        CoinStatusModel
            .apply(&mut state, &record(i as u64 + 1, e))
            .expect("valid history");
    }
    state
}

fn opened(epoch: u32) -> Event {
    Event::EpochOpened {
        epoch: KeyEpoch(epoch),
        coins_expire_at: Timestamp(100),
        grace_ends_at: Timestamp(200),
    }
}

fn issued(coins: Vec<CoinBody>) -> Event {
    Event::CoinsIssued {
        coins,
        holder: None,
        cause: IssueCause::Change,
    }
}

fn spent(coins: Vec<CoinBody>) -> Event {
    Event::CoinsSpent {
        coins,
        cause: SpendCause::Redeem,
    }
}

fn history_error(e: ProjectionError) -> HistoryError {
    match e {
        ProjectionError::History { source, .. } => source,
        other => panic!("expected a history error, got {other}"),
    }
}

#[test]
fn spending_records_the_transaction_and_leaves_the_unspent_table() {
    let state = given(vec![
        opened(1),
        issued(vec![body(1, 50, 1), body(2, 25, 1)]),
        spent(vec![body(1, 50, 1)]),
    ]);
    let entry = coin(&state, &body(1, 50, 1).id)
        .expect("read")
        .expect("known");
    assert_eq!(
        entry.state,
        CoinState::Spent {
            tx: TxId::from_bytes([3; 16])
        }
    );
    assert_eq!(entry.body, body(1, 50, 1));
    let totals = unspent_totals(&state).expect("totals");
    assert_eq!((totals.n_coins, totals.value_minor_units), (1, 25));
}

#[test]
fn spending_twice_unknown_or_altered_coins_is_refused() {
    let mut state = given(vec![
        opened(1),
        issued(vec![body(1, 50, 1)]),
        spent(vec![body(1, 50, 1)]),
    ]);
    let again = CoinStatusModel.apply(&mut state, &record(4, spent(vec![body(1, 50, 1)])));
    assert_eq!(
        history_error(again.expect_err("double spend")),
        HistoryError::CoinNotUnspent(body(1, 50, 1).id)
    );
    let unknown = CoinStatusModel.apply(&mut state, &record(4, spent(vec![body(9, 50, 1)])));
    assert_eq!(
        history_error(unknown.expect_err("unknown")),
        HistoryError::UnknownCoin(body(9, 50, 1).id)
    );
    let mut state = given(vec![issued(vec![body(1, 50, 1)])]);
    let altered = CoinStatusModel.apply(&mut state, &record(2, spent(vec![body(1, 51, 1)])));
    assert_eq!(
        history_error(altered.expect_err("altered")),
        HistoryError::CoinBodyMismatch(body(1, 50, 1).id)
    );
    let twice = CoinStatusModel.apply(&mut state, &record(2, issued(vec![body(1, 50, 1)])));
    assert_eq!(
        history_error(twice.expect_err("reissue")),
        HistoryError::CoinIssuedTwice(body(1, 50, 1).id)
    );
}

#[test]
fn plan_lists_retired_coins_ascending_and_applying_it_erases_exactly_them() {
    let mut state = given(vec![
        opened(1),
        opened(2),
        issued(vec![
            body(3, 10, 1),
            body(1, 20, 1),
            body(2, 40, 1),
            body(4, 80, 2),
        ]),
        spent(vec![body(3, 10, 1), body(1, 20, 1), body(4, 80, 2)]),
    ]);
    let plan = erasure::plan(&state, KeyEpoch(1), Timestamp(200), Seq(4)).expect("grace over");
    assert_eq!(plan.coin_ids, vec![body(1, 0, 1).id, body(3, 0, 1).id]);
    assert_eq!(plan.value, Amount::from_minor(30));
    assert_eq!(
        plan.digest,
        erasure_digest(&[body(1, 0, 1).id, body(3, 0, 1).id])
    );
    CoinStatusModel
        .apply(&mut state, &record(5, plan.event()))
        .expect("erasure applies");
    assert_eq!(coin(&state, &body(1, 0, 1).id).expect("read"), None);
    assert_eq!(coin(&state, &body(3, 0, 1).id).expect("read"), None);
    // The unspent coin of epoch 1 and the spent coin of epoch 2 stay.
    assert!(coin(&state, &body(2, 0, 1).id).expect("read").is_some());
    assert!(coin(&state, &body(4, 0, 2).id).expect("read").is_some());
    let info = epoch_info(&state, KeyEpoch(1))
        .expect("read")
        .expect("known");
    assert_eq!(
        (info.n_coins_erased, info.value_erased),
        (2, Amount::from_minor(30))
    );
}

#[test]
fn planning_before_the_grace_period_ends_or_for_an_unknown_epoch_is_refused() {
    let state = given(vec![opened(1)]);
    assert!(matches!(
        erasure::plan(&state, KeyEpoch(1), Timestamp(199), Seq(1)),
        Err(ErasureError::GraceNotOver { .. })
    ));
    assert!(matches!(
        erasure::plan(&state, KeyEpoch(7), Timestamp(999), Seq(1)),
        Err(ErasureError::UnknownEpoch(KeyEpoch(7)))
    ));
}

#[test]
fn an_erasure_event_that_does_not_match_the_store_is_refused_and_erases_nothing() {
    let mut state = given(vec![
        opened(1),
        issued(vec![body(1, 20, 1), body(2, 20, 1)]),
        spent(vec![body(1, 20, 1)]),
    ]);
    let before = state.clone();
    let wrong_digest = Event::SpentCoinsErased {
        epoch: KeyEpoch(1),
        n_coins: 1,
        value: Amount::from_minor(20),
        digest: erasure_digest(&[body(2, 0, 1).id]),
    };
    let err = CoinStatusModel
        .apply(&mut state, &record(4, wrong_digest))
        .expect_err("mismatch");
    assert!(matches!(
        history_error(err),
        HistoryError::ErasureMismatch { .. }
    ));
    assert_eq!(state, before);
}

#[test]
fn erasure_refuses_to_remove_an_unspent_coin_even_if_the_retired_table_lists_it() {
    // A corrupted retired table naming an unspent coin: the per-coin check
    // in apply is the last line of defence.
    let mut state = given(vec![opened(1), issued(vec![body(1, 20, 1)])]);
    state
        .put(
            RETIRED,
            &retired_key(KeyEpoch(1), &body(1, 0, 1).id),
            &20u64.to_be_bytes(),
        )
        .expect("put");
    let plan = erasure::plan(&state, KeyEpoch(1), Timestamp(200), Seq(2)).expect("plan");
    let err = CoinStatusModel
        .apply(&mut state, &record(3, plan.event()))
        .expect_err("refused");
    assert_eq!(
        history_error(err),
        HistoryError::WouldEraseUnspent(body(1, 0, 1).id)
    );
    assert!(coin(&state, &body(1, 0, 1).id).expect("read").is_some());
}

#[test]
fn shard_queries_partition_the_unspent_coins() {
    let coins: Vec<CoinBody> = (1..=40u8).map(|n| body(n, u64::from(n), 1)).collect();
    let state = given(vec![issued(coins.clone()), spent(coins[..10].to_vec())]);
    let by_shard = unspent_by_shard(&state, 3).expect("scan");
    assert_eq!(by_shard.len(), 3);
    let mut seen = 0;
    for (i, shard) in by_shard.iter().enumerate() {
        assert!(shard.iter().all(|c| c.id.shard(3) == ShardIdx(i as u16)));
        assert_eq!(
            *shard,
            unspent_of_shard(&state, ShardIdx(i as u16), 3).expect("scan")
        );
        seen += shard.len();
    }
    assert_eq!(seen, 30);
}

// Given an epoch with one spent and two unspent coins (and an unspent coin
// of another epoch), the plan forfeits exactly the two; applying the
// forfeiture and the erasure leaves nothing of the epoch in the store.
#[test]
fn a_forfeiture_removes_exactly_the_epochs_unspent_coins() {
    let mut state = given(vec![
        opened(1),
        opened(2),
        issued(vec![
            body(1, 20, 1),
            body(2, 40, 1),
            body(3, 10, 1),
            body(4, 80, 2),
        ]),
        spent(vec![body(1, 20, 1)]),
    ]);
    let plan = erasure::plan(&state, KeyEpoch(1), Timestamp(200), Seq(4)).expect("grace over");
    let forfeit = &plan.forfeiture;
    assert_eq!(forfeit.coin_ids, vec![body(2, 0, 1).id, body(3, 0, 1).id]);
    assert_eq!(forfeit.value, Amount::from_minor(50));
    assert_eq!(
        forfeit.digest,
        erasure_digest(&[body(2, 0, 1).id, body(3, 0, 1).id])
    );
    CoinStatusModel
        .apply(&mut state, &record(5, plan.event()))
        .expect("erasure applies");
    CoinStatusModel
        .apply(&mut state, &record(6, forfeit.event()))
        .expect("forfeiture applies");
    for n in 1..=3 {
        assert_eq!(coin(&state, &body(n, 0, 1).id).expect("read"), None);
    }
    assert!(coin(&state, &body(4, 0, 2).id).expect("read").is_some());
    assert_eq!(
        unspent_totals(&state).expect("scan"),
        UnspentTotals {
            n_coins: 1,
            value_minor_units: 80
        }
    );
    assert_eq!(n_coins_stored(&state).expect("scan"), 1);
}

// A forfeiture naming a coin too few, one too many, or the right coins
// at another value is refused and removes nothing.
#[test]
fn a_forfeiture_that_does_not_match_the_unspent_coins_is_refused() {
    let state = given(vec![
        opened(1),
        issued(vec![body(1, 20, 1), body(2, 40, 1), body(3, 10, 2)]),
    ]);
    let ids = |ns: &[u8]| ns.iter().map(|n| body(*n, 0, 1).id).collect::<Vec<_>>();
    let forged = [
        (1, 20, erasure_digest(&ids(&[1]))),
        (3, 70, erasure_digest(&ids(&[1, 2, 3]))),
        (2, 61, erasure_digest(&ids(&[1, 2]))),
        (2, 60, erasure_digest(&ids(&[2, 1]))),
    ];
    for (n_coins, value, digest) in forged {
        let mut after = state.clone();
        let event = Event::FloatForfeited {
            epoch: KeyEpoch(1),
            n_coins,
            value: Amount::from_minor(value),
            digest,
        };
        let err = CoinStatusModel
            .apply(&mut after, &record(3, event))
            .expect_err("mismatch");
        assert!(matches!(
            history_error(err),
            HistoryError::ForfeitureMismatch { .. }
        ));
        assert_eq!(after, state);
    }
}
