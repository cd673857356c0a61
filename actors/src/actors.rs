//! The actix shell around [`IssuerCore`], and the [`Issuer`] handle the
//! gateway calls: one async method per protocol step, taking and returning
//! wire messages.
//!
//! - `CryptoWorker`s, a `SyncArbiter` pool sized to the cores, run the
//!   steps that need the issuer's key or the stores: opening envelopes and
//!   signing (RSA, over 90% of the cost), the checks, building batches and
//!   answers.
//! - `CoinShard`, one actor per shard, owns reservations of its shard's
//!   coins: `ReserveCoins` (never waits: busy is an answer), `CommitShard`,
//!   `AbortShard`.
//! - `LogWriter` hands batches to ledger's group commit and resolves each
//!   `AppendBatch` when the batch is durable (the writer thread's
//!   acknowledgement completes a oneshot). A payment's batch goes to the
//!   group commit straight from its coordinator task while the queue has
//!   room, through `LogWriter` only when it is full.
//! - `Coordinator` runs a payment's commit path as one async task: open and
//!   check on the pool, reserve in every shard concerned in shard order, stage
//!   the balanced batch (and new coins' Issuance1, whose ack session goes to
//!   the session writer's group commit), append durably, commit the shards,
//!   answer once the log and the session writer both have it durable. Any
//!   failure before the log has the batch aborts the reservations. No
//!   worker waits on an fsync of a payment.
//! - `Housekeeper` runs on a timer: settles purchases the bank has decided,
//!   opens key epochs on schedule, purges expired sessions, catches the
//!   coin-status checkpoint up with the log, signs a log checkpoint; on a
//!   worker thread of its own, so no payment queues behind it.
//!
//! Flows with no coin inputs (registration, enrollment, purchase) run whole
//! on a worker, through the core's synchronous commit path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use actix::prelude::*;
use ledger::{
    Amount, Batch, CoinBody, CoinId, KeyEpoch, ParticipantId, PurchaseId, Role, Seq, ShardIdx,
    StoreError, TxId,
};
use protocol::crypto::PublicKey;
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentRequest};
use protocol::wire::payment::{PaymentIssuance1, PaymentIssuance2, ValidationRequest};
use protocol::wire::purchase::{
    PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WRequest1, WRequest2, WRequest3,
};
use protocol::wire::registration::{Certificate, RegisterRequest};

use crate::bank::Bank;
use crate::fail_stop::FailStop;
use crate::issuer::payment::{Opened, Staged};
use crate::issuer::{
    EpochInfo, IssuerConfig, IssuerCore, IssuerError, LOG_CHECKPOINT_EVERY_MS, PurchaseStatus,
};
use crate::sessions::SessionError;
use crate::shard::{ReserveError, ShardSet};
use crate::timing::Stage;

/// One step run on a crypto worker.
struct Job<R: Send + 'static>(Box<dyn FnOnce(&IssuerCore) -> R + Send>);

impl<R: Send + 'static> Message for Job<R> {
    type Result = R;
}

/// Runs protocol steps on its own thread.
struct CryptoWorker {
    core: Arc<IssuerCore>,
}

impl CryptoWorker {
    /// A worker for the pool's thread this runs on, which it binds to the
    /// issuer's fail-stop.
    fn on_this_thread(core: &Arc<IssuerCore>) -> CryptoWorker {
        core.fail_stop().guard_this_thread();
        CryptoWorker { core: core.clone() }
    }
}

impl Actor for CryptoWorker {
    type Context = SyncContext<Self>;
}

impl<R: Send + 'static> Handler<Job<R>> for CryptoWorker {
    type Result = MessageResult<Job<R>>;

    fn handle(&mut self, job: Job<R>, _: &mut SyncContext<Self>) -> Self::Result {
        MessageResult((job.0)(&self.core))
    }
}

/// The mailbox of one coin shard.
struct CoinShard {
    shards: ShardSet,
    idx: ShardIdx,
    fail_stop: FailStop,
}

impl Actor for CoinShard {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.fail_stop.guard_this_thread();
    }
}

