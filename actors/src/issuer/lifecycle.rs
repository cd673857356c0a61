//! A participant's life after registration: its operator refuses an
//! enrollment, suspends, revokes or reinstates the participant (each an
//! event in the log, then the registry), and the participant replaces its
//! key with a request its old key signed.
//!
//! Standing is enforced where requests are opened: every request signed by
//! a participant passes [`IssuerCore::open_with_registered_keys`], which
//! ends in [`IssuerCore::require_good_standing`]; the steps that identify a
//! participant otherwise (registration, a purchase's WRequest3 under its
//! session key) call it themselves.

use ledger::{Event, ParticipantId, Role, Standing, TxId};
use protocol::flows::issuer::certify;
use protocol::flows::key_change::{check_key_change_fresh, open_key_change};
use protocol::wire::key_change::KeyChangeRequest;
use protocol::wire::registration::Certificate;

use crate::issuer::core::{IssuerCore, IssuerError};
use crate::issuer::decide_participants::{
    EnrollmentRefusalStep, KeyChangeStep, ParticipantRefusal, decide_enrollment_refusal,
    decide_key_change, decide_logged_key_change, decide_standing,
};

impl IssuerCore {
    /// Refuses `id`'s request unless it is in good standing: suspended
    /// ([`IssuerError::ParticipantSuspended`]) or revoked
    /// ([`IssuerError::ParticipantRevoked`]).
    pub(crate) fn require_good_standing(&self, id: &ParticipantId) -> Result<(), IssuerError> {
        match self.registry.standing(id)? {
            Standing::Active => Ok(()),
            Standing::Suspended => Err(IssuerError::ParticipantSuspended),
            Standing::Revoked => Err(IssuerError::ParticipantRevoked),
        }
    }

    /// Where `id` stands with the issuer.
    pub fn standing(&self, id: &ParticipantId) -> Result<Standing, IssuerError> {
        Ok(self.registry.standing(id)?)
    }

    /// The operator refuses `id`'s pending enrollment for `role`: logged
    /// (`EnrollmentRefused`), the request dropped, and a later request for
    /// the role refused ([`IssuerError::EnrollmentRefused`]). Refusing again
    /// changes nothing; an approved enrollment is not pending
    /// ([`IssuerError::NoSuchEnrollment`]: suspend or revoke the
    /// participant instead).
    pub fn refuse_enrollment(&self, id: &ParticipantId, role: Role) -> Result<(), IssuerError> {
        let _one_change_at_a_time = ledger::sync::lock(&self.participants_lock);
        let participant = self
            .registry
            .get(id)?
            .ok_or(IssuerError::UnknownParticipant)?;
        let refused_before = self.registry.is_refused(id, role)?;
        let recorded = participant.enrollments.iter().find(|e| e.role == role);
        let (tx, event) = match decide_enrollment_refusal(
            id,
            role,
            refused_before,
            recorded,
            self.sealer.seal_identity(id),
        )? {
            EnrollmentRefusalStep::Done => return Ok(()),
            EnrollmentRefusalStep::Refuse(tx, event) => (tx, event),
        };
        self.commit_once(tx, || vec![event])?;
        self.registry.refuse_enrollment(id, role, &participant)?;
        tracing::info!(%role, "enrollment refused");
        self.seal_log()?;
        Ok(())
    }

    /// The operator sets `id`'s standing: `Suspended` and `Revoked` refuse
    /// its requests from now on, `Active` reinstates a suspended
    /// participant. Revocation is final: a revoked participant's standing
    /// does not change again ([`IssuerError::ParticipantRevoked`]). Setting
    /// the standing it has changes nothing.
    pub fn set_standing(&self, id: &ParticipantId, standing: Standing) -> Result<(), IssuerError> {
        let _one_change_at_a_time = ledger::sync::lock(&self.participants_lock);
        if self.registry.get(id)?.is_none() {
            return Err(IssuerError::UnknownParticipant);
        }
        let current = self.registry.standing(id)?;
        let Some(event) = decide_standing(current, standing, self.sealer.seal_identity(id))? else {
            return Ok(());
        };
        // Each change is its own transaction: a participant may be
        // suspended, reinstated and suspended again.
        self.commit_once(TxId::random(), || vec![event])?;
        self.registry.set_standing(id, standing)?;
        tracing::info!(%standing, "participant standing changed");
        self.seal_log()?;
        Ok(())
    }

    /// A participant replaces its key. The request must be signed by the
    /// registered key and prove the new one, be fresh and come from a
    /// participant in good standing; the change is logged (`KeyChanged`,
    /// with the old key's signature) before the registry takes the new key,
    /// and the answer is a certificate for it. A request whose new key is
    /// already registered is a repeat: it gets a fresh certificate and
    /// changes nothing. Anything else (another key registered, nobody
    /// registered under the id) is the same refusal, a bad signature. A new
    /// key of a kind the issuer's suite cannot seal to is refused as at
    /// registration.
    pub fn change_key(&self, msg: &KeyChangeRequest) -> Result<Certificate, IssuerError> {
        open_key_change(msg, &self.id_i, &self.sk_i.public())?;
        self.require_servable_key(&msg.new_key)?;
        let not_registered = || IssuerError::from(ParticipantRefusal::NotTheRegisteredKey);
        let _one_change_at_a_time = ledger::sync::lock(&self.participants_lock);
        let mut participant = self.registry.get(&msg.id)?.ok_or_else(not_registered)?;
        self.require_good_standing(&msg.id)?;
        let now = self.now();
        let expiry = now.plus_secs(self.config.cert_lifetime_secs);
        let step = decide_key_change(
            msg,
            &participant.public_key,
            self.sealer.seal_identity(&msg.id),
            expiry,
        )?;
        let (tx, event) = match step {
            KeyChangeStep::Repeat => {
                return Ok(certify(
                    &self.sk_i,
                    msg.id.clone(),
                    msg.new_key.clone(),
                    expiry,
                ));
            }
            KeyChangeStep::Change(tx, event) => (tx, event),
        };
        check_key_change_fresh(msg, now)?;
        let committed = self.commit_once(tx, || vec![event])?;
        let expiry = match committed {
            None => expiry,
            // This change is in the log already.
            Some(at) => {
                let logged = self.read_batch(at)?.into_iter().find_map(|e| match e {
                    Event::KeyChanged { cert_expiry, .. } => Some(cert_expiry),
                    _ => None,
                });
                decide_logged_key_change(participant.cert_expiry, logged)?
            }
        };
        participant.public_key = msg.new_key.clone();
        participant.cert_expiry = expiry;
        self.registry.put(&msg.id, &participant)?;
        tracing::info!("participant key changed");
        Ok(certify(
            &self.sk_i,
            msg.id.clone(),
            msg.new_key.clone(),
            expiry,
        ))
    }
}
