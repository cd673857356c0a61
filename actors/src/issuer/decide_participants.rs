//! The pure decisions of registration, enrollment and a participant's
//! life after: whether a key is registered anew (and the `Registered` to
//! log) or the participant is known; whether an enrollment request is
//! answered from what is recorded, refused, or logged as pending; whether
//! an approval logs `Enrolled`, a refusal `EnrollmentRefused`, an operator's
//! standing change `StandingChanged`, and a key change `KeyChanged`.
//! What they read (the registry's participant and refusals) is read
//! before, and what needs randomness or keys (sealed identity and account,
//! a merchant's fresh balance id) made before; the registry writes and the
//! commit path are I/O around them. No clock, lock or I/O here.
//!
//! Their refusals ([`ParticipantRefusal`]) are their own type; the issuer
//! reports them as the matching `IssuerError`.

use ledger::{
    BalanceId, Event, ParticipantId, Role, SealedBankAccount, SealedIdentity, Standing, Timestamp,
    TxId,
};
use protocol::crypto::PublicKey;
use protocol::flows::FlowError;
use protocol::wire::enrollment::{EnrollmentBody, EnrollmentStatus};
use protocol::wire::key_change::KeyChangeRequest;

use crate::issuer::core::IssuerError;
use crate::issuer::registry::Enrollment;

/// Why a registration or enrollment step is refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParticipantRefusal {
    /// The id is registered with another key.
    IdentityTaken,
    /// The operator refused this enrollment, for good.
    EnrollmentRefused,
    /// No enrollment of that role was requested (or, for a refusal, it is
    /// approved already).
    NoSuchEnrollment,
    /// The participant is revoked: its standing changes no more.
    Revoked,
    /// A key change whose old key is not the registered one (or that the
    /// log shows superseded): refused as a bad signature, so that it tells
    /// nothing of who is registered.
    NotTheRegisteredKey,
}

impl From<ParticipantRefusal> for IssuerError {
    fn from(refusal: ParticipantRefusal) -> IssuerError {
        match refusal {
            ParticipantRefusal::IdentityTaken => IssuerError::IdentityTaken,
            ParticipantRefusal::EnrollmentRefused => IssuerError::EnrollmentRefused,
            ParticipantRefusal::NoSuchEnrollment => IssuerError::NoSuchEnrollment,
            ParticipantRefusal::Revoked => IssuerError::ParticipantRevoked,
            ParticipantRefusal::NotTheRegisteredKey => IssuerError::Flow(FlowError::BadSignature {
                what: "key change (the old key is not the registered key)",
            }),
        }
    }
}

/// What a registration does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegistrationStep {
    /// The id is registered with this key: a fresh certificate (if the
    /// participant is in good standing), nothing logged.
    Known,
    /// A new participant: the batch to log, then the registry's record.
    Register(TxId, Event),
}

/// A registration of `key` for `id`, given the key the registry holds for
/// it (`registered`); `participant` is `id` sealed for the log.
pub(crate) fn decide_registration(
    id: &ParticipantId,
    key: &PublicKey,
    registered: Option<&PublicKey>,
    participant: SealedIdentity,
    cert_expiry: Timestamp,
) -> Result<RegistrationStep, ParticipantRefusal> {
    match registered {
        Some(held) if held != key => Err(ParticipantRefusal::IdentityTaken),
        Some(_) => Ok(RegistrationStep::Known),
        None => Ok(RegistrationStep::Register(
            TxId::derive(
                "vc/tx/register",
                &[id.as_str().as_bytes(), &key.fingerprint()],
            ),
            Event::Registered {
                participant,
                public_key: key.to_ledger(),
                cert_expiry,
            },
        )),
    }
}

/// What an enrollment request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnrollmentRequestStep {
    /// Requested before: answered with where it stands, nothing logged.
    Answered(EnrollmentStatus),
    /// A new request: the batch to log, then the registry's pending record.
    Request(TxId, Event),
}

