//! [`IssuerCore`]: the issuer's state, in plain Rust. Every flow commits
//! through its [`CommitPath`](super::commit::CommitPath) (the only way into
//! the log and the only owner of the shards); the synchronous flows through
//! [`IssuerCore::commit_batch`], payments through the one validation
//! sequence of `payment`.
//!
//! At start everything is rebuilt from the log (shards, idempotency,
//! epochs, purchases, aggregates); the registry, sessions and bank have
//! their own files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ledger::sync::lock;
use ledger::{
    Amount, BalanceId, BankRejection, Batch, CoinBody, CoinId, CoinSpec, ConservationError, Event,
    EventStore, Flows, GroupCommit, GroupCommitConfig, IssueCause, KeyEpoch, PurchaseId, RedbStore,
    SealedIdentity, Seq, SpendCause, StoreError, Timestamp, Totals, TxId,
};
use ledger::{Clock, SystemClock};
use protocol::crypto::{CryptoError, IdentitySealer, SecretKey, SuiteId};
use protocol::flows::FlowError;
use protocol::mint::{Mint, MintError};

use crate::bank::{Bank, BankError};
use crate::fail_stop::{FailStop, FailStopPolicy};
use crate::idempotency::{Begin, CommitRef, IdempotencyTable, IndexError};
use crate::issuer::commit::{Commit, CommitPath};
use crate::issuer::decide_epoch;
use crate::issuer::log_state_checkpoint::{
    self as snapshot, Covers, LOG_STATE_SNAPSHOT_FILE, SnapshotError,
};
use crate::issuer::log_stats::{CountedLog, LogCommitStats};
use crate::issuer::registry::{Registry, RegistryError};
use crate::sessions::{SessionError, SessionStore};
use crate::shard::{ReserveError, ShardSet};
use crate::timing::StageTimings;

/// The log the issuer writes: the redb file by default, a store the
/// caller opened ([`IssuerConfig::log_store`]: PostgreSQL), or a memory
/// store whose appends a test can make fail (fault injection).
pub enum LogBackend {
    Redb(RedbStore),
    Memory(Arc<ledger::MemoryStore>),
    External(Arc<dyn EventStore>),
}

impl EventStore for LogBackend {
    fn append(&self, batches: &[Batch]) -> Result<Vec<Seq>, StoreError> {
        match self {
            LogBackend::Redb(s) => s.append(batches),
            LogBackend::Memory(s) => s.append(batches),
            LogBackend::External(s) => s.append(batches),
        }
    }

    fn head(&self) -> Result<ledger::Head, StoreError> {
        match self {
            LogBackend::Redb(s) => s.head(),
            LogBackend::Memory(s) => s.head(),
            LogBackend::External(s) => s.head(),
        }
    }

    fn read(&self, from: Seq, max_records: usize) -> Result<Vec<ledger::StoredRecord>, StoreError> {
        match self {
            LogBackend::Redb(s) => s.read(from, max_records),
            LogBackend::Memory(s) => s.read(from, max_records),
            LogBackend::External(s) => s.read(from, max_records),
        }
    }
}

/// Opens the storage of one of the issuer's redb files, given its path.
pub type RedbBackendOpener =
    Arc<dyn Fn(&Path) -> std::io::Result<Box<dyn redb::StorageBackend>> + Send + Sync>;

/// How to run an issuer.
#[derive(Clone)]
pub struct IssuerConfig {
    /// Directory of the issuer's files (log, registry, sessions, keys).
    pub dir: PathBuf,
    pub n_shards: u16,
    pub suite: SuiteId,
    pub rsa_bits: usize,
    /// Coins of an epoch expire this long after it opens.
    pub coin_lifetime_secs: u64,
    /// Expired coins may be refreshed for this long after they expire.
    pub grace_secs: u64,
    /// A new epoch opens this long after the current one.
    pub epoch_period_secs: u64,
    pub cert_lifetime_secs: u64,
    /// How long a purchase session (and its pending debit) may last.
    pub purchase_session_secs: u64,
    /// How long a payment's Issuance2 is awaited.
    pub payment_session_secs: u64,
    /// How many sessions `sessions.redb` takes (tests of a full store).
    pub session_limits: crate::sessions::SessionLimits,
    pub clock: Arc<dyn Clock>,
    /// Use this memory log instead of `log.redb` (tests of failing disks).
    pub memory_log: Option<Arc<ledger::MemoryStore>>,
    /// Write the log to this store instead of `log.redb` (the caller
    /// opened it: `vc_pg_store::PostgresStore` for a log on PostgreSQL).
    pub log_store: Option<Arc<dyn EventStore>>,
    /// Keep the registry and the card agency's store in these tables
    /// instead of `registry.redb` and `card-agency.redb`, and the durable
    /// sessions in them as well as in `sessions.redb` (the caller opened
    /// them beside the log: `vc_pg_store::PostgresKv`), so a replacement
    /// issuer needs only its keys and configuration. The registry key
    /// stays in `registry.key`.
    pub side_tables: Option<Arc<dyn ledger::KvStore>>,
    /// Open `coin-status.redb` on the storage this returns for its path
    /// rather than on the plain file (the caller's storage; crash tests give
    /// one that dies in the middle of a commit: `ledger::fault::DyingFile`).
    pub coin_status_backend: Option<RedbBackendOpener>,
    /// Verify every page of `log.redb` when it is opened (redb's whole-file
    /// integrity check), even after a clean shutdown. Off by default: the
    /// check reads the whole file, so the start would grow with the log;
    /// after an unclean shutdown redb verifies and repairs the file
    /// whatever this says, and the auditor checks every page (see the
    /// crate README, "Start-up that does not grow with the log").
    pub verify_log_on_open: bool,
    /// What a broken invariant does: stop this issuer (default) or exit
    /// the process (`varietycash issuer serve`). See [`crate::fail_stop`].
    pub fail_stop: FailStopPolicy,
}

impl std::fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("dir", &self.dir)
            .field("n_shards", &self.n_shards)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl IssuerConfig {
    /// Defaults for an issuer keeping its files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> IssuerConfig {
        IssuerConfig {
            dir: dir.into(),
            n_shards: 8,
            suite: SuiteId::default(),
            rsa_bits: protocol::crypto::RSA_BITS_DEFAULT,
            coin_lifetime_secs: 90 * 24 * 3600,
            grace_secs: 30 * 24 * 3600,
            epoch_period_secs: 30 * 24 * 3600,
            cert_lifetime_secs: 365 * 24 * 3600,
            purchase_session_secs: 30 * 24 * 3600,
            payment_session_secs: crate::constants::PAYMENT_SESSION_SECS,
            session_limits: crate::sessions::SessionLimits::default(),
            clock: Arc::new(SystemClock),
            memory_log: None,
            log_store: None,
            side_tables: None,
            coin_status_backend: None,
            verify_log_on_open: false,
            fail_stop: FailStopPolicy::StopIssuer,
        }
    }
}

