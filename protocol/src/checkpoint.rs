//! Signed checkpoints `S_I(seq, hash)`: the one place that says how the
//! issuer signs a checkpoint of its log and how anyone verifies it, so the
//! issuer and the auditor cannot drift apart.

use ledger::{Checkpoint, Hash32, Seq};

use crate::crypto::{PublicKey, SecretKey, Signature};

/// Signs the chain up to and including record `seq` (whose hash is `hash`).
pub fn sign_checkpoint(issuer: &SecretKey, seq: Seq, hash: Hash32) -> Checkpoint {
    let signature = issuer.sign(Checkpoint::LABEL, &Checkpoint::signed_bytes(seq, &hash));
    Checkpoint {
        seq,
        hash,
        signature: signature.to_ledger(),
    }
}

/// Whether `checkpoint` carries the issuer's valid signature.
pub fn verify_checkpoint(issuer: &PublicKey, checkpoint: &Checkpoint) -> bool {
    checkpoint.verify_with(|msg, sig| verify_signed_bytes(issuer, msg, sig))
}

/// The verification hook in the shape `ledger::Checkpoint::verify_with` and
/// the auditor take: `(signed bytes, signature bytes) -> valid`.
pub fn verify_signed_bytes(issuer: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    match Signature::from_bytes(sig.to_vec()) {
        Ok(sig) => issuer.verify(Checkpoint::LABEL, msg, &sig).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys::rsa_2048;

    #[test]
    fn a_signed_checkpoint_verifies_and_a_changed_one_does_not() {
        let key = rsa_2048();
        let cp = sign_checkpoint(key, Seq(42), Hash32([9; 32]));
        assert!(verify_checkpoint(&key.public(), &cp));

        let mut moved = cp.clone();
        moved.seq = Seq(43);
        assert!(!verify_checkpoint(&key.public(), &moved));

        let mut rehashed = cp.clone();
        rehashed.hash = Hash32([8; 32]);
        assert!(!verify_checkpoint(&key.public(), &rehashed));

        let mut garbled = cp;
        garbled.signature.0.truncate(3);
        assert!(!verify_checkpoint(&key.public(), &garbled));
    }
}
