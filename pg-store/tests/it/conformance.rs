//! The ledger's conformance suite against `PostgresStore`, each test on a
//! scratch database of the server `VC_TEST_POSTGRES_URL` names (skipped
//! with a notice when it is not set, outside CI).

ledger::event_store_conformance!(postgres, || {
    let db = vc_pg_store::testkit::ScratchDatabase::create("the PostgreSQL conformance suite")?;
    let store = vc_pg_store::PostgresStore::open(&db.url()).expect("open the log");
    Some((store, db))
});
