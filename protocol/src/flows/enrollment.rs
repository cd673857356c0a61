//! Enrollment, client side: one sealed, signed request; approval is out of
//! band, so there is no state to keep.

use ledger::{BankAccount, ParticipantId, Role, Timestamp};

use super::FlowError;
use crate::crypto::{PublicKey, SecretKey, SuiteId};
use crate::wire::enrollment::{EnrollmentBody, EnrollmentRequest};
use crate::wire::{encode, labels};

/// Enrollment 1: `E*_I(ID_EN, role, bank account, S_EN(...))`.
pub fn enrollment_request(
    suite: SuiteId,
    sk_en: &SecretKey,
    pk_i: &PublicKey,
    id: ParticipantId,
    role: Role,
    bank_account: BankAccount,
    now: Timestamp,
) -> Result<EnrollmentRequest, FlowError> {
    let signature = sk_en.sign(
        labels::ENROLL_SIGNATURE,
        &EnrollmentBody::signed_bytes(&id, role, &bank_account, now),
    );
    let body = EnrollmentBody {
        id,
        role,
        bank_account,
        requested_at: now,
        signature,
    };
    let envelope = pk_i.seal(suite, labels::ENROLL_ENVELOPE, &encode(&body))?;
    Ok(EnrollmentRequest { envelope })
}
