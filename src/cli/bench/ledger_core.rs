//! The ledger core without public-key crypto: spends (1 coin in, 1 coin out,
//! a balanced refresh batch) through the issuer's own commit path
//! (`actors::BareCommitPath`: reserve in the coin shards, the
//! group commit over a durable redb (or PostgreSQL) log, then the
//! shards, the idempotency table and the log state on the writer's thread),
//! without keys, registry or sessions. Several threads keep many spends in
//! flight, as the coordinator does for many clients. The coin-status
//! projection is not part of the commit path (the housekeeper catches it
//! up off it), and is not run here.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use actors::BareCommitPath;
use ledger::{
    Amount, Batch, CoinBody, CoinId, Event, EventStore, GroupCommitConfig, IssueCause, KeyEpoch,
    PurchaseId, RedbStore, SpendCause, Timestamp, TxId,
};

use super::stats;

/// Coin shards, as the issuer under test runs them.
const N_SHARDS: u16 = 16;
/// Spends one submitting thread keeps in flight, at least.
const IN_FLIGHT_PER_THREAD_MIN: usize = 1024;
/// Coins issued per seed batch (a transaction's coin limit).
const SEED_COINS_PER_BATCH: usize = 1024;
/// Lifetime of the benchmark's coins, in seconds.
const COIN_LIFETIME_SECS: u64 = 24 * 3600;

/// What the ledger-core phase measured.
pub struct CoreReport {
    pub n_spends: u64,
    config: GroupCommitConfig,
    in_flight_per_thread: usize,
    n_failed: u64,
    n_threads: usize,
    elapsed: Duration,
    n_appends: u64,
    n_batches: u64,
    cpu_secs: f64,
    load_average: String,
    /// The log's store: "redb" or "PostgreSQL".
    backend: &'static str,
}

impl CoreReport {
    /// Durable spends per second.
    pub fn spends_per_sec(&self) -> f64 {
        self.n_spends as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

impl fmt::Display for CoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        write!(
            f,
            "ledger core (the issuer's commit path: shards + group commit + {}, fsync on, no RSA; {} threads x {} in flight; commits of at most {} batches): {} durable spends in {:.1} s = {:.0} spends/s; {} commits ({:.0}/s), group-commit batch {:.1} spends on average; CPU {:.2} cores busy, {:.1} us per spend; failed {}; load average {}",
            self.backend,
            self.n_threads,
            self.in_flight_per_thread,
            self.config.commit_batches_max,
            self.n_spends,
            secs,
            self.n_spends as f64 / secs,
            self.n_appends,
            self.n_appends as f64 / secs,
            self.n_batches as f64 / (self.n_appends.max(1)) as f64,
            self.cpu_secs / secs,
            if self.n_spends > 0 {
                self.cpu_secs * 1e6 / self.n_spends as f64
            } else {
                0.0
            },
            self.n_failed,
            self.load_average
        )
    }
}

fn fresh_body() -> CoinBody {
    CoinBody {
        id: CoinId::random(),
        value: Amount::from_minor(1),
        expiry: Timestamp::now().plus_secs(COIN_LIFETIME_SECS),
        epoch: KeyEpoch(1),
    }
}

/// Issues `n` coins through the commit path (settled purchases).
fn seed(path: &BareCommitPath, n: usize) -> anyhow::Result<Vec<CoinBody>> {
    let mut all = Vec::with_capacity(n);
    while all.len() < n {
        let coins: Vec<CoinBody> = (0..SEED_COINS_PER_BATCH.min(n - all.len()))
            .map(|_| fresh_body())
            .collect();
        let purchase = PurchaseId::random();
        let amount = Amount::checked_sum(coins.iter().map(|c| c.value))?;
        let events = vec![
            Event::PurchaseSettled { purchase, amount },
            Event::CoinsIssued {
                coins: coins.clone(),
                holder: None,
                cause: IssueCause::Purchase(purchase),
            },
        ];
        path.commit_wait(TxId::random(), events, (&[], coins.clone()))?;
        all.extend(coins);
    }
    Ok(all)
}

/// An acknowledgement from the commit path.
struct Acked {
    issued: CoinBody,
    result: Result<actors::CommitRef, actors::IssuerError>,
}

/// What one submitting thread counted.
#[derive(Default)]
struct Tally {
    n_spends: u64,
    n_failed: u64,
}

/// Reserves `body` and submits its refresh batch.
fn submit_spend(
    path: &BareCommitPath,
    body: CoinBody,
    acks: &mpsc::Sender<Acked>,
) -> anyhow::Result<()> {
    // As the issuer does, the transaction id is derived from what is spent
    // (a hash), not drawn from the OS.
    let tx = TxId::derive("vc/bench/core-spend", &[body.id.as_bytes()]);
    let inputs = path
        .reserve(tx, &[body.id])
        .map_err(|e| anyhow::anyhow!("reserving a coin: {e:?}"))?;
    let issued = fresh_body();
    let events = vec![
        Event::CoinsSpent {
            coins: inputs.clone(),
            cause: SpendCause::Refresh,
        },
        Event::CoinsIssued {
            coins: vec![issued],
            holder: None,
            cause: IssueCause::Refresh,
        },
    ];
    let acks = acks.clone();
    path.submit(tx, events, (&inputs, vec![issued]), move |result| {
        // The receiver outlives every batch it submitted.
        let _ = acks.send(Acked { issued, result });
    });
    Ok(())
}

