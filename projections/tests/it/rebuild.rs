//! Rebuild equals incremental, and crashes between transactions change
//! nothing: random valid histories (see `History`) are applied to each
//! projection's redb file (coin status, user index, accounts, transaction
//! index) in random chunks that cut batches in two, with
//! chunks offered twice and the file closed and reopened between
//! transactions; the tables must equal a clean rebuild from the log and a
//! replay in memory.

use crate::util;
use ledger::testkit::StoreExt as _;

use ledger::{CoinId, EventStore, Seq, StoredRecord};
use proptest::prelude::*;

use projections::{
    AccountsModel, CoinState, CoinStatus, CoinStatusModel, Projection, ProjectionDb,
    ProjectionError, TxIndex, TxIndexModel, TxPlace, UserIndexModel, replay_in_memory,
};
use util::{History, MemoryStore, TestUnsealer};

/// Applies `records` to a fresh file at `dir/name` in chunks of the given
/// sizes; after chunk `i`, re-offers it when `i` is odd and reopens the file
/// when `i % 3 == 2`. Returns the file's projection.
fn apply_with_crashes<P: Projection>(
    dir: &std::path::Path,
    name: &str,
    make: &dyn Fn() -> P,
    records: &[StoredRecord],
    chunks: &[usize],
) -> ProjectionDb<P> {
    let path = dir.join(name);
    let mut db = ProjectionDb::open(&path, make()).expect("open");
    let mut at = 0;
    let mut i = 0;
    while at < records.len() {
        let size = chunks[i % chunks.len()].min(records.len() - at);
        let chunk = &records[at..at + size];
        let reached = db.apply_records(chunk).expect("apply chunk");
        assert_eq!(reached, chunk[size - 1].record.seq);
        if i % 2 == 1 {
            // The same records again, and overlapping the previous chunk.
            let from = at.saturating_sub(2);
            assert_eq!(
                db.apply_records(&records[from..at + size]).expect("again"),
                reached
            );
        }
        if i % 3 == 2 {
            drop(db);
            db = ProjectionDb::open(&path, make()).expect("reopen");
            assert_eq!(db.applied_seq().expect("seq"), reached);
        }
        at += size;
        i += 1;
    }
    db
}

fn check<P: Projection>(
    dir: &std::path::Path,
    name: &str,
    make: &dyn Fn() -> P,
    log: &MemoryStore,
    chunks: &[usize],
) -> ProjectionDb<P> {
    let records = log.all();
    let head = log.head().expect("head").last_seq;
    let incremental = apply_with_crashes(dir, &format!("{name}.inc.redb"), make, &records, chunks);
    let rebuilt = ProjectionDb::rebuild(dir.join(format!("{name}.rebuilt.redb")), make(), log)
        .expect("rebuild");
    let (memory, reached) = replay_in_memory(&make(), log, None).expect("replay");
    assert_eq!(reached, head);
    assert_eq!(incremental.applied_seq().expect("seq"), head);
    assert_eq!(rebuilt.applied_seq().expect("seq"), head);
    let incremental_tables = incremental.snapshot().expect("snapshot");
    assert_eq!(incremental_tables, rebuilt.snapshot().expect("snapshot"));
    assert_eq!(incremental_tables, memory);
    incremental
}

fn assert_erasure_kept_every_unspent_coin(coins: &CoinStatus, world: &History) {
    for (body, _) in &world.unspent {
        let entry = coins
            .status(&body.id)
            .expect("read")
            .expect("unspent coin present");
        assert_eq!(entry.state, CoinState::Unspent);
    }
    for id in &world.erased_coins {
        assert_eq!(
            coins.status(id).expect("read"),
            None::<projections::CoinStatusEntry>
        );
    }
    let totals = coins.unspent_totals().expect("totals");
    assert_eq!(totals.n_coins, world.unspent.len() as u64);
}

