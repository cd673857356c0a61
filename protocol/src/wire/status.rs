//! Coin status query: a holder (or a payee before it trusts a payer) asks the
//! issuer whether serials are still good; the issuer answers signed, with the
//! time of its answer. A status is advice, not a reservation: only a
//! validation spends or holds a coin.

use ledger::{CoinId, Timestamp};
use serde::{Deserialize, Serialize};

use super::bounded::BoundedVec;
use super::common::CoinSerials;
use super::limits::{SERIALS_BYTES_MAX, SERIALS_MAX, SIGNATURE_ENCODED_BYTES_MAX};
use super::{WireError, WireMessage, transcript};
use crate::crypto::Signature;

/// Which coins to look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinStatusQuery {
    pub coins: CoinSerials,
}

impl WireMessage for CoinStatusQuery {
    const NAME: &'static str = "CoinStatusQuery";
    const BYTES_MAX: usize = SERIALS_BYTES_MAX + 1;

    fn validate(&self) -> Result<(), WireError> {
        if self.coins.is_empty() {
            return Err(Self::invalid("no coins"));
        }
        Ok(())
    }
}

/// What the issuer knows of one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CoinState {
    Unspent,
    /// Reserved by a transaction in flight.
    InUse,
    Spent,
    /// Never issued, or spent and erased after its epoch expired.
    Unknown,
}

/// One line of a [`CoinStatusAnswer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinStatusEntry {
    pub coin: CoinId,
    pub state: CoinState,
}

/// The issuer's signed answer to a [`CoinStatusQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinStatusAnswer {
    pub as_of: Timestamp,
    pub entries: BoundedVec<CoinStatusEntry, SERIALS_MAX>,
    /// `S_I(labels::COIN_STATUS, as_of, entries)`.
    pub signature: Signature,
}

impl CoinStatusAnswer {
    pub fn signed_bytes(as_of: Timestamp, entries: &[CoinStatusEntry]) -> Vec<u8> {
        transcript(&(as_of, entries))
    }
}

impl WireMessage for CoinStatusAnswer {
    const NAME: &'static str = "CoinStatusAnswer";
    const BYTES_MAX: usize = SERIALS_MAX * 18 + 16 + SIGNATURE_ENCODED_BYTES_MAX;
}
