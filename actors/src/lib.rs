//! The issuer: actix actors over plain-Rust cores (coin shards, coordinator,
//! log writer, mint, bank, registry, sessions).
//!
//! Plain-Rust cores, each usable and testable without actix:
//! - [`shard`]: [`ShardCore`] / [`ShardSet`], the unspent coins and their
//!   reservations (reserve never waits; commit; abort). Loom-checked.
//! - [`bank`]: the [`Bank`] trait and [`SimulatedBank`], durable in its own
//!   redb file, with debits that settle after a delay or are rejected.
//! - [`file_bank`]: `FileExchangeBank`, the same trait over ISO 20022 files
//!   with a real bank (pain.008 and pain.001 out, camt.053 in).
//! - [`idempotency`]: [`IdempotencyTable`], TxId -> in flight | committed,
//!   rebuilt from the log.
//! - [`sessions`]: [`SessionStore`], protocol sessions with expiry,
//!   single-use, persisted in redb.
//! - [`issuer`]: [`IssuerCore`], every process of `docs/protocol.md` issuer-side
//!   over those cores, rebuilt from the log at start, and its one commit
//!   path (`issuer::commit`: the only way into the log, the only owner of
//!   the shards) with the one validation sequence (`issuer::validation`).
//! - [`timing`]: [`StageTimings`], lock-free latency histograms of each
//!   stage of a validation and of each durable commit (`/metrics`, bench).
//! - [`fail_stop`]: [`FailStop`], what a broken invariant does (stop the
//!   issuer, or exit its process); no poisoned lock is recovered.
//! - [`actors`]: the actix shell and the [`Issuer`] handle (one async method
//!   per protocol step) that the gateway calls.
//!
//! **Architecture invariant:** nothing is acknowledged to a client before
//! its events are durable in the log; the shards change only after the log
//! has the batch.

#[cfg(not(loom))]
pub mod actors;
pub mod bank;
#[cfg(not(loom))]
pub mod card_agency;
pub mod constants;
#[cfg(not(loom))]
pub mod fail_stop;
#[cfg(not(loom))]
pub mod file_bank;
pub mod idempotency;
#[cfg(not(loom))]
pub mod issuer;
pub mod sessions;
pub mod shard;
pub mod timing;

#[cfg(not(loom))]
pub use actors::Issuer;
pub use bank::{Bank, BankError, DebitStatus, SimulatedBank, StatementEntry, StatementKind};
#[cfg(not(loom))]
pub use card_agency::{CardAgency, CardAgencyError};
#[cfg(not(loom))]
pub use fail_stop::{FAIL_STOP_EXIT_CODE, FailStop, FailStopPolicy};
pub use idempotency::{Begin, CommitRef, IdempotencyTable};
#[cfg(all(not(loom), feature = "crash-tests"))]
pub use issuer::crash::CrashPoint;
#[cfg(not(loom))]
pub use issuer::{DisclosureLogError, IssuerConfig, IssuerCore, IssuerError, PurchaseStatus};
pub use sessions::{SessionError, SessionId, SessionLimits, SessionStore};
pub use shard::{CoinPresence, ReserveError, ShardCore, ShardSet};
pub use timing::{Stage, StageTimings, TimingsSnapshot};
