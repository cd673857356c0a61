//! Key change: a registered participant replaces its key. The request names
//! the old key and the new one, is signed by the old key (only the holder of
//! the registered key can move the identity) and carries the new key's
//! proof of possession over the same fields (nobody can bind an identity to
//! a key it does not hold). The answer is a [`Certificate`] for the new key.
//!
//! It carries the time it was signed: the issuer makes a change only from
//! a fresh request, and a request whose new key is already registered is a
//! repeat (answered with a certificate, nothing changed), so a captured
//! request cannot move the identity back to a key it left.
//!
//! [`Certificate`]: super::registration::Certificate

use ledger::{ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

use super::limits::{ID_BYTES_MAX, PUBLIC_KEY_ENCODED_BYTES_MAX, SIGNATURE_ENCODED_BYTES_MAX};
use super::{WireError, WireMessage, transcript};
use crate::crypto::{PublicKey, Signature};

/// `X → I: ID_X, ID_I, PK_old, PK_new, T, S_new(..), S_old(..)`, both
/// signatures over [`KeyChangeRequest::signed_bytes`] (which also covers
/// `PK_I`) under their own labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChangeRequest {
    pub id: ParticipantId,
    /// The issuer the request is meant for, by name. The signatures also
    /// cover the issuer's public key (not carried: both sides know it), so
    /// another issuer refuses it even where the participant's key and the
    /// issuer's name are the same.
    pub id_i: ParticipantId,
    pub old_key: PublicKey,
    pub new_key: PublicKey,
    /// When the participant signed it (the issuer changes keys only on a
    /// fresh request).
    pub requested_at: Timestamp,
    /// `S_new(labels::KEY_CHANGE_PROOF, ..)`: the new key's holder asks.
    pub proof: Signature,
    /// `S_old(labels::KEY_CHANGE_SIGNATURE, ..)`: the registered key's
    /// holder agrees.
    pub signature: Signature,
}

impl KeyChangeRequest {
    pub fn signed_bytes(
        id: &ParticipantId,
        id_i: &ParticipantId,
        pk_i: &PublicKey,
        old_key: &PublicKey,
        new_key: &PublicKey,
        requested_at: Timestamp,
    ) -> Vec<u8> {
        transcript(&(id, id_i, pk_i, old_key, new_key, requested_at))
    }
}

impl WireMessage for KeyChangeRequest {
    const NAME: &'static str = "KeyChangeRequest";
    const BYTES_MAX: usize =
        2 * ID_BYTES_MAX + 2 * PUBLIC_KEY_ENCODED_BYTES_MAX + 10 + 2 * SIGNATURE_ENCODED_BYTES_MAX;

    fn validate(&self) -> Result<(), WireError> {
        if self.old_key == self.new_key {
            return Err(Self::invalid("the new key is the old key"));
        }
        Ok(())
    }
}
