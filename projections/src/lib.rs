//! Read models built from the issuer's log, each in its own redb file with
//! the sequence number it has applied:
//!
//! - [`coin_status`]: [`CoinStatus`]: coin id → value, expiry, epoch and
//!   state; what coin shards boot from ([`CoinStatus::unspent_by_shard`]);
//!   erasure of spent coins past their epoch's grace period and forfeiture
//!   of the unspent ones when the epoch is erased
//!   ([`CoinStatus::plan_erasure`]).
//! - [`user_index`]: [`UserIndex`]: participant → coins issued to them
//!   (non-anonymous only), kept in a separate file; the only place that
//!   unseals identities, through an injected [`Unsealer`]; looking up who
//!   withdrew a coin returns the `IdentityDisclosed` event to log.
//! - [`accounts`]: [`Accounts`]: merchant aggregate balances, bank money
//!   (pending, settled, rejected), outstanding e-money, the float forfeited
//!   with erased epochs, card float per load/unload server, and the
//!   conservation equation checked with
//!   `ledger::conservation`.
//! - [`tx_index`]: [`TxIndex`]: transaction id → where its batch lies in
//!   the log; what the issuer answers repeats of old transactions from, so
//!   its memory holds only the ones the index has not applied yet.
//!
//! Data flow: each is a pure [`Projection`] (`apply(&mut state, &record)`)
//! inside a [`ProjectionDb`] that catches up from the log at start
//! ([`ProjectionDb::catch_up`]), follows the tail
//! ([`ProjectionDb::apply_records`]) and can be rebuilt
//! ([`ProjectionDb::rebuild`]) with the same result.
//!
//! **Architecture invariant:** `projections` depends on `ledger` only; the
//! unsealer is injected. Only [`UserIndex`] ever holds an identity in the
//! clear; the coin-status and accounts files hold none.

pub mod accounts;
pub mod coin_status;
pub mod constants;
pub mod error;
pub mod framework;
pub mod state;
pub mod tx_index;
pub mod user_index;

pub use accounts::{Accounts, AccountsModel};
pub use coin_status::{
    CoinState, CoinStatus, CoinStatusEntry, CoinStatusModel, EpochInfo, ErasureError, ErasurePlan,
    ForfeiturePlan, UnspentTotals,
};
pub use error::{HistoryError, ProjectionError, UnsealError};
pub use framework::{Projection, ProjectionDb, replay_in_memory};
pub use state::{MemoryState, StateRead, StateWrite, TableName};
pub use tx_index::{TxIndex, TxIndexModel, TxPlace};
pub use user_index::{Disclosure, Unsealer, UserIndex, UserIndexModel};
