//! [`Validator`]: a validator node's payment work. It holds the issuer's
//! key and no state: it opens a `ValidationRequest` (both envelopes, the
//! payee's signature under the key the issuer's registry gives it, P3 and
//! the amount), hands what it opened to the issuer's sequencer
//! ([`crate::IssuerService`]), and returns the `PaymentIssuance1` the
//! sequencer sends once the payment's batch is durable. Cut off from the
//! sequencer, every call is [`ValidatorError::Unavailable`] (503 with
//! Retry-After): a node never answers from a guess.
//!
//! ```text
//! client ──HTTPS──► node: open E*_I(…) with SK_I        (public-key work)
//!                   node ──RegisteredKey{ID_PY}──► sequencer: registry
//!                   node: verify the payee's signature, open EncC_1
//!                   node ──Validate{opened}──────► sequencer: standing, replay
//!                        check, enrollment, tags, reserve, durable commit,
//!                        Issuance1 and its ack session
//! client ◄──HTTPS── node ◄──Issuance1 (durable)─── sequencer
//! ```

use std::sync::Arc;

use ledger::{ParticipantId, Timestamp};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use protocol::flows::FlowError;
use protocol::flows::issuer::{open_validation_request, reject_payment};
use protocol::wire::RejectSubject;
use protocol::wire::payment::{PaymentIssuance1, PaymentIssuance2, ValidationRequest};

use crate::client::{CommitError, SequencerClient};
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
        let mut looked_up: Result<(), ValidatorError> = Ok(());
        let opened = open_validation_request(&self.sk_i, msg, |id| match self.registered_key(id) {
            Ok(key) => key,
            Err(e) => {
                looked_up = Err(e);
                None
            }
        });
        // The registry was not read: nothing may be concluded of the
        // signature (a decoy key failed it).
        looked_up?;
        let opened = match opened {
            Ok(opened) => opened,
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
            Err(e) => return Err(e.into()),
        };
        // Serializing our own type into a Vec does not fail.
        let opened = postcard::to_allocvec(&opened).map_err(|_| ValidatorError::BadAnswer)?;
        match self.sequencer.payment(PaymentCall::Validate { opened })? {
            PaymentAnswer::Issuance1(bytes) => {
                protocol::wire::decode(&bytes).map_err(|_| ValidatorError::BadAnswer)
            }
            PaymentAnswer::Refused(refusal) => Err(ValidatorError::Refused(refusal)),
            _ => Err(ValidatorError::BadAnswer),
        }
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
