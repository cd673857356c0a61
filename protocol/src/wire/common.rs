//! What several flows share: the payee's transaction id `TID_PY`, coin lists
//! and serial lists with their bounds, and the issuer's signed rejection
//! `S_I("vc/reject", TID, reason, bad serials)` of requirement P4.

use std::fmt;

use ledger::constants::COINS_PER_TX_MAX;
use ledger::{BankRejection, Coin, CoinId, ParticipantId, PurchaseId, Timestamp};
use serde::{Deserialize, Serialize};

use super::bounded::BoundedVec;
use super::limits::{SERIALS_MAX, SIGNED_REJECT_BYTES_MAX};
use super::{WireError, WireMessage, transcript};
use crate::crypto::{Nonce, Signature};

/// Coins in one message: at most [`COINS_PER_TX_MAX`].
pub type CoinList = BoundedVec<Coin, COINS_PER_TX_MAX>;
/// Coin serials in one message: at most [`SERIALS_MAX`].
pub type CoinSerials = BoundedVec<CoinId, SERIALS_MAX>;

/// `TID_PY`: the payee's id for one payment, random, 128 bits. The issuer
/// identifies a payment by `(ID_PY, TID_PY)` and its input serials.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PaymentTid([u8; 16]);

impl PaymentTid {
    pub fn random() -> PaymentTid {
        PaymentTid(*Nonce::random().as_bytes())
    }

    pub const fn from_bytes(bytes: [u8; 16]) -> PaymentTid {
        PaymentTid(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for PaymentTid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PaymentTid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentTid({self})")
    }
}

/// Checks that no serial appears twice in a coin list: a payment that names a
/// coin twice would count its value twice.
pub(crate) fn check_distinct(coins: &[Coin]) -> bool {
    let mut ids: Vec<CoinId> = coins.iter().map(Coin::id).collect();
    ids.sort_unstable();
    ids.windows(2).all(|w| w[0] != w[1])
}

/// What a rejection is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectSubject {
    /// A coin purchase (its debit was refused, or its request was bad).
    Purchase(PurchaseId),
    /// A payment (or change, refresh, redeem), as the issuer identifies it.
    Payment {
        id_py: ParticipantId,
        tid_py: PaymentTid,
    },
    /// A refund request, by its nonce `R`.
    Refund { id_ch: ParticipantId, r: Nonce },
}

/// Why the issuer refused. New reasons go at the end (the encoding is by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// A coin's tag does not check: it was never minted.
    BadTag,
    /// A coin was already spent.
    AlreadySpent,
    /// A coin is past its expiry (only refresh takes it) or past its grace period.
    Expired,
    /// A coin is reserved by another transaction in flight.
    InUse,
    /// The coins do not total the amount of V-DESC, or W-DESC's spec does not
    /// total its amount.
    AmountMismatch,
    /// The payee inside `EncC_1` is not the payee who asked (P3).
    PayeeMismatch,
    /// The participant is not enrolled for what it asked.
    NotEnrolled,
    /// The bank refused the debit of a purchase.
    BankRejected(BankRejection),
    /// Refund asked for anonymous coins, or there is nothing to refund.
    NothingToRefund,
    /// The coin spec asks for denominations or counts the issuer does not mint.
    SpecNotAllowed,
    /// The bank account named is not the one enrolled for the participant
    /// and role (a purchase debits, a redeem credits, only that account).
    AccountNotEnrolled,
    /// A coin's key epoch is revoked: only a recoup takes it, up to what
    /// the epoch still owes.
    EpochRevoked,
}

/// The issuer's signed error statement (P4): the payee passes it to the
/// payer, who checks the signature before marking its coins bad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReject {
    pub subject: RejectSubject,
    pub reason: RejectReason,
    /// Serials of the coins at fault; empty when the fault is not a coin's.
    pub bad_coins: CoinSerials,
    pub issued_at: Timestamp,
    /// `S_I(labels::REJECT, subject, reason, bad_coins, issued_at)`.
    pub signature: Signature,
}

impl SignedReject {
    /// The bytes the issuer signs.
    pub fn signed_bytes(
        subject: &RejectSubject,
        reason: RejectReason,
        bad_coins: &CoinSerials,
        issued_at: Timestamp,
    ) -> Vec<u8> {
        transcript(&(subject, reason, bad_coins, issued_at))
    }
}

impl WireMessage for SignedReject {
    const NAME: &'static str = "SignedReject";
    const BYTES_MAX: usize = SIGNED_REJECT_BYTES_MAX;
}

/// Checks a decoded coin list: at least one coin, no serial twice.
pub(crate) fn validate_coins<M: WireMessage>(coins: &[Coin]) -> Result<(), WireError> {
    if coins.is_empty() {
        return Err(M::invalid("no coins"));
    }
    if !check_distinct(coins) {
        return Err(M::invalid("a coin appears twice"));
    }
    Ok(())
}
