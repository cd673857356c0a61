//! The ledger core without public-key crypto: spends (1 coin in, 1 coin out,
//! a balanced refresh batch) submitted straight to the issuer's coin shards
//! (`actors::ShardSet`: reserve, then commit after the log has the batch)
//! and to ledger's group commit over a durable redb log (fsync per commit).
//! Several threads keep many spends in flight, as the coordinator does for
//! many clients. A counting wrapper around the store gives the commits and
//! so the group-commit batch size. The coin-status projection is not part
//! of the commit path (the housekeeper catches it up off it), and is not
//! run here: the root package has no edge to `projections`.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use actors::ShardSet;
use ledger::{
    Amount, Batch, CoinBody, CoinId, Event, EventStore, Flows, GroupCommit, GroupCommitConfig,
    Head, IssueCause, KeyEpoch, PurchaseId, RedbStore, Seq, SpendCause, StoreError, StoredRecord,
    Timestamp, TxId,
};

use super::stats;

/// Coin shards, as the issuer under test runs them.
const N_SHARDS: u16 = 16;
/// Spends one submitting thread keeps in flight.
const IN_FLIGHT_PER_THREAD: usize = 1024;
/// Coins issued per seed batch (a transaction's coin limit).
const SEED_COINS_PER_BATCH: usize = 1024;
/// Lifetime of the benchmark's coins, in seconds.
const COIN_LIFETIME_SECS: u64 = 24 * 3600;

/// A store that counts its durable transactions.
struct CountingStore {
    inner: RedbStore,
    n_appends: AtomicU64,
    n_batches: AtomicU64,
}

impl EventStore for CountingStore {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        let seqs = self.inner.append(batches)?;
        self.n_appends.fetch_add(1, Ordering::Relaxed);
        self.n_batches
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        Ok(seqs)
    }

    fn head(&self) -> Result<Head, StoreError> {
        self.inner.head()
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.inner.read(from, max_records)
    }
}

/// What the ledger-core phase measured.
pub struct CoreReport {
    pub n_spends: u64,
    n_failed: u64,
    n_threads: usize,
    elapsed: Duration,
    n_appends: u64,
    n_batches: u64,
    cpu_secs: f64,
    load_average: String,
}