/// Reserve `coins` (all of this shard) for `tx`, all or nothing.
struct ReserveCoins {
    tx: TxId,
    coins: Vec<CoinId>,
}

impl Message for ReserveCoins {
    type Result = Result<Vec<CoinBody>, ReserveError>;
}

impl Handler<ReserveCoins> for CoinShard {
    type Result = Result<Vec<CoinBody>, ReserveError>;

    fn handle(&mut self, msg: ReserveCoins, _: &mut Context<Self>) -> Self::Result {
        self.shards.shard(self.idx).reserve(msg.tx, &msg.coins)
    }
}

/// `tx` is durable: its reserved coins leave, `issued` enter. Answers how
/// many coins left.
struct CommitShard {
    tx: TxId,
    issued: Vec<CoinBody>,
}

impl Message for CommitShard {
    type Result = usize;
}

impl Handler<CommitShard> for CoinShard {
    type Result = usize;

    fn handle(&mut self, msg: CommitShard, _: &mut Context<Self>) -> usize {
        self.shards
            .shard(self.idx)
            .commit(msg.tx, &msg.issued)
            .len()
    }
}

/// `tx` will not commit: release its reservations here.
struct AbortShard {
    tx: TxId,
}

impl Message for AbortShard {
    type Result = ();
}

impl Handler<AbortShard> for CoinShard {
    type Result = ();

    fn handle(&mut self, msg: AbortShard, _: &mut Context<Self>) {
        self.shards.shard(self.idx).abort(msg.tx);
    }
}

/// The log writer's mailbox over ledger's group commit.
struct LogWriter {
    core: Arc<IssuerCore>,
}

impl Actor for LogWriter {
    type Context = Context<Self>;
}

/// Append one batch; resolves with its first record's seq once durable.
struct AppendBatch(Batch);

impl Message for AppendBatch {
    type Result = Result<Seq, StoreError>;
}

impl Handler<AppendBatch> for LogWriter {
    type Result = ResponseFuture<Result<Seq, StoreError>>;

    fn handle(&mut self, msg: AppendBatch, _: &mut Context<Self>) -> Self::Result {
        let (done, durable) = tokio::sync::oneshot::channel();
        self.core.submit_batch(msg.0, move |result| {
            // The requester may have gone; the batch is in the log regardless.
            let _ = done.send(result);
        });
        Box::pin(async move { durable.await.unwrap_or(Err(StoreError::Poisoned)) })
    }
}

/// Runs each payment's commit path across the pool, the shards and the log
/// writer. One async task per request; it holds no lock across an await.
#[derive(Clone)]
struct Coordinator {
    pool: Addr<CryptoWorker>,
    core: Arc<IssuerCore>,
    shards: Vec<Addr<CoinShard>>,
    log: Addr<LogWriter>,
    shard_set: ShardSet,
}

async fn on_pool<R: Send + 'static>(
    pool: &Addr<CryptoWorker>,
    step: impl FnOnce(&IssuerCore) -> R + Send + 'static,
) -> Result<R, IssuerError> {
    pool.send(Job(Box::new(step)))
        .await
        .map_err(|_| IssuerError::Stopped)
}

/// A future whose panic is returned rather than unwound into the thread
/// polling it (which belongs to whoever embeds the issuer).
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

impl Coordinator {
    fn shard(&self, idx: ShardIdx) -> &Addr<CoinShard> {
        &self.shards[usize::from(idx.0)]
    }

    async fn abort(&self, tx: TxId, held: &[ShardIdx]) {
        for idx in held {
            if self.shard(*idx).send(AbortShard { tx }).await.is_err() {
                tracing::error!(%tx, "a coin shard stopped during an abort");
            }
        }
    }

