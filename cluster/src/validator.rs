//! [`Validator`]: a validator node's payment work. It holds the issuer's
//! key, the payees' keys it has read, and no coin state: it opens a
//! `ValidationRequest` (both envelopes, the payee's signature under the
//! key it holds for the payee, P3 and the amount), hands what it opened
//! and the key it checked under to the issuer's sequencer
//! ([`crate::IssuerService`]), and says the decision the sequencer sends
//! once the payment's batch is durable: new coins sealed to the payee's
//! key, a receipt or refusal signed with the issuer's key. Cut off from
//! the sequencer, every call is [`ValidatorError::Unavailable`] (503 with
//! Retry-After): a node never answers from a guess.
//!
//! ```text
//! client ──HTTPS──► node: open E*_I(…) with SK_I        (public-key work)
//!                   node ──RegisteredKey{ID_PY}──► sequencer (first payment only)
//!                   node: verify the payee's signature, open EncC_1
//!                   node ──Validate{opened, key}──► sequencer: key still
//!                        registered, standing, replay check, enrollment,
//!                        tags, reserve, durable commit, ack session (K_I)
//!                   node ◄──decision (durable)──── sequencer
//!                   node: seal coins to PK_PY / sign  (public-key work)
//! client ◄──HTTPS── node
//! ```
//!
//! The payees' keys are kept because the issuer checks, at every payment,
//! that the key a node checked under is the registered one: a key changed
//! since costs a second round ([`PaymentRefusal::KeyChanged`], or a
//! signature that fails under the kept key), never a payment decided on
//! the old key's word. The one answer a node signs without asking the
//! issuer, the refusal of a payment whose inner payee or amount differs
//! (P3), it signs only under a key read afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ledger::{ParticipantId, Timestamp};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use protocol::flows::FlowError;
use protocol::flows::issuer::{
    OpenedValidation, PaymentDecision, open_validation_request, reject_payment,
};
use protocol::wire::RejectSubject;
use protocol::wire::payment::{PaymentIssuance1, PaymentIssuance2, ValidationRequest};

use crate::client::{CommitError, SequencerClient};
use crate::constants::PAYEE_KEYS_CACHED_MAX;
use crate::wire::{PaymentAnswer, PaymentCall, PaymentRefusal};

/// Why a node could not answer a payment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidatorError {
    /// No sequencer answered: 503 with this Retry-After. Nothing is known
    /// of the payment; the client's retry (here or on another node) gets
    /// the logged outcome.
    #[error("the issuer's sequencer is unreachable: retry after {retry_after_secs} s")]
    Unavailable { retry_after_secs: u64 },
    /// The request does not open or check (the issuer's own refusal of it).
    #[error("request refused: {0}")]
    Flow(#[from] FlowError),
    /// The issuer refused the call.
    #[error("{0}")]
    Refused(PaymentRefusal),
    /// The sequencer answered something that is not what was asked.
    #[error("the sequencer's answer does not decode")]
    BadAnswer,
}

impl From<CommitError> for ValidatorError {
    fn from(e: CommitError) -> ValidatorError {
        match e {
            CommitError::Unavailable { retry_after_secs } => {
                ValidatorError::Unavailable { retry_after_secs }
            }
            // A payment call is never answered with a commit refusal.
            CommitError::Refused(_) => ValidatorError::BadAnswer,
        }
    }
}

/// A validator node: the issuer's key and a connection to its sequencer.
#[derive(Clone)]
pub struct Validator {
    sk_i: Arc<SecretKey>,
    id_i: ParticipantId,
    suite: SuiteId,
    sequencer: SequencerClient,
    /// Payees' registered keys as the sequencer gave them; each use is
    /// checked by the issuer.
    payee_keys: Arc<Mutex<HashMap<ParticipantId, PublicKey>>>,
}

