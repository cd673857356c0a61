//! Coin status query: a holder (or a payee before it trusts a payer) asks the
//! issuer whether serials are still good; the issuer answers signed, with the
//! time of its answer. A status is advice, not a reservation: only a
//! validation spends or holds a coin.

use ledger::{CoinId, Timestamp};
use serde::{Deserialize, Serialize};

use super::bounded::BoundedVec;
use super::common::CoinSerials;
use super::limits::{COIN_BYTES_MAX, SERIALS_BYTES_MAX, SERIALS_MAX, SIGNATURE_ENCODED_BYTES_MAX};
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
    /// Never issued, or spent and erased after its epoch expired; to a
    /// [`HeldCoinStatusQuery`], also a coin whose tag does not check (the
    /// asker is not shown to hold it).
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

/// Most coins in one [`HeldCoinStatusQuery`]: a purse asks in batches.
pub const HELD_COIN_STATUS_COINS_MAX: usize = 256;

/// A holder's coin status query (`POST /v1/coin-status`): whole coins, body
/// and tag, so the issuer answers only someone who holds them. A serial
/// alone proves nothing (a payee sees serials, logs may show them); the tag
/// is the proof of possession, checked by the mint in constant time. The
/// answer is a [`CoinStatusAnswer`] over the coins' serials, in order; a
/// coin whose tag does not check is answered [`CoinState::Unknown`], as a
/// coin never issued is, so a stranger learns nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCoinStatusQuery {
    pub coins: BoundedVec<ledger::Coin, HELD_COIN_STATUS_COINS_MAX>,
}

impl HeldCoinStatusQuery {
    /// The serials the answer must list, in order (for
    /// [`crate::flows::verify_coin_status`]).
    pub fn serials(&self) -> Result<CoinStatusQuery, WireError> {
        let ids: Vec<CoinId> = self.coins.iter().map(ledger::Coin::id).collect();
        Ok(CoinStatusQuery {
            coins: CoinSerials::new(ids).map_err(|_| Self::invalid("too many coins"))?,
        })
    }
}

impl WireMessage for HeldCoinStatusQuery {
    const NAME: &'static str = "HeldCoinStatusQuery";
    const BYTES_MAX: usize = HELD_COIN_STATUS_COINS_MAX * COIN_BYTES_MAX + 10;

    fn validate(&self) -> Result<(), WireError> {
        if self.coins.is_empty() {
            return Err(Self::invalid("no coins"));
        }
        Ok(())
    }
}

const _: () = assert!(HELD_COIN_STATUS_COINS_MAX <= SERIALS_MAX);
