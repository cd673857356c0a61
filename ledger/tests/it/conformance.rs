//! The conformance suite (`ledger::event_store_conformance!`, in the
//! testkit) run against `MemoryStore` and `RedbStore`; other backends run
//! it in their own crates (`vc-pg-store`).

ledger::event_store_conformance!(memory, || Some((ledger::MemoryStore::new(), ())));
ledger::event_store_conformance!(redb_followable, || {
    let log = crate::util::TempLog::new();
    Some((log.open(), log))
});
ledger::event_store_conformance!(redb_exclusive, || {
    let log = crate::util::TempLog::new();
    Some((log.open_exclusive(), log))
});
