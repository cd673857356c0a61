//! The actix shell around [`IssuerCore`], and the [`Issuer`] handle the
//! gateway calls: one async method per protocol step, taking and returning
//! wire messages.
//!
//! - `CryptoWorker`s, a `SyncArbiter` pool sized to the cores, run the
//!   steps that need the issuer's key or the stores: opening envelopes and
//!   signing (RSA, over 90% of the cost), the checks, building batches and
//!   answers.
//! - `Coordinator` runs each payment as one async task: the one
//!   validation sequence (`issuer::validation`) with its expensive steps
//!   on the pool, reserving and committing through the issuer's one
//!   `CommitPath` (which owns the shards and hands batches to ledger's
//!   group commit; the log writer's acknowledgement completes the task's
//!   future). No worker waits on an fsync of a payment.
//! - `Housekeeper` runs on a timer: settles purchases the bank has decided,
//!   opens key epochs on schedule, purges expired sessions, catches the
//!   coin-status checkpoint up with the log, signs a log checkpoint; on a
//!   worker thread of its own, so no payment queues behind it.
//!
//! The other flows (registration, enrollment, purchase, refund, cash-out,
//! epochs) run whole on a worker and commit through the same `CommitPath`,
//! waiting for it (`IssuerCore::commit_batch`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use ledger::{Amount, KeyEpoch, ParticipantId, PurchaseId, Role};
use protocol::crypto::PublicKey;
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentRequest};
use protocol::wire::payment::{PaymentIssuance1, PaymentIssuance2, ValidationRequest};
use protocol::wire::purchase::{
    PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WRequest1, WRequest2, WRequest3,
};
use protocol::wire::registration::{Certificate, RegisterRequest};

use crate::bank::Bank;
use crate::issuer::validation::{self, Steps, session_done, session_written};
use crate::issuer::{
    EpochInfo, IssuerConfig, IssuerCore, IssuerError, LOG_CHECKPOINT_EVERY_MS, PurchaseStatus,
    ValidationOutcome,
};

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

/// Runs each payment's validation sequence as one async task, its
/// expensive steps on the crypto pool. It holds no lock across an await.
#[derive(Clone)]
struct Coordinator {
    pool: Addr<CryptoWorker>,
    core: Arc<IssuerCore>,
}

async fn on_pool<R: Send + 'static>(
    pool: &Addr<CryptoWorker>,
    step: impl FnOnce(&IssuerCore) -> R + Send + 'static,
) -> Result<R, IssuerError> {
    pool.send(Job(Box::new(step)))
        .await
        .map_err(|_| IssuerError::Stopped)
}

impl Steps for Coordinator {
    fn core(&self) -> &IssuerCore {
        &self.core
    }

    async fn on_worker<R: Send + 'static>(
        &self,
        step: impl FnOnce(&IssuerCore) -> R + Send + 'static,
    ) -> Result<R, IssuerError> {
        on_pool(&self.pool, step).await
    }
}

/// Periodic work: a read of the tables beside the log (a database gone
/// while idle stops the issuer), settlements, epochs, session expiry, and a log
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
                core.probe_side_tables();
                if core.ensure_alive().is_err() {
                    return;
                }
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
                match core.erase_epochs_due() {
                    Ok(erased) => {
                        for e in erased {
                            tracing::info!(epoch = %e.epoch, n_coins = e.n_coins, "key epoch erased on schedule");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "erasing key epochs failed"),
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
        let coordinator = Coordinator {
            pool: pool.clone(),
            core: core.clone(),
        };
        tracing::info!(n_workers, "issuer actors started");
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

    /// The core, for the subsystems that run over the whole issuer rather
    /// than one step of it: the `/metrics` figures and the dashboard, the
    /// card agency, the disclosure log, the operator commands, and the
    /// actor thread's shutdown (which waits for every holder of the core to
    /// let go). A handler that only reads one figure uses the narrow
    /// methods below.
    pub fn core(&self) -> &Arc<IssuerCore> {
        &self.core
    }

    pub fn public_key(&self) -> PublicKey {
        self.core.public_key()
    }

    pub fn id(&self) -> ParticipantId {
        self.core.id().clone()
    }

    /// The signature suite the issuer signs and encrypts with.
    pub fn suite(&self) -> protocol::crypto::SuiteId {
        self.core.suite()
    }

    /// The latest signed log head as written to the issuer's directory
    /// (`None` before the first checkpoint).
    pub fn published_head(&self) -> Result<Option<String>, IssuerError> {
        self.core.published_head()
    }

    /// The stage histograms, where a caller records its own stage (the
    /// gateway's HTTP handler time).
    pub fn stage_timings(&self) -> &crate::timing::StageTimings {
        self.core.stage_timings()
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

    /// Revokes a key epoch (operator, on a serving issuer): see
    /// `IssuerCore::revoke_epoch`, run on the crypto pool.
    pub async fn revoke_epoch(
        &self,
        epoch: KeyEpoch,
    ) -> Result<crate::issuer::EpochRevocation, IssuerError> {
        self.run(move |core| core.revoke_epoch(epoch)).await?
    }

    /// Erases a key epoch past its grace (operator, on a serving issuer):
    /// see `IssuerCore::erase_epoch`.
    pub async fn erase_epoch(
        &self,
        epoch: KeyEpoch,
    ) -> Result<crate::issuer::EpochErasure, IssuerError> {
        self.run(move |core| {
            core.erase_epoch(
                epoch,
                Duration::from_millis(crate::issuer::EPOCH_DRAIN_WAIT_MS),
            )
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
        validation::validate_and_answer(&self.coordinator, msg).await
    }

    /// A payment a validator node opened (both envelopes, the payee's
    /// signature under `checked_under`, P3, the amount): the rest of the
    /// one validation sequence, from the payee's standing, the check that
    /// `checked_under` is its registered key
    /// ([`IssuerError::PayeeKeyChanged`] if not) and the replay check to
    /// the durable commit. The outcome is decided, not said: the node
    /// seals or signs it ([`ValidationOutcome::answer`]), so this does no
    /// public-key work.
    pub async fn decide_opened(
        &self,
        opened: protocol::flows::issuer::OpenedValidation,
        checked_under: ledger::PublicKeyDer,
    ) -> Result<ValidationOutcome, IssuerError> {
        validation::validate(
            &self.coordinator,
            validation::Presented::Opened {
                opened: Box::new(opened),
                checked_under,
            },
        )
        .await
    }

    /// The key `id` registered, if it is registered (what a validator node
    /// checks a payee's signature with).
    pub fn registered_key(&self, id: &ParticipantId) -> Result<Option<PublicKey>, IssuerError> {
        Ok(self.core.participant(id)?.map(|p| p.public_key))
    }

    /// Issuance2 of a payment: one CMAC and a soft session write (no
    /// disk write, no public-key operation), so it runs on the caller's
    /// thread rather than costing two hand-offs to a crypto worker and back.
    pub async fn payment_issuance2(&self, msg: PaymentIssuance2) -> Result<(), IssuerError> {
        self.core.ensure_alive()?;
        let (done, written) = tokio::sync::oneshot::channel();
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.core.payment_issuance2_then(&msg, session_done(done))
        }));
        match checked {
            Ok(checked) => checked?,
            Err(_panic) => {
                // As on a worker: a panic stops the issuer, not this thread.
                self.core.fail_stop().trip("a payment's Issuance2 panicked");
                return Err(IssuerError::Stopped);
            }
        }
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
