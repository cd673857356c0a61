//! Refund (`docs/protocol.md`, "Refund", non-anonymous holders only): the holder
//! signs `S_CH("vc/refund", ID_CH, R)`; the issuer revokes the coins issued to
//! `ID_CH` that are still unspent and issues replacements of equal value under
//! a fresh session `K = K_I ⊕ K_CH`, so copies on a lost disk die.
//!
//! `K_CH` rides with the signed request inside `E*_I`, so the replacements
//! reach only the holder of `SK_CH`.

use ledger::{ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

use super::common::{CoinSerials, SignedReject};
use super::limits::{ENVELOPE_OVERHEAD_BYTES_MAX, ISSUANCE_BYTES_MAX, SMALL_MESSAGE_BYTES_MAX};
use super::{WireMessage, transcript};
use crate::crypto::{Ciphertext, Envelope, KeyShare, MacTag, Nonce, Signature};

/// Refund request `CH → I: E*_I(ID_CH, R, K_CH, S_CH("vc/refund", ID_CH, R, K_CH))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// `E*_I(labels::REFUND_ENVELOPE, RefundBody)`.
    pub envelope: Envelope,
}

impl WireMessage for RefundRequest {
    const NAME: &'static str = "RefundRequest";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
}

/// What a [`RefundRequest`]'s envelope holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundBody {
    pub id_ch: ParticipantId,
    /// `R`: single-use; the issuer refuses a request whose `R` it has seen.
    pub r: Nonce,
    pub k_ch: KeyShare,
    /// When the holder asked: the issuer refuses stale requests, which bounds
    /// how long it must remember `R`.
    pub requested_at: Timestamp,
    /// `S_CH(labels::REFUND_SIGNATURE, ID_CH, R, K_CH, requested_at)`.
    pub signature: Signature,
}

impl RefundBody {
    pub fn signed_bytes(
        id_ch: &ParticipantId,
        r: &Nonce,
        k_ch: &KeyShare,
        requested_at: Timestamp,
    ) -> Vec<u8> {
        transcript(&(id_ch, r, k_ch, requested_at))
    }
}

impl WireMessage for RefundBody {
    const NAME: &'static str = "RefundBody";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;
}

/// What the issuer did with a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundOutcome {
    /// The coins listed were revoked; the replacements come as in Issuance1:
    /// `E*_CH(K_I, ID_I), e_K(coins), mac_K(ID_I, R, revoked, e_K(coins))`.
    Replaced {
        revoked: CoinSerials,
        key_envelope: Envelope,
        enc_coins: Ciphertext,
        mac: MacTag,
    },
    /// Nothing to refund, or the request was refused; signed by the issuer.
    Rejected(SignedReject),
}

/// The answer to a [`RefundRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAnswer {
    pub r: Nonce,
    pub outcome: RefundOutcome,
}

impl RefundAnswer {
    /// The bytes `mac_K` covers in [`RefundOutcome::Replaced`].
    pub fn mac_bytes(
        id_i: &ParticipantId,
        r: &Nonce,
        revoked: &CoinSerials,
        enc_coins: &Ciphertext,
    ) -> Vec<u8> {
        transcript(&(id_i, r, revoked, enc_coins))
    }
}

impl WireMessage for RefundAnswer {
    const NAME: &'static str = "RefundAnswer";
    const BYTES_MAX: usize = ISSUANCE_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
}
