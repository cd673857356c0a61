//! What the PostgreSQL log promises beyond the conformance suite: the
//! redb store's record bytes, one writer, a read-only role that reads and
//! cannot write, rows nobody can change, and readers woken by NOTIFY.

use std::sync::Arc;
use std::time::Duration;

use ledger::testkit::sample_batches;
use ledger::{EventStore, RawEventStore, RedbStore, Seq, StoreError, Tail};
use postgres::{Client, NoTls};
use vc_pg_store::PostgresStore;
use vc_pg_store::testkit::ScratchDatabase;

#[test]
fn records_are_the_redb_stores_bytes() {
    let Some(db) = ScratchDatabase::create("records_are_the_redb_stores_bytes") else {
        return;
    };
    let pg = PostgresStore::open(&db.url()).expect("open");
    let dir = tempfile::tempdir().expect("temporary directory");
    let redb = RedbStore::open(dir.path().join("log.redb")).expect("open redb");
    for first in [0, 5, 9] {
        let batches = sample_batches(first, 4);
        assert_eq!(
            pg.append(&batches).expect("append"),
            redb.append(&batches).expect("append")
        );
    }
    assert_eq!(
        pg.read_raw(Seq(1), 1000).expect("read"),
        redb.read_raw(Seq(1), 1000).expect("read")
    );
    // Row bytes, read with plain SQL: the redb value of each record.
    let mut sql = Client::connect(&db.url(), NoTls).expect("connect");
    let rows = sql
        .query("SELECT seq, record FROM vc_log_records ORDER BY seq", &[])
        .expect("select");
    for (row, raw) in rows.iter().zip(redb.read_raw(Seq(1), 1000).expect("read")) {
        let seq: i64 = row.get(0);
        let bytes: Vec<u8> = row.get(1);
        assert_eq!(seq as u64, raw.seq.0);
        assert_eq!(bytes, ledger::redb_store::encode_record_value(&raw));
    }
}

#[test]
fn a_second_writer_is_refused_while_the_first_is_open() {
    let Some(db) = ScratchDatabase::create("a_second_writer_is_refused") else {
        return;
    };
    let first = PostgresStore::open(&db.url()).expect("open");
    let err = PostgresStore::open(&db.url())
        .err()
        .expect("second writer refused");
    assert!(err.to_string().contains("another writer"), "{err}");
    drop(first);
    let again = PostgresStore::open(&db.url()).expect("the lock went with its session");
    assert_eq!(again.head().expect("head").last_seq, Seq(0));
}

#[test]
fn the_reader_role_reads_the_log_and_cannot_write_it() {
    let Some(db) = ScratchDatabase::create("the_reader_role") else {
        return;
    };
    let writer = PostgresStore::open(&db.url()).expect("open");
    writer.append(&sample_batches(0, 3)).expect("append");
    let reader = PostgresStore::open_read_only(&db.reader_url()).expect("open read-only");
    assert_eq!(reader.head().expect("head"), writer.head().expect("head"));
    assert_eq!(
        reader.read_raw(Seq(1), 100).expect("read"),
        writer.read_raw(Seq(1), 100).expect("read")
    );
    assert!(matches!(
        reader.append(&sample_batches(3, 1)),
        Err(StoreError::ReadOnly)
    ));
    // Below the store: the role itself holds no right to write.
    let mut sql = Client::connect(&db.reader_url(), NoTls).expect("connect");
    for statement in [
        "INSERT INTO vc_log_records (seq, record) VALUES (1000, '\\x00')",
        "UPDATE vc_log_records SET record = '\\x00' WHERE seq = 1",
        "DELETE FROM vc_log_records",
        "UPDATE vc_log_meta SET value = 2",
    ] {
        let err = vc_pg_store::error_text(&sql.batch_execute(statement).expect_err(statement));
        assert!(err.contains("permission denied"), "{statement}: {err}");
    }
    // Nor may the writer's own role open a reader's write path.
    let err = PostgresStore::open(&db.reader_url())
        .err()
        .expect("a reader cannot open the log for writing");
    assert!(err.to_string().contains("postgres"), "{err}");
}

#[test]
fn nobody_changes_or_removes_a_record_not_even_its_owner() {
    let Some(db) = ScratchDatabase::create("nobody_changes_a_record") else {
        return;
    };
    let writer = PostgresStore::open(&db.url()).expect("open");
    writer.append(&sample_batches(0, 3)).expect("append");
    let mut sql = Client::connect(&db.url(), NoTls).expect("connect");
    for statement in [
        "UPDATE vc_log_records SET record = '\\x00' WHERE seq = 1",
        "DELETE FROM vc_log_records WHERE seq = 3",
        "TRUNCATE vc_log_records",
        "UPDATE vc_log_meta SET value = 2",
    ] {
        let err = vc_pg_store::error_text(&sql.batch_execute(statement).expect_err(statement));
        assert!(err.contains("append-only"), "{statement}: {err}");
    }
    ledger::verify_store(&writer, 100).expect("the chain is whole");
}

#[test]
fn a_readers_tail_is_woken_by_the_writers_commits() {
    let Some(db) = ScratchDatabase::create("a_readers_tail_is_woken") else {
        return;
    };
    let writer = PostgresStore::open(&db.url()).expect("open");
    writer.append(&sample_batches(0, 2)).expect("append");
    let reader = Arc::new(PostgresStore::open_read_only(&db.reader_url()).expect("open"));
    let mut tail = Tail::new(reader, Seq(1));
    let first = tail
        .next_records(100, Duration::from_secs(5))
        .expect("records");
    assert_eq!(first.len(), 3, "batches of 1 and 2 events");
    let appender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        writer.append(&sample_batches(2, 1)).expect("append");
        writer
    });
    let next = tail
        .next_records(100, Duration::from_secs(10))
        .expect("records");
    assert_eq!(next.len(), 3, "batch 2 has 3 events");
    assert_eq!(next[0].record.seq, Seq(4));
    drop(appender.join().expect("appender"));
}
