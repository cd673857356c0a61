//! The messages between a validator and the sequencer: what they mean and
//! their postcard encoding. Framing, MACs and sequence numbers are
//! [`crate::channel`]'s.
//!
//! A validator decides everything a payment needs except the one thing that
//! must be decided in one place: whether its inputs are still unspent. It
//! sends the sequencer a [`CommitRequest`] (the inputs to reserve, the
//! events to append, the transaction id) and answers its client only after
//! [`FromSequencer::Durable`]. Events travel as the log's own encoding
//! (`Event::encode`), so the sequencer decodes them with the log's bounded,
//! canonical decoder.

use ledger::{CoinBody, CoinId, Event, ParticipantId, Seq, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use crate::constants::{EVENTS_PER_COMMIT_MAX, INPUTS_PER_COMMIT_MAX};

/// A validator's number for one request on its connection, echoed in the
/// answer so answers may come back in any order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// The sequencer's fencing epoch: raised each time a sequencer takes the
/// lease. A validator never goes back to a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FencingEpoch(pub u64);

/// Reserve `inputs`, append `events` as transaction `tx` at `at`, durably.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    pub request: RequestId,
    pub tx: TxId,
    /// The clock reading the validator decided the transaction with.
    pub at: Timestamp,
    /// The coins the transaction spends or revokes: exactly the coins its
    /// `CoinsSpent` and `CoinsRevoked` events name.
    pub inputs: Vec<CoinId>,
    /// Each event as `Event::encode` writes it.
    pub events: Vec<Vec<u8>>,
}

impl CommitRequest {
    /// A request for `events` (encoded here).
    pub fn new(
        request: RequestId,
        tx: TxId,
        at: Timestamp,
        inputs: Vec<CoinId>,
        events: &[Event],
    ) -> CommitRequest {
        CommitRequest {
            request,
            tx,
            at,
            inputs,
            events: events.iter().map(Event::encode).collect(),
        }
    }

    /// Whether the counts are within the protocol's limits (checked by the
    /// sequencer before it decodes a single event).
    pub fn within_limits(&self) -> bool {
        !self.events.is_empty()
            && self.events.len() <= EVENTS_PER_COMMIT_MAX
            && self.inputs.len() <= INPUTS_PER_COMMIT_MAX
    }
}

/// What a validator sends on an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToSequencer {
    Commit(CommitRequest),
    /// The validator gave up on `tx` before asking for its commit (or the
    /// client went away): release anything it holds. A no-op for a
    /// committed or unknown transaction.
    Abort {
        tx: TxId,
    },
    /// Liveness on an idle connection; echoed.
    Heartbeat {
        nonce: u64,
    },
    /// What the sequencer's shards know of `coins` (at most
    /// `INPUTS_PER_COMMIT_MAX`): a validator holds no coin state, and
    /// reads a payment's bodies (value, expiry, key epoch) here before it
    /// decides. A read: it reserves nothing; the commit reserves and
    /// checks every body again.
    Lookup {
        request: RequestId,
        coins: Vec<CoinId>,
    },
    /// A payment's call to the issuer the sequencer serves
    /// ([`PaymentCall`]); only an issuer's sequencer takes it.
    Payment {
        request: RequestId,
        call: PaymentCall,
    },
}

/// What a validator node asks of the issuer behind the sequencer while it
/// serves a payment: the node opens the request with the issuer's key
/// (the public-key work) and the issuer's one state decides the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCall {
    /// The key `id` registered (to check the payee's signature under).
    RegisteredKey { id: ParticipantId },
    /// A ValidationRequest the node opened: postcard of
    /// `protocol::flows::issuer::OpenedValidation` (both envelopes open,
    /// the payee's signature checked under `checked_under`, the SPKI DER
    /// of the key the node holds for the payee; P3 and the amount
    /// checked). The issuer checks that `checked_under` is the payee's
    /// registered key (`KeyChanged` if not), runs the rest of its
    /// validation (standing, replay check, enrollment, tags, reserve,
    /// durable commit) and answers its decision, which the node seals or
    /// signs.
    Validate {
        opened: Vec<u8>,
        checked_under: Vec<u8>,
    },
    /// A payment's Issuance2 as the payee sent it (wire encoding).
    Acknowledge { ack: Vec<u8> },
}