/// An enrollment request `body`, given whether the operator refused this
/// role for good (`refused`) and the participant's recorded enrollment of
/// the role, if any; the identity and account sealed for the log.
pub(crate) fn decide_enrollment_request(
    body: &EnrollmentBody,
    refused: bool,
    recorded: Option<&Enrollment>,
    (participant, bank_account): (SealedIdentity, SealedBankAccount),
) -> Result<EnrollmentRequestStep, ParticipantRefusal> {
    if refused {
        return Err(ParticipantRefusal::EnrollmentRefused);
    }
    if let Some(e) = recorded {
        return Ok(EnrollmentRequestStep::Answered(if e.approved {
            EnrollmentStatus::Approved
        } else {
            EnrollmentStatus::Pending
        }));
    }
    Ok(EnrollmentRequestStep::Request(
        TxId::derive(
            "vc/tx/enroll-request",
            &[
                body.id.as_str().as_bytes(),
                body.role.to_string().as_bytes(),
            ],
        ),
        Event::EnrollmentRequested {
            participant,
            role: body.role,
            bank_account,
            signature: body.signature.to_ledger(),
        },
    ))
}

/// What an approval does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApprovalStep {
    /// Approved before: nothing changes.
    Done,
    /// The batch to log (a merchant gets `balance`, an aggregate balance),
    /// then the registry's record.
    Approve(TxId, Event),
}

/// The operator's approval of `id` for `role`, given the participant's
/// recorded enrollment of the role; `fresh_balance` is a new balance id
/// (used for a merchant only), `participant` the id sealed for the log.
pub(crate) fn decide_approval(
    id: &ParticipantId,
    role: Role,
    recorded: Option<&Enrollment>,
    participant: SealedIdentity,
    fresh_balance: BalanceId,
) -> Result<ApprovalStep, ParticipantRefusal> {
    let enrollment = recorded.ok_or(ParticipantRefusal::NoSuchEnrollment)?;
    if enrollment.approved {
        return Ok(ApprovalStep::Done);
    }
    Ok(ApprovalStep::Approve(
        TxId::derive(
            "vc/tx/enroll-approve",
            &[id.as_str().as_bytes(), role.to_string().as_bytes()],
        ),
        Event::Enrolled {
            participant,
            role,
            balance: (role == Role::Merchant).then_some(fresh_balance),
        },
    ))
}

/// What the operator's refusal of an enrollment does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnrollmentRefusalStep {
    /// Refused before: nothing changes.
    Done,
    /// The batch to log, then the registry drops the request.
    Refuse(TxId, Event),
}

/// The operator's refusal of `id`'s pending enrollment for `role`, given
/// whether it was refused before and the recorded enrollment of the role:
/// only a pending one is refused (an approved one is not pending: suspend
/// or revoke the participant instead).
pub(crate) fn decide_enrollment_refusal(
    id: &ParticipantId,
    role: Role,
    refused_before: bool,
    recorded: Option<&Enrollment>,
    participant: SealedIdentity,
) -> Result<EnrollmentRefusalStep, ParticipantRefusal> {
    if refused_before {
        return Ok(EnrollmentRefusalStep::Done);
    }
    match recorded {
        Some(e) if !e.approved => Ok(EnrollmentRefusalStep::Refuse(
            TxId::derive(
                "vc/tx/enroll-refuse",
                &[id.as_str().as_bytes(), role.to_string().as_bytes()],
            ),
            Event::EnrollmentRefused { participant, role },
        )),
        _ => Err(ParticipantRefusal::NoSuchEnrollment),
    }
}

/// The event of the operator setting a participant's standing from
/// `current` to `wanted`, or `None` if it is the standing it has.
/// Revocation is final. (Each change is a transaction of its own, made by
/// the caller: a participant may be suspended, reinstated and suspended
/// again.)
pub(crate) fn decide_standing(
    current: Standing,
    wanted: Standing,
    participant: SealedIdentity,
) -> Result<Option<Event>, ParticipantRefusal> {
    if current == wanted {
        return Ok(None);
    }
    if current == Standing::Revoked {
        return Err(ParticipantRefusal::Revoked);
    }
    Ok(Some(Event::StandingChanged {
        participant,
        standing: wanted,
    }))
}

/// What a key change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyChangeStep {
    /// The new key is registered already: a repeat, answered with a fresh
    /// certificate, nothing logged.
    Repeat,
    /// The batch to log, then the registry takes the new key.
    Change(TxId, Event),
}

