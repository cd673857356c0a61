//! The actix shell around [`IssuerCore`], and the [`Issuer`] handle the
//! gateway calls: one async method per protocol step, taking and returning
//! wire messages.
//!
//! - `CryptoWorker`s, a `SyncArbiter` pool sized to the cores, run each
//!   protocol step: opening envelopes and signing (RSA, over 90% of the cost)
//!   and the commit path. A step blocks its worker while the log writer
//!   (ledger's group commit, its own thread) makes the batch durable; other
//!   workers' batches join the same fsync.
//! - `Housekeeper` runs on a timer: settles purchases the bank has decided,
//!   opens key epochs on schedule, purges expired sessions. It hands its work
//!   to the pool too, so no blocking call runs on the async runtime.
//!
//! The shard, idempotency, session and bank cores are shared by the workers
//! (each behind its own lock, never held across I/O); see README.md for why
//! they are not separate mailboxes.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use ledger::{Amount, ParticipantId, PurchaseId, Role};
use protocol::crypto::PublicKey;
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentRequest};
use protocol::wire::payment::{PaymentIssuance1, PaymentIssuance2, ValidationRequest};
use protocol::wire::purchase::{
    PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WRequest1, WRequest2, WRequest3,
};
use protocol::wire::registration::{Certificate, RegisterRequest};

use crate::bank::Bank;
use crate::issuer::{IssuerConfig, IssuerCore, IssuerError, PurchaseStatus};

/// One step run on a crypto worker.
struct Job<R: Send + 'static>(Box<dyn FnOnce(&IssuerCore) -> R + Send>);

impl<R: Send + 'static> Message for Job<R> {
    type Result = R;
}

/// Runs protocol steps on its own thread.
struct CryptoWorker {
    core: Arc<IssuerCore>,
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

/// Periodic work: settlements, epochs, session expiry.
struct Housekeeper {
    pool: Addr<CryptoWorker>,
    period: Duration,
}

impl Actor for Housekeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.period, |this, _| {
            this.pool.do_send(Job(Box::new(|core: &IssuerCore| {
                if let Err(e) = core.settle_pending_purchases() {
                    tracing::warn!(error = %e, "settling purchases failed");
                }
                if let Err(e) = core.rotate_epoch_if_due() {
                    tracing::error!(error = %e, "opening a key epoch failed");
                }
                if let Err(e) = core.purge_expired_sessions() {
                    tracing::warn!(error = %e, "purging sessions failed");
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
            SyncArbiter::start(n_workers, move || CryptoWorker { core: core.clone() })
        };
        let housekeeper = Housekeeper {
            pool: pool.clone(),
            period: Duration::from_millis(HOUSEKEEPING_PERIOD_MS),
        }
        .start();
        tracing::info!(n_workers, "issuer actors started");
        Ok(Issuer {
            pool,
            core,
            _housekeeper: housekeeper,
        })
    }

    async fn run<R: Send + 'static>(
        &self,
        step: impl FnOnce(&IssuerCore) -> R + Send + 'static,
    ) -> Result<R, IssuerError> {
        self.pool
            .send(Job(Box::new(step)))
            .await
            .map_err(|_| IssuerError::Stopped)
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
        self.run(move |core| core.validate(&msg)).await?
    }

    /// Issuance2 of a payment.
    pub async fn payment_issuance2(&self, msg: PaymentIssuance2) -> Result<(), IssuerError> {
        self.run(move |core| core.payment_issuance2(&msg)).await?
    }

    /// Refund: revoke a holder's unspent coins and reissue them.
    pub async fn refund(
        &self,
        msg: protocol::wire::refund::RefundRequest,
    ) -> Result<protocol::wire::refund::RefundAnswer, IssuerError> {
        self.run(move |core| core.refund(&msg)).await?
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
