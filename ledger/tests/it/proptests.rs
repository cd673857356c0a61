//! Property tests: every Event variant round-trips through its encoding and
//! through both stores; random batches chain and verify; any single flipped
//! byte in any record is found at that record's seq.

use crate::util;

use std::collections::BTreeSet;

use ledger::testkit::{arb_batch, arb_event};
use ledger::{
    ChainError, Event, EventStore, MemoryStore, RawEventStore, Seq, VerifyError, verify_store,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_event_round_trips_through_its_encoding(event in arb_event()) {
        let bytes = event.encode();
        prop_assert_eq!(Event::decode(&bytes).expect("decodes"), event);
    }

    #[test]
    fn batches_read_back_as_appended_from_memory(batches in prop::collection::vec(arb_batch(6), 1..6)) {
        let store = MemoryStore::new();
        store.append(&batches).expect("append");
        let events: Vec<Event> = batches.iter().flat_map(|b| b.events.clone()).collect();
        let read: Vec<Event> = store
            .read(Seq(1), usize::MAX)
            .expect("read")
            .into_iter()
            .map(|r| r.record.event)
            .collect();
        prop_assert_eq!(read, events);
        prop_assert!(verify_store(&store, 3).is_ok());
    }

    #[test]
    fn any_flipped_bit_is_found_at_its_record(
        batches in prop::collection::vec(arb_batch(4), 1..4),
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let store = MemoryStore::new();
        store.append(&batches).expect("append");
        let n = store.head().expect("head").last_seq.0;
        let seq = Seq(pick.index(n as usize) as u64 + 1);
        store.tamper_with(seq, |r| {
            let i = at.index(r.event_bytes.len());
            r.event_bytes[i] ^= 1 << bit;
        });
        match verify_store(&store, 2) {
            Err(VerifyError::Chain(ChainError::HashMismatch { seq: found })) => prop_assert_eq!(found, seq),
            other => prop_assert!(false, "expected a hash mismatch at {}, got {:?}", seq, other),
        }
    }
}

proptest! {
    // Each case opens a redb file and fsyncs: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn batches_read_back_as_appended_from_redb(batches in prop::collection::vec(arb_batch(8), 1..5)) {
        let log = util::TempLog::new();
        let memory = MemoryStore::new();
        {
            let store = log.open();
            for batch in &batches {
                store.append(std::slice::from_ref(batch)).expect("append");
                memory.append(std::slice::from_ref(batch)).expect("append");
            }
        }
        let store = log.open();
        prop_assert_eq!(
            store.read(Seq(1), usize::MAX).expect("read"),
            memory.read(Seq(1), usize::MAX).expect("read")
        );
        prop_assert_eq!(
            store.read_raw(Seq(1), usize::MAX).expect("read"),
            memory.read_raw(Seq(1), usize::MAX).expect("read")
        );
        prop_assert!(verify_store(&store, 5).is_ok());
    }
}

#[test]
fn the_event_strategy_reaches_every_variant() {
    let mut runner = TestRunner::deterministic();
    let strategy = arb_event();
    let mut kinds = BTreeSet::new();
    for _ in 0..5000 {
        let event = strategy.new_tree(&mut runner).expect("value").current();
        kinds.insert(event.kind());
    }
    assert_eq!(kinds.len(), 29, "kinds reached: {kinds:?}");
}