/// A key change `msg` (its signatures and freshness checked before), given
/// the registered key; `participant` is the id sealed for the log, the new
/// certificate expiring at `cert_expiry`.
pub(crate) fn decide_key_change(
    msg: &KeyChangeRequest,
    registered: &PublicKey,
    participant: SealedIdentity,
    cert_expiry: Timestamp,
) -> Result<KeyChangeStep, ParticipantRefusal> {
    if *registered == msg.new_key {
        return Ok(KeyChangeStep::Repeat);
    }
    if *registered != msg.old_key {
        return Err(ParticipantRefusal::NotTheRegisteredKey);
    }
    Ok(KeyChangeStep::Change(
        TxId::derive(
            "vc/tx/key-change",
            &[
                msg.id.as_str().as_bytes(),
                &msg.old_key.fingerprint(),
                &msg.new_key.fingerprint(),
                &msg.requested_at.0.to_le_bytes(),
            ],
        ),
        Event::KeyChanged {
            participant,
            public_key: msg.new_key.to_ledger(),
            cert_expiry,
            signature: msg.signature.to_ledger(),
        },
    ))
}

/// A key change found in the log already (its batch committed before):
/// either a crash kept it from the registry, which then holds an older
/// certificate than the change's (`registered_expiry` before
/// `logged_expiry`: finish it, with the logged expiry), or the identity
/// moved on and came back to the old key since (a replay: refused).
pub(crate) fn decide_logged_key_change(
    registered_expiry: Timestamp,
    logged_expiry: Option<Timestamp>,
) -> Result<Timestamp, ParticipantRefusal> {
    match logged_expiry {
        Some(logged) if registered_expiry < logged => Ok(logged),
        _ => Err(ParticipantRefusal::NotTheRegisteredKey),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use ledger::BankAccount;
    use protocol::crypto::{SecretKey, Signature, SuiteId};

    use super::*;

    fn sealed() -> SealedIdentity {
        SealedIdentity::from_sealed_bytes(vec![1; 32]).expect("sealed")
    }

    fn key() -> PublicKey {
        SecretKey::generate_for(SuiteId::Dhaes, protocol::crypto::RSA_BITS_DEFAULT)
            .expect("keygen")
            .public()
    }

    fn enrollment(role: Role, approved: bool) -> Enrollment {
        Enrollment {
            role,
            bank_account: BankAccount::new("acct-alice".to_owned()).expect("account"),
            approved,
            balance: None,
        }
    }

    // A new id is registered (logged once per id and key); the same key
    // again is known; another key for a taken id is refused.
    #[test]
    fn an_id_is_registered_once_and_never_with_another_key() {
        let id = ParticipantId::new("alice").expect("id");
        let (k, other) = (key(), key());
        let new = decide_registration(&id, &k, None, sealed(), Timestamp(9)).expect("new");
        assert!(matches!(
            new,
            RegistrationStep::Register(_, Event::Registered { .. })
        ));
        assert_eq!(
            decide_registration(&id, &k, Some(&k), sealed(), Timestamp(9)),
            Ok(RegistrationStep::Known)
        );
        assert_eq!(
            decide_registration(&id, &k, Some(&other), sealed(), Timestamp(9)),
            Err(ParticipantRefusal::IdentityTaken)
        );
    }

    // An enrollment refused for good is refused; one recorded is answered
    // with its standing; a new one is logged as requested.
    #[test]
    fn an_enrollment_request_is_refused_answered_or_logged() {
        let body = EnrollmentBody {
            id: ParticipantId::new("alice").expect("id"),
            role: Role::Merchant,
            bank_account: BankAccount::new("acct-alice".to_owned()).expect("account"),
            requested_at: Timestamp(1),
            signature: Signature::from_bytes(vec![3; 64]).expect("signature"),
        };
        let seals = || {
            (
                sealed(),
                SealedBankAccount::from_sealed_bytes(vec![2; 32]).expect("sealed"),
            )
        };
        assert_eq!(
            decide_enrollment_request(&body, true, None, seals()),
            Err(ParticipantRefusal::EnrollmentRefused)
        );
        for (approved, status) in [
            (false, EnrollmentStatus::Pending),
            (true, EnrollmentStatus::Approved),
        ] {
            let recorded = enrollment(Role::Merchant, approved);
            assert_eq!(
                decide_enrollment_request(&body, false, Some(&recorded), seals()),
                Ok(EnrollmentRequestStep::Answered(status))
            );
        }
        assert!(matches!(
            decide_enrollment_request(&body, false, None, seals()),
            Ok(EnrollmentRequestStep::Request(
                _,
                Event::EnrollmentRequested { .. }
            ))
        ));
    }

    // An approval needs a request; approving twice changes nothing; only
    // a merchant gets an aggregate balance.
    #[test]
    fn an_approval_needs_a_request_and_gives_merchants_a_balance() {
        let id = ParticipantId::new("alice").expect("id");
        let balance = BalanceId::random();
        assert_eq!(
            decide_approval(&id, Role::Merchant, None, sealed(), balance),
            Err(ParticipantRefusal::NoSuchEnrollment)
        );
        let approved = enrollment(Role::Merchant, true);
        assert_eq!(
            decide_approval(&id, Role::Merchant, Some(&approved), sealed(), balance),
            Ok(ApprovalStep::Done)
        );
        for (role, gets_balance) in [(Role::Merchant, true), (Role::CoinPurchaser, false)] {
            let pending = enrollment(role, false);
            match decide_approval(&id, role, Some(&pending), sealed(), balance) {
                Ok(ApprovalStep::Approve(_, Event::Enrolled { balance: b, .. })) => {
                    assert_eq!(b.is_some(), gets_balance, "{role}");
                }
                other => panic!("{role}: {other:?}"),
            }
        }
    }

    // Only a pending enrollment is refused; refusing again changes nothing.
    #[test]
    fn only_a_pending_enrollment_is_refused() {
        let id = ParticipantId::new("alice").expect("id");
        let role = Role::Merchant;
        assert_eq!(
            decide_enrollment_refusal(&id, role, true, None, sealed()),
            Ok(EnrollmentRefusalStep::Done)
        );
        assert_eq!(
            decide_enrollment_refusal(&id, role, false, None, sealed()),
            Err(ParticipantRefusal::NoSuchEnrollment)
        );
        let approved = enrollment(role, true);
        assert_eq!(
            decide_enrollment_refusal(&id, role, false, Some(&approved), sealed()),
            Err(ParticipantRefusal::NoSuchEnrollment)
        );
        let pending = enrollment(role, false);
        assert!(matches!(
            decide_enrollment_refusal(&id, role, false, Some(&pending), sealed()),
            Ok(EnrollmentRefusalStep::Refuse(
                _,
                Event::EnrollmentRefused { .. }
            ))
        ));
    }

    // A standing changes to another; the same one changes nothing; a
    // revoked participant's standing changes no more.
    #[test]
    fn revocation_is_final() {
        assert_eq!(
            decide_standing(Standing::Active, Standing::Active, sealed()),
            Ok(None)
        );
        assert!(matches!(
            decide_standing(Standing::Suspended, Standing::Active, sealed()),
            Ok(Some(Event::StandingChanged {
                standing: Standing::Active,
                ..
            }))
        ));
        for wanted in [Standing::Active, Standing::Suspended] {
            assert_eq!(
                decide_standing(Standing::Revoked, wanted, sealed()),
                Err(ParticipantRefusal::Revoked)
            );
        }
    }

    // A key change from the registered key is logged; one to the key
    // registered already is a repeat; one from another key is refused. A
    // change found in the log is finished only if the registry is behind it.
    #[test]
    fn a_key_change_comes_from_the_registered_key_and_finishes_once() {
        let (old, new, other) = (key(), key(), key());
        let msg = KeyChangeRequest {
            id: ParticipantId::new("alice").expect("id"),
            id_i: ParticipantId::new("issuer").expect("id"),
            old_key: old.clone(),
            new_key: new.clone(),
            requested_at: Timestamp(5),
            proof: Signature::from_bytes(vec![5; 64]).expect("signature"),
            signature: Signature::from_bytes(vec![4; 64]).expect("signature"),
        };
        assert!(matches!(
            decide_key_change(&msg, &old, sealed(), Timestamp(9)),
            Ok(KeyChangeStep::Change(_, Event::KeyChanged { .. }))
        ));
        assert_eq!(
            decide_key_change(&msg, &new, sealed(), Timestamp(9)),
            Ok(KeyChangeStep::Repeat)
        );
        assert_eq!(
            decide_key_change(&msg, &other, sealed(), Timestamp(9)),
            Err(ParticipantRefusal::NotTheRegisteredKey)
        );
        assert_eq!(
            decide_logged_key_change(Timestamp(5), Some(Timestamp(9))),
            Ok(Timestamp(9))
        );
        for logged in [Some(Timestamp(5)), Some(Timestamp(4)), None] {
            assert_eq!(
                decide_logged_key_change(Timestamp(5), logged),
                Err(ParticipantRefusal::NotTheRegisteredKey)
            );
        }
    }
}
