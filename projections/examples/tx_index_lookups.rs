//! The transaction-index figures of README.md: a log of N one-record
//! transactions (default 1,000,000) is caught up into `tx-index.redb`; then
//! lookups of transactions it holds (a repeat, answered from the index) and
//! of ones it does not (every new transaction's `begin` asks once) are
//! timed one by one, as the issuer makes them. Run in release:
//! `cargo run --release -p vc-projections --example tx_index_lookups [n_transactions]`.

use std::process::ExitCode;
use std::time::Instant;

use ledger::{Batch, Event, EventStore, KeyEpoch, MemoryStore, Timestamp, TxId};
use projections::{TxIndex, TxIndexModel};

/// Lookups timed of each kind.
const N_LOOKUPS: u64 = 100_000;

fn tx(n: u64) -> TxId {
    TxId::derive("example/tx", &[&n.to_le_bytes()])
}

fn main() -> ExitCode {
    let n_tx = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(1_000_000);
    match run(n_tx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(n_tx: u64) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = MemoryStore::new();
    let mut n = 0;
    while n < n_tx {
        let batches: Vec<Batch> = (n..n_tx.min(n + 4096))
            .map(|i| Batch {
                tx: tx(i),
                at: Timestamp(0),
                events: vec![Event::EpochClosed {
                    epoch: KeyEpoch(i as u32),
                }],
            })
            .collect();
        n += batches.len() as u64;
        log.append(&batches)?;
    }
    let started = Instant::now();
    let index = TxIndex::open(dir.path().join("tx-index.redb"), TxIndexModel)?;
    let applied = index.catch_up(&log)?;
    let catch_up_secs = started.elapsed().as_secs_f64();
    let bytes = index.file_size_bytes()?;

    let step = (n_tx / N_LOOKUPS).max(1);
    let started = Instant::now();
    let mut found = 0u64;
    for i in 0..N_LOOKUPS {
        found += u64::from(index.committed(&tx((i * step) % n_tx))?.is_some());
    }
    let hit_us = started.elapsed().as_secs_f64() * 1e6 / N_LOOKUPS as f64;
    let started = Instant::now();
    let mut missed = 0u64;
    for i in 0..N_LOOKUPS {
        missed += u64::from(index.committed(&tx(n_tx + i))?.is_none());
    }
    let miss_us = started.elapsed().as_secs_f64() * 1e6 / N_LOOKUPS as f64;
    if found != N_LOOKUPS || missed != N_LOOKUPS {
        return Err(format!("{found} found, {missed} missed of {N_LOOKUPS} each").into());
    }

    println!("transactions indexed    {}", applied.0);
    println!(
        "catch-up                {catch_up_secs:.2} s ({:.0} transactions/s)",
        applied.0 as f64 / catch_up_secs.max(1e-9)
    );
    println!(
        "file                    {:.1} MiB ({bytes} bytes, {:.0} bytes per transaction)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / n_tx.max(1) as f64
    );
    println!("lookup, found           {hit_us:.2} us each ({N_LOOKUPS} lookups)");
    println!("lookup, not there       {miss_us:.2} us each ({N_LOOKUPS} lookups)");
    Ok(())
}
