//! Crash points of the projections: applying stops dead
//! in the middle of a batch of records, or in the middle of an erasure of
//! spent coins (`ProjectionDb::crash_after_writes`), at many points; the
//! file is reopened, as after a crash, and must be exactly a replay of the
//! log up to its applied record (nothing half-applied), and catching up from
//! there must equal a replay of the whole log. The erasure, restarted, must
//! remove exactly the spent coins and never an unspent one.

use crate::util;
use ledger::testkit::StoreExt as _;

use ledger::{
    Amount, CoinBody, Event, EventStore, IssueCause, KeyEpoch, Seq, SpendCause, Timestamp,
};
use projections::{
    AccountsModel, CoinStatus, CoinStatusModel, Projection, ProjectionDb, ProjectionError,
    UserIndexModel, replay_in_memory,
};
use util::{History, MemoryStore, TestUnsealer, coin_id};

/// Table writes after which a run stops: the first write, mid-record and
/// deep into the batch.
const CRASH_AFTER_WRITES: [u64; 4] = [0, 1, 7, 40];

/// Catches `name` up to `prefix` records, then applies the rest of the log
/// as one batch with a crash after `writes` table writes; reopens and checks.
fn crash_mid_batch<P: Projection>(
    dir: &std::path::Path,
    name: &str,
    make: &dyn Fn() -> P,
    log: &MemoryStore,
    prefix: u64,
    writes: u64,
) {
    let path = dir.join(format!("{name}-{prefix}-{writes}.redb"));
    let all = log.all();
    {
        let db = ProjectionDb::open(&path, make()).expect("open");
        let (head, rest): (Vec<_>, Vec<_>) =
            all.iter().cloned().partition(|r| r.record.seq.0 <= prefix);
        db.apply_records(&head).expect("prefix applies");
        db.crash_after_writes(writes);
        assert!(
            matches!(db.apply_records(&rest), Err(ProjectionError::Crashed)),
            "{name}: the batch stops at the crash point"
        );
        // A dead process applies nothing more.
        assert!(matches!(db.catch_up(log), Err(ProjectionError::Crashed)));
    }
    let db = ProjectionDb::open(&path, make()).expect("reopen after the crash");
    let applied = db.applied_seq().expect("seq");
    assert_eq!(
        applied,
        Seq(prefix),
        "{name}: nothing of the batch committed"
    );
    let (expected, _) = replay_in_memory(&make(), log, Some(applied)).expect("replay");
    assert_eq!(
        db.snapshot().expect("snapshot"),
        expected,
        "{name} at {applied}"
    );
    db.catch_up(log).expect("catch up after the crash");
    let (full, _) = replay_in_memory(&make(), log, None).expect("replay");
    assert_eq!(db.snapshot().expect("snapshot"), full, "{name} caught up");
}

#[test]
fn a_projection_stopped_mid_batch_reopens_at_a_record_boundary_and_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    History::new().run(&util::busy_ops(400), &log);
    let head = log.head().expect("head").last_seq.0;
    for writes in CRASH_AFTER_WRITES {
        for prefix in [0, head / 2] {
            crash_mid_batch(
                dir.path(),
                "coins",
                &|| CoinStatusModel,
                &log,
                prefix,
                writes,
            );
            crash_mid_batch(
                dir.path(),
                "users",
                &|| UserIndexModel::new(TestUnsealer),
                &log,
                prefix,
                writes,
            );
            crash_mid_batch(
                dir.path(),
                "accounts",
                &|| AccountsModel,
                &log,
                prefix,
                writes,
            );
            crash_mid_batch(
                dir.path(),
                "txs",
                &|| projections::TxIndexModel,
                &log,
                prefix,
                writes,
            );
        }
    }
}

const N_COINS: u64 = 60;
/// Of which every one but each `KEEP_EVERY`-th is spent.
const KEEP_EVERY: u64 = 4;

/// A log of one epoch past its grace period: coins issued, most spent.
fn spent_epoch() -> (MemoryStore, Vec<CoinBody>, Vec<CoinBody>) {
    let log = MemoryStore::new();
    let epoch = KeyEpoch(1);
    log.append_events(vec![Event::EpochOpened {
        epoch,
        coins_expire_at: Timestamp(1000),
        grace_ends_at: Timestamp(1500),
    }]);
    let coins: Vec<CoinBody> = (1..=N_COINS)
        .map(|n| CoinBody {
            id: coin_id(n),
            value: Amount::from_minor(n),
            expiry: Timestamp(1000),
            epoch,
        })
        .collect();
    let (kept, spent): (Vec<CoinBody>, Vec<CoinBody>) = coins
        .iter()
        .partition(|c| c.value.minor_units().is_multiple_of(KEEP_EVERY));
    log.append_events(vec![
        Event::CoinsIssued {
            coins: coins.clone(),
            holder: None,
            cause: IssueCause::Change,
        },
        Event::CoinsSpent {
            coins: spent.clone(),
            cause: SpendCause::Redeem,
        },
    ]);
    (log, kept, spent)
}

#[test]
fn an_erasure_stopped_midway_is_redone_whole_and_never_erases_an_unspent_coin() {
    let dir = tempfile::tempdir().expect("tempdir");
    for writes in [0, 1, 2, 17, 2 * (N_COINS - N_COINS / KEEP_EVERY) - 1] {
        let (log, kept, spent) = spent_epoch();
        let path = dir.path().join(format!("coins-{writes}.redb"));
        let before_erasure;
        {
            let coins = CoinStatus::open(&path, CoinStatusModel).expect("open");
            before_erasure = coins.catch_up(&log).expect("catch up");
            let plan = coins
                .plan_erasure(KeyEpoch(1), Timestamp(1500))
                .expect("the grace period is over");
            assert_eq!(plan.n_coins(), spent.len() as u64);
            log.append_events(vec![plan.event()]);
            // The erasure removes two entries per coin: stop in between.
            coins.crash_after_writes(writes);
            assert!(
                matches!(coins.catch_up(&log), Err(ProjectionError::Crashed)),
                "the erasure stops after {writes} writes"
            );
        }
        let coins = CoinStatus::open(&path, CoinStatusModel).expect("reopen after the crash");
        assert_eq!(
            coins.applied_seq().expect("seq"),
            before_erasure,
            "nothing of the erasure committed"
        );
        assert_eq!(coins.n_coins_stored().expect("count"), N_COINS);
        for c in spent.iter().chain(&kept) {
            assert!(coins.status(&c.id).expect("status").is_some());
        }
        // The restart redoes the erasure whole.
        coins.catch_up(&log).expect("the erasure applies");
        let (full, _) = replay_in_memory(&CoinStatusModel, &log, None).expect("replay");
        assert_eq!(coins.snapshot().expect("snapshot"), full);
        assert_eq!(coins.n_coins_stored().expect("count"), kept.len() as u64);
        for c in &spent {
            assert!(coins.status(&c.id).expect("status").is_none(), "erased");
        }
        let unspent: Vec<CoinBody> = coins
            .unspent_by_shard(1)
            .expect("shard boot")
            .into_iter()
            .flatten()
            .collect();
        let mut unspent_ids: Vec<_> = unspent.iter().map(|c| c.id).collect();
        unspent_ids.sort();
        let mut kept_ids: Vec<_> = kept.iter().map(|c| c.id).collect();
        kept_ids.sort();
        assert_eq!(unspent_ids, kept_ids, "every unspent coin is still there");
    }
}
