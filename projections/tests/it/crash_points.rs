//! Crashes of the projections: the file sits on a storage backend that dies
//! (`ledger::fault::DyingFile`) at every write of the commit that applies a
//! batch of records, or an erasure of spent coins, in turn; the projection
//! code runs unchanged above it. The file is reopened on the plain file, as
//! after a crash, and must be exactly a replay of the log up to its applied
//! record (nothing half-applied: the batch is in whole or not at all), and
//! catching up from there must equal a replay of the whole log. The
//! erasure, restarted, must remove exactly the spent coins and never an
//! unspent one.

use crate::util;
use ledger::testkit::StoreExt as _;

use ledger::fault::{DiskDeath, DyingFile};
use ledger::{
    Amount, CoinBody, Event, EventStore, IssueCause, KeyEpoch, Seq, SpendCause, Timestamp,
};
use projections::{
    AccountsModel, CoinStatus, CoinStatusModel, Projection, ProjectionDb, UserIndexModel,
    replay_in_memory,
};
use util::{History, MemoryStore, TestUnsealer, coin_id};

/// Backend writes a commit may make before every one of its writes has
/// been a crash point (a run whose commit makes fewer ends the loop).
const WRITES_MAX: u64 = 64;

/// `path` opened as `P` on a backend that dies as `death` says.
fn open_dying<P: Projection>(
    path: &std::path::Path,
    projection: P,
    death: &std::sync::Arc<DiskDeath>,
) -> ProjectionDb<P> {
    let backend = DyingFile::open(path, death.clone()).expect("file");
    ProjectionDb::open_on_backend(path, Box::new(backend), projection).expect("open")
}

/// Catches `name` up to `prefix` records, then applies the rest of the log
/// as one batch with the disk dying after `writes` backend writes; reopens
/// and checks. Returns whether the disk died (false: the commit made fewer
/// writes, and went through).
fn crash_mid_batch<P: Projection>(
    dir: &std::path::Path,
    name: &str,
    make: &dyn Fn() -> P,
    log: &MemoryStore,
    prefix: u64,
    writes: u64,
) -> bool {
    let path = dir.join(format!("{name}-{prefix}-{writes}.redb"));
    let all = log.all();
    let head = log.head().expect("head").last_seq;
    let death = DiskDeath::new();
    {
        let db = open_dying(&path, make(), &death);
        let (before, rest): (Vec<_>, Vec<_>) =
            all.iter().cloned().partition(|r| r.record.seq.0 <= prefix);
        db.apply_records(&before).expect("prefix applies");
        death.arm(writes);
        if db.apply_records(&rest).is_ok() {
            assert!(!death.has_died(), "{name}: a dead disk took the batch");
            return false;
        }
        assert!(
            death.has_died(),
            "{name}: failed otherwise than by the crash"
        );
        // A dead process applies nothing more.
        assert!(
            db.catch_up(log).is_err(),
            "{name}: the dead file applied more"
        );
    }
    let db = ProjectionDb::open(&path, make()).expect("reopen after the crash");
    let applied = db.applied_seq().expect("seq");
    // The commit died midway: whether its batch survives is redb's commit
    // protocol's to say (the pages written before the death are in the
    // file); it is there whole or not at all.
    assert!(
        applied == Seq(prefix) || applied == head,
        "{name}: reopened at {applied}, neither before the batch nor after it"
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
    true
}

/// [`crash_mid_batch`] at every backend write of the batch's commit in turn.
fn crash_at_every_write<P: Projection>(
    dir: &std::path::Path,
    name: &str,
    make: &dyn Fn() -> P,
    log: &MemoryStore,
    prefix: u64,
) {
    let mut crashes = 0;
    for writes in 0..WRITES_MAX {
        if !crash_mid_batch(dir, name, make, log, prefix, writes) {
            break;
        }
        crashes += 1;
    }
    assert!(crashes > 0, "{name}: the disk never died under the commit");
}

#[test]
fn a_projection_stopped_mid_batch_reopens_at_a_record_boundary_and_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = MemoryStore::new();
    History::new().run(&util::busy_ops(400), &log);
    let head = log.head().expect("head").last_seq.0;
    for prefix in [0, head / 2] {
        crash_at_every_write(dir.path(), "coins", &|| CoinStatusModel, &log, prefix);
        crash_at_every_write(
            dir.path(),
            "users",
            &|| UserIndexModel::new(TestUnsealer),
            &log,
            prefix,
        );
        crash_at_every_write(dir.path(), "accounts", &|| AccountsModel, &log, prefix);
        crash_at_every_write(
            dir.path(),
            "txs",
            &|| projections::TxIndexModel,
            &log,
            prefix,
        );
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
    let mut crashes = 0;
    for writes in 0..WRITES_MAX {
        let (log, kept, spent) = spent_epoch();
        let path = dir.path().join(format!("coins-{writes}.redb"));
        let before_erasure;
        let death = DiskDeath::new();
        {
            let coins = open_dying(&path, CoinStatusModel, &death);
            before_erasure = coins.catch_up(&log).expect("catch up");
            let plan = coins
                .plan_erasure(KeyEpoch(1), Timestamp(1500))
                .expect("the grace period is over");
            assert_eq!(plan.n_coins(), spent.len() as u64);
            log.append_events(vec![plan.event()]);
            // The erasure's removals are one commit: the disk dies at its
            // `writes`-th write.
            death.arm(writes);
            if coins.catch_up(&log).is_ok() {
                assert!(!death.has_died(), "a dead disk took the erasure");
                break;
            }
            assert!(
                death.has_died(),
                "the erasure failed otherwise than by the crash"
            );
        }
        crashes += 1;
        let coins = CoinStatus::open(&path, CoinStatusModel).expect("reopen after the crash");
        let applied = coins.applied_seq().expect("seq");
        if applied == before_erasure {
            // Nothing of the erasure committed: every coin is still there.
            assert_eq!(coins.n_coins_stored().expect("count"), N_COINS);
            for c in spent.iter().chain(&kept) {
                assert!(coins.status(&c.id).expect("status").is_some());
            }
        } else {
            // redb's commit protocol kept the whole commit.
            assert_eq!(applied, log.head().expect("head").last_seq);
            assert_eq!(coins.n_coins_stored().expect("count"), kept.len() as u64);
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
    assert!(crashes > 0, "the disk never died under the erasure");
}
