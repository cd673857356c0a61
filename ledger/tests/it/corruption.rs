//! A corrupted byte anywhere in a record, in memory or in the redb file, is
//! detected with a typed error naming the record's seq. Each test builds a
//! good log, changes one thing, and checks which error says where.

use crate::util;

use ledger::{
    Batch, ChainError, ChainVerifier, EventStore, MemoryStore, RawEventStore, RedbOptions,
    RedbStore, Seq, Sharing, StoreError, TxId, VerifyError, verify_store,
};
use ledger::{CoinId, Event};

fn chain_error(store: &impl RawEventStore) -> ChainError {
    match verify_store(store, 4) {
        Err(VerifyError::Chain(e)) => e,
        other => panic!("expected a chain error, got {other:?}"),
    }
}

fn memory_log() -> MemoryStore {
    let store = MemoryStore::new();
    store.append(&util::batches(0, 8)).expect("append");
    store
}

#[test]
fn a_flipped_event_byte_is_a_hash_mismatch_at_that_seq() {
    let n = memory_log().head().expect("head").last_seq.0;
    for seq in 1..=n {
        let store = memory_log();
        let len = store.read_raw(Seq(seq), 1).expect("read")[0]
            .event_bytes
            .len();
        for at in [0, len / 2, len - 1] {
            let store = memory_log();
            assert!(store.tamper_with(Seq(seq), |r| r.event_bytes[at] ^= 0x01));
            assert_eq!(
                chain_error(&store),
                ChainError::HashMismatch { seq: Seq(seq) },
                "byte {at} of record {seq}"
            );
            // Plain reads refuse the record too, naming it.
            let err = store.read(Seq(1), 100).expect_err("read refuses");
            assert!(
                matches!(err, StoreError::Corrupt { seq: s, .. } if s == Seq(seq)),
                "{err}"
            );
        }
    }
}

#[test]
fn every_header_field_is_covered() {
    let seq = Seq(5);
    type Tamper = Box<dyn Fn(&mut ledger::RawRecord)>;
    let cases: Vec<(&str, Tamper, ChainError)> = vec![
        (
            "prev_hash",
            Box::new(|r| r.prev_hash.0[3] ^= 0x80),
            ChainError::PrevHashMismatch { seq },
        ),
        (
            "hash",
            Box::new(|r| r.hash.0[31] ^= 0x01),
            ChainError::HashMismatch { seq },
        ),
        (
            "tx",
            Box::new(|r| r.tx = TxId::from_bytes([7; 16])),
            ChainError::HashMismatch { seq },
        ),
        (
            "at",
            Box::new(|r| r.at.0 += 1),
            ChainError::HashMismatch { seq },
        ),
        (
            "batch_index",
            Box::new(|r| r.batch_index ^= 1),
            ChainError::HashMismatch { seq },
        ),
        (
            "batch_len",
            Box::new(|r| r.batch_len += 1),
            ChainError::HashMismatch { seq },
        ),
        (
            "truncated event",
            Box::new(|r| {
                r.event_bytes.pop();
            }),
            ChainError::HashMismatch { seq },
        ),
    ];
    for (field, tamper, want) in cases {
        let store = memory_log();
        assert!(store.tamper_with(seq, tamper));
        assert_eq!(chain_error(&store), want, "{field}");
    }
}

#[test]
fn a_transaction_moved_in_time_with_its_hash_fixed_breaks_the_next_link() {
    // Moving a transaction's time is a forgery like any other: the chain
    // covers `at`, so rehashing the record only moves the break to the next.
    let store = MemoryStore::new();
    let one_event_batches: Vec<Batch> = (0..5)
        .map(|n| ledger::testkit::sample_batch(n, 1))
        .collect();
    store.append(&one_event_batches).expect("append");
    store.tamper_with(Seq(3), |r| {
        r.at.0 -= 3600;
        r.hash = r.recomputed_hash();
    });
    assert_eq!(
        chain_error(&store),
        ChainError::PrevHashMismatch { seq: Seq(4) }
    );
}

#[test]
fn a_time_that_changes_inside_a_batch_is_a_bad_batch_position() {
    // Every record of a batch carries its transaction's one time.
    let store = MemoryStore::new();
    store
        .append(&[ledger::testkit::sample_batch(1, 3)])
        .expect("append");
    let mut records = store.read_raw(Seq(1), 10).expect("read");
    records[1].at.0 += 1;
    records[1].hash = records[1].recomputed_hash();
    records[2].prev_hash = records[1].hash;
    records[2].hash = records[2].recomputed_hash();
    let mut verifier = ChainVerifier::new();
    verifier.feed(&records[0]).expect("first record");
    assert!(matches!(
        verifier.feed(&records[1]),
        Err(ChainError::BatchPosition { seq: Seq(2), .. })
    ));
}

#[test]
fn a_rehashed_forgery_breaks_the_link_to_the_next_record() {
    // A forger who changes record 3 and fixes its hash still breaks record 4.
    let store = memory_log();
    store.tamper_with(Seq(3), |r| {
        r.event_bytes[1] ^= 0x01;
        r.hash = r.recomputed_hash();
    });
    assert_eq!(
        chain_error(&store),
        ChainError::PrevHashMismatch { seq: Seq(4) }
    );
}

