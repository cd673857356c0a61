//! Registration (the issuer certifies a key) and enrollment (a request
//! recorded on-line, approved or refused out of band by an operator; the
//! refusal and the rest of a participant's life are in `lifecycle`).

use ledger::{BalanceId, Event, ParticipantId, Role};
use protocol::flows::issuer::{certify, open_enrollment_request, open_register_request};
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentRequest, EnrollmentStatus};
use protocol::wire::registration::{Certificate, RegisterRequest, is_reserved_id};

use crate::issuer::core::{IssuerCore, IssuerError};
use crate::issuer::decide_participants::{
    ApprovalStep, EnrollmentRequestStep, RegistrationStep, decide_approval,
    decide_enrollment_request, decide_registration,
};
use crate::issuer::registry::{Enrollment, Participant};

impl IssuerCore {
    /// Registration: checks the proof of possession, records the key and
    /// answers `CERT = S_I(ID, PK, expiry)`. Registering the same key again
    /// returns a fresh certificate; another key for a taken id is refused,
    /// and so is an id that names the issuer or one of its services
    /// (`RESERVED_PARTICIPANT_IDS`), whatever the key, and a key of a kind
    /// the issuer's suite cannot seal to (an RSA key under `dhaes`, an
    /// Ed25519/X25519 key under `aes256`): every answer the issuer owes the
    /// participant (a payee's key, a refund's replacements) would then fail
    /// after its commit.
    pub fn register(&self, msg: &RegisterRequest) -> Result<Certificate, IssuerError> {
        if is_reserved_id(&msg.id) {
            return Err(IssuerError::IdentityReserved);
        }
        self.require_servable_key(&msg.public_key)?;
        open_register_request(msg)?;
        let _one_change_at_a_time = ledger::sync::lock(&self.participants_lock);
        let now = self.now();
        let expiry = now.plus_secs(self.config.cert_lifetime_secs);
        let registered = self.registry.get(&msg.id)?.map(|p| p.public_key);
        match decide_registration(
            &msg.id,
            &msg.public_key,
            registered.as_ref(),
            self.sealer.seal_identity(&msg.id),
            expiry,
        )? {
            // No fresh certificate for a participant not in good standing.
            RegistrationStep::Known => self.require_good_standing(&msg.id)?,
            RegistrationStep::Register(tx, event) => {
                self.commit_once(tx, || vec![event])?;
                self.registry.put(
                    &msg.id,
                    &Participant {
                        public_key: msg.public_key.clone(),
                        cert_expiry: expiry,
                        enrollments: Vec::new(),
                    },
                )?;
            }
        }
        Ok(certify(
            &self.sk_i,
            msg.id.clone(),
            msg.public_key.clone(),
            expiry,
        ))
    }

    /// Refuses a participant key the issuer's suite cannot serve.
    pub(crate) fn require_servable_key(
        &self,
        key: &protocol::crypto::PublicKey,
    ) -> Result<(), IssuerError> {
        key.check_suite(self.suite())
            .map_err(|e| IssuerError::Flow(protocol::flows::FlowError::Crypto(e)))
    }

    /// Enrollment 1: records the signed request as pending.
    pub fn request_enrollment(
        &self,
        msg: &EnrollmentRequest,
    ) -> Result<EnrollmentAnswer, IssuerError> {
        let now = self.now();
        // Taken before the signature is checked under the registered key,
        // so that key is still the registered one when the record is written.
        let _one_change_at_a_time = ledger::sync::lock(&self.participants_lock);
        let body = self
            .open_with_registered_keys(|key| open_enrollment_request(&self.sk_i, msg, key, now))?;
        let mut participant = self
            .registry
            .get(&body.id)?
            .ok_or(IssuerError::UnknownParticipant)?;
        let refused = self.registry.is_refused(&body.id, body.role)?;
        let recorded = participant.enrollments.iter().find(|e| e.role == body.role);
        let seals = (
            self.sealer.seal_identity(&body.id),
            self.sealer.seal_account(&body.bank_account),
        );
        match decide_enrollment_request(&body, refused, recorded, seals)? {
            EnrollmentRequestStep::Answered(status) => {
                return Ok(EnrollmentAnswer {
                    role: body.role,
                    status,
                });
            }
            EnrollmentRequestStep::Request(tx, event) => {
                self.commit_once(tx, || vec![event])?;
            }
        }
        participant.enrollments.push(Enrollment {
            role: body.role,
            bank_account: body.bank_account,
            approved: false,
            balance: None,
        });
        self.registry.put(&body.id, &participant)?;
        Ok(EnrollmentAnswer {
            role: body.role,
            status: EnrollmentStatus::Pending,
        })
    }

    /// Enrollment 2, out of band: an operator approves `id` for `role`.
    /// Merchants get an aggregate balance.
    pub fn approve_enrollment(&self, id: &ParticipantId, role: Role) -> Result<(), IssuerError> {
        let _one_change_at_a_time = ledger::sync::lock(&self.participants_lock);
        let mut participant = self
            .registry
            .get(id)?
            .ok_or(IssuerError::UnknownParticipant)?;
        let recorded = participant.enrollments.iter().find(|e| e.role == role);
        let (tx, event) = match decide_approval(
            id,
            role,
            recorded,
            self.sealer.seal_identity(id),
            BalanceId::random(),
        )? {
            ApprovalStep::Done => return Ok(()),
            ApprovalStep::Approve(tx, event) => (tx, event),
        };
        let fresh_balance = match &event {
            Event::Enrolled { balance, .. } => *balance,
            _ => None,
        };
        let balance = match self.commit_once(tx, || vec![event])? {
            // Logged before a crash kept it from the registry: keep the
            // balance the log already names.
            Some(at) => self
                .read_batch(at)?
                .into_iter()
                .find_map(|e| match e {
                    Event::Enrolled { balance, .. } => Some(balance),
                    _ => None,
                })
                .flatten(),
            None => fresh_balance,
        };
        let enrollment = participant
            .enrollments
            .iter_mut()
            .find(|e| e.role == role)
            .ok_or(IssuerError::NoSuchEnrollment)?;
        enrollment.approved = true;
        enrollment.balance = balance;
        self.registry.put(id, &participant)?;
        tracing::info!(%role, "enrollment approved");
        self.seal_log()?;
        Ok(())
    }

    /// What the registry knows of `id`.
    pub fn participant(&self, id: &ParticipantId) -> Result<Option<Participant>, IssuerError> {
        Ok(self.registry.get(id)?)
    }
}
