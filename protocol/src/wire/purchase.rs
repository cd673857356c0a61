//! Coin purchase (`docs/protocol.md`, "Coin purchase", paper Figure 5,
//! requirements W1–W3).
//!
//! The issuer picks the purchase handle ([`PurchaseId`]) when it answers
//! WRequest1; every later message names it in the clear so the issuer can
//! find the session, and the handle is also bound inside the envelope and
//! the MACs, so it cannot be swapped.

use ledger::{Amount, BankAccount, CoinSpec, ParticipantId, PurchaseId, Timestamp};
use serde::{Deserialize, Serialize};

use super::common::{CoinList, SignedReject, validate_coins};
use super::limits::{
    CIPHERTEXT_OVERHEAD_BYTES_MAX, COINS_BYTES_MAX, ENVELOPE_OVERHEAD_BYTES_MAX,
    ISSUANCE_BYTES_MAX, SMALL_MESSAGE_BYTES_MAX,
};
use super::{WireError, WireMessage, transcript};
use crate::crypto::{Ciphertext, Envelope, KeyShare, MacTag, Nonce, Signature};

/// WRequest1 `CP → I: E*_I(ID_CP, K_CP)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WRequest1 {
    /// `E*_I(labels::PURCHASE_1, WRequest1Body)`.
    pub envelope: Envelope,
}

impl WireMessage for WRequest1 {
    const NAME: &'static str = "WRequest1";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
}

/// What [`WRequest1`]'s envelope holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WRequest1Body {
    pub id_cp: ParticipantId,
    pub k_cp: KeyShare,
    /// When the purchaser asked: a copy older than
    /// [`crate::flows::REQUEST_AGE_SECS_MAX`] is stale.
    pub requested_at: Timestamp,
    /// `S_CP(labels::PURCHASE_1_SIGNATURE, ID_CP, K_CP, requested_at)`,
    /// checked under `ID_CP`'s registered key: nobody opens a purchase
    /// session (which the issuer keeps for days) in another's name.
    pub signature: Signature,
}

impl WRequest1Body {
    /// The bytes the purchaser signs.
    pub fn signed_bytes(
        id_cp: &ParticipantId,
        k_cp: &KeyShare,
        requested_at: Timestamp,
    ) -> Vec<u8> {
        transcript(&(id_cp, k_cp, requested_at))
    }
}

impl WireMessage for WRequest1Body {
    const NAME: &'static str = "WRequest1Body";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;
}

/// WRequest2 `I → CP: E*_CP(ID_I, K_I, R_I)`, with the purchase handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WRequest2 {
    pub purchase: PurchaseId,
    /// `E*_CP(labels::PURCHASE_2, WRequest2Body)`.
    pub envelope: Envelope,
}

impl WireMessage for WRequest2 {
    const NAME: &'static str = "WRequest2";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
}

/// What [`WRequest2`]'s envelope holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WRequest2Body {
    /// Must equal the handle outside the envelope.
    pub purchase: PurchaseId,
    pub id_i: ParticipantId,
    pub k_i: KeyShare,
    /// `R_I`: single-use; a WRequest3 signed over a spent `R_I` is a replay (W3).
    pub r_i: Nonce,
}

impl WireMessage for WRequest2Body {
    const NAME: &'static str = "WRequest2Body";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;
}

/// `W-DESC`: what the purchaser buys and how it pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WDesc {
    pub spec: CoinSpec,
    /// Must equal the spec's total: the purchaser signs both, so neither can
    /// be misread.
    pub amount: Amount,
    /// The account to debit; the purchaser's signature is the debit authorization.
    pub bank_account: BankAccount,
    /// Anonymous coins are not recorded against the purchaser (and cannot be refunded).
    pub anonymous: bool,
}

impl WDesc {
    /// Checks the spec and that it totals the amount.
    pub fn check(&self) -> Result<(), &'static str> {
        self.spec.validate().map_err(|_| "invalid coin spec")?;
        if self.spec.n_coins() > ledger::constants::COINS_PER_TX_MAX as u64 {
            return Err("coin spec asks for more coins than one transaction may issue");
        }
        match self.spec.total() {
            Ok(total) if total == self.amount => Ok(()),
            _ => Err("coin spec does not total the amount"),
        }
    }
}

