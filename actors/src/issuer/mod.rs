//! The issuer's processes over the plain-Rust cores: [`IssuerCore`] owns
//! the log (group commit), shards, idempotency table, mint, registry,
//! sessions and bank, and runs every flow of `docs/protocol.md` issuer-side.
//! The actix actors (`crate::actors`) are thin shells over it.

mod cash_out;
mod checkpoint;
pub(crate) mod commit;
pub(crate) mod core;
mod decide;
mod decide_aggregate;
mod decide_epoch;
mod decide_participants;
mod decide_purchase;
mod decide_refund;
pub(crate) mod disclosure;
mod epoch;
pub(crate) mod epoch_end;
mod lifecycle;
pub(crate) mod log_state_checkpoint;
pub(crate) mod log_stats;
pub(crate) mod participants;
pub(crate) mod payment;
pub(crate) mod purchase;
pub(crate) mod refund;
pub(crate) mod registry;
pub(crate) mod returned_debit;
mod status;
pub(crate) mod user_index_key;
pub(crate) mod validation;

pub use self::checkpoint::{
    LOG_CHECKPOINT_EVERY_MS, LOG_CHECKPOINT_EVERY_RECORDS, SIGNED_HEAD_FILE, log_sealing,
};
pub use self::commit::BareCommitPath;
pub use self::core::{
    EpochEnd, EpochInfo, IssuerConfig, IssuerCore, IssuerError, LogBackend, PurchaseStatus,
    RedbBackendOpener,
};
pub use self::disclosure::DisclosureLogError;
pub use self::epoch_end::{EPOCH_DRAIN_WAIT_MS, EpochErasure, EpochRevocation};
pub use self::log_state_checkpoint::{LOG_STATE_SNAPSHOT_FILE, SnapshotError};
pub use self::log_stats::LogCommitStats;
pub use self::payment::{DecidedPayment, ValidationOutcome};
pub use self::returned_debit::ReturnedDebitError;
pub use self::user_index_key::USER_INDEX_PUBLIC_KEY_FILE;
