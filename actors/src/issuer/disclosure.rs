//! Logging a disclosure approved under dual control: the issuer appends
//! `IdentityDisclosedUnderDualControl` through the commit path and signs
//! its word that it did, which is what the user index needs before it
//! answers. The issuer checks nothing of the identity (it cannot open it);
//! who approved is checked by the gateway's operator keys before this runs.

use ledger::{Event, Seq, TxId};
use protocol::crypto::Signature;

use super::core::{IssuerCore, IssuerError};
use crate::idempotency::Begin;

/// Domain separation of the issuer's word that a disclosure is logged;
/// the user index verifies it under the same label.
pub const DISCLOSURE_LOGGED_LABEL: &str = "vc/index/disclosure-logged/1";

/// Why a disclosure was not logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureLogError {
    #[error("a disclosure needs two different approving keys")]
    SameApprover,
    #[error("not a disclosure under dual control, or a field exceeds its limit")]
    NotADisclosure,
    #[error(transparent)]
    Issuer(#[from] IssuerError),
}

/// Domain separation of the issuer's signature over a delivery of its
/// log to the user index; the index verifies it under the same label.
pub const INDEX_DELIVERY_LABEL: &str = "vc/index/delivery/1";

/// The pure decision of a disclosure: `event` is logged only if it is an
/// `IdentityDisclosedUnderDualControl` within its limits with two different
/// approving keys.
fn decide_disclosure(event: &Event) -> Result<(), DisclosureLogError> {
    let Event::IdentityDisclosedUnderDualControl { approver_keys, .. } = event else {
        return Err(DisclosureLogError::NotADisclosure);
    };
    if approver_keys[0] == approver_keys[1] {
        return Err(DisclosureLogError::SameApprover);
    }
    if event.validate().is_err() {
        return Err(DisclosureLogError::NotADisclosure);
    }
    Ok(())
}

impl IssuerCore {
    /// The issuer's signature over a delivery of its own log records to
    /// the user index (`user_index::wire::RecordDelivery::signed_bytes`).
    pub fn sign_index_delivery(&self, signed_bytes: &[u8]) -> Signature {
        self.sk_i.sign(INDEX_DELIVERY_LABEL, signed_bytes)
    }

    /// Appends `event` (an `IdentityDisclosedUnderDualControl` with two
    /// different approving keys) through the commit path and returns its
    /// seq with the issuer's signature over the seq and the event's bytes.
    /// Each approval pair is single-use (the operator nonces), so each call
    /// logs a record of its own.
    pub fn log_disclosure(&self, event: Event) -> Result<(Seq, Signature), DisclosureLogError> {
        decide_disclosure(&event)?;
        let tx = TxId::random();
        let at = match self.idempotency.begin(tx).map_err(IssuerError::from)? {
            Begin::Started => {
                let result = self.commit_batch(tx, &[], vec![event.clone()], Vec::new());
                self.idempotency.abandon(tx);
                result?
            }
            // A random transaction id is never seen before.
            Begin::InFlight | Begin::Committed(_) => return Err(IssuerError::InFlight.into()),
        };
        let seq = at.first_seq;
        let mut signed = seq.0.to_be_bytes().to_vec();
        signed.extend_from_slice(&event.encode());
        Ok((seq, self.sk_i.sign(DISCLOSURE_LOGGED_LABEL, &signed)))
    }
}

#[cfg(test)]
mod tests {
    use ledger::{CoinId, DisclosureSubject, Hash32, PurchaseId};

    use super::*;

    fn disclosure(keys: [Hash32; 2], reason: String) -> Event {
        Event::IdentityDisclosedUnderDualControl {
            subject: DisclosureSubject::Coin(CoinId::random()),
            requester: "court".into(),
            reason,
            approver_keys: keys,
        }
    }

    // A disclosure approved by two different keys is logged; one key twice,
    // another event, or a field past its limit is refused.
    #[test]
    fn a_disclosure_needs_two_different_approvers_and_fields_within_limits() {
        let (a, b) = (Hash32([1; 32]), Hash32([2; 32]));
        assert!(decide_disclosure(&disclosure([a, b], "warrant 7".into())).is_ok());
        assert!(matches!(
            decide_disclosure(&disclosure([a, a], "warrant 7".into())),
            Err(DisclosureLogError::SameApprover)
        ));
        assert!(matches!(
            decide_disclosure(&Event::PurchaseAcknowledged {
                purchase: PurchaseId::random()
            }),
            Err(DisclosureLogError::NotADisclosure)
        ));
        assert!(matches!(
            decide_disclosure(&disclosure([a, b], "x".repeat(100_000))),
            Err(DisclosureLogError::NotADisclosure)
        ));
    }
}