/// Every batch of the log is found at its first record with its length.
fn assert_every_batch_is_indexed(index: &TxIndex, log: &MemoryStore) {
    for stored in log.all() {
        let r = &stored.record;
        if r.batch_index == 0 {
            assert_eq!(
                index.committed(&r.tx).expect("lookup"),
                Some(TxPlace {
                    first_seq: r.seq,
                    n_records: r.batch_len
                })
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn rebuild_equals_incremental_with_crashes_and_repeats(
        ops in prop::collection::vec(any::<u32>(), 1..160),
        chunks in prop::collection::vec(1usize..9, 1..12),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = MemoryStore::new();
        let mut world = History::new();
        // Start with an epoch and a merchant so most operations apply.
        world.run(&[0, 13], &log);
        world.run(&ops, &log);

        let coins = check(dir.path(), "coins", &|| CoinStatusModel, &log, &chunks);
        assert_erasure_kept_every_unspent_coin(&coins, &world);
        check(dir.path(), "users", &|| UserIndexModel::new(TestUnsealer), &log, &chunks);
        let txs = check(dir.path(), "txs", &|| TxIndexModel, &log, &chunks);
        assert_every_batch_is_indexed(&txs, &log);
        let accounts = check(dir.path(), "accounts", &|| AccountsModel, &log, &chunks);
        let report = accounts.conservation().expect("report");
        prop_assert!(report.check().is_ok(), "{report:?}");
        prop_assert_eq!(report.from_books.outstanding, i128::from(u64::try_from(
            coins.unspent_totals().expect("totals").value_minor_units).expect("small")));
    }
}

#[test]
fn a_failing_record_aborts_the_whole_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let mut world = History::new();
    world.run(&util::busy_ops(60), &log);
    let mut records = log.all();
    let db = CoinStatus::open(dir.path().join("c.redb"), CoinStatusModel).expect("open");
    let half = records.len() / 2;
    db.apply_records(&records[..half]).expect("first half");
    let before = db.snapshot().expect("snapshot");
    // The rest, with the last record replaced by a spend of a coin never issued.
    let last = records.len() - 1;
    records[last].record.event = ledger::Event::CoinsSpent {
        coins: vec![ledger::CoinBody {
            id: CoinId::from_bytes([0xee; 16]),
            value: ledger::Amount::from_minor(1),
            expiry: ledger::Timestamp(1),
            epoch: ledger::KeyEpoch(1),
        }],
        cause: ledger::SpendCause::Redeem,
    };
    let err = db
        .apply_records(&records[half..])
        .expect_err("unknown coin");
    assert!(matches!(err, ProjectionError::History { seq, .. } if seq == records[last].record.seq));
    assert_eq!(db.applied_seq().expect("seq"), records[half - 1].record.seq);
    assert_eq!(db.snapshot().expect("snapshot"), before);
}

#[test]
fn records_past_the_next_one_are_refused_as_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    History::new().run(&util::busy_ops(20), &log);
    let records = log.all();
    let db = CoinStatus::open(dir.path().join("c.redb"), CoinStatusModel).expect("open");
    let err = db.apply_records(&records[2..]).expect_err("gap");
    assert!(matches!(
        err,
        ProjectionError::Gap {
            applied: Seq(0),
            offered: Seq(3)
        }
    ));
    assert_eq!(
        db.catch_up(&log).expect("catch up"),
        log.head().expect("head").last_seq
    );
}

#[test]
fn a_file_of_one_projection_is_not_opened_as_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.redb");
    drop(CoinStatus::open(&path, CoinStatusModel).expect("open"));
    let err = ProjectionDb::open(&path, AccountsModel)
        .err()
        .expect("refused");
    assert!(matches!(
        err,
        ProjectionError::WrongProjection {
            expected: "accounts",
            ..
        }
    ));
}

#[test]
fn tail_following_applies_each_group_commit_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    let mut world = History::new();
    let db = CoinStatus::open(dir.path().join("c.redb"), CoinStatusModel).expect("open");
    assert_eq!(db.catch_up(&log).expect("empty log"), Seq(0));
    for op in util::busy_ops(80) {
        let Some(batch) = world.step(op) else {
            continue;
        };
        let first = log.append(std::slice::from_ref(batch)).expect("append")[0];
        // What the issuer does after a durable group commit.
        let committed = log.read(first, usize::MAX).expect("read");
        db.apply_records(&committed).expect("tail");
    }
    assert_eq!(
        db.applied_seq().expect("seq"),
        log.head().expect("head").last_seq
    );
    let (memory, _) = replay_in_memory(&CoinStatusModel, &log, None).expect("replay");
    assert_eq!(db.snapshot().expect("snapshot"), memory);
}

