//! The issuer's tables beside the log (`PostgresKv`): the same answers as
//! the in-memory tables for the same writes, whole batches or nothing, and
//! nothing for the auditor's role.

use ledger::kv::{KvBatch, KvError, KvStore, MemoryKv};
use postgres::{Client, NoTls};
use vc_pg_store::PostgresKv;
use vc_pg_store::testkit::ScratchDatabase;

#[test]
fn tables_answer_as_the_memory_tables_do() {
    let Some(db) = ScratchDatabase::create("tables_answer_as_the_memory_tables_do") else {
        return;
    };
    let pg = PostgresKv::open(&db.url()).expect("open");
    let memory = MemoryKv::new();
    let mut batch = KvBatch::new();
    for key in [&b"a\x01"[..], b"a\xff", b"a\xff\xff", b"b", b"", b"\xff"] {
        batch.put("t", key, key.to_vec());
    }
    batch.put("u", b"a\x02", vec![9]);
    batch.delete("t", b"b");
    for kv in [&pg as &dyn KvStore, &memory] {
        kv.write(&batch).expect("write");
    }
    for prefix in [&b""[..], b"a", b"a\xff", b"\xff", b"c"] {
        assert_eq!(
            pg.scan("t", prefix).expect("scan"),
            memory.scan("t", prefix).expect("scan"),
            "prefix {prefix:?}"
        );
    }
    assert_eq!(pg.get("t", b"a\x01").expect("get"), Some(b"a\x01".to_vec()));
    assert_eq!(pg.get("t", b"b").expect("get"), None);
    assert_eq!(pg.get("u", b"a\x01").expect("get"), None);

    // A batch whose absence check fails writes nothing of itself.
    let mut batch = KvBatch::new();
    batch.put("t", b"new", vec![1]);
    batch.require_absent("u", b"a\x02");
    assert!(matches!(
        pg.write(&batch),
        Err(KvError::AlreadyPresent { .. })
    ));
    assert_eq!(pg.get("t", b"new").expect("get"), None);

    // Reopened: every returned write is there.
    drop(pg);
    let pg = PostgresKv::open(&db.url()).expect("reopen");
    assert_eq!(
        pg.scan("t", b"").expect("scan"),
        memory.scan("t", b"").expect("scan")
    );
}

#[test]
fn the_reader_role_cannot_read_the_issuers_tables() {
    let Some(db) = ScratchDatabase::create("the_reader_role_cannot_read_the_issuers_tables") else {
        return;
    };
    let pg = PostgresKv::open(&db.url()).expect("open");
    let mut batch = KvBatch::new();
    batch.put("t", b"k", vec![1]);
    pg.write(&batch).expect("write");
    let mut reader = Client::connect(&db.reader_url(), NoTls).expect("connect as the reader");
    let err = reader
        .query("SELECT * FROM vc_issuer_tables", &[])
        .expect_err("the auditor reads the log, not the registry");
    assert!(
        vc_pg_store::error_text(&err).contains("permission denied"),
        "{}",
        vc_pg_store::error_text(&err)
    );
}
