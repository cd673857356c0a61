//! Cash-out: a merchant that aggregates asks the issuer to pay all or part
//! of its aggregated balance to its enrolled redeem account. The request is
//! signed by the merchant's registered key and names the issuer it is meant
//! for and a client transaction id ([`CashOutId`]): a repeat of that id pays
//! nothing more and is answered with the first payout's receipt, whatever
//! amount the repeat names. The issuer's receipt is signed.

use ledger::{Amount, ParticipantId};
use serde::{Deserialize, Serialize};

use super::limits::{ID_BYTES_MAX, SIGNATURE_ENCODED_BYTES_MAX};
use super::{WireError, WireMessage, transcript};
use crate::crypto::{PublicKey, Signature};

/// The merchant's id for one cash-out: what makes a retry the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CashOutId(pub [u8; 16]);

impl CashOutId {
    /// A fresh random id.
    pub fn random() -> Result<CashOutId, crate::crypto::CryptoError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| crate::crypto::CryptoError::Randomness)?;
        Ok(CashOutId(bytes))
    }

    /// Lower-case hex, for logs and files.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How much to pay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CashOutAmount {
    /// The whole balance at the time the issuer commits the payout.
    All,
    /// Exactly this much (never zero); refused if above the balance.
    Exactly(Amount),
}

/// `M → I: ID_M, ID_I, id, amount, S_M("vc/cash-out", ID_M, ID_I, PK_I, id, amount)`.
/// It carries no time and no nonce: replaying it is a repeat of `id`, which
/// pays nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashOutRequest {
    pub id_m: ParticipantId,
    /// The issuer the request is meant for, by name. The signature also
    /// covers the issuer's public key (not carried: both sides know it), so
    /// another issuer refuses it even where the merchant's key and the
    /// issuer's name are the same.
    pub id_i: ParticipantId,
    pub id: CashOutId,
    pub amount: CashOutAmount,
    /// `S_M(labels::CASH_OUT_SIGNATURE, ..)` over [`CashOutRequest::signed_bytes`].
    pub signature: Signature,
}

impl CashOutRequest {
    pub fn signed_bytes(
        id_m: &ParticipantId,
        id_i: &ParticipantId,
        pk_i: &PublicKey,
        id: &CashOutId,
        amount: &CashOutAmount,
    ) -> Vec<u8> {
        transcript(&(id_m, id_i, pk_i, id, amount))
    }
}

impl WireMessage for CashOutRequest {
    const NAME: &'static str = "CashOutRequest";
    const BYTES_MAX: usize = 2 * ID_BYTES_MAX + 16 + 16 + SIGNATURE_ENCODED_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        if self.amount == CashOutAmount::Exactly(Amount::ZERO) {
            return Err(Self::invalid("a cash-out of zero"));
        }
        Ok(())
    }
}

/// The issuer's signed receipt: `paid` went to the merchant's enrolled
/// redeem account for request `id`. A repeat gets the same fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashOutReceipt {
    pub id_m: ParticipantId,
    pub id: CashOutId,
    pub paid: Amount,
    /// `S_I(labels::CASH_OUT_RECEIPT, ID_M, id, paid)`.
    pub signature: Signature,
}

impl CashOutReceipt {
    pub fn signed_bytes(id_m: &ParticipantId, id: &CashOutId, paid: Amount) -> Vec<u8> {
        transcript(&(id_m, id, paid))
    }
}

impl WireMessage for CashOutReceipt {
    const NAME: &'static str = "CashOutReceipt";
    const BYTES_MAX: usize = ID_BYTES_MAX + 16 + 16 + SIGNATURE_ENCODED_BYTES_MAX;
}
