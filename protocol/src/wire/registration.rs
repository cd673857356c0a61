//! Registration (PROTOCOLS.md "Registration (RG, I)"): the participant proves
//! it holds the secret key of the public key it registers, and the issuer,
//! acting as CA, answers with a certificate `CERT_RG = S_I(ID_RG, PK_RG, expiry)`.

use ledger::{ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

use super::limits::{CERTIFICATE_BYTES_MAX, SMALL_MESSAGE_BYTES_MAX};
use super::{WireMessage, transcript};
use crate::crypto::{Nonce, PublicKey, Signature};

/// Registration 1: `RG → I: ID_RG, PK_RG, S_RG("vc/register", ID_RG, PK_RG, R)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub id: ParticipantId,
    pub public_key: PublicKey,
    /// `R`: makes the proof of possession fresh.
    pub r: Nonce,
    /// `S_RG(labels::REGISTER_PROOF, ID_RG, PK_RG, R)`.
    pub proof: Signature,
}

impl RegisterRequest {
    /// The bytes the proof of possession signs.
    pub fn signed_bytes(id: &ParticipantId, public_key: &PublicKey, r: &Nonce) -> Vec<u8> {
        transcript(&(id, public_key, r))
    }
}

impl WireMessage for RegisterRequest {
    const NAME: &'static str = "RegisterRequest";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;
}

/// Registration 2: `CERT_RG = S_I(ID_RG, PK_RG, expiry)`. Also carried in an
/// invoice as `CERT_PY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub id: ParticipantId,
    pub public_key: PublicKey,
    pub expiry: Timestamp,
    /// `S_I(labels::CERTIFICATE, ID, PK, expiry)`.
    pub signature: Signature,
}

impl Certificate {
    /// The bytes the issuer signs.
    pub fn signed_bytes(id: &ParticipantId, public_key: &PublicKey, expiry: Timestamp) -> Vec<u8> {
        transcript(&(id, public_key, expiry))
    }
}

impl WireMessage for Certificate {
    const NAME: &'static str = "Certificate";
    const BYTES_MAX: usize = CERTIFICATE_BYTES_MAX;
}
