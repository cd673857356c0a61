//! One conformance suite for every `EventStore` backend (in the manner of
//! Cashu CDK's `mint_db_test!`): each test runs against `MemoryStore` and
//! `RedbStore` and checks a promise of the trait's contract.

extern crate vc_ledger as ledger;

mod util;

use ledger::testkit::sample_batch;
use ledger::{
    Batch, ChainVerifier, EventStore, Hash32, RawEventStore, Seq, StoreError, verify_store,
};

/// Runs the suite against the stores that `$make` builds; `$make` returns
/// the store and a guard that must outlive it (a temporary directory).
macro_rules! event_store_conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn empty_log_has_genesis_head_and_no_records() {
                let (store, _guard) = $make();
                let head = store.head().expect("head");
                assert_eq!(head.last_seq, Seq(0));
                assert_eq!(head.last_hash, Hash32::GENESIS);
                assert!(store.read(Seq(1), 10).expect("read").is_empty());
            }

            #[test]
            fn seqs_start_at_one_and_have_no_gaps() {
                let (store, _guard) = $make();
                let firsts = store
                    .append(&[sample_batch(1, 3), sample_batch(2, 1), sample_batch(3, 2)])
                    .expect("append");
                assert_eq!(firsts, vec![Seq(1), Seq(4), Seq(5)]);
                let firsts = store.append(&[sample_batch(4, 2)]).expect("append");
                assert_eq!(firsts, vec![Seq(7)]);
                let seqs: Vec<u64> = store
                    .read(Seq(1), 100)
                    .expect("read")
                    .iter()
                    .map(|r| r.record.seq.0)
                    .collect();
                assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
                assert_eq!(store.head().expect("head").last_seq, Seq(8));
            }

            #[test]
            fn records_read_back_as_appended_with_batch_positions() {
                let (store, _guard) = $make();
                let batches = vec![sample_batch(10, 3), sample_batch(11, 2)];
                store.append(&batches).expect("append");
                let read = store.read(Seq(1), 100).expect("read");
                let mut i = 0;
                for batch in &batches {
                    for (index, event) in batch.events.iter().enumerate() {
                        let r = &read[i].record;
                        assert_eq!(r.tx, batch.tx);
                        assert_eq!(&r.event, event);
                        assert_eq!(usize::from(r.batch_index), index);
                        assert_eq!(usize::from(r.batch_len), batch.events.len());
                        i += 1;
                    }
                }
                assert_eq!(i, read.len());
            }

            #[test]
            fn chain_links_every_record_and_verifies() {
                let (store, _guard) = $make();
                for i in 0..5 {
                    store.append(&util::batches(i * 10, 3)).expect("append");
                }
                let read = store.read(Seq(1), 1000).expect("read");
                assert_eq!(read[0].prev_hash, Hash32::GENESIS);
                for pair in read.windows(2) {
                    assert_eq!(pair[1].prev_hash, pair[0].hash);
                }
                let head = verify_store(&store, 7).expect("chain verifies");
                assert_eq!(head, store.head().expect("head"));
                assert_eq!(head.last_hash, read.last().expect("records").hash);
            }

            #[test]
            fn reads_of_ranges_return_exactly_that_range() {
                let (store, _guard) = $make();
                store.append(&util::batches(0, 10)).expect("append");
                let all = store.read(Seq(1), usize::MAX).expect("read");
                let n = all.len() as u64;
                for from in [1, 2, n / 2, n, n + 1, n + 50] {
                    for max in [0usize, 1, 3, 1000] {
                        let got = store.read(Seq(from), max).expect("read");
                        let want: Vec<_> = all
                            .iter()
                            .filter(|r| r.record.seq.0 >= from)
                            .take(max)
                            .cloned()
                            .collect();
                        assert_eq!(got, want, "from {from} max {max}");
                    }
                }
                // Seq(0) reads from the start.
                assert_eq!(store.read(Seq(0), 2).expect("read"), all[..2].to_vec());
            }

            #[test]
            fn invalid_batch_is_refused_whole_and_appends_nothing() {
                let (store, _guard) = $make();
                store.append(&[sample_batch(1, 2)]).expect("append");
                let before = store.head().expect("head");
                let empty = Batch {
                    tx: sample_batch(2, 1).tx,
                    at: sample_batch(2, 1).at,
                    events: vec![],
                };
                let err = store
                    .append(&[sample_batch(3, 1), empty])
                    .expect_err("empty batch refused");
                assert!(matches!(err, StoreError::InvalidBatch(_)), "{err}");
                let too_long = sample_batch(4, ledger::constants::BATCH_EVENTS_MAX + 1);
                let err = store
                    .append(&[too_long])
                    .expect_err("oversized batch refused");
                assert!(matches!(err, StoreError::InvalidBatch(_)), "{err}");
                assert_eq!(store.head().expect("head"), before);
                assert_eq!(store.read(Seq(1), 100).expect("read").len(), 2);
            }

            #[test]
            fn raw_reads_hash_to_the_stored_hash() {
                let (store, _guard) = $make();
                store.append(&util::batches(0, 4)).expect("append");
                let raw = store.read_raw(Seq(1), 100).expect("read raw");
                let decoded = store.read(Seq(1), 100).expect("read");
                assert_eq!(raw.len(), decoded.len());
                let mut verifier = ChainVerifier::new();
                for (r, d) in raw.iter().zip(&decoded) {
                    assert_eq!(r.recomputed_hash(), r.hash);
                    assert_eq!(r.event_bytes, d.record.event.encode());
                    assert_eq!(r.decode().expect("decode"), *d);
                    verifier.feed(r).expect("verifies");
                }
                verifier.finish().expect("ends on a batch boundary");
            }

            #[test]
            fn reads_into_a_used_buffer_return_exactly_what_fresh_reads_do() {
                // The auditor hands chunks back to be refilled: a refill must
                // leave nothing of the records it overwrote.
                let (store, _guard) = $make();
                store.append(&util::batches(0, 6)).expect("append");
                let mut buffer = store.read_raw(Seq(1), 100).expect("read raw");
                for (from, max) in [(3, 4), (1, 100), (5, 2), (1000, 3), (2, 1)] {
                    store
                        .read_raw_into(Seq(from), max, &mut buffer)
                        .expect("read into");
                    assert_eq!(
                        buffer,
                        store.read_raw(Seq(from), max).expect("read raw"),
                        "from {from}, at most {max}"
                    );
                }
            }

            #[test]
            fn empty_append_changes_nothing() {
                let (store, _guard) = $make();
                assert_eq!(store.append(&[]).expect("append"), Vec::<Seq>::new());
                assert_eq!(store.head().expect("head").last_seq, Seq(0));
            }

            #[test]
            fn same_batches_make_the_same_chain_on_every_backend() {
                let (store, _guard) = $make();
                store.append(&util::batches(0, 6)).expect("append");
                let reference = ledger::MemoryStore::new();
                reference.append(&util::batches(0, 6)).expect("append");
                assert_eq!(store.head().expect("head"), reference.head().expect("head"));
            }
        }
    };
}

event_store_conformance!(memory, || (ledger::MemoryStore::new(), ()));
event_store_conformance!(redb_followable, || {
    let log = util::TempLog::new();
    (log.open(), log)
});
event_store_conformance!(redb_exclusive, || {
    let log = util::TempLog::new();
    (log.open_exclusive(), log)
});