/// WRequest3 `CP → I: e_K(W-DESC, S_CP("vc/purchase", W-DESC, R_I, ID_I))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WRequest3 {
    pub purchase: PurchaseId,
    /// `e_K(labels::PURCHASE_3, WRequest3Body)`.
    pub body: Ciphertext,
    /// `mac_K(labels::PURCHASE_3_MAC, purchase, body)`: `e_K` alone is not
    /// authenticated, and the issuer checks this before it decrypts.
    pub mac: MacTag,
}

impl WRequest3 {
    pub fn mac_bytes(purchase: &PurchaseId, body: &Ciphertext) -> Vec<u8> {
        transcript(&(purchase, body))
    }
}

impl WireMessage for WRequest3 {
    const NAME: &'static str = "WRequest3";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX + CIPHERTEXT_OVERHEAD_BYTES_MAX;
}

/// What [`WRequest3`]'s ciphertext holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WRequest3Body {
    pub w_desc: WDesc,
    /// `S_CP(labels::PURCHASE_3_SIGNATURE, W-DESC, R_I, ID_I, purchase)`:
    /// the issuer keeps it for non-repudiation.
    pub signature: Signature,
}

impl WRequest3Body {
    /// The bytes the purchaser signs.
    pub fn signed_bytes(
        w_desc: &WDesc,
        r_i: &Nonce,
        id_i: &ParticipantId,
        purchase: &PurchaseId,
    ) -> Vec<u8> {
        transcript(&(w_desc, r_i, id_i, purchase))
    }
}

impl WireMessage for WRequest3Body {
    const NAME: &'static str = "WRequest3Body";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        self.w_desc.check().map_err(Self::invalid)
    }
}

/// The purchaser asks for Issuance1 (again). MACed so that only the holder of
/// the session key can poll a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchasePoll {
    pub purchase: PurchaseId,
    /// `mac_K(labels::PURCHASE_POLL, purchase)`.
    pub mac: MacTag,
}

impl PurchasePoll {
    pub fn mac_bytes(purchase: &PurchaseId) -> Vec<u8> {
        transcript(purchase)
    }
}

impl WireMessage for PurchasePoll {
    const NAME: &'static str = "PurchasePoll";
    const BYTES_MAX: usize = 256;
}

/// Where a purchase stands, as Issuance1 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurchaseOutcome {
    /// The bank has not settled the debit yet: poll again later.
    Pending,
    /// `EncC = e_K(Coin_1..Coin_n), mac_K("vc/issue", ID_I, EncC)`. The same
    /// coins every time until the purchaser acknowledges.
    Issued { enc_c: Ciphertext, mac: MacTag },
    /// The debit was refused: the issuer's signed rejection.
    Rejected(SignedReject),
}

/// Issuance1 of a purchase, the answer to WRequest3 and to every poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseIssuance1 {
    pub purchase: PurchaseId,
    pub outcome: PurchaseOutcome,
}

impl PurchaseIssuance1 {
    /// The bytes `mac_K` covers in [`PurchaseOutcome::Issued`].
    pub fn mac_bytes(id_i: &ParticipantId, purchase: &PurchaseId, enc_c: &Ciphertext) -> Vec<u8> {
        transcript(&(id_i, purchase, enc_c))
    }
}

impl WireMessage for PurchaseIssuance1 {
    const NAME: &'static str = "PurchaseIssuance1";
    const BYTES_MAX: usize = ISSUANCE_BYTES_MAX;
}

/// What the ciphertext of an issuance holds: the coins themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCoins {
    pub coins: CoinList,
}

impl WireMessage for IssuedCoins {
    const NAME: &'static str = "IssuedCoins";
    const BYTES_MAX: usize = COINS_BYTES_MAX + 1;

    fn validate(&self) -> Result<(), WireError> {
        validate_coins::<Self>(&self.coins)
    }
}

/// Issuance2 `CP → I: mac_K("vc/ack", R_I)`: the purchaser has the coins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseIssuance2 {
    pub purchase: PurchaseId,
    /// `mac_K(labels::PURCHASE_ACK, R_I, purchase)`.
    pub mac: MacTag,
}

impl PurchaseIssuance2 {
    pub fn mac_bytes(r_i: &Nonce, purchase: &PurchaseId) -> Vec<u8> {
        transcript(&(r_i, purchase))
    }
}

impl WireMessage for PurchaseIssuance2 {
    const NAME: &'static str = "PurchaseIssuance2";
    const BYTES_MAX: usize = 256;
}