    /// Hands `batch` to the group commit straight from this task when its
    /// queue has room (one thread hop fewer on every payment's path: the
    /// writer's acknowledgement completes this task's oneshot), through the
    /// log writer's actor when it is full (a full queue's submit waits, and
    /// that must not block this thread; only a race for the queue's last
    /// slot can make `try_submit` wait, for the writer's next take, which
    /// is already under way). Resolves once the batch is durable.
    async fn append(&self, batch: Batch) -> Result<Result<Seq, StoreError>, MailboxError> {
        let (done, durable) = tokio::sync::oneshot::channel();
        let ack = move |result| {
            // The requester may have gone; the batch is in the log regardless.
            let _ = done.send(result);
        };
        match self.core.try_submit_batch(batch, ack) {
            Ok(()) => Ok(durable.await.unwrap_or(Err(StoreError::Poisoned))),
            Err(full) => self.log.send(AppendBatch(full.batch)).await,
        }
    }

    async fn validate(&self, msg: ValidationRequest) -> Result<PaymentIssuance1, IssuerError> {
        self.core.ensure_alive()?;
        let started = Instant::now();
        // This task runs on whichever thread polls it (the gateway's
        // workers): a panic in it is caught here and stops the issuer, as it
        // would on a thread the issuer owns.
        let answer = match CatchUnwind(Box::pin(self.validate_timed(msg))).await {
            Ok(answer) => answer,
            Err(_panic) => {
                self.core
                    .fail_stop()
                    .trip("a payment's coordinator task panicked");
                self.core.ensure_alive().and(Err(IssuerError::Stopped))
            }
        };
        self.core
            .stage_timings()
            .record(Stage::Validation, started.elapsed());
        answer
    }