impl fmt::Display for CoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        write!(
            f,
            "ledger core (shards + group commit + redb, fsync on, no RSA; {} threads x {} in flight): {} durable spends in {:.1} s = {:.0} spends/s; {} commits ({:.0}/s), group-commit batch {:.1} spends on average; CPU {:.2} cores busy, {:.1} us per spend; failed {}; load average {}",
            self.n_threads,
            IN_FLIGHT_PER_THREAD,
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

/// Issues `n` coins through the log (settled purchases), and into the shards.
fn seed(
    log: &GroupCommit<CountingStore>,
    shards: &ShardSet,
    n: usize,
) -> anyhow::Result<Vec<CoinBody>> {
    let mut all = Vec::with_capacity(n);
    while all.len() < n {
        let coins: Vec<CoinBody> = (0..SEED_COINS_PER_BATCH.min(n - all.len()))
            .map(|_| fresh_body())
            .collect();
        let purchase = PurchaseId::random();
        let amount = Amount::checked_sum(coins.iter().map(|c| c.value))?;
        let issued = Event::CoinsIssued {
            coins: coins.clone(),
            holder: None,
            cause: IssueCause::Purchase(purchase),
        };
        let events = vec![Event::PurchaseSettled { purchase, amount }, issued.clone()];
        Flows::of(&events).check_balanced()?;
        log.submit_wait(Batch {
            tx: TxId::random(),
            events,
        })?;
        shards.apply_logged(&issued);
        all.extend(coins);
    }
    Ok(all)
}

/// An acknowledgement from the group-commit writer.
struct Acked {
    tx: TxId,
    issued: CoinBody,
    result: Result<Seq, StoreError>,
}

/// What one submitting thread counted.
#[derive(Default)]
struct Tally {
    n_spends: u64,
    n_failed: u64,
}

/// Reserves `body`, stages its refresh batch and submits it.
fn submit_spend(
    log: &GroupCommit<CountingStore>,
    shards: &ShardSet,
    body: CoinBody,
    acks: &mpsc::Sender<Acked>,
) -> anyhow::Result<()> {
    let tx = TxId::random();
    let inputs = shards
        .reserve(tx, &[body.id])
        .map_err(|e| anyhow::anyhow!("reserving a coin: {e:?}"))?;
    let issued = fresh_body();
    let events = vec![
        Event::CoinsSpent {
            coins: inputs,
            cause: SpendCause::Refresh,
        },
        Event::CoinsIssued {
            coins: vec![issued],
            holder: None,
            cause: IssueCause::Refresh,
        },
    ];
    if let Err(e) = Flows::of(&events).check_balanced() {
        shards.abort(tx);
        return Err(e.into());
    }
    let acks = acks.clone();
    log.submit(Batch { tx, events }, move |result| {
        // The receiver outlives every batch it submitted.
        let _ = acks.send(Acked { tx, issued, result });
    });
    Ok(())
}

fn spend_loop(
    log: &GroupCommit<CountingStore>,
    shards: &ShardSet,
    mut coins: VecDeque<CoinBody>,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let (ack_tx, ack_rx) = mpsc::channel::<Acked>();
    let mut tally = Tally::default();
    let mut in_flight = 0usize;
    let on_ack =
        |acked: Acked, coins: &mut VecDeque<CoinBody>, tally: &mut Tally| match acked.result {
            Ok(_) => {
                shards.commit(acked.tx, &[acked.issued]);
                coins.push_back(acked.issued);
                tally.n_spends += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "a spend did not reach the log");
                shards.abort(acked.tx);
                tally.n_failed += 1;
            }
        };
    while Instant::now() < deadline {
        while in_flight < IN_FLIGHT_PER_THREAD
            && let Some(body) = coins.pop_front()
        {
            submit_spend(log, shards, body, &ack_tx)?;
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

/// Runs the ledger core for `duration` with `n_threads` submitting threads;
/// its log lives in `dir`.
pub fn run(dir: &Path, duration: Duration, n_threads: usize) -> anyhow::Result<CoreReport> {
    std::fs::create_dir_all(dir)?;
    let store = Arc::new(CountingStore {
        inner: RedbStore::open(dir.join("log.redb"))?,
        n_appends: AtomicU64::new(0),
        n_batches: AtomicU64::new(0),
    });
    let log = Arc::new(GroupCommit::start(
        store.clone(),
        GroupCommitConfig::default(),
    )?);
    let shards = ShardSet::new(N_SHARDS);
    let n_threads = n_threads.max(1);
    // Twice the window: a thread never waits for a coin its own commit frees.
    let coins = seed(&log, &shards, n_threads * IN_FLIGHT_PER_THREAD * 2)?;
    let (appends_before, batches_before) = (
        store.n_appends.load(Ordering::Relaxed),
        store.n_batches.load(Ordering::Relaxed),
    );
    let cpu_before = stats::process_cpu_secs();
    let started = Instant::now();
    let deadline = started + duration;
    let per_thread = coins.len() / n_threads;
    let threads = coins
        .chunks(per_thread)
        .map(|chunk| {
            let (log, shards) = (log.clone(), shards.clone());
            let mine: VecDeque<CoinBody> = chunk.iter().copied().collect();
            std::thread::spawn(move || spend_loop(&log, &shards, mine, deadline))
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
    Ok(CoreReport {
        n_spends: total.n_spends,
        n_failed: total.n_failed,
        n_threads,
        elapsed,
        n_appends: store.n_appends.load(Ordering::Relaxed) - appends_before,
        n_batches: store.n_batches.load(Ordering::Relaxed) - batches_before,
        cpu_secs,
        load_average: stats::load_average(),
    })
}
