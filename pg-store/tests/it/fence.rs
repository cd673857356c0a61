//! Two sequencers can never both append to a log on PostgreSQL: a
//! successor raises the fencing epoch, and every append of a writer that
//! does not carry the current epoch is refused inside its own
//! transaction, whether its session was ended while it was paused or
//! survived beside its successor (as after a fail-over of the database
//! server, which does not carry advisory locks).

use ledger::kv::{KvBatch, KvStore};
use ledger::testkit::sample_batches;
use ledger::{EventStore, Seq};
use postgres::{Client, NoTls};
use vc_pg_store::fence::{
    FENCED_MESSAGE, FenceEpoch, carry_to_tables, current_epoch, end_other_writers, fence, is_fenced,
};
use vc_pg_store::testkit::ScratchDatabase;
use vc_pg_store::{PostgresKv, PostgresStore};

/// A paused sequencer whose session the successor ended wakes up and
/// appends: refused, and nothing of it reaches the log.
#[test]
fn a_paused_writer_that_wakes_after_its_successor_took_over_is_refused() {
    let Some(db) = ScratchDatabase::create("a_paused_writer_is_refused") else {
        return;
    };
    let old = PostgresStore::open(&db.url()).expect("open");
    assert_eq!(fence(&old).expect("fence"), FenceEpoch(1));
    old.append(&sample_batches(0, 3))
        .expect("the holder appends");
    // "Paused": `old` is not used while its successor takes over.
    let mut admin = Client::connect(&db.url(), NoTls).expect("connect");
    assert!(PostgresStore::open(&db.url()).is_err(), "two writers open");
    assert_eq!(end_other_writers(&mut admin).expect("end"), 1);
    let new = open_when_free(&db.url());
    assert_eq!(fence(&new).expect("fence"), FenceEpoch(2));
    let head = new.head().expect("head").last_seq;
    new.append(&sample_batches(3, 2))
        .expect("the successor appends");

    // The old writer wakes up.
    let err = old
        .append(&sample_batches(10, 1))
        .expect_err("the old writer appended beside its successor");
    assert!(!err.to_string().is_empty());
    let after = new.head().expect("head").last_seq;
    assert!(after > head);
    assert_eq!(
        new.read(Seq(1), 1000).expect("read").len() as u64,
        after.0,
        "the log holds exactly the two writers' accepted appends"
    );
    assert_eq!(
        current_epoch(&mut admin).expect("epoch"),
        Some(FenceEpoch(2))
    );
}

/// A predecessor whose session survived (the lock not in the way, as on a
/// promoted database server) is refused by the epoch check itself, inside
/// its append's transaction; the successor's appends go on.
#[test]
fn a_writer_behind_the_fencing_epoch_is_refused_in_its_append_transaction() {
    let Some(db) = ScratchDatabase::create("a_writer_behind_the_epoch_is_refused") else {
        return;
    };
    let old = PostgresStore::open(&db.url()).expect("open");
    assert_eq!(fence(&old).expect("fence"), FenceEpoch(1));
    old.append(&sample_batches(0, 2))
        .expect("the holder appends");
    // A successor raises the epoch from a session of its own.
    let mut successor = Client::connect(&db.url(), NoTls).expect("connect");
    let raised: i64 = successor
        .query_one(
            "UPDATE vc_log_fence SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch",
            &[],
        )
        .expect("raise")
        .get(0);
    assert_eq!(raised, 2);
    let err = old
        .append(&sample_batches(2, 1))
        .expect_err("an append behind the epoch went through");
    assert!(is_fenced(&err), "{err}");
    // A plain INSERT without the epoch is refused too.
    let refused = successor.execute(
        "INSERT INTO vc_log_records (seq, record) VALUES (100, '\\x00')",
        &[],
    );
    assert!(refused.is_err(), "an unfenced session appended");
    // The successor, carrying the epoch, appends.
    successor
        .execute("SELECT set_config('vc.fencing_epoch', '2', false)", &[])
        .expect("carry the epoch");
    drop(old);
    let new = PostgresStore::open(&db.url()).expect("open");
    assert_eq!(fence(&new).expect("fence"), FenceEpoch(3));
    assert_eq!(new.head().expect("head").last_seq, Seq(3));
    new.append(&sample_batches(2, 1))
        .expect("the successor appends");
}

/// A log never fenced takes appends (`issuer init` writes the first
/// records before any writer fenced it).
#[test]
fn an_unfenced_log_takes_appends() {
    let Some(db) = ScratchDatabase::create("an_unfenced_log_takes_appends") else {
        return;
    };
    let store = PostgresStore::open(&db.url()).expect("open");
    store.append(&sample_batches(0, 2)).expect("append");
    let mut admin = Client::connect(&db.url(), NoTls).expect("connect");
    assert_eq!(current_epoch(&mut admin).expect("epoch"), None);
}

/// The writer's lock goes with the ended session, asynchronously: open
/// once it is free.
fn open_when_free(url: &str) -> PostgresStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match PostgresStore::open(url) {
            Ok(store) => return store,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// The issuer's tables beside the log are fenced with it: once a
/// successor raised the epoch, the predecessor's table session (still
/// alive) is refused inside its write's transaction, as is a session that
/// carries no epoch; the successor's tables, carrying the new epoch,
/// write.
#[test]
fn a_predecessors_table_writes_are_refused_once_a_successor_fenced() {
    let Some(db) = ScratchDatabase::create("tables_behind_the_epoch_are_refused") else {
        return;
    };
    let row = |value: u8| {
        let mut batch = KvBatch::new();
        batch.put("registry/test", b"k", vec![value]);
        batch
    };
    let old = PostgresStore::open(&db.url()).expect("open");
    let epoch = fence(&old).expect("fence");
    let old_tables = PostgresKv::open(&db.url()).expect("tables");
    carry_to_tables(&old_tables, epoch).expect("carry");
    old_tables.write(&row(1)).expect("the holder writes");
    // The writer's session ends (the process paused, its session ended by
    // the operator); its tables' session lives on.
    drop(old);
    let new = open_when_free(&db.url());
    let epoch = fence(&new).expect("fence");
    assert_eq!(epoch, FenceEpoch(2));
    let new_tables = PostgresKv::open(&db.url()).expect("tables");
    carry_to_tables(&new_tables, epoch).expect("carry");

    let err = old_tables
        .write(&row(2))
        .expect_err("the predecessor wrote beside its successor");
    assert!(err.to_string().contains(FENCED_MESSAGE), "{err}");
    let bare = PostgresKv::open(&db.url()).expect("tables");
    assert!(
        bare.write(&row(3)).is_err(),
        "a session without the epoch wrote"
    );
    new_tables.write(&row(4)).expect("the successor writes");
    assert_eq!(
        new_tables.get("registry/test", b"k").expect("read"),
        Some(vec![4])
    );
}