    /// [`Coordinator::validate`], recording each stage's time.
    async fn validate_timed(
        &self,
        msg: ValidationRequest,
    ) -> Result<PaymentIssuance1, IssuerError> {
        let queued = Instant::now();
        let opened = on_pool(&self.pool, move |core| {
            core.stage_timings()
                .record(Stage::PoolWait, queued.elapsed());
            core.validation_open(&msg)
        })
        .await??;
        let pending = match opened {
            Opened::Answered(answer) => return Ok(answer),
            Opened::Reserve(pending) => pending,
        };
        let timings = self.core.stage_timings();
        let reserving = Instant::now();
        let tx = pending.tx;
        let serials = pending.opened.serials();
        let mut found: HashMap<CoinId, CoinBody> = HashMap::with_capacity(serials.len());
        let mut held: Vec<ShardIdx> = Vec::new();
        // Shard order, as everywhere: reserving never waits, so the order
        // only keeps answers reproducible.
        for (idx, coins) in self.shard_set.group(&serials) {
            match self.shard(idx).send(ReserveCoins { tx, coins }).await {
                Ok(Ok(bodies)) => {
                    held.push(idx);
                    found.extend(bodies.into_iter().map(|b| (b.id, b)));
                }
                Ok(Err(refusal)) => {
                    self.abort(tx, &held).await;
                    return on_pool(&self.pool, move |core| {
                        core.validation_unreserved(&pending, &refusal)
                    })
                    .await?;
                }
                Err(_) => {
                    self.abort(tx, &held).await;
                    on_pool(&self.pool, move |core| core.validation_abandon(tx)).await?;
                    return Err(IssuerError::Stopped);
                }
            }
        }
        let mut inputs = Vec::with_capacity(serials.len());
        for serial in &serials {
            match found.get(serial) {
                Some(body) => inputs.push(*body),
                None => {
                    self.abort(tx, &held).await;
                    on_pool(&self.pool, move |core| core.validation_abandon(tx)).await?;
                    return Err(IssuerError::Stopped);
                }
            }
        }
        let staging = Instant::now();
        timings.record(Stage::Reserve, staging.duration_since(reserving));
        let (done, written) = tokio::sync::oneshot::channel();
        let staged = if IssuerCore::stages_inline(&pending) {
            // New coins: staging is ~0.1 ms of CPU and no disk; on the pool
            // it queued behind every newer payment's 4.7 ms of RSA.
            self.core
                .validation_stage(pending, inputs, session_done(done))
        } else {
            on_pool(&self.pool, move |core| {
                core.validation_stage(pending, inputs, session_done(done))
            })
            .await?
        };
        let staged = match staged {
            Ok(Staged::Commit(staged)) => staged,
            Ok(Staged::Answered(answer)) => {
                self.abort(tx, &held).await;
                on_pool(&self.pool, move |core| core.validation_abandon(tx)).await?;
                return Ok(answer);
            }
            Err(e) => {
                self.abort(tx, &held).await;
                on_pool(&self.pool, move |core| core.validation_abandon(tx)).await?;
                return Err(e);
            }
        };
        let appending = Instant::now();
        timings.record(Stage::StageBatch, appending.duration_since(staging));
        // A stopped issuer appends nothing more: its memory is not trusted.
        if let Err(stopped) = self.core.ensure_alive() {
            self.abort(tx, &held).await;
            on_pool(&self.pool, move |core| core.validation_failed(&staged)).await?;
            return Err(stopped);
        }
        // Nothing is acknowledged before this resolves: the batch is durable.
        let first_seq = match self.append(staged.batch.clone()).await {
            Ok(Ok(seq)) => seq,
            failed => {
                self.abort(tx, &held).await;
                let staged_for_pool = staged;
                on_pool(&self.pool, move |core| {
                    core.validation_failed(&staged_for_pool)
                })
                .await?;
                return Err(match failed {
                    Ok(Err(e)) => e.into(),
                    _ => IssuerError::Stopped,
                });
            }
        };
        let durable = Instant::now();
        timings.record(Stage::LogDurable, durable.duration_since(appending));
        let mut issued_by_shard: BTreeMap<ShardIdx, Vec<CoinBody>> = BTreeMap::new();
        for body in &staged.issued {
            issued_by_shard
                .entry(body.id.shard(self.shard_set.n_shards()))
                .or_default()
                .push(*body);
        }
        let targets: BTreeSet<ShardIdx> = held
            .iter()
            .copied()
            .chain(issued_by_shard.keys().copied())
            .collect();
        let mut n_left = 0;
        for idx in targets {
            let issued = issued_by_shard.remove(&idx).unwrap_or_default();
            match self.shard(idx).send(CommitShard { tx, issued }).await {
                Ok(n) => n_left += n,
                Err(_) => {
                    // The batch is durable and a shard cannot take it: the
                    // shards no longer match the log.
                    self.core
                        .fail_stop()
                        .trip("a coin shard stopped after a durable batch");
                    return Err(IssuerError::Stopped);
                }
            }
        }
        assert_eq!(
            n_left, staged.n_inputs,
            "the shards spent other coins than the batch"
        );
        let answer = if IssuerCore::is_prepared(&staged) {
            // New coins: their Issuance1 was built at staging; finishing is
            // bookkeeping, done here rather than queued behind RSA work.
            self.core.validation_finish(&staged, first_seq)?
        } else {
            on_pool(&self.pool, move |core| {
                core.validation_finish(&staged, first_seq)
            })
            .await??
        };
        let finished = Instant::now();
        timings.record(Stage::AfterLog, finished.duration_since(durable));
        // The ack session was handed to the session writer at staging; its
        // group commit ran alongside the log's. The answer waits for it
        // here, not on a crypto worker.
        session_written(written).await?;
        timings.record(Stage::SessionWait, finished.elapsed());
        Ok(answer)
    }
}

/// A session-write callback that completes `done`.
fn session_done(
    done: tokio::sync::oneshot::Sender<Result<(), SessionError>>,
) -> crate::issuer::payment::SessionDone {
    Box::new(move |outcome| {
        // The requester may have gone; the write stands regardless.
        let _ = done.send(outcome);
    })
}

/// Waits for a session write; a callback dropped uncalled is a failure.
async fn session_written(
    written: tokio::sync::oneshot::Receiver<Result<(), SessionError>>,
) -> Result<(), IssuerError> {
    Ok(written.await.unwrap_or(Err(SessionError::Stopped))?)
}

