//! The ledger: VarietyCash's money model, its events, and the append-only log
//! that is the truth of the system.
//!
//! - [`money`]: [`Amount`] (integer minor units, checked arithmetic only) and
//!   [`CoinSpec`] (a list of `(count, denomination)`).
//! - [`ids`]: the identifiers: [`CoinId`], [`TxId`], [`ParticipantId`],
//!   [`PurchaseId`], [`BalanceId`] and friends.
//! - [`coin`]: [`Coin`] (what a holder has: body plus mint tag) and
//!   [`CoinBody`] (what the issuer logs: never the tag).
//! - [`event`]: every fact the issuer records, one [`Event`] variant per step
//!   of the paper's processes, postcard-encoded behind a version byte.
//! - [`store`]: the [`EventStore`] trait: atomic batches, monotonic sequence
//!   numbers, a SHA-256 hash chain, range reads and tail following.
//! - [`redb_store`]: [`RedbStore`], the log in one redb file (fsync per
//!   commit; other processes may follow it read-only); [`memory_store`]:
//!   [`MemoryStore`], the same log in memory for tests and loom.
//! - [`chain`]: [`ChainVerifier`], record-by-record verification over the
//!   bytes as stored, for the auditor.
//! - [`group_commit`]: [`GroupCommit`], many submitters, one durable append
//!   per group, acknowledgements only after fsync.
//! - [`tail`]: [`Tail`], following the log as it grows.
//! - [`private_file`]: files created 0600 and directories 0700 whatever
//!   the umask; every crate creates the files it keeps through it.
//! - `fault` (feature `fault-injection`): an [`EventStore`] wrapper and a
//!   redb file backend that stop a writer dead at a chosen point of an
//!   append, for crash tests of the code above the log.
//! - `testkit` (feature `testkit`): proptest strategies for every event,
//!   and the conformance suite every `EventStore` backend runs.
//!
//! The log's record format and invariants: `ledger/README.md`.
//!
//! **Architecture invariant:** `ledger` knows nothing of actix, HTTP, cards or
//! key material. Identities and bank accounts reach it only sealed
//! ([`SealedIdentity`], [`SealedBankAccount`]); it cannot open them.

pub mod chain;
pub mod clock;
pub mod coin;
pub mod conservation;
pub mod constants;
pub mod event;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod group_commit;
pub mod ids;
pub mod kv;
pub mod memory_store;
pub mod money;
pub mod private_file;
pub mod redb_store;
pub mod store;
pub mod sync;
pub mod tail;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use chain::{ChainError, ChainVerifier, VerifyError, verify_store};
pub use clock::{Clock, SystemClock};
pub use coin::{Coin, CoinBody, SpentCoin, Tag};
pub use conservation::{ConservationError, Flows, Totals};
pub use event::{
    BankRejection, Checkpoint, DisclosureSubject, Event, EventDecodeError, IssueCause,
    PUBLISHED_HEAD_MAGIC, PaymentOption, PublicKeyDer, PublishedHeadError, SignatureBytes,
    SpendCause, Standing, erasure_digest,
};
pub use group_commit::{Ack, GroupCommit, GroupCommitConfig, QueueFull, SealAck, Sealer, Sealing};
pub use ids::{
    BalanceId, BankAccount, CardId, CoinId, IdError, KeyEpoch, LusId, ParticipantId, PurchaseId,
    Role, SealedBankAccount, SealedIdentity, ShardIdx, Timestamp, TxId,
};
pub use kv::{KvBatch, KvError, KvRow, KvStore, KvWrite, MemoryKv};
pub use memory_store::MemoryStore;
pub use money::{Amount, CoinSpec, Denomination, MoneyError};
pub use redb_store::{RedbOptions, RedbStore, Sharing};
pub use store::{
    Batch, EventStore, Hash32, Head, RawEventStore, RawRecord, Record, Seq, StoreError,
    StoredRecord,
};
pub use tail::{HeadWatch, Tail, Watchable};