fn spend_loop(
    path: &BareCommitPath,
    mut coins: VecDeque<CoinBody>,
    in_flight_max: usize,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let (ack_tx, ack_rx) = mpsc::channel::<Acked>();
    let mut tally = Tally::default();
    let mut in_flight = 0usize;
    let on_ack =
        |acked: Acked, coins: &mut VecDeque<CoinBody>, tally: &mut Tally| match acked.result {
            Ok(_) => {
                coins.push_back(acked.issued);
                tally.n_spends += 1;
            }
            Err(e) => {
                // The commit path released the reservation.
                tracing::warn!(error = %e, "a spend did not reach the log");
                tally.n_failed += 1;
            }
        };
    while Instant::now() < deadline {
        while in_flight < in_flight_max
            && let Some(body) = coins.pop_front()
        {
            submit_spend(path, body, &ack_tx)?;
            in_flight += 1;
        }
        let acked = ack_rx.recv()?;
        in_flight -= 1;
        on_ack(acked, &mut coins, &mut tally);
        while let Ok(acked) = ack_rx.try_recv() {
            in_flight -= 1;
            on_ack(acked, &mut coins, &mut tally);
        }
    }
    while in_flight > 0 {
        let acked = ack_rx.recv()?;
        in_flight -= 1;
        on_ack(acked, &mut coins, &mut tally);
    }
    Ok(tally)
}

/// Lone durable commits timed by [`lone_commit_ms`].
const LONE_COMMITS_N: u32 = 50;

/// Mean time of one durable commit of one spend with nothing to group it
/// with (the fsync floor of a payment's latency), in milliseconds. On
/// `log` when given (it appends after what is there), else on a new redb
/// log in `dir`.
pub fn lone_commit_ms(dir: &Path, log: Option<Arc<dyn EventStore>>) -> anyhow::Result<f64> {
    let store: Arc<dyn EventStore> = match log {
        Some(log) => log,
        None => {
            std::fs::create_dir_all(dir)?;
            Arc::new(RedbStore::open(dir.join("lone.redb"))?)
        }
    };
    let started = Instant::now();
    for _ in 0..LONE_COMMITS_N {
        let body = fresh_body();
        let purchase = PurchaseId::random();
        store.append(&[Batch {
            tx: TxId::random(),
            at: Timestamp::now(),
            events: vec![
                Event::PurchaseSettled {
                    purchase,
                    amount: body.value,
                },
                Event::CoinsIssued {
                    coins: vec![body],
                    holder: None,
                    cause: IssueCause::Purchase(purchase),
                },
            ],
        }])?;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(LONE_COMMITS_N))
}

/// Runs the ledger core for `duration` with `n_threads` submitting threads;
/// its log is `log` (an empty one) when given, else a new redb log in
/// `dir`. `commit_batches_max` overrides ledger's default group-commit size
/// (the issuer runs the default).
pub fn run(
    dir: &Path,
    duration: Duration,
    n_threads: usize,
    commit_batches_max: Option<usize>,
    log: Option<Arc<dyn EventStore>>,
) -> anyhow::Result<CoreReport> {
    let n_threads = n_threads.max(1);
    let mut config = GroupCommitConfig::default();
    if let Some(n) = commit_batches_max {
        config.commit_batches_max = n.max(1);
        config.queue_batches_max = config.queue_batches_max.max(n.saturating_mul(4));
    }
    // Enough in flight to fill two commits, so the writer never waits for work.
    let in_flight_per_thread =
        IN_FLIGHT_PER_THREAD_MIN.max(config.commit_batches_max * 2 / n_threads);
    let backend = if log.is_some() { "PostgreSQL" } else { "redb" };
    let path = Arc::new(match log {
        Some(log) => BareCommitPath::open_on(log, N_SHARDS, config)?,
        None => {
            std::fs::create_dir_all(dir)?;
            BareCommitPath::open(&dir.join("log.redb"), N_SHARDS, config)?
        }
    });
    // Twice the window: a thread never waits for a coin its own commit frees.
    let coins = seed(&path, n_threads * in_flight_per_thread * 2)?;
    let before = path.log_commit_stats();
    let cpu_before = stats::process_cpu_secs();
    let started = Instant::now();
    let deadline = started + duration;
    let per_thread = coins.len() / n_threads;
    let threads = coins
        .chunks(per_thread)
        .map(|chunk| {
            let path = path.clone();
            let mine: VecDeque<CoinBody> = chunk.iter().copied().collect();
            std::thread::spawn(move || spend_loop(&path, mine, in_flight_per_thread, deadline))
        })
        .collect::<Vec<_>>();
    let mut total = Tally::default();
    for thread in threads {
        let t = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a spending thread panicked"))??;
        total.n_spends += t.n_spends;
        total.n_failed += t.n_failed;
    }
    let elapsed = started.elapsed();
    let cpu_secs = stats::process_cpu_secs() - cpu_before;
    let after = path.log_commit_stats();
    Ok(CoreReport {
        n_spends: total.n_spends,
        config,
        in_flight_per_thread,
        n_failed: total.n_failed,
        n_threads,
        elapsed,
        n_appends: after.commits - before.commits,
        n_batches: after.batches - before.batches,
        cpu_secs,
        load_average: stats::load_average(),
        backend,
    })
}

#[cfg(test)]
mod tests {
    // Paths in full: the bench target compiles this module without its tests.

    /// A short run spends durably and its counters agree: every spend was
    /// acknowledged by a commit, none failed, a commit groups at least one.
    #[test]
    fn a_short_run_commits_spends_in_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = super::run(
            dir.path(),
            std::time::Duration::from_millis(300),
            2,
            Some(64),
            None,
        )
        .expect("the core benchmark runs");
        assert!(report.n_spends > 0);
        assert_eq!(report.n_failed, 0);
        assert!(report.n_appends > 0);
        assert!(report.n_batches >= report.n_spends);
        assert!(report.n_batches <= report.n_appends * 64);
    }
}
