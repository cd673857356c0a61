//! Key change, both sides: the participant signs a [`KeyChangeRequest`] with
//! its old key and proves the new one; the issuer opens it; the answer is a
//! certificate for the new key, checked as a registration's is. Which key is
//! registered, and the change itself, are the issuer's registry's.

use ledger::{ParticipantId, Timestamp};

use crate::crypto::{PublicKey, SecretKey};
use crate::wire::key_change::KeyChangeRequest;
use crate::wire::labels;

use super::{FlowError, is_fresh};

/// The participant's request to the issuer `id_i` whose key is `pk_i` to
/// replace `sk_old`'s key with `sk_new`'s.
pub fn key_change_request(
    sk_old: &SecretKey,
    sk_new: &SecretKey,
    id: ParticipantId,
    id_i: ParticipantId,
    pk_i: &PublicKey,
    requested_at: Timestamp,
) -> KeyChangeRequest {
    let (old_key, new_key) = (sk_old.public(), sk_new.public());
    let bytes = KeyChangeRequest::signed_bytes(&id, &id_i, pk_i, &old_key, &new_key, requested_at);
    KeyChangeRequest {
        proof: sk_new.sign(labels::KEY_CHANGE_PROOF, &bytes),
        signature: sk_old.sign(labels::KEY_CHANGE_SIGNATURE, &bytes),
        id,
        id_i,
        old_key,
        new_key,
        requested_at,
    }
}

/// Checks that the request is meant for this issuer (`id_i`, and its key
/// `pk_i` under both signatures), that the new key proved possession and
/// that the old key signed. Whether the old key
/// is the one registered for `msg.id` is the caller's to check: with both
/// keys carried in the request, this check needs no lookup, so it tells a
/// stranger nothing of who is registered.
pub fn open_key_change(
    msg: &KeyChangeRequest,
    id_i: &ParticipantId,
    pk_i: &PublicKey,
) -> Result<(), FlowError> {
    if &msg.id_i != id_i {
        return Err(FlowError::Mismatch {
            what: "key change for another issuer",
        });
    }
    let bytes = KeyChangeRequest::signed_bytes(
        &msg.id,
        &msg.id_i,
        pk_i,
        &msg.old_key,
        &msg.new_key,
        msg.requested_at,
    );
    msg.new_key
        .verify(labels::KEY_CHANGE_PROOF, &bytes, &msg.proof)
        .map_err(|_| FlowError::BadSignature {
            what: "key change (no proof of the new key)",
        })?;
    msg.old_key
        .verify(labels::KEY_CHANGE_SIGNATURE, &bytes, &msg.signature)
        .map_err(|_| FlowError::BadSignature {
            what: "key change (not signed by the old key)",
        })
}

/// Whether the request was signed recently enough to change a key at `now`.
pub fn check_key_change_fresh(msg: &KeyChangeRequest, now: Timestamp) -> Result<(), FlowError> {
    if is_fresh(msg.requested_at, now) {
        Ok(())
    } else {
        Err(FlowError::Stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::generate(2048).expect("key")
    }

    #[test]
    fn only_both_keys_together_open_a_change_for_this_issuer() {
        let (sk_old, sk_new, sk_x, sk_i) = (key(), key(), key(), key());
        let pk_i = sk_i.public();
        let id = ParticipantId::new("alice").expect("id");
        let id_i = ParticipantId::new("issuer").expect("id");
        let msg = key_change_request(
            &sk_old,
            &sk_new,
            id.clone(),
            id_i.clone(),
            &pk_i,
            Timestamp(100),
        );
        assert!(open_key_change(&msg, &id_i, &pk_i).is_ok());
        assert!(check_key_change_fresh(&msg, Timestamp(160)).is_ok());
        assert!(check_key_change_fresh(&msg, Timestamp(100 + 24 * 3600)).is_err());
        let other = ParticipantId::new("other-issuer").expect("id");
        assert!(open_key_change(&msg, &other, &pk_i).is_err());
        // Another issuer under the same name, where the participant
        // registered the same key: its key is under both signatures.
        assert!(matches!(
            open_key_change(&msg, &id_i, &key().public()),
            Err(FlowError::BadSignature { .. })
        ));
        // A thief with only the new key it wants to install.
        let forged = key_change_request(
            &sk_x,
            &sk_new,
            id.clone(),
            id_i.clone(),
            &pk_i,
            Timestamp(100),
        );
        let mut claimed = forged.clone();
        claimed.old_key = sk_old.public();
        assert!(matches!(
            open_key_change(&claimed, &id_i, &pk_i),
            Err(FlowError::BadSignature { .. })
        ));
        // The old key's holder naming a key it cannot prove.
        let mut unproven = msg.clone();
        unproven.new_key = sk_x.public();
        assert!(open_key_change(&unproven, &id_i, &pk_i).is_err());
        // Another identity under the same signatures.
        let mut renamed = msg;
        renamed.id = ParticipantId::new("mallory").expect("id");
        assert!(open_key_change(&renamed, &id_i, &pk_i).is_err());
    }
}