/// Periodic work: settlements, epochs, session expiry, and a log
/// checkpoint every [`LOG_CHECKPOINT_EVERY_MS`] (the log writer also seals
/// every `LOG_CHECKPOINT_EVERY_RECORDS` records by itself).
struct Housekeeper {
    pool: Addr<CryptoWorker>,
    period: Duration,
    /// Runs so far, to ask for a checkpoint every few.
    n_runs: u64,
    /// Test hook of debug builds ([`BREAK_INVARIANT_ENV`]): the run at
    /// which the housekeeper breaks an invariant on purpose.
    break_invariant_at_run: Option<u64>,
}

/// Debug builds only: an issuer started with this variable set to `N`
/// breaks an invariant on purpose at its `N`th housekeeping run (a panic
/// on the housekeeper's thread while it holds the state lock), so the
/// fail-stop of a serving process can be tested end to end. Release builds
/// neither read it nor contain the code it triggers.
pub const BREAK_INVARIANT_ENV: &str = "VC_TEST_BREAK_INVARIANT_AT_RUN";

fn break_invariant_at_run() -> Option<u64> {
    if cfg!(debug_assertions) {
        std::env::var(BREAK_INVARIANT_ENV).ok()?.parse().ok()
    } else {
        None
    }
}

/// Housekeeping runs between two log checkpoints it asks for.
const HOUSEKEEPING_RUNS_PER_CHECKPOINT: u64 = {
    let runs = LOG_CHECKPOINT_EVERY_MS / HOUSEKEEPING_PERIOD_MS;
    if runs == 0 { 1 } else { runs }
};

impl Actor for Housekeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.period, |this, _| {
            this.n_runs += 1;
            let seal = this.n_runs % HOUSEKEEPING_RUNS_PER_CHECKPOINT == 0;
            let break_invariant = this.break_invariant_at_run == Some(this.n_runs);
            this.pool.do_send(Job(Box::new(move |core: &IssuerCore| {
                if core.ensure_alive().is_err() {
                    return;
                }
                #[cfg(debug_assertions)]
                if break_invariant {
                    core.break_invariant_for_tests();
                }
                #[cfg(not(debug_assertions))]
                let _ = break_invariant;
                if let Err(e) = core.settle_pending_purchases() {
                    tracing::warn!(error = %e, "settling purchases failed");
                }
                if let Err(e) = core.rotate_epoch_if_due() {
                    tracing::error!(error = %e, "opening a key epoch failed");
                }
                if let Err(e) = core.purge_expired_sessions() {
                    tracing::warn!(error = %e, "purging sessions failed");
                }
                if let Err(e) = core.checkpoint_coin_status() {
                    tracing::warn!(error = %e, "coin-status checkpoint failed");
                }
                if let Err(e) = core.checkpoint_tx_index() {
                    tracing::warn!(error = %e, "transaction-index checkpoint failed");
                }
                if let Err(e) = core.checkpoint_log_state() {
                    tracing::warn!(error = %e, "log-state checkpoint failed");
                }
                if seal && let Err(e) = core.seal_log() {
                    tracing::error!(error = %e, "signing a log checkpoint failed");
                }
            })));
        });
    }
}

/// How often the housekeeper runs.
pub const HOUSEKEEPING_PERIOD_MS: u64 = 250;

