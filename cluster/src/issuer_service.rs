//! [`IssuerService`]: the sequencer of an issuer's payment cluster. It
//! serves validator nodes from the issuer's one state, the [`Issuer`] this
//! process runs (its commit path, shards, idempotency, registry, sessions
//! and mint), so the coins a validator's payment spends and the coins the
//! issuer's own gateway sees are one set, never two views of one log.
//!
//! A validator node does a payment's public-key work: opening both
//! envelopes, the payee's signature under the key it holds for the payee
//! ([`PaymentCall::RegisteredKey`] gives it, the node keeps it), and
//! saying the answer (sealing new coins to the payee, signing a receipt
//! or a refusal). This service runs the rest of the issuer's one
//! validation sequence on what the node opened ([`Issuer::decide_opened`]:
//! the key still the registered one, standing, replay check, enrollment,
//! tags, reserve, durable commit, the ack session) and answers the
//! decision only once its batch is durable. Raw commit requests are the
//! bare [`crate::Sequencer`]'s: refused here.

use std::future::Future;

use actors::{CoinPresence, Issuer, IssuerError, ValidationOutcome};
use ledger::{CoinId, TxId};
use protocol::flows::issuer::OpenedValidation;
use protocol::wire::payment::PaymentIssuance2;

use crate::constants::INPUTS_PER_COMMIT_MAX;
use crate::server::{Reply, Service};
use crate::wire::{
    CoinState, CommitRequest, FencingEpoch, FromSequencer, PaymentAnswer, PaymentCall,
    PaymentRefusal, Refusal,
};

/// The issuer's state served to validator nodes.
pub struct IssuerService {
    /// `None` once closed: the issuer is stopping, and nodes still
    /// connected are told to retry (elsewhere) rather than keep it open.
    issuer: std::sync::RwLock<Option<Issuer>>,
    epoch: FencingEpoch,
    /// Polls validations while their batches wait for the log (no thread
    /// held per payment in flight).
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for IssuerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerService")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl IssuerService {
    /// Serves `issuer` (started, its actors running) under fencing `epoch`.
    pub fn new(issuer: Issuer, epoch: FencingEpoch) -> std::io::Result<IssuerService> {
        // A validation's own CPU here (registry reads, tags, reserve, the
        // mint, staging) is its largest share on this host once the log
        // writer's fsync groups grow: one thread per core, so it is not
        // the sequencer's single-thread limit.
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("issuer-service")
            .enable_all()
            .build()?;
        Ok(IssuerService {
            issuer: std::sync::RwLock::new(Some(issuer)),
            epoch,
            runtime,
        })
    }