/// Why the issuer could not serve a request. Refusals the protocol answers
/// with a signed statement are not errors: they are answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// A message that does not open or check; no statement is owed.
    #[error("request refused: {0}")]
    Flow(#[from] FlowError),
    /// Another request for the same transaction is in flight: retry.
    #[error("the same transaction is in flight; retry")]
    InFlight,
    #[error("participant is not registered")]
    UnknownParticipant,
    /// A validator node checked the payee's signature under a key that is
    /// not the payee's registered key now (it changed since the node read
    /// it): nothing was decided; the node reads the key again.
    #[error("the payee's registered key is not the key its request was checked under")]
    PayeeKeyChanged,
    #[error("identity already registered with another key")]
    IdentityTaken,
    /// The id names the issuer or one of its services.
    #[error("identity reserved for the issuer and its services")]
    IdentityReserved,
    #[error("no enrollment request for this participant and role")]
    NoSuchEnrollment,
    /// The operator refused this enrollment; it is not granted, ever.
    #[error("the issuer's operator refused this enrollment")]
    EnrollmentRefused,
    /// The operator suspended the participant: its requests are refused
    /// until it is reinstated.
    #[error("the participant is suspended")]
    ParticipantSuspended,
    /// The operator revoked the participant: its requests are refused for good.
    #[error("the participant is revoked")]
    ParticipantRevoked,
    #[error("unknown purchase")]
    UnknownPurchase,
    #[error("purchase already acknowledged")]
    PurchaseClosed,
    #[error("batch does not balance: {0}")]
    Unbalanced(#[from] ConservationError),
    /// A payout from an aggregated balance larger than the balance.
    #[error("{asked} asked, the balance is {balance}")]
    AboveBalance { balance: Amount, asked: Amount },
    /// A cash-out of the whole balance when it is zero.
    #[error("the aggregated balance is zero: nothing to cash out")]
    NothingToCashOut,
    #[error("log: {0}")]
    Log(#[from] StoreError),
    #[error("bank: {0}")]
    Bank(#[from] BankError),
    #[error("sessions: {0}")]
    Session(#[from] SessionError),
    #[error("mint: {0}")]
    Mint(#[from] MintError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("keys: {0}")]
    Crypto(#[from] CryptoError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("coin-status checkpoint: {0}")]
    Projection(#[from] projections::ProjectionError),
    /// The transaction index could not say whether a transaction committed.
    #[error("idempotency: {0}")]
    Index(#[from] IndexError),
    #[error("money: {0}")]
    Money(#[from] ledger::MoneyError),
    #[error("log-state snapshot: {0}")]
    LogStateSnapshot(#[from] SnapshotError),
    #[error("the issuer's actors have stopped")]
    Stopped,
    #[error("{0} was never opened")]
    UnknownEpoch(KeyEpoch),
    #[error("{0} is erased")]
    EpochErased(KeyEpoch),
    /// Transactions in flight hold coins of the epoch (a card load in
    /// doubt holds them until the card reports): run the step again.
    #[error(
        "{n_reserved} coin(s) of {epoch} are held by transactions in flight; nothing changed, the epoch serves as before: try again"
    )]
    EpochInUse { epoch: KeyEpoch, n_reserved: u64 },
    #[error("the grace period of {epoch} ends at {} (unix), it is {} (unix)", grace_ends_at.0, now.0)]
    GraceNotOver {
        epoch: KeyEpoch,
        grace_ends_at: Timestamp,
        now: Timestamp,
    },
    /// A batch would issue coins of an epoch being revoked or erased (its
    /// coin bodies were made before the epoch stopped being current):
    /// nothing committed; the request, tried again, gets coins of the
    /// current epoch.
    #[error("fresh coins of {0}, which is being revoked or erased: nothing committed; try again")]
    IssuedUnderClosingEpoch(KeyEpoch),
    #[error("planning an erasure: {0}")]
    Erasure(#[from] projections::ErasureError),
    /// The coin-status store and the shards disagree on what an erased
    /// epoch leaves unspent (or, for a revoked epoch, on what it still
    /// owes): nothing was logged; the erasure runs again once they agree.
    #[error(
        "{epoch}: the erasure would forfeit {planned_minor} minor units, the shards hold {held_minor} unspent and it owes {owed_minor:?}; nothing changed"
    )]
    FloatOutOfStep {
        epoch: KeyEpoch,
        planned_minor: u128,
        held_minor: u128,
        owed_minor: Option<u128>,
    },
    /// An invariant broke (a panic in one of the issuer's threads, a
    /// poisoned lock): the issuer is dead until restarted from its log.
    #[error("the issuer stopped on a broken invariant ({0}); restart it from its log")]
    FailStopped(String),
}

/// A mint key epoch as the log opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EpochInfo {
    pub coins_expire_at: Timestamp,
    pub grace_ends_at: Timestamp,
}

/// Where a purchase stands, rebuilt from the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PurchaseStatus {
    Pending,
    Settled(Vec<CoinBody>),
    Rejected(BankRejection),
    Acknowledged,
}

/// One purchase as the log knows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PurchaseState {
    pub amount: Amount,
    /// What settling needs; dropped once the purchase is decided (settled
    /// or rejected), so a decided purchase keeps only its amount and status.
    pub to_settle: Option<PurchaseToSettle>,
    pub status: PurchaseStatus,
}

/// What settling a pending purchase needs: the coins to mint, and whom to
/// record as their holder unless anonymous.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PurchaseToSettle {
    pub spec: CoinSpec,
    pub anonymous: bool,
    pub purchaser: SealedIdentity,
}

/// State rebuilt from the log, other than the shards and idempotency;
/// checkpointed in `log-state.snapshot` ([`super::log_state_checkpoint`]),
/// so a start replays only the log past the snapshot.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    pub epochs: BTreeMap<KeyEpoch, EpochInfo>,
    pub purchases: HashMap<PurchaseId, PurchaseState>,
    pub aggregates: HashMap<BalanceId, Amount>,
    pub totals: Totals,
    /// Epochs revoked or erased.
    pub epoch_ends: BTreeMap<KeyEpoch, EpochEnd>,
}

/// How a key epoch's life ended, as the log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EpochEnd {
    /// `EpochRevoked`: recoups may pay out `still_owed` more (of `owed`).
    Revoked { owed: Amount, still_owed: Amount },
    /// `EpochErased`: nothing of the epoch is accepted any more; with it,
    /// `FloatForfeited`: the coins still unspent left circulation
    /// unredeemed (`forfeited_n_coins` of them, worth `forfeited`).
    Erased {
        through: Seq,
        n_coins: u64,
        value: Amount,
        forfeited_n_coins: u64,
        forfeited: Amount,
    },
}

impl LogState {
    /// Applies one committed batch. The conservation check is the auditor's
    /// rule; a log that breaks it is refused at boot.
    pub(crate) fn apply_batch(&mut self, events: &[Event]) -> Result<(), ConservationError> {
        self.totals.apply(&Flows::of(events))?;
        for event in events {
            match event {
                Event::EpochOpened {
                    epoch,
                    coins_expire_at,
                    grace_ends_at,
                } => {
                    self.epochs.insert(
                        *epoch,
                        EpochInfo {
                            coins_expire_at: *coins_expire_at,
                            grace_ends_at: *grace_ends_at,
                        },
                    );
                }
                Event::PurchaseRequested {
                    purchase,
                    purchaser,
                    spec,
                    amount,
                    anonymous,
                    ..
                } => {
                    self.purchases.insert(
                        *purchase,
                        PurchaseState {
                            amount: *amount,
                            to_settle: Some(PurchaseToSettle {
                                spec: spec.clone(),
                                anonymous: *anonymous,
                                purchaser: purchaser.clone(),
                            }),
                            status: PurchaseStatus::Pending,
                        },
                    );
                }
                Event::CoinsIssued {
                    coins,
                    cause: IssueCause::Purchase(purchase),
                    ..
                } => {
                    if let Some(p) = self.purchases.get_mut(purchase) {
                        p.status = PurchaseStatus::Settled(coins.clone());
                        p.to_settle = None;
                    }
                }
                Event::PurchaseRejected { purchase, reason } => {
                    if let Some(p) = self.purchases.get_mut(purchase) {
                        p.status = PurchaseStatus::Rejected(*reason);
                        p.to_settle = None;
                    }
                }
                Event::PurchaseAcknowledged { purchase } => {
                    // The coins leave memory with the acknowledgement.
                    if let Some(p) = self.purchases.get_mut(purchase) {
                        p.status = PurchaseStatus::Acknowledged;
                        p.to_settle = None;
                    }
                }
                Event::Aggregated { balance, amount } => {
                    let entry = self.aggregates.entry(*balance).or_insert(Amount::ZERO);
                    *entry = entry.checked_add(*amount)?;
                }
                Event::AggregateWithdrawn { balance, amount } => {
                    let entry = self.aggregates.entry(*balance).or_insert(Amount::ZERO);
                    *entry = entry.checked_sub(*amount)?;
                }
                Event::EpochRevoked { epoch, owed } => {
                    self.epoch_ends.insert(
                        *epoch,
                        EpochEnd::Revoked {
                            owed: *owed,
                            still_owed: *owed,
                        },
                    );
                }
                Event::EpochErased {
                    epoch,
                    through,
                    n_coins,
                    value,
                    ..
                } => {
                    self.epoch_ends.insert(
                        *epoch,
                        EpochEnd::Erased {
                            through: *through,
                            n_coins: *n_coins,
                            value: *value,
                            forfeited_n_coins: 0,
                            forfeited: Amount::ZERO,
                        },
                    );
                }
                Event::FloatForfeited {
                    epoch,
                    n_coins,
                    value,
                    ..
                } => {
                    // Logged after its epoch's `EpochErased`, in the same
                    // batch (the auditor holds the issuer to it).
                    let Some(EpochEnd::Erased {
                        forfeited_n_coins,
                        forfeited,
                        ..
                    }) = self.epoch_ends.get_mut(epoch)
                    else {
                        panic!("the float of {epoch} was forfeited, but it is not erased");
                    };
                    *forfeited_n_coins = *n_coins;
                    *forfeited = *value;
                }
                Event::CoinsSpent {
                    coins,
                    cause: SpendCause::Recoup,
                } => {
                    for coin in coins {
                        let Some(EpochEnd::Revoked { still_owed, .. }) =
                            self.epoch_ends.get_mut(&coin.epoch)
                        else {
                            panic!(
                                "a recoup spent a coin of {}, which is not revoked",
                                coin.epoch
                            );
                        };
                        let left = still_owed.checked_sub(coin.value);
                        assert!(
                            left.is_ok(),
                            "recoups of {} pay out more than the epoch owed",
                            coin.epoch
                        );
                        *still_owed = left?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The issuer: every core and store, shared by the actors.
pub struct IssuerCore {
    pub(crate) config: IssuerConfig,
    pub(crate) id_i: ledger::ParticipantId,
    pub(crate) sk_i: SecretKey,
    pub(crate) sealer: IdentitySealer,
    pub(crate) mint: RwLock<Mint>,
    /// The log, the shards and what a durable batch changes: the one way
    /// a state change reaches the log.
    pub(crate) commit: CommitPath,
    pub(crate) idempotency: Arc<IdempotencyTable>,
    pub(crate) registry: Registry,
    /// The coin-status projection the shards boot from; caught up with the
    /// log by the housekeeper (a checkpoint, never on the commit path).
    pub(crate) coin_status: projections::CoinStatus,
    shards_from_checkpoint: bool,
    /// Where committed transactions are looked up once the idempotency
    /// table has forgotten them; caught up by the housekeeper
    /// ([`IssuerCore::checkpoint_tx_index`]).
    tx_index: Arc<projections::TxIndex>,
    pub(crate) sessions: SessionStore,
    pub(crate) bank: Arc<dyn Bank>,
    pub(crate) state: Arc<Mutex<LogState>>,
    /// The log seq the last log-state snapshot covers (0: none), and
    /// whether this start read the state from one.
    log_state_snapshot_seq: AtomicU64,
    log_state_from_snapshot: Option<Seq>,
    /// Serializes epoch rotation (mint file + log event).
    pub(crate) epoch_lock: Mutex<()>,
    /// Epochs being revoked or erased: their coins are refused meanwhile,
    /// and the commit path refuses a batch issuing coins of one (see
    /// `issuer::epoch_end`; shared with [`CommitPath`]).
    pub(crate) epochs_closing: crate::issuer::commit::ClosingEpochs,
    /// Serializes withdrawals from aggregates (check, then commit).
    pub(crate) aggregate_lock: Mutex<()>,
    /// Serializes the changes to participants' records (registration,
    /// enrollment, approval, refusal, key change, standing, the suspension
    /// of a returned debit's purchasers): each reads a record, logs its
    /// change and writes the record back, and two at once would write one's
    /// stale copy over the other's (an enrollment undoing a key change, so
    /// the key a participant left stays registered). Never taken on the
    /// payment path.
    pub(crate) participants_lock: Mutex<()>,
    /// Trips when an invariant breaks; then every request is refused.
    pub(crate) fail_stop: FailStop,
    /// Latency of each stage of a validation and of each durable commit.
    pub(crate) timings: Arc<StageTimings>,
}

impl std::fmt::Debug for IssuerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerCore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Loads the key at `path`, or creates one of the kind `suite` needs
/// (Ed25519 + X25519 under `dhaes`, RSA of `rsa_bits` otherwise). A key of
/// the wrong kind for `suite` is refused, not used.
fn load_or_create_key(
    path: &Path,
    suite: SuiteId,
    rsa_bits: usize,
) -> Result<SecretKey, IssuerError> {
    let key = if path.exists() {
        SecretKey::read_pkcs8(path)?
    } else {
        let key = SecretKey::generate_for(suite, rsa_bits)?;
        key.write_pkcs8(path)?;
        key
    };
    key.public().check_suite(suite)?;
    Ok(key)
}

/// Records read from the log per call at boot.
const BOOT_READ_RECORDS_MAX: usize = 4096;

/// The log-state snapshot is rewritten once the log has grown this many
/// records past it (by the housekeeper, or at a start that replayed that
/// many): a start replays at most about this many records of state, plus
/// what came since the last housekeeping run.
pub const LOG_STATE_SNAPSHOT_EVERY_RECORDS: u64 = 100_000;

impl IssuerCore {
    /// Opens the issuer in `config.dir` (creating its files on first start),
    /// rebuilds its state from the log, and opens a key epoch if none is
    /// current. `bank` is the bank connector (its own durable store).
    pub fn open(mut config: IssuerConfig, bank: Arc<dyn Bank>) -> Result<IssuerCore, IssuerError> {
        // The session and registry stores hold key shares, identities and
        // bank accounts: only the issuer's own user may enter its directory
        // (and each file in it is 0600 on its own, for copies and backups).
        ledger::private_file::create_private_dir(&config.dir)?;
        // A fresh switch per start: a restarted issuer is alive again.
        let fail_stop = FailStop::new(config.fail_stop);
        // The thread that boots the issuer replays its log under its invariants.
        fail_stop.guard_this_thread();
        let dir = config.dir.clone();
        let sk_i = load_or_create_key(&dir.join("issuer.key"), config.suite, config.rsa_bits)?;
        let sealer = IdentitySealer::new(
            super::user_index_key::load(&dir, config.suite, config.rsa_bits)?,
            config.suite,
        )?;
        let mint_path = dir.join("mint.key");
        let mint = if mint_path.exists() {
            Mint::open(&mint_path)?
        } else {
            Mint::create(&mint_path, config.suite)?
        };
        let store = Arc::new(match (&config.memory_log, &config.log_store) {
            (Some(memory), _) => LogBackend::Memory(memory.clone()),
            (None, Some(external)) => LogBackend::External(external.clone()),
            (None, None) => LogBackend::Redb(open_log_file(
                &dir.join("log.redb"),
                config.verify_log_on_open,
            )?),
        });
        let coin_status_path = dir.join("coin-status.redb");
        let coin_status = match &config.coin_status_backend {
            None => projections::CoinStatus::open(coin_status_path, projections::CoinStatusModel)?,
            Some(open) => projections::CoinStatus::open_on_backend(
                &coin_status_path,
                open(&coin_status_path)?,
                projections::CoinStatusModel,
            )?,
        };
        // Shards boot from the coin-status checkpoint caught up with the log
        // tail; if it cannot serve, from the log alone.
        let (shards, shards_loaded) = match load_shards(
            &coin_status,
            store.as_ref(),
            config.n_shards,
        ) {
            Ok(shards) => {
                tracing::info!(
                    n_coins = shards.n_unspent(),
                    "shards loaded from the coin-status checkpoint"
                );
                (shards, true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "coin-status checkpoint unusable; replaying the log");
                (ShardSet::new(config.n_shards), false)
            }
        };
        // The transaction index first: the idempotency table then holds
        // only the transactions committed after what it has applied.
        let tx_index = Arc::new(open_tx_index(&dir.join("tx-index.redb"), store.as_ref())?);
        let index_applied = tx_index.applied_seq().map_err(IndexError::from)?;
        let idempotency = Arc::new(IdempotencyTable::with_index(tx_index.clone()));
        // The state rebuilt from the log starts from its snapshot, if one
        // of this log is there; a missing or unusable one means a full replay.
        let snapshot_path = dir.join(LOG_STATE_SNAPSHOT_FILE);
        let (mut state, covers) = match snapshot::read(&snapshot_path, store.as_ref()) {
            Ok(Some(found)) => found,
            Ok(None) => (LogState::default(), Covers::NOTHING),
            Err(e) => {
                tracing::warn!(error = %e, "log-state snapshot unusable; rebuilding from the log");
                (LogState::default(), Covers::NOTHING)
            }
        };
        let log_state_from_snapshot = (covers.seq > Seq(0)).then_some(covers.seq);
        let replay_shards = (!shards_loaded).then_some(&shards);
        let n_state_records = boot_from_log(
            store.as_ref(),
            replay_shards,
            (&idempotency, index_applied),
            (&mut state, covers.seq),
        )?;
        // Booting is the one moment the state matches the log head exactly
        // (nothing commits yet): a long tail is checkpointed now, so the
        // next start does not replay it again.
        let mut log_state_snapshot_seq = covers.seq;
        if n_state_records >= LOG_STATE_SNAPSHOT_EVERY_RECORDS {
            let head = store.head()?;
            let covers = Covers {
                seq: head.last_seq,
                hash: head.last_hash,
            };
            match snapshot::write(&snapshot_path, &state, covers) {
                Ok(()) => log_state_snapshot_seq = head.last_seq,
                Err(e) => tracing::warn!(error = %e, "writing the log-state snapshot failed"),
            }
        }
        let timings = Arc::new(StageTimings::default());
        let log = GroupCommit::start_sealed(
            Arc::new(CountedLog::new(store, timings.clone())),
            GroupCommitConfig::default(),
            super::checkpoint::log_sealing(sk_i.clone(), config.clock.clone(), dir.clone()),
        )?;
        let state = Arc::new(Mutex::new(state));
        let epochs_closing = crate::issuer::commit::ClosingEpochs::default();
        let commit = CommitPath::new(
            log,
            shards,
            idempotency.clone(),
            state.clone(),
            fail_stop.clone(),
        )
        .refusing_issuance_under(epochs_closing.clone());
        // The session store's payloads are sealed under the registry key.
        // The tables beside the log stop the issuer when they fail, as the log does.
        config.side_tables = config.side_tables.take().map(|inner| {
            Arc::new(crate::fail_stop::StopOnFailure {
                inner,
                fail_stop: fail_stop.clone(),
            }) as Arc<dyn ledger::KvStore>
        });
        let registry = match &config.side_tables {
            Some(tables) => Registry::open_in(
                tables.clone(),
                &dir.join(super::registry::REGISTRY_KEY_FILE),
            )?,
            None => Registry::open(dir.join("registry.redb"))?,
        };
        let core = IssuerCore {
            id_i: ledger::ParticipantId::new(protocol::wire::registration::ISSUER_ID)
                .expect("a valid constant id"),
            sk_i,
            sealer,
            mint: RwLock::new(mint),
            commit,
            idempotency,
            sessions: match &config.side_tables {
                // The durable sessions beside the log too: a replacement
                // issuer delivers the purchases this one left pending.
                Some(tables) => SessionStore::open_beside_log(
                    dir.join("sessions.redb"),
                    config.session_limits,
                    timings.clone(),
                    Some(Arc::new(registry.session_seal().clone())),
                    tables.clone(),
                    config.clock.now(),
                )?,
                None => SessionStore::open_sealed(
                    dir.join("sessions.redb"),
                    true,
                    config.session_limits,
                    timings.clone(),
                    Arc::new(registry.session_seal().clone()),
                )?,
            },
            registry,
            coin_status,
            shards_from_checkpoint: shards_loaded,
            tx_index,
            bank,
            state,
            log_state_snapshot_seq: AtomicU64::new(log_state_snapshot_seq.0),
            log_state_from_snapshot,
            epoch_lock: Mutex::new(()),
            epochs_closing,
            aggregate_lock: Mutex::new(()),
            participants_lock: Mutex::new(()),
            fail_stop,
            timings,
            config,
        };
        core.rotate_epoch_if_due()?;
        // An erasure logged before a crash cut its key's destruction short.
        core.retire_erased_keys()?;
        core.resume_pending_debits()?;
        core.finish_pending_credits()?;
        crate::card_agency::hold_open_loads_at_start(&core)?;
        tracing::info!(
            n_unspent = core.commit.n_unspent(),
            n_shards = core.commit.n_shards(),
            "issuer booted from its log"
        );
        Ok(core)
    }

    /// `Ok` while the issuer is alive; [`IssuerError::FailStopped`] once an
    /// invariant broke. Every request and every commit asks first.
    pub fn ensure_alive(&self) -> Result<(), IssuerError> {
        match self.fail_stop.stopped_because() {
            None => Ok(()),
            Some(reason) => Err(IssuerError::FailStopped(reason.to_owned())),
        }
    }

    /// With tables beside the log (PostgreSQL): one read, so that the
    /// database lost while the issuer is idle stops it (their failure
    /// trips the fail-stop) at the next housekeeping run, not at the next
    /// payment.
    pub(crate) fn probe_side_tables(&self) {
        if let Some(tables) = &self.config.side_tables {
            let _ = tables.get(super::registry::KEY_CHECK_TABLE, b"key");
        }
    }

    /// The issuer's fail-stop switch (for the threads it owns to bind).
    pub fn fail_stop(&self) -> &FailStop {
        &self.fail_stop
    }

    /// Checkpoints the state rebuilt from the log once the log has grown
    /// [`LOG_STATE_SNAPSHOT_EVERY_RECORDS`] past the last snapshot (the
    /// housekeeper): see [`IssuerCore::checkpoint_log_state_now`].
    pub fn checkpoint_log_state(&self) -> Result<Seq, IssuerError> {
        let last = self.log_state_snapshot_seq.load(Ordering::SeqCst);
        let head = self.store().head()?;
        if head.last_seq.0 < last.saturating_add(LOG_STATE_SNAPSHOT_EVERY_RECORDS) {
            return Ok(Seq(last));
        }
        self.checkpoint_log_state_now()
    }

    /// Writes a new log-state snapshot: the last one (or nothing, if it is
    /// missing or unusable) with the log's tail past it applied, built from
    /// the log alone, not from the live state (commits apply to the live
    /// state in the order their acknowledgements arrive, not in log order).
    /// Returns the seq it covers.
    pub fn checkpoint_log_state_now(&self) -> Result<Seq, IssuerError> {
        let path = self.config.dir.join(LOG_STATE_SNAPSHOT_FILE);
        let store = self.store().as_ref();
        let (mut state, mut covers) = match snapshot::read(&path, store) {
            Ok(Some(found)) => found,
            Ok(None) => (LogState::default(), Covers::NOTHING),
            Err(e) => {
                tracing::warn!(error = %e, "log-state snapshot unusable; rebuilding it from the log");
                (LogState::default(), Covers::NOTHING)
            }
        };
        // Up to the head as it is now: under load the log grows meanwhile.
        let head = store.head()?;
        let mut next = Seq(covers.seq.0 + 1);
        let mut batch: Vec<ledger::StoredRecord> = Vec::new();
        'read: while next <= head.last_seq {
            let chunk = store.read(next, BOOT_READ_RECORDS_MAX)?;
            if chunk.is_empty() {
                break;
            }
            for stored in chunk {
                if stored.record.seq > head.last_seq {
                    break 'read;
                }
                next = Seq(stored.record.seq.0 + 1);
                let last = stored.record.batch_index + 1 == stored.record.batch_len;
                batch.push(stored);
                if last {
                    let events: Vec<Event> = batch.iter().map(|r| r.record.event.clone()).collect();
                    state.apply_batch(&events)?;
                    if let Some(end) = batch.last() {
                        covers = Covers {
                            seq: end.record.seq,
                            hash: end.hash,
                        };
                    }
                    batch.clear();
                }
            }
        }
        snapshot::write(&path, &state, covers)?;
        self.log_state_snapshot_seq
            .fetch_max(covers.seq.0, Ordering::SeqCst);
        Ok(covers.seq)
    }

    /// The seq of the snapshot this start read the log state from, if it
    /// read one (else the whole log was replayed).
    pub fn log_state_booted_from_snapshot(&self) -> Option<Seq> {
        self.log_state_from_snapshot
    }

    /// A digest of the state rebuilt from the log (epochs, purchases,
    /// aggregates, totals): equal states give equal digests. For tests that
    /// compare a start from a snapshot with a full replay.
    pub fn log_state_fingerprint(&self) -> Result<[u8; 32], IssuerError> {
        Ok(snapshot::fingerprint(&lock(&self.state))?)
    }

    /// Debug builds only: panics while holding the state lock, as a broken
    /// invariant would (an `assert!` after a durable batch), poisoning it.
    /// Fail-stop tests call it; release builds do not contain it.
    #[cfg(debug_assertions)]
    #[doc(hidden)]
    pub fn break_invariant_for_tests(&self) {
        let _state = lock(&self.state);
        panic!("an invariant broken on purpose (fail-stop test hook)");
    }

    pub fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    /// Runs a pure step `open` that checks a requester's signature under
    /// the key the registry holds for it, then that the requester is in
    /// good standing. A registry that cannot be read is that error (500),
    /// never "unknown participant".
    pub(crate) fn open_with_registered_keys<T>(
        &self,
        open: impl FnOnce(
            &mut dyn FnMut(&ledger::ParticipantId) -> Option<protocol::crypto::PublicKey>,
        ) -> Result<T, FlowError>,
    ) -> Result<T, IssuerError> {
        let mut unreadable = None;
        let mut requester = None;
        let opened = open(&mut |id| match self.registry.get(id) {
            Ok(participant) => {
                requester = participant.is_some().then(|| id.clone());
                participant.map(|p| p.public_key)
            }
            Err(e) => {
                unreadable = Some(e);
                None
            }
        });
        if let Some(e) = unreadable {
            return Err(e.into());
        }
        let opened = opened?;
        // Signed by a registered participant: one not in good standing is
        // told so (after its signature, so a stranger learns nothing).
        if let Some(id) = requester {
            self.require_good_standing(&id)?;
        }
        Ok(opened)
    }

    /// The issuer's public key (what clients seal to and verify with).
    pub fn public_key(&self) -> protocol::crypto::PublicKey {
        self.sk_i.public()
    }

    /// The issuer's identity `ID_I`.
    pub fn id(&self) -> &ledger::ParticipantId {
        &self.id_i
    }

    pub fn suite(&self) -> SuiteId {
        self.config.suite
    }

    /// The unspent body of `coin` the shards hold, if any (a read,
    /// through the commit path that owns the shards).
    pub fn unspent_coin(&self, coin: &CoinId) -> Option<CoinBody> {
        self.commit.get(coin)
    }

    /// Unspent coins the shards hold (for checks and metrics).
    pub fn n_unspent(&self) -> usize {
        self.commit.n_unspent()
    }

    /// Reservations the shards hold (for checks: none once every request
    /// is answered).
    pub fn n_reserved(&self) -> usize {
        self.commit.n_reserved()
    }

    /// Every unspent coin the shards hold, by id (for checks).
    pub fn unspent_ids(&self) -> std::collections::BTreeSet<CoinId> {
        self.commit.unspent_ids()
    }

    /// What the shards know of `coin` (for checks; clients get the signed
    /// [`IssuerCore::coin_status`]).
    pub fn coin_presence(&self, coin: &CoinId) -> crate::shard::CoinPresence {
        self.commit.presence(coin)
    }

    /// Spent coins the shards still remember (until the coin-status
    /// projection has them).
    pub fn n_gone(&self) -> usize {
        self.commit.n_gone()
    }

    /// Tests only: reserves `coins` for `tx` through the commit path, as a
    /// validation in flight would, so a test can hold them busy.
    #[doc(hidden)]
    pub fn reserve_for_tests(
        &self,
        tx: TxId,
        coins: &[CoinId],
    ) -> Result<Vec<CoinBody>, crate::shard::ReserveError> {
        self.commit.reserve(tx, coins)
    }

    /// Tests only: releases what [`IssuerCore::reserve_for_tests`] took.
    #[doc(hidden)]
    pub fn abort_for_tests(&self, tx: TxId) {
        self.commit.abort(tx);
    }

    /// The log.
    pub fn store(&self) -> &Arc<LogBackend> {
        self.commit.log().store().backend()
    }

    /// The log writer's group commits since start (for metrics).
    pub fn log_commit_stats(&self) -> LogCommitStats {
        self.commit.log().store().stats()
    }

    /// Latency histograms of each validation stage and durable commit
    /// since start (for metrics and the benchmark).
    pub fn stage_timings(&self) -> &StageTimings {
        &self.timings
    }

    /// The session writer's group commits since start (for metrics).
    pub fn session_commit_stats(&self) -> crate::sessions::SessionCommitStats {
        self.sessions.commit_stats()
    }

    /// Running conservation stocks, as applied by the issuer.
    pub fn totals(&self) -> Totals {
        lock(&self.state).totals
    }

    /// The balance of a merchant's aggregate.
    pub fn aggregate_balance(&self, balance: BalanceId) -> Amount {
        lock(&self.state)
            .aggregates
            .get(&balance)
            .copied()
            .unwrap_or(Amount::ZERO)
    }

    /// The key epoch new coins are minted under, and its dates.
    pub fn current_epoch(&self) -> Option<(KeyEpoch, EpochInfo)> {
        lock(&self.state)
            .epochs
            .iter()
            .next_back()
            .map(|(e, i)| (*e, *i))
    }

    pub(crate) fn epoch_info(&self, epoch: KeyEpoch) -> Option<EpochInfo> {
        lock(&self.state).epochs.get(&epoch).copied()
    }

    /// Whether `coin` is expired and its epoch's refresh grace is over: no
    /// flow may turn it into anything any more (payment, refresh, refund).
    pub(crate) fn past_grace(&self, coin: &ledger::CoinBody, now: Timestamp) -> bool {
        coin.is_expired_at(now)
            && self
                .epoch_info(coin.epoch)
                .is_none_or(|e| now >= e.grace_ends_at)
    }

    /// Opens a new key epoch if none is open or the current one is older
    /// than the epoch period. The mint persists the key before the log
    /// records the epoch, so no tag is made under a key a crash could lose.
    pub fn rotate_epoch_if_due(&self) -> Result<Option<KeyEpoch>, IssuerError> {
        let _guard = lock(&self.epoch_lock);
        let now = self.now();
        let schedule = self.epoch_schedule();
        let Some(next) = decide_epoch::epoch_due(self.current_epoch(), now, schedule) else {
            return Ok(None);
        };
        self.persist_mint_key(next)?;
        let (tx, events) = decide_epoch::epoch_opening(next, now, schedule);
        self.commit_batch(tx, &[], events, Vec::new())?;
        self.seal_log()?;
        tracing::info!(%next, "key epoch opened");
        Ok(Some(next))
    }

    /// The epochs' schedule, as configured.
    pub(crate) fn epoch_schedule(&self) -> decide_epoch::EpochSchedule {
        decide_epoch::EpochSchedule {
            coin_lifetime_secs: self.config.coin_lifetime_secs,
            grace_secs: self.config.grace_secs,
            epoch_period_secs: self.config.epoch_period_secs,
        }
    }

    /// The mint persists the key of `epoch` (if it has not yet) before the
    /// log records the epoch, so no tag is made under a key a crash could lose.
    pub(crate) fn persist_mint_key(&self, epoch: KeyEpoch) -> Result<(), IssuerError> {
        let mut mint = self.mint.write().expect(ledger::sync::POISONED_LOCK);
        if !mint.has_epoch(epoch) {
            mint.open_epoch(epoch)?;
        }
        Ok(())
    }

    /// The tag-bearing coin for `body`.
    pub(crate) fn tagged(&self, body: CoinBody) -> Result<ledger::Coin, IssuerError> {
        let mint = self.mint.read().expect(ledger::sync::POISONED_LOCK);
        Ok(ledger::Coin {
            body,
            tag: mint.tag(&body)?,
        })
    }

    /// Fresh coin bodies of `spec`, under the current epoch.
    pub(crate) fn mint_bodies(&self, spec: &CoinSpec) -> Result<Vec<CoinBody>, IssuerError> {
        let (epoch, info) = self
            .current_epoch()
            .ok_or(IssuerError::Mint(MintError::UnknownEpoch(KeyEpoch(0))))?;
        let mut out = Vec::with_capacity(spec.n_coins() as usize);
        for value in spec.values() {
            let mut id = CoinId::random();
            // 128 random bits do not collide; this loop is the assertion's
            // polite twin, the shard's commit is the loud one.
            while self.commit.get(&id).is_some() {
                id = CoinId::random();
            }
            out.push(CoinBody {
                id,
                value,
                expiry: info.coins_expire_at,
                epoch,
            });
        }
        Ok(out)
    }

    /// Commits the events `make_events` gives as transaction `tx`, unless
    /// `tx` already committed: then returns where it lies in the log (and
    /// `make_events` is not called). The transaction is claimed first, so
    /// two concurrent requests for it never log it twice; the second is
    /// told it is in flight (its client retries).
    pub(crate) fn commit_once(
        &self,
        tx: TxId,
        make_events: impl FnOnce() -> Vec<Event>,
    ) -> Result<Option<CommitRef>, IssuerError> {
        match self.idempotency.begin(tx)? {
            Begin::Committed(at) => Ok(Some(at)),
            Begin::InFlight => Err(IssuerError::InFlight),
            Begin::Started => {
                let result = self.commit_batch(tx, &[], make_events(), Vec::new());
                // Releases the claim if it did not commit; a committed entry stays.
                self.idempotency.abandon(tx);
                result.map(|_| None)
            }
        }
    }

    /// Commits `events` as transaction `tx` through the commit path and
    /// waits until they are durable and applied. `inputs` must already be
    /// reserved for `tx` (or be empty); they leave the shards, `issued`
    /// enter. On any failure the reservations are released.
    pub(crate) fn commit_batch(
        &self,
        tx: TxId,
        inputs: &[CoinBody],
        events: Vec<Event>,
        issued: Vec<CoinBody>,
    ) -> Result<CommitRef, IssuerError> {
        let commit = match Commit::new(tx, self.now(), events, inputs, issued) {
            Ok(commit) => commit,
            Err(e) => {
                self.commit.abort(tx);
                return Err(e);
            }
        };
        self.commit.commit_wait(commit)
    }

    /// The events of a committed transaction, read back from the log.
    pub(crate) fn read_batch(&self, at: CommitRef) -> Result<Vec<Event>, IssuerError> {
        let records = self.store().read(at.first_seq, usize::from(at.n_records))?;
        Ok(records.into_iter().map(|r| r.record.event).collect())
    }

    /// Asks the bank again for every purchase still pending (the request
    /// may have been lost in a crash; debits are idempotent by purchase).
    fn resume_pending_debits(&self) -> Result<(), IssuerError> {
        let pending: Vec<PurchaseId> = lock(&self.state)
            .purchases
            .iter()
            .filter(|(_, p)| p.status == PurchaseStatus::Pending)
            .map(|(id, _)| *id)
            .collect();
        for purchase in pending {
            if let Err(e) = self.ask_debit(purchase) {
                tracing::warn!(error = %e, "could not resume a pending debit");
            }
        }
        Ok(())
    }

    /// Pays the bank credits of redemptions that committed before a crash
    /// cut them short (credits are idempotent by transaction), and forgets
    /// those whose transaction never reached the log.
    fn finish_pending_credits(&self) -> Result<(), IssuerError> {
        for (tx, credit) in self.registry.pending_credits()? {
            if self.idempotency.committed(&tx)?.is_some() {
                self.bank.credit(tx, &credit.account, credit.amount)?;
                tracing::info!(%tx, "finished a redemption credit after a restart");
            }
            self.registry.remove_pending_credit(tx)?;
        }
        Ok(())
    }

    /// Checks conservation from the log alone, the way the auditor does:
    /// every batch balances and the running equation holds.
    pub fn audit_conservation(&self) -> Result<Totals, IssuerError> {
        let mut totals = Totals::default();
        for_each_batch(self.store().as_ref(), |_, events| {
            totals.apply(&Flows::of(events))?;
            Ok(())
        })?;
        Ok(totals)
    }

    /// The signed answer to a coin status query: advice, not a reservation.
    /// Coins gone before this start are looked up in the coin-status
    /// checkpoint; erased or never-issued coins are unknown.
    pub fn coin_status(
        &self,
        query: &protocol::wire::status::CoinStatusQuery,
    ) -> Result<protocol::wire::status::CoinStatusAnswer, IssuerError> {
        use protocol::wire::status::CoinStatusEntry;
        let mut entries = Vec::with_capacity(query.coins.len());
        for coin in query.coins.iter() {
            let state = self.coin_state(coin)?;
            entries.push(CoinStatusEntry { coin: *coin, state });
        }
        Ok(protocol::flows::issuer::answer_coin_status(
            &self.sk_i,
            entries,
            self.now(),
        )?)
    }

    /// What the issuer knows of one serial: the shards, then the
    /// coin-status checkpoint for coins gone before this start.
    pub(crate) fn coin_state(
        &self,
        coin: &CoinId,
    ) -> Result<protocol::wire::status::CoinState, IssuerError> {
        use crate::shard::CoinPresence;
        use protocol::wire::status::CoinState;
        Ok(match self.commit.presence(coin) {
            CoinPresence::Unspent => CoinState::Unspent,
            CoinPresence::Reserved => CoinState::InUse,
            CoinPresence::Gone => CoinState::Spent,
            CoinPresence::Unseen => match self.coin_status.status(coin)? {
                Some(entry) if entry.state != projections::CoinState::Unspent => CoinState::Spent,
                _ => CoinState::Unknown,
            },
        })
    }

    /// Whether the shards booted from the coin-status checkpoint (rather
    /// than from a replay of the log, the fallback).
    pub fn shards_booted_from_checkpoint(&self) -> bool {
        self.shards_from_checkpoint
    }

    /// Brings the coin-status checkpoint up to the log's head (run by the
    /// housekeeper); returns the last record it has applied. The shards
    /// then forget the coins that were gone before the catch-up began: the
    /// projection answers for them now (see [`IssuerCore::coin_status`]),
    /// so the issuer's memory holds only what the projection has not yet
    /// applied, not every coin ever spent.
    pub(crate) fn coin_status_plan_erasure(
        &self,
        epoch: KeyEpoch,
        now: Timestamp,
    ) -> Result<projections::ErasurePlan, IssuerError> {
        Ok(self.coin_status.plan_erasure(epoch, now)?)
    }

    pub fn checkpoint_coin_status(&self) -> Result<Seq, IssuerError> {
        self.commit.retire_gone();
        match self.coin_status.catch_up(self.store().as_ref()) {
            Ok(seq) => {
                let forgotten = self.commit.forget_retired();
                tracing::debug!(
                    forgotten,
                    applied = seq.0,
                    "spent coins left to the coin-status projection"
                );
                Ok(seq)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Brings the transaction index up to the log's head (run by the
    /// housekeeper beside [`IssuerCore::checkpoint_coin_status`]); returns
    /// the last record it has applied. The idempotency table then forgets
    /// the committed transactions whose batch starts at or before it: the
    /// index answers their repeats now, so the issuer's memory of committed
    /// transactions is bounded by what the index has not applied yet.
    pub fn checkpoint_tx_index(&self) -> Result<Seq, IssuerError> {
        let applied = self
            .tx_index
            .catch_up(self.store().as_ref())
            .map_err(IndexError::from)?;
        let forgotten = self.idempotency.forget_committed_through(applied);
        tracing::debug!(
            forgotten,
            applied = applied.0,
            "committed transactions left to the transaction index"
        );
        Ok(applied)
    }

    /// Committed transactions the idempotency table holds in memory (the
    /// ones the transaction index has not applied yet), for tests and metrics.
    pub fn n_committed_in_memory(&self) -> usize {
        self.idempotency.n_committed_in_memory()
    }

    /// The unspent coins as a replay of the whole log says they are (for
    /// checks of the checkpoint boot; the serving shards are not touched).
    pub fn unspent_ids_from_log(&self) -> Result<std::collections::BTreeSet<CoinId>, IssuerError> {
        let shards = ShardSet::new(self.commit.n_shards());
        for_each_batch(self.store().as_ref(), |records, _| {
            for record in records {
                shards.apply_logged(&record.event);
            }
            Ok(())
        })?;
        Ok(shards.unspent_ids())
    }

    /// Drops expired sessions and tombstones; returns how many.
    pub fn purge_expired_sessions(&self) -> Result<usize, IssuerError> {
        Ok(self.sessions.purge_expired(self.now())?)
    }

    /// The value of every unspent coin held by the shards.
    pub fn unspent_value(&self) -> u128 {
        self.commit
            .unspent()
            .into_iter()
            .map(|c| u128::from(c.value.minor_units()))
            .sum()
    }
}

/// Calls `f` with every committed batch of `store`, in order.
pub(crate) fn for_each_batch(
    store: &dyn EventStore,
    f: impl FnMut(&[ledger::Record], &[Event]) -> Result<(), IssuerError>,
) -> Result<(), IssuerError> {
    for_each_batch_from(store, Seq(1), f)
}

/// [`for_each_batch`] from the batch holding `from` (its first record, if
/// `from` falls inside one) to the log's end.
pub(crate) fn for_each_batch_from(
    store: &dyn EventStore,
    from: Seq,
    mut f: impl FnMut(&[ledger::Record], &[Event]) -> Result<(), IssuerError>,
) -> Result<(), IssuerError> {
    let mut next = match store.read(from, 1)?.first() {
        Some(found) => Seq(found.record.seq.0 - u64::from(found.record.batch_index)),
        None => return Ok(()),
    };
    let mut records: Vec<ledger::Record> = Vec::new();
    loop {
        let chunk = store.read(next, BOOT_READ_RECORDS_MAX)?;
        if chunk.is_empty() {
            break;
        }
        next = Seq(chunk.last().map(|r| r.record.seq.0).unwrap_or(next.0) + 1);
        for stored in chunk {
            let record = stored.record;
            let last = record.batch_index + 1 == record.batch_len;
            records.push(record);
            if last {
                let events: Vec<Event> = records.iter().map(|r| r.event.clone()).collect();
                f(&records, &events)?;
                records.clear();
            }
        }
    }
    Ok(())
}

/// Catches the coin-status projection up with the log and loads `n_shards`
/// fresh shards from it.
fn load_shards(
    coin_status: &projections::CoinStatus,
    store: &dyn EventStore,
    n_shards: u16,
) -> Result<ShardSet, IssuerError> {
    coin_status.catch_up(store)?;
    let by_shard = coin_status.unspent_by_shard(n_shards)?;
    let shards = ShardSet::new(n_shards);
    for (i, coins) in by_shard.iter().enumerate() {
        let idx = u16::try_from(i)
            .ok()
            .filter(|i| *i < n_shards)
            .ok_or_else(|| StoreError::Backend("checkpoint has too many shards".into()))?;
        shards.shard(ledger::ShardIdx(idx)).load_unspent(coins);
    }
    Ok(shards)
}

/// Opens the transaction index in `path` and catches it up with the log. A
/// file that cannot be opened or read, of another format, or ahead of the
/// log (another log's) is rebuilt from the log, which is the truth; a
/// missing one is built from it.
fn open_tx_index(path: &Path, store: &dyn EventStore) -> Result<projections::TxIndex, IndexError> {
    use projections::{ProjectionError, TxIndex, TxIndexModel};
    let rebuild = |why: &dyn std::fmt::Display| {
        tracing::warn!(reason = %why, "transaction index unusable; rebuilding it from the log");
        TxIndex::rebuild(path, TxIndexModel, store)
    };
    let head = store.head().map_err(ProjectionError::from)?.last_seq;
    let index = match TxIndex::open_or_rebuild(path, || TxIndexModel, store) {
        Ok(index) if index.applied_seq()? <= head => index,
        Ok(index) => {
            drop(index);
            rebuild(&"it has applied records past the log's head")?
        }
        Err(e) => rebuild(&e)?,
    };
    Ok(index)
}

/// Opens the issuer's `log.redb`: redb checks every page only after an
/// unclean shutdown (its repair verifies the checksums of the committed
/// trees) or when `verify` asks for it. A clean file is trusted as redb
/// last wrote it, and redb may panic on one damaged outside it: that panic
/// is caught here and refused as a typed error, so a damaged log stops the
/// start with a reason rather than a crash.
fn open_log_file(path: &Path, verify: bool) -> Result<RedbStore, IssuerError> {
    let options = ledger::RedbOptions {
        verify_integrity_on_open: verify,
        ..ledger::RedbOptions::default()
    };
    match std::panic::catch_unwind(|| RedbStore::open_with(path, options)) {
        Ok(opened) => Ok(opened?),
        Err(_) => Err(IssuerError::Log(StoreError::Backend(
            "log.redb could not be opened (redb panicked: the file is damaged); \
             `varietycash audit` checks every page of it"
                .into(),
        ))),
    }
}

/// Replays the log into the boot state. The idempotency table takes only
/// the records past `index_applied` (the transaction index answers for the
/// rest); the shards (when not loaded from their checkpoint) and the
/// `LogState` take every record.
/// Returns how many records it applied to `state` (those past
/// `state_covers`, what its snapshot already holds). Reads the log from the
/// first batch one of the three still needs.
fn boot_from_log(
    store: &dyn EventStore,
    shards: Option<&ShardSet>,
    (idempotency, index_applied): (&IdempotencyTable, Seq),
    (state, state_covers): (&mut LogState, Seq),
) -> Result<u64, IssuerError> {
    let needed_after = if shards.is_some() {
        Seq(0)
    } else {
        index_applied.min(state_covers)
    };
    let mut n_state_records = 0u64;
    for_each_batch_from(store, Seq(needed_after.0 + 1), |records, events| {
        for record in records {
            if record.seq > index_applied {
                idempotency.apply_record(record);
            }
            if let Some(shards) = shards {
                shards.apply_logged(&record.event);
            }
        }
        if records.first().is_some_and(|r| r.seq > state_covers) {
            state.apply_batch(events)?;
            n_state_records += events.len() as u64;
        }
        Ok(())
    })?;
    Ok(n_state_records)
}

/// Maps a reservation refusal to the reason the signed statement gives.
pub(crate) fn reserve_reason(e: &ReserveError) -> (protocol::wire::RejectReason, Vec<CoinId>) {
    use protocol::wire::RejectReason;
    match e {
        ReserveError::Busy { coins } => (RejectReason::InUse, coins.clone()),
        ReserveError::NotUnspent { coins } => (RejectReason::AlreadySpent, coins.clone()),
        ReserveError::Duplicate { coin } | ReserveError::WrongShard { coin } => {
            (RejectReason::AlreadySpent, vec![*coin])
        }
    }
}