/// The issuer, as the gateway sees it. Cheap to clone; every method runs
/// its step on the crypto pool and resolves when the answer is final (for
/// a committing step: after its events are durable).
#[derive(Clone)]
pub struct Issuer {
    pool: Addr<CryptoWorker>,
    coordinator: Coordinator,
    core: Arc<IssuerCore>,
    _housekeeper: Addr<Housekeeper>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

impl Issuer {
    /// Opens the issuer from its files and starts its actors; call from
    /// inside an actix system. The pool has one worker per core.
    pub fn start(config: IssuerConfig, bank: Arc<dyn Bank>) -> Result<Issuer, IssuerError> {
        let n_workers = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        let core = Arc::new(IssuerCore::open(config, bank)?);
        let pool = {
            let core = core.clone();
            SyncArbiter::start(n_workers, move || CryptoWorker::on_this_thread(&core))
        };
        // Housekeeping gets a thread of its own: it signs a log checkpoint
        // (RSA) and makes durable writes (log, coin status, sessions) every
        // period, and a payment queued behind that on a crypto worker waited
        // for all of it (the paced phase's p99).
        //
        // And below the payments' priority: on the machine's few cores its
        // checkpoint signature (2.3 ms of RSA every period) preempted a
        // validation's decryption; it is never urgent to the millisecond.
        let chores = {
            let core = core.clone();
            SyncArbiter::start(1, move || CryptoWorker::on_this_thread(&core))
        };
        let housekeeper = Housekeeper {
            pool: chores,
            period: Duration::from_millis(HOUSEKEEPING_PERIOD_MS),
            n_runs: 0,
            break_invariant_at_run: break_invariant_at_run(),
        }
        .start();
        let shard_set = core.shards().clone();
        let shards = (0..shard_set.n_shards())
            .map(|i| {
                CoinShard {
                    shards: shard_set.clone(),
                    idx: ShardIdx(i),
                    fail_stop: core.fail_stop().clone(),
                }
                .start()
            })
            .collect();
        // The log writer gets an arbiter of its own: a full group-commit
        // queue makes its submit wait, and that must not stall the shards.
        let log_arbiter = Arbiter::new();
        let log = {
            let core = core.clone();
            LogWriter::start_in_arbiter(&log_arbiter.handle(), move |_| {
                core.fail_stop().guard_this_thread();
                LogWriter { core }
            })
        };
        let coordinator = Coordinator {
            pool: pool.clone(),
            core: core.clone(),
            shards,
            log,
            shard_set,
        };
        tracing::info!(
            n_workers,
            n_shards = coordinator.shards.len(),
            "issuer actors started"
        );
        Ok(Issuer {
            pool,
            coordinator,
            core,
            _housekeeper: housekeeper,
        })
    }

    async fn run<R: Send + 'static>(
        &self,
        step: impl FnOnce(&IssuerCore) -> R + Send + 'static,
    ) -> Result<R, IssuerError> {
        self.core.ensure_alive()?;
        on_pool(&self.pool, step).await
    }

    /// The core, for reads that need no worker (keys, ids, checks).
    pub fn core(&self) -> &Arc<IssuerCore> {
        &self.core
    }

    pub fn public_key(&self) -> PublicKey {
        self.core.public_key()
    }

    pub fn id(&self) -> ParticipantId {
        self.core.id().clone()
    }

    /// Registration 1 -> 2.
    pub async fn register(&self, msg: RegisterRequest) -> Result<Certificate, IssuerError> {
        self.run(move |core| core.register(&msg)).await?
    }

    /// Enrollment 1 (recorded as pending).
    pub async fn request_enrollment(
        &self,
        msg: EnrollmentRequest,
    ) -> Result<EnrollmentAnswer, IssuerError> {
        self.run(move |core| core.request_enrollment(&msg)).await?
    }

    /// Enrollment 2, out of band (operator).
    pub async fn approve_enrollment(
        &self,
        id: ParticipantId,
        role: Role,
    ) -> Result<(), IssuerError> {
        self.run(move |core| core.approve_enrollment(&id, role))
            .await?
    }

    /// The operator refuses a pending enrollment.
    pub async fn refuse_enrollment(
        &self,
        id: ParticipantId,
        role: Role,
    ) -> Result<(), IssuerError> {
        self.run(move |core| core.refuse_enrollment(&id, role))
            .await?
    }

    /// The operator suspends, revokes or reinstates a participant.
    pub async fn set_standing(
        &self,
        id: ParticipantId,
        standing: ledger::Standing,
    ) -> Result<(), IssuerError> {
        self.run(move |core| core.set_standing(&id, standing))
            .await?
    }

    /// A participant's key change, signed by its old key.
    pub async fn change_key(
        &self,
        msg: protocol::wire::key_change::KeyChangeRequest,
    ) -> Result<protocol::wire::registration::Certificate, IssuerError> {
        self.run(move |core| core.change_key(&msg)).await?
    }