/// Where the key a request was checked under came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeySource {
    Kept,
    Fresh,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("suite", &self.suite)
            .field("sequencer", &self.sequencer)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A node opening requests with `sk_i` (the issuer's key, of `suite`).
    pub fn new(sk_i: SecretKey, suite: SuiteId, sequencer: SequencerClient) -> Validator {
        Validator {
            sk_i: Arc::new(sk_i),
            // A valid constant id.
            id_i: ParticipantId::new(protocol::wire::registration::ISSUER_ID)
                .unwrap_or_else(|_| unreachable!("the issuer's id is a valid id")),
            suite,
            sequencer,
            payee_keys: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn id(&self) -> &ParticipantId {
        &self.id_i
    }

    pub fn public_key(&self) -> PublicKey {
        self.sk_i.public()
    }

    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// Whether a sequencer connection is open (the node's health).
    pub fn is_connected(&self) -> bool {
        self.sequencer.is_connected()
    }

    /// ValidationRequest -> Issuance1, through the issuer's sequencer.
    /// Blocks this thread for the sequencer's answer (a durable commit).
    pub fn validate(&self, msg: &ValidationRequest) -> Result<PaymentIssuance1, ValidatorError> {
        // Cut off: say so before spending a public-key operation on a
        // request nobody can decide.
        self.ensure_reachable()?;
        match self.validate_under(msg, KeySource::Kept) {
            // The payee's key changed since this node read it: read it
            // again and check once more.
            Err(Retry::WithFreshKey) => match self.validate_under(msg, KeySource::Fresh) {
                Err(Retry::WithFreshKey) => {
                    Err(ValidatorError::Refused(PaymentRefusal::KeyChanged))
                }
                Err(Retry::No(e)) => Err(e),
                Ok(answer) => Ok(answer),
            },
            Err(Retry::No(e)) => Err(e),
            Ok(answer) => Ok(answer),
        }
    }

    /// One try of [`Validator::validate`], with the payee's key as kept
    /// (read if not kept) or read afresh.
    fn validate_under(
        &self,
        msg: &ValidationRequest,
        source: KeySource,
    ) -> Result<PaymentIssuance1, Retry> {
        let mut looked_up: Result<Option<(PublicKey, KeySource)>, ValidatorError> = Ok(None);
        let opened =
            open_validation_request(&self.sk_i, msg, |id| match self.payee_key(id, source) {
                Ok(Some((key, from))) => {
                    looked_up = Ok(Some((key.clone(), from)));
                    Some(key)
                }
                Ok(None) => None,
                Err(e) => {
                    looked_up = Err(e);
                    None
                }
            });
        // The registry was not read: nothing may be concluded of the
        // signature (a decoy key failed it).
        let key = looked_up.map_err(Retry::No)?;
        let opened = match opened {
            Ok(opened) => opened,
            // A refusal the node signs on the payee's word alone, the
            // issuer not asked: only under the key registered now. A kept
            // key may be one the payee replaced (a stolen one, say).
            Err(FlowError::Refused {
                subject: RejectSubject::Payment { id_py, .. },
                ..
            }) if matches!(key, Some((_, KeySource::Kept))) => {
                self.forget_key(&id_py);
                return Err(Retry::WithFreshKey);
            }
            // The issuer signs its refusals of P3 and the amount.
            Err(FlowError::Refused {
                subject: RejectSubject::Payment { id_py, tid_py },
                reason,
            }) => {
                return Ok(reject_payment(
                    &self.sk_i,
                    id_py,
                    tid_py,
                    reason,
                    Vec::new(),
                    Timestamp::now(),
                ));
            }
            // A kept key may be one the payee has since replaced.
            Err(FlowError::BadSignature { .. }) if matches!(key, Some((_, KeySource::Kept))) => {
                return Err(Retry::WithFreshKey);
            }
            Err(e) => return Err(Retry::No(e.into())),
        };
        let Some((key, _)) = key else {
            // Opened means the signature checked under a registered key.
            return Err(Retry::No(ValidatorError::BadAnswer));
        };
        // Serializing our own type into a Vec does not fail.
        let bytes =
            postcard::to_allocvec(&opened).map_err(|_| Retry::No(ValidatorError::BadAnswer))?;
        let call = PaymentCall::Validate {
            opened: bytes,
            checked_under: key.to_ledger().0,
        };
        match self
            .sequencer
            .payment(call)
            .map_err(|e| Retry::No(e.into()))?
        {
            PaymentAnswer::Decided(bytes) => {
                let decision: PaymentDecision = postcard::from_bytes(&bytes)
                    .map_err(|_| Retry::No(ValidatorError::BadAnswer))?;
                self.say(&opened, &decision, &key).map_err(Retry::No)
            }
            PaymentAnswer::Issuance1(bytes) => {
                protocol::wire::decode(&bytes).map_err(|_| Retry::No(ValidatorError::BadAnswer))
            }
            PaymentAnswer::Refused(PaymentRefusal::KeyChanged) => {
                self.forget_key(&opened.id_py);
                Err(Retry::WithFreshKey)
            }
            PaymentAnswer::Refused(refusal) => Err(Retry::No(ValidatorError::Refused(refusal))),
            _ => Err(Retry::No(ValidatorError::BadAnswer)),
        }
    }

    /// The issuer's decision said to the payee: new coins sealed to the key
    /// its signature checked under (which the issuer confirmed is its
    /// registered key), a receipt or refusal signed.
    fn say(
        &self,
        opened: &OpenedValidation,
        decision: &PaymentDecision,
        payee_key: &PublicKey,
    ) -> Result<PaymentIssuance1, ValidatorError> {
        Ok(decision.answer(&self.sk_i, &self.id_i, opened, Some(payee_key))?)
    }

    /// A payment's Issuance2, checked and used up by the issuer.
    pub fn acknowledge(&self, msg: &PaymentIssuance2) -> Result<(), ValidatorError> {
        let ack = protocol::wire::encode(msg);
        match self.sequencer.payment(PaymentCall::Acknowledge { ack })? {
            PaymentAnswer::Acknowledged => Ok(()),
            PaymentAnswer::Refused(refusal) => Err(ValidatorError::Refused(refusal)),
            _ => Err(ValidatorError::BadAnswer),
        }
    }

    fn ensure_reachable(&self) -> Result<(), ValidatorError> {
        if self.sequencer.reachable() {
            Ok(())
        } else {
            Err(ValidatorError::Unavailable {
                retry_after_secs: crate::constants::RETRY_AFTER_SECS,
            })
        }
    }

    /// The payee's key: as kept, or read from the issuer (and kept).
    fn payee_key(
        &self,
        id: &ParticipantId,
        source: KeySource,
    ) -> Result<Option<(PublicKey, KeySource)>, ValidatorError> {
        if source == KeySource::Kept
            && let Some(key) = ledger::sync::lock(&self.payee_keys).get(id)
        {
            return Ok(Some((key.clone(), KeySource::Kept)));
        }
        let key = self.registered_key(id)?;
        if let Some(key) = &key {
            let mut kept = ledger::sync::lock(&self.payee_keys);
            if kept.len() >= PAYEE_KEYS_CACHED_MAX {
                kept.clear();
            }
            kept.insert(id.clone(), key.clone());
        }
        Ok(key.map(|key| (key, KeySource::Fresh)))
    }

    fn forget_key(&self, id: &ParticipantId) {
        ledger::sync::lock(&self.payee_keys).remove(id);
    }

    fn registered_key(&self, id: &ParticipantId) -> Result<Option<PublicKey>, ValidatorError> {
        match self
            .sequencer
            .payment(PaymentCall::RegisteredKey { id: id.clone() })?
        {
            PaymentAnswer::Key(None) => Ok(None),
            PaymentAnswer::Key(Some(der)) => PublicKey::from_spki_der(&der)
                .map(Some)
                .map_err(|_| ValidatorError::BadAnswer),
            PaymentAnswer::Refused(refusal) => Err(ValidatorError::Refused(refusal)),
            _ => Err(ValidatorError::BadAnswer),
        }
    }
}

/// Whether a try of a validation is worth a second with the payee's key
/// read afresh.
enum Retry {
    WithFreshKey,
    No(ValidatorError),
}