#[test]
fn batch_positions_are_checked() {
    // Records whose hashes are right but whose batch positions lie: written
    // by a buggy or hostile writer, not by a corrupting disk.
    let tx = TxId::from_bytes([1; 16]);
    let event = Event::EpochClosed {
        epoch: ledger::KeyEpoch(1),
    };
    let at = ledger::Timestamp(1_767_225_600);
    let forge = |positions: &[(u16, u16)]| {
        let mut prev = ledger::Hash32::GENESIS;
        let mut out = Vec::new();
        for (i, &(index, len)) in positions.iter().enumerate() {
            let seq = Seq(i as u64 + 1);
            let event_bytes = event.encode();
            let hash = ledger::store::record_hash(&prev, seq, &tx, at, index, len, &event_bytes);
            out.push(ledger::RawRecord {
                seq,
                tx,
                at,
                batch_index: index,
                batch_len: len,
                prev_hash: prev,
                hash,
                event_bytes,
            });
            prev = hash;
        }
        out
    };
    let first_error = |positions: &[(u16, u16)]| {
        let mut verifier = ChainVerifier::new();
        for record in forge(positions) {
            verifier.feed(&record)?;
        }
        verifier.finish().map(|_| ())
    };
    assert_eq!(first_error(&[(0, 2), (1, 2), (0, 1)]), Ok(()));
    assert!(matches!(
        first_error(&[(1, 2)]),
        Err(ChainError::BatchPosition { seq: Seq(1), .. })
    ));
    assert!(matches!(
        first_error(&[(0, 1), (1, 1)]),
        Err(ChainError::BatchPosition { seq: Seq(2), .. })
    ));
    assert!(matches!(
        first_error(&[(0, 3), (2, 3)]),
        Err(ChainError::BatchPosition { seq: Seq(2), .. })
    ));
    assert!(matches!(
        first_error(&[(0, 3), (1, 2)]),
        Err(ChainError::BatchPosition { seq: Seq(2), .. })
    ));
    assert_eq!(
        first_error(&[(0, 1), (0, 2)]),
        Err(ChainError::IncompleteBatch { seq: Seq(2) })
    );
    // A plain read (the issuer's boot, projections, the user index) refuses
    // a position no writer makes, with a typed error naming the record,
    // before any reader computes `batch_index + 1` or `seq - batch_index`.
    for (positions, bad) in [
        (&[(u16::MAX, u16::MAX)][..], Seq(1)),
        (&[(0, 1), (2, 3)][..], Seq(2)),
        (&[(0, 1), (0, 0)][..], Seq(2)),
    ] {
        let store = MemoryStore::from_raw_records(forge(positions));
        match store.read(Seq(1), 10) {
            Err(StoreError::Corrupt { seq, .. }) => assert_eq!(seq, bad, "{positions:?}"),
            other => panic!("{positions:?}: expected Corrupt at {bad:?}, got {other:?}"),
        }
    }
    let store = MemoryStore::from_raw_records(forge(&[(0, 2), (1, 2), (0, 1)]));
    assert_eq!(
        store.read(Seq(1), 10).expect("a genuine log reads").len(),
        3
    );
}

#[test]
fn a_record_from_another_log_position_is_a_seq_gap() {
    let store = memory_log();
    let mut verifier = ChainVerifier::new();
    let records = store.read_raw(Seq(1), 100).expect("read");
    verifier.feed(&records[0]).expect("first");
    assert_eq!(
        verifier.feed(&records[2]),
        Err(ChainError::SeqGap {
            expected: Seq(2),
            found: Seq(3)
        })
    );
    // The failed feed left the verifier where it was.
    verifier.feed(&records[1]).expect("second");
}

/// A batch whose one event carries `marker`, so its bytes can be found in the file.
fn marked_batch(marker: &str) -> Batch {
    Batch {
        tx: TxId::from_bytes([9; 16]),
        at: ledger::Timestamp(1_767_225_600),
        events: vec![Event::IdentityDisclosed {
            coin: CoinId::from_bytes([1; 16]),
            requester: "auditor".to_string(),
            reason: marker.to_string(),
        }],
    }
}

#[test]
fn a_flipped_byte_in_the_redb_file_is_detected() {
    let log = util::TempLog::new();
    let marker = "corruption-marker-5f2a9c";
    let marked_seq = {
        let store = log.open_exclusive();
        store.append(&util::batches(0, 3)).expect("append");
        let first = store.append(&[marked_batch(marker)]).expect("append")[0];
        store.append(&util::batches(3, 3)).expect("append");
        first
    };
    // Flip one byte of the marker wherever it lies in the file (copy-on-write
    // may have left stale copies in freed pages).
    let mut bytes = std::fs::read(log.path()).expect("read file");
    let mut flipped = 0;
    let mut at = 0;
    while let Some(pos) = bytes[at..]
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
    {
        bytes[at + pos + 3] ^= 0x01;
        flipped += 1;
        at += pos + marker.len();
    }
    assert!(flipped > 0, "marker found in the file");
    std::fs::write(log.path(), &bytes).expect("write file");

    // redb's own page checksums refuse the file on a verifying open ...
    assert!(RedbStore::open(log.path()).is_err());
    // ... and without that check, the chain names the record.
    let store = RedbStore::open_with(
        log.path(),
        RedbOptions {
            sharing: Sharing::Exclusive,
            verify_integrity_on_open: false,
        },
    )
    .expect("opens without the integrity check");
    assert_eq!(
        chain_error(&store),
        ChainError::HashMismatch { seq: marked_seq }
    );
    let reader_err = store.read(marked_seq, 1).expect_err("read refuses");
    assert!(matches!(reader_err, StoreError::Corrupt { seq, .. } if seq == marked_seq));
}
