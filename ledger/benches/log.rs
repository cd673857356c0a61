//! Durable append throughput of the redb log: events per second for 1, 64
//! and 1024 events per commit (each commit fsync'd), in both sharing modes,
//! and 8 concurrent submitters through group commit. Figures in
//! ledger/README.md. Kept short (10 samples, 3 s each) so the whole run
//! stays under two minutes on the 2-core machine.

extern crate vc_ledger as ledger;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ledger::constants::BATCH_EVENTS_MAX;
use ledger::testkit::sample_batch;
use ledger::{Batch, EventStore, GroupCommit, GroupCommitConfig, RedbOptions, RedbStore, Sharing};

fn open(dir: &tempfile::TempDir, name: &str, sharing: Sharing) -> RedbStore {
    RedbStore::open_with(
        dir.path().join(name),
        RedbOptions {
            sharing,
            ..RedbOptions::default()
        },
    )
    .expect("open log")
}

/// `n_events` split into batches of at most BATCH_EVENTS_MAX, numbered from `first`.
fn commit_of(first: u64, n_events: usize) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut left = n_events;
    let mut batch_no = first;
    while left > 0 {
        let n = left.min(BATCH_EVENTS_MAX);
        out.push(sample_batch(batch_no, n));
        batch_no += 1;
        left -= n;
    }
    out
}

fn durable_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut group = c.benchmark_group("durable_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (label, sharing) in [
        ("followable", Sharing::FollowableByReaders),
        ("exclusive", Sharing::Exclusive),
    ] {
        for n_events in [1usize, 64, 1024] {
            let store = open(&dir, &format!("{label}-{n_events}.redb"), sharing);
            let mut batch_no = 0u64;
            group.throughput(Throughput::Elements(n_events as u64));
            group.bench_with_input(
                BenchmarkId::new(label, format!("{n_events}_events_per_commit")),
                &n_events,
                |b, &n_events| {
                    b.iter_batched(
                        || {
                            batch_no += 1_000;
                            commit_of(batch_no, n_events)
                        },
                        |batches| store.append(&batches).expect("append"),
                        criterion::BatchSize::SmallInput,
                    )
                },
            );
        }
    }
    group.finish();
}

const SUBMITTERS: u64 = 8;
const BATCHES_PER_SUBMITTER: u64 = 64;
const EVENTS_PER_BATCH: usize = 4;

/// 8 threads each submit BATCHES_PER_SUBMITTER batches; `blocking` waits for
/// each ack before the next submit, otherwise callbacks are collected at the end.
fn run_submitters(writer: &Arc<GroupCommit<RedbStore>>, round: u64, blocking: bool) {
    let handles: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let writer = Arc::clone(writer);
            std::thread::spawn(move || {
                let base = round * 1_000_000 + t * 10_000;
                if blocking {
                    for i in 0..BATCHES_PER_SUBMITTER {
                        writer
                            .submit_wait(sample_batch(base + i, EVENTS_PER_BATCH))
                            .expect("acknowledged");
                    }
                } else {
                    let (tx, rx) = mpsc::channel();
                    for i in 0..BATCHES_PER_SUBMITTER {
                        let tx = tx.clone();
                        writer.submit(sample_batch(base + i, EVENTS_PER_BATCH), move |r| {
                            let _ = tx.send(r.is_ok());
                        });
                    }
                    drop(tx);
                    assert!(rx.iter().all(|ok| ok), "every batch acknowledged");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("submitter");
    }
}

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut group = c.benchmark_group("group_commit_8_submitters");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(
        SUBMITTERS * BATCHES_PER_SUBMITTER * EVENTS_PER_BATCH as u64,
    ));
    for (label, blocking) in [("submit_wait", true), ("submit_callback", false)] {
        let store = Arc::new(open(&dir, &format!("gc-{label}.redb"), Sharing::default()));
        let writer =
            Arc::new(GroupCommit::start(store, GroupCommitConfig::default()).expect("start"));
        let mut round = 0u64;
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    round += 1;
                    run_submitters(&writer, round, blocking);
                }
                started.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, durable_append, group_commit);
criterion_main!(benches);
