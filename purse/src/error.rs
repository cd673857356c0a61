//! The purse's errors. [`PurseError`] keeps domain refusals (a coin that
//! cannot make a transition, an outcome that does not match its journal
//! entry) apart from technical failures (storage, a damaged file).

use ledger::{CoinId, MoneyError};

use crate::state::TxRef;

/// Why a purse operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurseError {
    /// The state machine of [`crate::state::transition`] refused a step.
    #[error("coin in state {from} cannot take action {action}")]
    TransitionRefused {
        from: &'static str,
        action: &'static str,
    },
    #[error(
        "purse file {path} is readable or writable by group or others (mode {mode:o}): expected 0600"
    )]
    PermissionsTooOpen { path: String, mode: u32 },
    #[error("purse file {0} already exists")]
    AlreadyExists(String),
    #[error("purse file is in use by another process")]
    InUse,
    #[error("not a purse file, or a purse of an unknown format version {0}")]
    WrongFormat(u32),
    #[error("wrong passphrase for this purse")]
    WrongPassphrase,
    #[error(
        "purse file of the first format, with its keys and coins unencrypted: \
         convert it with `varietycash purse encrypt`"
    )]
    Unencrypted,
    #[error("purse file is damaged: {0}")]
    Corrupt(String),
    #[error("purse storage failed: {0}")]
    Storage(#[from] redb::Error),
    #[error("purse file i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("key or signature: {0}")]
    Crypto(#[from] protocol::crypto::CryptoError),
    #[error("issuer statement refused: {0}")]
    Statement(#[from] protocol::flows::FlowError),
    #[error("unknown coin {0}")]
    UnknownCoin(CoinId),
    #[error("coin {0} is already in the purse")]
    DuplicateCoin(CoinId),
    #[error("coin {0} listed twice")]
    CoinListedTwice(CoinId),
    #[error("no transaction {0} in flight")]
    UnknownTransaction(TxRef),
    #[error("outcome does not match transaction {tx}: {why}")]
    OutcomeMismatch { tx: TxRef, why: &'static str },
    #[error("journal step may not go from {from} back to {to}")]
    StepBackwards {
        from: &'static str,
        to: &'static str,
    },
    #[error("{what} of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("too many coins in one transaction: {0}")]
    TooManyCoins(usize),
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    #[error("the amount to select is zero")]
    ZeroAmount,
}

/// Maps every redb error into [`PurseError`] through `redb::Error`, except
/// the ones a caller can act on, which get their own variants.
macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for PurseError {
            fn from(e: $ty) -> PurseError {
                storage_error(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

fn storage_error(e: redb::Error) -> PurseError {
    match e {
        redb::Error::DatabaseAlreadyOpen => PurseError::InUse,
        redb::Error::Corrupted(why) => PurseError::Corrupt(why),
        redb::Error::UpgradeRequired(v) => PurseError::WrongFormat(u32::from(v)),
        other => PurseError::Storage(other),
    }
}

/// Checks a length against a limit.
pub(crate) fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), PurseError> {
    if len > max {
        return Err(PurseError::TooLarge { what, len, max });
    }
    Ok(())
}
