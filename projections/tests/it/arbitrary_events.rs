//! Nothing panics on what a log file may hold: after a valid history, each
//! projection is fed arbitrary events (ledger's testkit strategies: random
//! coins, amounts, sealed bytes, batches) and must either apply them or stop
//! with a typed error, leaving its file exactly at the last record it
//! accepted (equal to a replay up to that record).

use crate::util;
use ledger::testkit::StoreExt as _;

use ledger::EventStore;
use ledger::testkit::arb_event;
use projections::{
    AccountsModel, CoinStatusModel, Projection, ProjectionDb, ProjectionError, UserIndexModel,
    replay_in_memory,
};
use proptest::prelude::*;
use util::{History, MemoryStore, TestUnsealer};

fn feed<P: Projection>(dir: &std::path::Path, name: &str, model: fn() -> P, log: &MemoryStore) {
    let db = ProjectionDb::open(dir.join(name), model()).expect("open");
    match db.catch_up(log) {
        Ok(reached) => assert_eq!(reached, log.head().expect("head").last_seq),
        Err(ProjectionError::History { seq, .. } | ProjectionError::Unseal { seq, .. }) => {
            assert!(db.applied_seq().expect("seq") < seq);
        }
        Err(other) => panic!("{name}: unexpected error {other}"),
    }
    let applied = db.applied_seq().expect("seq");
    let (expected, _) = replay_in_memory(&model(), log, Some(applied)).expect("replay");
    assert_eq!(db.snapshot().expect("snapshot"), expected);
    // Offering the same log again changes nothing and fails the same way.
    let _ = db.catch_up(log);
    assert_eq!(db.applied_seq().expect("seq"), applied);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_events_are_applied_or_refused_without_panicking(
        ops in prop::collection::vec(any::<u32>(), 0..40),
        tail in prop::collection::vec(arb_event(), 1..12),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = MemoryStore::new();
        History::new().run(&ops, &log);
        for event in tail {
            log.append_events(vec![event]);
        }
        feed(dir.path(), "coins.redb", || CoinStatusModel, &log);
        feed(dir.path(), "users.redb", || UserIndexModel::new(TestUnsealer), &log);
        feed(dir.path(), "accounts.redb", || AccountsModel, &log);
    }
}