/// The issuer's answer to a [`PaymentCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentAnswer {
    /// `RegisteredKey`: the SPKI DER of the key, if registered.
    Key(Option<Vec<u8>>),
    /// `Validate`: postcard of `protocol::flows::issuer::PaymentDecision`
    /// (new coins with `K_I`, a receipt, a refusal), sent only once a
    /// committing decision's batch is durable; the node says it to the
    /// payee (seals the coins to the key it checked, signs the rest).
    Decided(Vec<u8>),
    /// `Validate`, answered already signed: `PaymentIssuance1` in its
    /// wire encoding.
    Issuance1(Vec<u8>),
    /// `Acknowledge`: the ack checked and its session used up, durably.
    Acknowledged,
    /// The call was refused, with what the node tells its client.
    Refused(PaymentRefusal),
}

/// Why the issuer refused a payment call: what the validator node answers
/// its client (the status and code its own gateway would give).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentRefusal {
    /// The same transaction is in flight: 409 with Retry-After.
    #[error("the same transaction is in flight; retry")]
    InFlight,
    #[error("participant is not registered")]
    NotRegistered,
    /// The key the node checked the payee's signature under is not the
    /// payee's registered key now: the node reads it again.
    #[error("the payee's registered key changed")]
    KeyChanged,
    #[error("the participant is suspended by the issuer's operator")]
    Suspended,
    #[error("the participant is revoked by the issuer's operator")]
    Revoked,
    /// A message that does not check (422), with the issuer's reason.
    #[error("{0}")]
    Refused(String),
    /// No room (sessions full, stopping): 503 with Retry-After.
    #[error("the issuer is busy; retry")]
    Busy,
    /// A failure inside the issuer (500); its details stay in its log.
    #[error("the issuer failed; see its log")]
    Internal,
    /// This sequencer serves no issuer (a bare commit sequencer).
    #[error("this sequencer serves no issuer's payments")]
    NotServed,
}

/// One coin as the sequencer's shards know it at a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoinState {
    Unspent(CoinBody),
    /// Reserved by a transaction in flight: a retry may find it unspent.
    Held,
    /// Spent, revoked or never issued.
    NotUnspent,
}

/// Why the sequencer refused a commit. Nothing was reserved or appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Inputs held by another transaction in flight: a retry may succeed.
    #[error("{} input(s) are held by another transaction", coins.len())]
    Busy { coins: Vec<CoinId> },
    /// Inputs spent, revoked or never issued.
    #[error("{} input(s) are not unspent", coins.len())]
    NotUnspent { coins: Vec<CoinId> },
    /// Another request for the same transaction is being committed.
    #[error("the transaction is already being committed")]
    InFlight,
    /// The request breaks the protocol: counts over limits, an event that
    /// does not decode, inputs that differ from the coins the events spend,
    /// an input listed twice, an unbalanced batch.
    #[error("malformed commit request: {0}")]
    Malformed(String),
    /// The log could not take the batch (the sequencer stops serving).
    #[error("the log refused the append")]
    Storage,
}

/// What the sequencer sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromSequencer {
    /// The transaction's batch is in the log, fsynced, at `first_seq`.
    /// `earlier` says it was committed by an earlier request (a retry, on
    /// this validator or another): the validator answers with the logged
    /// outcome.
    Durable {
        request: RequestId,
        tx: TxId,
        first_seq: Seq,
        earlier: bool,
    },
    Refused {
        request: RequestId,
        tx: TxId,
        refusal: Refusal,
    },
    HeartbeatAck {
        nonce: u64,
    },
    /// The answer to a `Lookup`: one state per coin asked, in its order.
    Coins {
        request: RequestId,
        coins: Vec<CoinState>,
    },
    /// The answer to a `Payment` call.
    Payment {
        request: RequestId,
        answer: PaymentAnswer,
    },
}
