//! The issuer: actix actors over plain-Rust cores (coin shards, coordinator,
//! log writer, mint, bank, registry, sessions).
//!
//! Plain-Rust cores, each usable and testable without actix:
//! - `shard`: [`ShardCore`] / [`ShardSet`], the unspent coins and their
//!   reservations (reserve never waits; commit; abort). Loom-checked.
//! - `bank`: the [`Bank`] trait and [`SimulatedBank`], durable in its own
//!   redb file, with debits that settle after a delay or are rejected.
//! - `file_bank`: `FileExchangeBank`, the same trait over ISO 20022 files
//!   with a real bank (pain.008 and pain.001 out, camt.053 in).
//! - `idempotency`: [`IdempotencyTable`], TxId -> in flight | committed,
//!   rebuilt from the log.
//! - `sessions`: [`SessionStore`], protocol sessions with expiry,
//!   single-use, persisted in redb.
//! - `issuer`: [`IssuerCore`], every process of `docs/protocol.md` issuer-side
//!   over those cores, rebuilt from the log at start, and its one commit
//!   path (`issuer::commit`: the only way into the log, the only owner of
//!   the shards) with the one validation sequence (`issuer::validation`).
//! - `timing`: [`StageTimings`], lock-free latency histograms of each
//!   stage of a validation and of each durable commit (`/metrics`, bench).
//! - `fail_stop`: [`FailStop`], what a broken invariant does (stop the
//!   issuer, or exit its process); no poisoned lock is recovered.
//! - `actors`: the actix shell and the [`Issuer`] handle (one async method
//!   per protocol step) that the gateway calls.
//!
//! Every module is private: the crate's API is the `pub use` list below,
//! grouped by what a caller does with it. A test (`tests/it/crate_edges.rs`
//! of the root package) keeps `pub mod` out of this file.
//!
//! **Architecture invariant:** nothing is acknowledged to a client before
//! its events are durable in the log; the shards change only after the log
//! has the batch.

#[cfg(not(loom))]
mod actors;
mod bank;
#[cfg(not(loom))]
mod card_agency;
#[cfg(not(loom))]
mod card_decide;
mod constants;
#[cfg(not(loom))]
mod fail_stop;
#[cfg(not(loom))]
mod file_bank;
mod idempotency;
#[cfg(not(loom))]
mod issuer;
mod sessions;
mod shard;
mod timing;

// The issuer: the actix handle the gateway calls, the plain-Rust core under
// it, the configuration both start from and where its log lives.
#[cfg(not(loom))]
pub use actors::Issuer;
#[cfg(not(loom))]
pub use issuer::{IssuerConfig, IssuerCore, LogBackend, PurchaseStatus, RedbBackendOpener};
// Key epochs: what an epoch is, how one ends, how long an ending waits for
// the validations in flight.
#[cfg(not(loom))]
pub use issuer::{EPOCH_DRAIN_WAIT_MS, EpochEnd, EpochErasure, EpochInfo, EpochRevocation};

// The issuer's files and its log: how often the log is sealed, where the
// signed head is written, the sealing a cluster role runs over its own log,
// the state snapshot, and the user index's public key file with the
// operator step that installs it.
#[cfg(not(loom))]
pub use issuer::{
    LOG_CHECKPOINT_EVERY_MS, LOG_CHECKPOINT_EVERY_RECORDS, LOG_STATE_SNAPSHOT_FILE,
    SIGNED_HEAD_FILE, log_sealing,
};
#[cfg(not(loom))]
pub use issuer::{USER_INDEX_PUBLIC_KEY_FILE, user_index_key::install as install_user_index_key};
// A payment's validation outcome, before it is said (sealed or signed).
#[cfg(not(loom))]
pub use issuer::{DecidedPayment, ValidationOutcome};

// Errors, one enum per job.
#[cfg(not(loom))]
pub use issuer::{DisclosureLogError, IssuerError, ReturnedDebitError, SnapshotError};
pub use sessions::SessionError;

// Banks: the trait the issuer settles through, a simulated bank, and the
// ISO 20022 file exchange with a real one.
pub use bank::{Bank, BankError, DebitStatus, SimulatedBank, StatementEntry, StatementKind};
#[cfg(not(loom))]
pub use file_bank::{BOOKED_DIR, ExchangeDirs, ExchangeRound, FileExchangeBank, IssuerAccount};

// The card systems' payment agency.
#[cfg(not(loom))]
pub use card_agency::{CardAgency, CardAgencyError};

// Fail-stop: what a broken invariant does; the environment variable that
// makes a test binary break one, and the crash points of the crash tests.
#[cfg(not(loom))]
pub use actors::BREAK_INVARIANT_ENV;
#[cfg(not(loom))]
pub use fail_stop::{FAIL_STOP_EXIT_CODE, FailStop, FailStopPolicy, stop_on_failure};

// Timing and metrics: stage histograms and commit counters (`/metrics`,
// bench).
#[cfg(not(loom))]
pub use issuer::{BareCommitPath, LogCommitStats};
pub use sessions::SessionCommitStats;
pub use timing::{
    BUCKETS_N, HistogramSnapshot, Stage, StageTimings, TimingsSnapshot, bucket_bound_micros,
};

// Building blocks a cluster role reuses: coin shards, idempotency, sessions.
pub use idempotency::{Begin, CommitRef, IdempotencyTable};
pub use sessions::{Persist, SESSIONS_TABLE, SessionId, SessionLimits, SessionStore};
pub use shard::{CoinPresence, ReserveError, ShardCore, ShardSet};

// Limits.
pub use constants::PURCHASE_SESSIONS_PER_PURCHASER_MAX;