    /// Lets go of the issuer (so that it can stop while nodes are still
    /// connected); every later call is answered `Busy`.
    pub fn close(&self) {
        *self.issuer.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn issuer(&self) -> Option<Issuer> {
        self.issuer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn spawn<F>(&self, work: F, reply: Reply<PaymentAnswer>)
    where
        F: Future<Output = PaymentAnswer> + Send + 'static,
    {
        self.runtime.spawn(async move { reply(work.await) });
    }
}

/// What a node tells its client of the issuer's refusal. Technical
/// failures stay in the issuer's log: the node says only "internal".
pub fn payment_refusal(e: IssuerError) -> PaymentRefusal {
    match e {
        IssuerError::InFlight => PaymentRefusal::InFlight,
        IssuerError::PayeeKeyChanged => PaymentRefusal::KeyChanged,
        IssuerError::UnknownParticipant
        | IssuerError::Flow(protocol::flows::FlowError::UnknownParticipant) => {
            PaymentRefusal::NotRegistered
        }
        IssuerError::ParticipantSuspended => PaymentRefusal::Suspended,
        IssuerError::ParticipantRevoked => PaymentRefusal::Revoked,
        IssuerError::Flow(flow) => PaymentRefusal::Refused(flow.to_string()),
        IssuerError::Session(
            s @ (actors::SessionError::Unknown
            | actors::SessionError::Expired
            | actors::SessionError::AlreadyUsed),
        ) => PaymentRefusal::Refused(s.to_string()),
        IssuerError::Session(actors::SessionError::Full) | IssuerError::Stopped => {
            PaymentRefusal::Busy
        }
        other => {
            tracing::error!(error = %other, "a validator's payment call failed");
            PaymentRefusal::Internal
        }
    }
}

impl Service for IssuerService {
    fn epoch(&self) -> FencingEpoch {
        self.epoch
    }

    fn commit(&self, request: CommitRequest, reply: Reply<FromSequencer>) {
        reply(FromSequencer::Refused {
            request: request.request,
            tx: request.tx,
            refusal: Refusal::Malformed(
                "an issuer's sequencer takes payments its validators opened, not raw commits"
                    .into(),
            ),
        });
    }

    fn abort(&self, _tx: TxId) {
        // Validators hold nothing here: a payment's reservation lives
        // inside one call to the issuer.
    }

    fn lookup(&self, coins: &[CoinId]) -> Option<Vec<CoinState>> {
        if coins.len() > INPUTS_PER_COMMIT_MAX {
            return None;
        }
        let Some(issuer) = self.issuer() else {
            // Stopping: nothing is known, which a node treats as taken.
            return Some(vec![CoinState::Held; coins.len()]);
        };
        let core = issuer.core();
        Some(
            coins
                .iter()
                .map(|coin| match core.coin_presence(coin) {
                    CoinPresence::Reserved => CoinState::Held,
                    _ => match core.unspent_coin(coin) {
                        Some(body) => CoinState::Unspent(body),
                        None => CoinState::NotUnspent,
                    },
                })
                .collect(),
        )
    }

    fn payment(&self, call: PaymentCall, reply: Reply<PaymentAnswer>) {
        let Some(issuer) = self.issuer() else {
            return reply(PaymentAnswer::Refused(PaymentRefusal::Busy));
        };
        match call {
            PaymentCall::RegisteredKey { id } => reply(match issuer.registered_key(&id) {
                Ok(key) => PaymentAnswer::Key(key.map(|k| k.to_ledger().0)),
                Err(e) => PaymentAnswer::Refused(payment_refusal(e)),
            }),
            PaymentCall::Validate {
                opened,
                checked_under,
            } => {
                let opened: OpenedValidation = match postcard::from_bytes(&opened) {
                    Ok(opened) => opened,
                    Err(_) => {
                        return reply(PaymentAnswer::Refused(PaymentRefusal::Refused(
                            "the opened request does not decode".into(),
                        )));
                    }
                };
                // Compared as bytes with the registered key's canonical
                // encoding: nothing to parse.
                let checked_under = ledger::PublicKeyDer(checked_under);
                self.spawn(
                    async move {
                        match issuer.decide_opened(opened, checked_under).await {
                            Ok(ValidationOutcome::Decided(decided)) => PaymentAnswer::Decided(
                                // Serializing our own type into a Vec does not fail.
                                postcard::to_allocvec(&decided.decision).unwrap_or_default(),
                            ),
                            Ok(ValidationOutcome::Signed(answer)) => {
                                PaymentAnswer::Issuance1(protocol::wire::encode(&answer))
                            }
                            Err(e) => PaymentAnswer::Refused(payment_refusal(e)),
                        }
                    },
                    reply,
                );
            }
            PaymentCall::Acknowledge { ack } => {
                let ack: PaymentIssuance2 = match protocol::wire::decode(&ack) {
                    Ok(ack) => ack,
                    Err(e) => {
                        return reply(PaymentAnswer::Refused(PaymentRefusal::Refused(
                            e.to_string(),
                        )));
                    }
                };
                self.spawn(
                    async move {
                        match issuer.payment_issuance2(ack).await {
                            Ok(()) => PaymentAnswer::Acknowledged,
                            Err(e) => PaymentAnswer::Refused(payment_refusal(e)),
                        }
                    },
                    reply,
                );
            }
        }
    }
}
