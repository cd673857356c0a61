//! Measures the session store where the issuer leans on it: a payment's
//! ack session written through the group commit, and the housekeeper's
//! purge (four times a second) over a store holding a day of payment
//! sessions. The purge reads the expiry index, so a purge with nothing
//! expired costs the same at any size; a decode of the whole table (what a
//! store without the index would do) is timed beside it for comparison.
//!
//!     cargo run -p vc-actors --release --example session_purge

use std::time::Instant;

use ledger::Timestamp;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use vc_actors::{Persist, SessionId, SessionStore};

/// Sessions held when the purge is timed.
const N_SESSIONS: usize = 200_000;
/// Ack sessions queued at once for the group-commit figure.
const N_QUEUED: usize = 10_000;

#[derive(serde::Serialize)]
struct AckLike {
    k_i: [u8; 32],
    id_py: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sessions.redb");
    let payload = AckLike {
        k_i: [7; 32],
        id_py: "bench-payee-0".to_owned(),
    };
    {
        let store = SessionStore::open(&path, true)?;
        let started = Instant::now();
        let (done, outcomes) = std::sync::mpsc::channel();
        for i in 0..N_SESSIONS {
            let done = done.clone();
            store.upsert_then(
                SessionId::random(),
                &payload,
                Timestamp(1_000 + i as u64),
                Persist::Durable,
                move |r| {
                    let _ = done.send(r.is_ok());
                },
            );
        }
        drop(done);
        let n_ok = outcomes.iter().filter(|ok| *ok).count();
        let stats = store.commit_stats();
        println!(
            "{n_ok} durable ack sessions in {:.2} s through the group commit: {} commits, {:.0} writes per commit",
            started.elapsed().as_secs_f64(),
            stats.commits,
            stats.writes as f64 / stats.commits.max(1) as f64
        );
        let started = Instant::now();
        let n = store.purge_expired(Timestamp(0))?;
        println!(
            "purge with {N_SESSIONS} sessions held, none expired (the expiry index): {n} dropped in {:.3} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        let started = Instant::now();
        let (done, outcomes) = std::sync::mpsc::channel();
        for _ in 0..N_QUEUED {
            let done = done.clone();
            store.upsert_then(
                SessionId::random(),
                &payload,
                Timestamp(u64::MAX),
                Persist::Durable,
                move |r| {
                    let _ = done.send(r.is_ok());
                },
            );
        }
        drop(done);
        let n_ok = outcomes.iter().filter(|ok| *ok).count();
        println!(
            "{n_ok} more, queued at once: {:.3} ms each on average",
            started.elapsed().as_secs_f64() * 1000.0 / N_QUEUED as f64
        );
    }
    // What a purge did before the index: read and decode every session.
    let db = redb::Database::open(&path)?;
    let table: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
    let txn = db.begin_read()?;
    let sessions = txn.open_table(table)?;
    let started = Instant::now();
    let mut n_expired = 0usize;
    for item in sessions.iter()? {
        let (_, v) = item?;
        // The record starts with its expiry (postcard varint), as before.
        let (expires_at, _): (u64, &[u8]) = postcard::take_from_bytes(v.value())?;
        if expires_at == 0 {
            n_expired += 1;
        }
    }
    println!(
        "the same purge as a whole-table scan (before the index): {} sessions read, {n_expired} expired, in {:.3} ms",
        sessions.len()?,
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
