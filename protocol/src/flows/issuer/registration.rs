//! Registration and enrollment, issuer side.

use ledger::{ParticipantId, Timestamp};

use crate::crypto::{PublicKey, SecretKey};
use crate::flows::{FlowError, is_fresh};
use crate::wire::enrollment::{EnrollmentBody, EnrollmentRequest};
use crate::wire::registration::{Certificate, RegisterRequest};
use crate::wire::{decode, labels};

/// Checks the proof of possession `S_RG(ID_RG, PK_RG, R)` under the key being
/// registered. Uniqueness of the id is the registry's to check.
pub fn open_register_request(msg: &RegisterRequest) -> Result<(), FlowError> {
    msg.public_key
        .verify(
            labels::REGISTER_PROOF,
            &RegisterRequest::signed_bytes(&msg.id, &msg.public_key, &msg.r),
            &msg.proof,
        )
        .map_err(|_| FlowError::BadSignature {
            what: "proof of possession",
        })
}

/// `CERT = S_I(ID, PK, expiry)`.
pub fn certify(
    sk_i: &SecretKey,
    id: ParticipantId,
    public_key: PublicKey,
    expiry: Timestamp,
) -> Certificate {
    let signature = sk_i.sign(
        labels::CERTIFICATE,
        &Certificate::signed_bytes(&id, &public_key, expiry),
    );
    Certificate {
        id,
        public_key,
        expiry,
        signature,
    }
}

/// Opens an enrollment request, looks up the enrollee's registered key with
/// `registered_key`, and checks its signature and freshness. The request is
/// then the registry's to record as pending.
pub fn open_enrollment_request(
    sk_i: &SecretKey,
    msg: &EnrollmentRequest,
    registered_key: impl FnOnce(&ParticipantId) -> Option<PublicKey>,
    now: Timestamp,
) -> Result<EnrollmentBody, FlowError> {
    let plain = sk_i
        .open(labels::ENROLL_ENVELOPE, &msg.envelope)
        .map_err(|_| FlowError::CannotOpen {
            what: "EnrollmentRequest",
        })?;
    let body: EnrollmentBody = decode(&plain)?;
    let pk_en = super::registered_or_decoy(registered_key(&body.id), sk_i);
    pk_en
        .verify(
            labels::ENROLL_SIGNATURE,
            &EnrollmentBody::signed_bytes(
                &body.id,
                body.role,
                &body.bank_account,
                body.requested_at,
            ),
            &body.signature,
        )
        .map_err(|_| FlowError::BadSignature { what: "enrollment" })?;
    if !is_fresh(body.requested_at, now) {
        return Err(FlowError::Stale);
    }
    Ok(body)
}