#[test]
fn the_history_generator_exercises_every_event_the_projections_handle() {
    let log = MemoryStore::new();
    History::new().run(&util::busy_ops(1500), &log);
    let mut kinds = std::collections::BTreeMap::new();
    for r in log.all() {
        *kinds.entry(r.record.event.kind()).or_insert(0u32) += 1;
    }
    for kind in [
        "epoch_opened",
        "epoch_closed",
        "spent_coins_erased",
        "purchase_requested",
        "purchase_settled",
        "purchase_rejected",
        "coins_issued",
        "coins_spent",
        "coins_revoked",
        "redeemed",
        "aggregated",
        "aggregate_withdrawn",
        "card_loaded",
        "card_unloaded",
        "cleared",
        "enrollment_requested",
        "enrolled",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in {kinds:?}"
        );
    }
}

#[test]
fn following_a_redb_log_with_a_tail_sees_each_commit_of_another_thread() {
    use std::sync::Arc;
    use std::time::Duration;

    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ledger::RedbStore::open(dir.path().join("log.redb")).expect("log"));
    let db = CoinStatus::open(dir.path().join("c.redb"), CoinStatusModel).expect("open");
    let mut tail = ledger::Tail::new(Arc::clone(&log), db.tail_start().expect("start"));
    let source = MemoryStore::new();
    History::new().run(&util::busy_ops(120), &source);
    let batches: Vec<ledger::Batch> = source
        .all()
        .chunk_by(|a, b| a.record.tx == b.record.tx)
        .map(|chunk| ledger::Batch {
            tx: chunk[0].record.tx,
            at: chunk[0].record.at,
            events: chunk.iter().map(|r| r.record.event.clone()).collect(),
        })
        .collect();
    let head = source.head().expect("head").last_seq;
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for batch in batches {
                log.append(&[batch]).expect("append");
            }
        })
    };
    let mut applied = Seq(0);
    for _ in 0..10_000 {
        if applied == head {
            break;
        }
        applied = db
            .follow(&mut tail, Duration::from_millis(200))
            .expect("follow");
    }
    writer.join().expect("writer");
    assert_eq!(applied, head);
    let (memory, _) = replay_in_memory(&CoinStatusModel, &*log, None).expect("replay");
    assert_eq!(db.snapshot().expect("snapshot"), memory);
}

#[test]
fn catching_up_over_many_chunks_leaves_every_chunk_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    History::new().run(&util::busy_ops(3000), &log);
    let head = log.head().expect("head").last_seq;
    assert!(
        head.0 > 2 * projections::constants::CATCH_UP_RECORDS_MAX as u64,
        "only {head} records: too few to span several catch-up chunks"
    );
    let path = dir.path().join("c.redb");
    {
        let db = CoinStatus::open(&path, CoinStatusModel).expect("open");
        assert_eq!(db.catch_up(&log).expect("catch up"), head);
    }
    let db = CoinStatus::open(&path, CoinStatusModel).expect("reopen");
    assert_eq!(db.applied_seq().expect("seq"), head);
    let (memory, _) = replay_in_memory(&CoinStatusModel, &log, None).expect("replay");
    assert_eq!(db.snapshot().expect("snapshot"), memory);
}

#[test]
fn a_file_of_another_format_is_refused_and_open_or_rebuild_rebuilds_it() {
    /// The coin-status model under a newer format number.
    struct CoinStatusV2;
    impl Projection for CoinStatusV2 {
        const NAME: &'static str = CoinStatusModel::NAME;
        const TABLES: &'static [projections::TableName] = CoinStatusModel::TABLES;
        const FORMAT: u32 = CoinStatusModel::FORMAT + 1;
        fn apply(
            &self,
            state: &mut dyn projections::StateWrite,
            record: &ledger::Record,
        ) -> Result<(), ProjectionError> {
            CoinStatusModel.apply(state, record)
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    History::new().run(&util::busy_ops(50), &log);
    let path = dir.path().join("c.redb");
    let old = CoinStatus::open(&path, CoinStatusModel).expect("open");
    old.catch_up(&log).expect("catch up");
    drop(old);
    let err = ProjectionDb::open(&path, CoinStatusV2)
        .err()
        .expect("refused");
    assert!(matches!(
        err,
        ProjectionError::FormatChanged {
            found: 1,
            expected: 2,
            ..
        }
    ));
    let new = ProjectionDb::open_or_rebuild(&path, || CoinStatusV2, &log).expect("rebuilt");
    assert_eq!(
        new.applied_seq().expect("seq"),
        log.head().expect("head").last_seq
    );
    let (memory, _) = replay_in_memory(&CoinStatusModel, &log, None).expect("replay");
    assert_eq!(new.snapshot().expect("snapshot"), memory);
}
