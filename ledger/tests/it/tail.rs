//! Tail following: a subscriber in the writer's process sees every record
//! in order, woken by each durable commit, without polling.

use crate::util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::{EventStore, MemoryStore, Seq, Tail};

fn follow_while_writing<S: EventStore + ledger::Watchable + 'static>(store: Arc<S>) {
    const BATCHES: u64 = 40;
    let writer_store = Arc::clone(&store);
    let writer = std::thread::spawn(move || {
        for i in 0..BATCHES {
            writer_store.append(&util::batches(i, 1)).expect("append");
        }
    });
    let want: u64 = (0..BATCHES).map(|i| i % 4 + 1).sum();
    let mut tail = Tail::new(Arc::clone(&store), Seq(1));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (seen.len() as u64) < want && Instant::now() < deadline {
        for r in tail
            .next_records(7, Duration::from_millis(500))
            .expect("tail reads")
        {
            seen.push(r);
        }
    }
    writer.join().expect("writer");
    let seqs: Vec<u64> = seen.iter().map(|r| r.record.seq.0).collect();
    assert_eq!(seqs, (1..=want).collect::<Vec<_>>());
    assert_eq!(seen, store.read(Seq(1), usize::MAX).expect("read"));
    assert_eq!(tail.next_seq(), Seq(want + 1));
    // Nothing new: the wait times out with nothing.
    assert!(
        tail.next_records(10, Duration::from_millis(20))
            .expect("tail")
            .is_empty()
    );
}

#[test]
fn tail_sees_every_record_of_a_memory_store_in_order() {
    follow_while_writing(Arc::new(MemoryStore::new()));
}

#[test]
fn tail_sees_every_record_of_a_redb_store_in_order() {
    let log = util::TempLog::new();
    follow_while_writing(Arc::new(log.open()));
}

#[test]
fn a_waiting_tail_is_woken_by_a_commit_not_by_its_timeout() {
    let store = Arc::new(MemoryStore::new());
    let mut tail = Tail::new(Arc::clone(&store), Seq(1));
    let writer_store = Arc::clone(&store);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer_store.append(&util::batches(0, 1)).expect("append");
    });
    let started = Instant::now();
    let records = tail
        .next_records(10, Duration::from_secs(30))
        .expect("tail");
    assert_eq!(records.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    writer.join().expect("writer");
}