    /// Opens the next mint key epoch now (operator, on a serving issuer):
    /// the same path as `IssuerCore::open_epoch_now`, run on the crypto
    /// pool. Returns the epoch with its dates from the issuer's state,
    /// which the commit updated before returning.
    pub async fn open_epoch_now(&self) -> Result<(KeyEpoch, Option<EpochInfo>), IssuerError> {
        self.run(move |core| {
            let epoch = core.open_epoch_now()?;
            Ok((epoch, core.epoch_info(epoch)))
        })
        .await?
    }

    /// WRequest1 -> WRequest2.
    pub async fn wrequest1(&self, msg: WRequest1) -> Result<WRequest2, IssuerError> {
        self.run(move |core| core.wrequest1(&msg)).await?
    }

    /// WRequest3 -> Issuance1 (pending, coins or signed rejection).
    pub async fn wrequest3(&self, msg: WRequest3) -> Result<PurchaseIssuance1, IssuerError> {
        self.run(move |core| core.wrequest3(&msg)).await?
    }

    /// A purchaser's poll for Issuance1.
    pub async fn purchase_poll(&self, msg: PurchasePoll) -> Result<PurchaseIssuance1, IssuerError> {
        self.run(move |core| core.purchase_poll(&msg)).await?
    }

    /// Issuance2 of a purchase.
    pub async fn purchase_issuance2(&self, msg: PurchaseIssuance2) -> Result<(), IssuerError> {
        self.run(move |core| core.purchase_issuance2(&msg)).await?
    }

    /// ValidationRequest -> Issuance1 (payment, change, refresh, redeem).
    pub async fn validate(&self, msg: ValidationRequest) -> Result<PaymentIssuance1, IssuerError> {
        self.coordinator.validate(msg).await
    }

    /// Issuance2 of a payment.
    pub async fn payment_issuance2(&self, msg: PaymentIssuance2) -> Result<(), IssuerError> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.run(move |core| core.payment_issuance2_then(&msg, session_done(done)))
            .await??;
        session_written(written).await
    }

    /// Refund: revoke a holder's unspent coins and reissue them.
    pub async fn refund(
        &self,
        msg: protocol::wire::refund::RefundRequest,
    ) -> Result<protocol::wire::refund::RefundAnswer, IssuerError> {
        self.run(move |core| core.refund(&msg)).await?
    }

    /// A signed coin status answer.
    pub async fn coin_status(
        &self,
        query: protocol::wire::status::CoinStatusQuery,
    ) -> Result<protocol::wire::status::CoinStatusAnswer, IssuerError> {
        self.run(move |core| core.coin_status(&query)).await?
    }

    /// A holder's coin status query: signed statuses of the coins it shows.
    pub async fn held_coin_status(
        &self,
        query: protocol::wire::status::HeldCoinStatusQuery,
    ) -> Result<protocol::wire::status::CoinStatusAnswer, IssuerError> {
        self.run(move |core| core.held_coin_status(&query)).await?
    }

    /// A merchant's signed cash-out of its aggregated balance.
    pub async fn cash_out(
        &self,
        msg: protocol::wire::cash_out::CashOutRequest,
    ) -> Result<protocol::wire::cash_out::CashOutReceipt, IssuerError> {
        self.run(move |core| core.cash_out(&msg)).await?
    }

    /// Debug builds only: breaks an invariant on a crypto worker (see
    /// [`IssuerCore::break_invariant_for_tests`]); fail-stop tests.
    #[cfg(debug_assertions)]
    #[doc(hidden)]
    pub async fn break_invariant_for_tests(&self) -> Result<(), IssuerError> {
        self.run(|core| core.break_invariant_for_tests()).await
    }

    /// Redeems part of a merchant's aggregated balance.
    pub async fn redeem_aggregate(
        &self,
        merchant: ParticipantId,
        amount: Amount,
        request: [u8; 16],
    ) -> Result<(), IssuerError> {
        self.run(move |core| core.redeem_aggregate(&merchant, amount, request))
            .await?
    }

    /// Where a purchase stands.
    pub async fn purchase_status(
        &self,
        purchase: PurchaseId,
    ) -> Result<Option<PurchaseStatus>, IssuerError> {
        self.run(move |core| core.purchase_status(purchase)).await
    }
}
