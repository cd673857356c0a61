//! A participant's durable purse: coins, selection, and a journal of
//! in-flight transactions.
//!
//! - [`Purse`] (in [`store`]): one redb file, created 0600, holding the
//!   [`PurseProfile`] (identity, key pair, suite), the [`IssuerInfo`], every
//!   coin with its [`CoinState`], the journal and the history, each record
//!   sealed under the [`PurseKey`] derived from the owner's [`Passphrase`]
//!   ([`seal`]).
//! - [`state`]: [`CoinState`], [`CoinAction`] and [`transition`], the one
//!   pure function deciding every change of a coin's state.
//! - [`select`](mod@select): [`Selection`]: pay exactly, or change first.
//! - [`journal`]: [`JournalEntry`] and what begins, advances, completes or
//!   refuses one.
//! - [`backup`]: [`KeyBackup`], the identity and keys in a 0600 file of
//!   their own, sealed like the purse, to restore an empty purse after
//!   losing the purse file.
//! - [`seal`](mod@seal): [`Passphrase`], [`KdfParams`], [`PurseKey`]: the
//!   argon2id key and the AES-256-GCM sealing of every record.
//!
//! Data flow of a payment: [`Purse::select`] → build the message →
//! [`Purse::begin`] (coins Pending, message recorded, durable) → send →
//! on the answer [`Purse::complete`] or [`Purse::refuse`] (one atomic
//! transaction). After a crash, [`Purse::in_flight`] lists what to re-send.
//!
//! **Architecture invariant:** the purse does no I/O but its own files, and
//! no protocol cryptography: callers open and verify messages before
//! handing their contents over; its own cryptography seals its records at
//! rest. It knows nothing of HTTP.

pub mod backup;
mod codec;
pub mod constants;
pub mod error;
mod file;
pub mod journal;
pub mod profile;
pub mod seal;
pub mod select;
pub mod state;
pub mod store;

pub use backup::KeyBackup;
pub use error::PurseError;
pub use file::PURSE_FILE_MODE;
pub use journal::{
    Completion, Destination, JournalEntry, NewTransaction, Refusal, SessionSecret, Step,
    StepRecord, TxEffect, TxKind,
};
pub use profile::{IssuerInfo, PendingKeyChange, PurseProfile, SecretKeyDer};
pub use seal::{KdfParams, KeyHeader, Passphrase, PurseKey};
pub use select::{Selection, select};
pub use state::{BadKind, BadReason, CoinAction, CoinState, TxRef, transition};
pub use store::{Balance, Purse, StoredCoin};
