//! Durable appends per second: `PostgresStore` against `RedbStore`, one
//! batch of 1 and of 64 events per append (one append = one commit), and
//! the same PostgreSQL transaction through `tokio-postgres` driven
//! directly, the client measurement behind the choice of `postgres`.
//!
//! `VC_TEST_POSTGRES_URL` names a superuser URL (a scratch database is
//! made and dropped). Wall-clock figures: on a shared machine they vary
//! with its load; each figure is the median of `ROUNDS` rounds.
//!
//!     cargo run --release -p vc-pg-store --example append_rate [APPENDS]

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Instant;

use ledger::testkit::sample_batch;
use ledger::{EventStore, RedbStore};
use vc_pg_store::PostgresStore;
use vc_pg_store::testkit::ScratchDatabase;

const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn rate(store: &dyn EventStore, first: &mut u64, appends: u64, events: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..appends {
        store
            .append(&[sample_batch(*first, events)])
            .expect("append");
        *first += 1;
    }
    appends as f64 / started.elapsed().as_secs_f64()
}

fn tokio_postgres_rate(url: &str, appends: u64, events: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS bench_records (seq bigint PRIMARY KEY, record bytea NOT NULL)",
            )
            .await
            .expect("create");
        let value = vec![7u8; 120];
        let mut seq: i64 = 0;
        let started = Instant::now();
        for _ in 0..appends {
            let seqs: Vec<i64> = (0..events as i64).map(|i| seq + 1 + i).collect();
            seq += events as i64;
            let values: Vec<Vec<u8>> = vec![value.clone(); events];
            let tx = client.transaction().await.expect("begin");
            tx.execute(
                "INSERT INTO bench_records (seq, record) SELECT * FROM unnest($1::int8[], $2::bytea[])",
                &[&seqs, &values],
            )
            .await
            .expect("insert");
            tx.execute("SELECT pg_notify('bench', $1)", &[&seq.to_string()])
                .await
                .expect("notify");
            tx.commit().await.expect("commit");
        }
        let r = appends as f64 / started.elapsed().as_secs_f64();
        client
            .batch_execute("DROP TABLE bench_records")
            .await
            .expect("drop");
        r
    })
}

fn main() {
    let appends: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("APPENDS is a number"))
        .unwrap_or(300);
    let db = ScratchDatabase::create("append_rate").expect("VC_TEST_POSTGRES_URL is set");
    let pg = PostgresStore::open(&db.url()).expect("open");
    let dir = tempfile::tempdir().expect("tempdir");
    let redb = RedbStore::open(dir.path().join("log.redb")).expect("open redb");
    let mut first_pg = 0;
    let mut first_redb = 0;
    println!("store | events per append | appends/s | events/s  (median of {ROUNDS} x {appends})");
    for events in [1usize, 64] {
        let pg_rate = median(
            (0..ROUNDS)
                .map(|_| rate(&pg, &mut first_pg, appends, events))
                .collect(),
        );
        let redb_rate = median(
            (0..ROUNDS)
                .map(|_| rate(&redb, &mut first_redb, appends, events))
                .collect(),
        );
        let direct = median(
            (0..ROUNDS)
                .map(|_| tokio_postgres_rate(&db.url(), appends, events))
                .collect(),
        );
        for (name, r) in [
            ("PostgresStore (postgres, own thread)", pg_rate),
            ("tokio-postgres, same transaction", direct),
            ("RedbStore (followable)", redb_rate),
        ] {
            println!("{name} | {events} | {r:.0} | {:.0}", r * events as f64);
        }
    }
}
