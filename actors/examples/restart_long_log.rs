//! Measures how long an issuer takes to start with a long log, with and
//! without its log-state snapshot (`log-state.snapshot`): registers one
//! participant through the issuer, appends copies of that registration
//! (each its own transaction, four records a batch) straight to `log.redb`
//! until the log holds N_RECORDS records, then times three starts:
//! the first (the transaction index and coin status catch up with the whole
//! log, the log state is replayed whole and its snapshot written), one from
//! the snapshot (nothing to replay), and one with the snapshot deleted (the
//! whole log replayed into the state, the other projections already caught
//! up: the cost the snapshot removes).
//!
//!     cargo run -p vc-actors --release --example restart_long_log [N_RECORDS]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::{Batch, Event, EventStore, ParticipantId, RedbStore, Seq, Timestamp, TxId};
use protocol::crypto::SecretKey;
use protocol::flows::RegistrationClient;
use vc_actors::LOG_STATE_SNAPSHOT_FILE;
use vc_actors::SimulatedBank;
use vc_actors::{IssuerConfig, IssuerCore};

const RECORDS_PER_BATCH: usize = 4;
const BATCHES_PER_APPEND: usize = 2_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n_records: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let issuer_dir = dir.path().join("issuer");
    let config = || {
        let mut c = IssuerConfig::new(&issuer_dir);
        c.n_shards = 8;
        c
    };
    let bank = Arc::new(SimulatedBank::open(
        dir.path().join("bank.redb"),
        Duration::ZERO,
    )?);
    let core = IssuerCore::open(config(), bank.clone())?;
    let sk = SecretKey::generate_for(core.suite(), 2048)?;
    let (_, req) = RegistrationClient::start(ParticipantId::new("someone")?, &sk);
    core.register(&req)?;
    let registered = core
        .store()
        .read(Seq(1), 1_000)?
        .into_iter()
        .map(|r| r.record.event)
        .find(|e| matches!(e, Event::Registered { .. }))
        .ok_or("no registration in the log")?;
    drop(core);

    let filling = Instant::now();
    {
        let store = RedbStore::open(issuer_dir.join("log.redb"))?;
        while store.head()?.last_seq.0 < n_records {
            let batches: Vec<Batch> = (0..BATCHES_PER_APPEND)
                .map(|_| Batch {
                    tx: TxId::random(),
                    at: Timestamp::now(),
                    events: vec![registered.clone(); RECORDS_PER_BATCH],
                })
                .collect();
            store.append(&batches)?;
        }
    }
    let fill_secs = filling.elapsed().as_secs_f64();

    let time_open =
        |verify_log_on_open: bool| -> Result<(f64, Option<Seq>), Box<dyn std::error::Error>> {
            let mut config = config();
            config.verify_log_on_open = verify_log_on_open;
            let cpu_before = process_cpu_secs();
            let started = Instant::now();
            let core = IssuerCore::open(config, bank.clone())?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  (start: {secs:.2} s wall, {:.2} s CPU of this process)",
                process_cpu_secs() - cpu_before
            );
            let from_snapshot = core.log_state_booted_from_snapshot();
            core.audit_conservation()?;
            Ok((secs, from_snapshot))
        };
    let (first_secs, _) = time_open(false)?;
    let (snapshot_secs, from) = time_open(false)?;
    assert!(from.is_some(), "the second start did not read the snapshot");
    let (snapshot_verified_secs, from) = time_open(true)?;
    assert!(
        from.is_some(),
        "the verified start did not read the snapshot"
    );
    std::fs::remove_file(issuer_dir.join(LOG_STATE_SNAPSHOT_FILE))?;
    let (replay_secs, from) = time_open(false)?;
    assert!(from.is_none());
    // What of a start is redb's own open of the log: with its integrity
    // check (every page read and checksummed) and without (the issuer's
    // default after a clean shutdown).
    let time_log_open =
        |verify_integrity_on_open: bool| -> Result<f64, Box<dyn std::error::Error>> {
            let started = Instant::now();
            let store = RedbStore::open_with(
                issuer_dir.join("log.redb"),
                ledger::RedbOptions {
                    verify_integrity_on_open,
                    ..ledger::RedbOptions::default()
                },
            )?;
            let secs = started.elapsed().as_secs_f64();
            drop(store);
            Ok(secs)
        };
    let verified_open_secs = time_log_open(true)?;
    let unverified_open_secs = time_log_open(false)?;
    let log_bytes = std::fs::metadata(issuer_dir.join("log.redb"))?.len();
    let snapshot_bytes = std::fs::metadata(issuer_dir.join(LOG_STATE_SNAPSHOT_FILE))?.len();
    println!(
        "log of {n_records}+ records ({:.1} MiB) filled in {fill_secs:.1} s; snapshot {snapshot_bytes} bytes",
        log_bytes as f64 / (1024.0 * 1024.0)
    );
    println!("first start (every projection catches up, snapshot written): {first_secs:.2} s");
    println!("start from the snapshot: {snapshot_secs:.2} s");
    println!(
        "start from the snapshot with the whole-file check of log.redb (verify_log_on_open): {snapshot_verified_secs:.2} s"
    );
    println!(
        "start with the snapshot deleted (whole log replayed into the state): {replay_secs:.2} s"
    );
    println!(
        "opening log.redb alone: {verified_open_secs:.2} s with redb's integrity check, {unverified_open_secs:.2} s without (the issuer's default after a clean shutdown)"
    );
    Ok(())
}

/// CPU seconds this process has used (user + system, every thread), from
/// `/proc/self/stat`: wall-clock times on a machine shared with other
/// builds say more about the load than the code; 0 where there is no /proc.
fn process_cpu_secs() -> f64 {
    const CLOCK_TICKS_PER_SEC: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is
    // the 12th and stime the 13th of them.
    let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_SEC
}
