//! Durable append throughput of the redb log (see ledger/README.md for figures).

extern crate vc_ledger as ledger;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ledger::testkit::sample_batch;
use ledger::{EventStore, RedbStore};

fn durable_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = RedbStore::open(dir.path().join("bench.redb")).expect("open log");
    let mut group = c.benchmark_group("durable_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    let mut batch_no = 0u64;
    group.bench_function("events_per_commit/1", |b| {
        b.iter(|| {
            batch_no += 1;
            store.append(&[sample_batch(batch_no, 1)]).expect("append")
        })
    });
    group.finish();
}

criterion_group!(benches, durable_append);
criterion_main!(benches);
