//! Registration (the issuer certifies a key) and enrollment (a request
//! recorded on-line, approved or refused out of band by an operator; the
//! refusal and the rest of a participant's life are in `lifecycle`).

use ledger::{BalanceId, Event, ParticipantId, Role, TxId};
use protocol::flows::issuer::{certify, open_enrollment_request, open_register_request};
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentRequest, EnrollmentStatus};
use protocol::wire::registration::{Certificate, RegisterRequest, is_reserved_id};

use crate::issuer::core::{IssuerCore, IssuerError};
use crate::issuer::registry::{Enrollment, Participant};

impl IssuerCore {
    /// Registration: checks the proof of possession, records the key and
    /// answers `CERT = S_I(ID, PK, expiry)`. Registering the same key again
    /// returns a fresh certificate; another key for a taken id is refused,
    /// and so is an id that names the issuer or one of its services
    /// (`RESERVED_PARTICIPANT_IDS`), whatever the key.
    pub fn register(&self, msg: &RegisterRequest) -> Result<Certificate, IssuerError> {
        if is_reserved_id(&msg.id) {
            return Err(IssuerError::IdentityReserved);
        }
        open_register_request(msg)?;
        let now = self.now();
        let expiry = now.plus_secs(self.config.cert_lifetime_secs);
        match self.registry.get(&msg.id)? {
            Some(p) if p.public_key != msg.public_key => return Err(IssuerError::IdentityTaken),
            // No fresh certificate for a participant not in good standing.
            Some(_) => self.require_good_standing(&msg.id)?,
            None => {
                let tx = TxId::derive(
                    "vc/tx/register",
                    &[msg.id.as_str().as_bytes(), &msg.public_key.fingerprint()],
                );
                self.commit_once(tx, || {
                    vec![Event::Registered {
                        participant: self.sealer.seal_identity(&msg.id),
                        public_key: msg.public_key.to_ledger(),
                        cert_expiry: expiry,
                    }]
                })?;
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

    /// Enrollment 1: records the signed request as pending.
    pub fn request_enrollment(
        &self,
        msg: &EnrollmentRequest,
    ) -> Result<EnrollmentAnswer, IssuerError> {
        let now = self.now();
        let body = self
            .open_with_registered_keys(|key| open_enrollment_request(&self.sk_i, msg, key, now))?;
        let mut participant = self
            .registry
            .get(&body.id)?
            .ok_or(IssuerError::UnknownParticipant)?;
        if self.registry.is_refused(&body.id, body.role)? {
            return Err(IssuerError::EnrollmentRefused);
        }
        if let Some(e) = participant.enrollments.iter().find(|e| e.role == body.role) {
            let status = if e.approved {
                EnrollmentStatus::Approved
            } else {
                EnrollmentStatus::Pending
            };
            return Ok(EnrollmentAnswer {
                role: body.role,
                status,
            });
        }
        let tx = TxId::derive(
            "vc/tx/enroll-request",
            &[
                body.id.as_str().as_bytes(),
                body.role.to_string().as_bytes(),
            ],
        );
        self.commit_once(tx, || {
            vec![Event::EnrollmentRequested {
                participant: self.sealer.seal_identity(&body.id),
                role: body.role,
                bank_account: self.sealer.seal_account(&body.bank_account),
                signature: body.signature.to_ledger(),
            }]
        })?;
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
        let mut participant = self
            .registry
            .get(id)?
            .ok_or(IssuerError::UnknownParticipant)?;
        let enrollment = participant
            .enrollments
            .iter_mut()
            .find(|e| e.role == role)
            .ok_or(IssuerError::NoSuchEnrollment)?;
        if enrollment.approved {
            return Ok(());
        }
        let tx = TxId::derive(
            "vc/tx/enroll-approve",
            &[id.as_str().as_bytes(), role.to_string().as_bytes()],
        );
        let mut fresh_balance = None;
        let balance = match self.commit_once(tx, || {
            let balance = (role == Role::Merchant).then(BalanceId::random);
            fresh_balance = balance;
            vec![Event::Enrolled {
                participant: self.sealer.seal_identity(id),
                role,
                balance,
            }]
        })? {
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
