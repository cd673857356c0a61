//! Enrollment (`docs/protocol.md`, "Enrollment"): a registered participant
//! asks, under `E*_I`, for a role with a bank account; an operator approves it
//! out of band. Only enrolled participants may purchase or redeem.

use ledger::{BankAccount, ParticipantId, Role, Timestamp};
use serde::{Deserialize, Serialize};

use super::WireMessage;
use super::limits::{ENVELOPE_OVERHEAD_BYTES_MAX, SMALL_MESSAGE_BYTES_MAX};
use super::transcript;
use crate::crypto::{Envelope, Signature};

/// Enrollment 1: `EN → I: E*_I(ID_EN, role, bank account, S_EN(...))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRequest {
    /// `E*_I(labels::ENROLL_ENVELOPE, EnrollmentBody)`.
    pub envelope: Envelope,
}

impl WireMessage for EnrollmentRequest {
    const NAME: &'static str = "EnrollmentRequest";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
}

/// What an [`EnrollmentRequest`]'s envelope holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentBody {
    pub id: ParticipantId,
    pub role: Role,
    pub bank_account: BankAccount,
    /// When the enrollee asked: the issuer refuses stale requests.
    pub requested_at: Timestamp,
    /// `S_EN(labels::ENROLL_SIGNATURE, ID_EN, role, bank account, requested_at)`.
    pub signature: Signature,
}

impl EnrollmentBody {
    /// The bytes the enrollee signs.
    pub fn signed_bytes(
        id: &ParticipantId,
        role: Role,
        bank_account: &BankAccount,
        requested_at: Timestamp,
    ) -> Vec<u8> {
        transcript(&(id, role, bank_account, requested_at))
    }
}

impl WireMessage for EnrollmentBody {
    const NAME: &'static str = "EnrollmentBody";
    const BYTES_MAX: usize = SMALL_MESSAGE_BYTES_MAX;
}

/// Where an enrollment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollmentStatus {
    /// Recorded; awaiting an operator.
    Pending,
    Approved,
    Refused,
}

/// The issuer's answer to an [`EnrollmentRequest`] (informational: approval
/// is out of band, and the role is enforced by the issuer, not by this answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentAnswer {
    pub role: Role,
    pub status: EnrollmentStatus,
}

impl WireMessage for EnrollmentAnswer {
    const NAME: &'static str = "EnrollmentAnswer";
    const BYTES_MAX: usize = 16;
}
