//! The issuer across machines: validator nodes (gateway HTTPS, a
//! payment's public-key work, no state) in front of one sequencer: the
//! whole issuer ([`IssuerService`], deciding payments from its one state)
//! or the bare [`Sequencer`] (coin shards, idempotency table, group commit
//! to the log) for raw commit streams.
//!
//! - [`wire`]: the messages, [`wire::CommitRequest`] in,
//!   [`wire::FromSequencer`] (durable or refused) out.
//! - [`channel`]: the connection as a pure state machine: per-node HMAC
//!   keys, a per-connection key from both sides' nonces, numbered,
//!   encrypted, MACed frames.
//! - [`io`]: length-prefixed frames over a byte stream.
//! - [`sequencer`]: [`Sequencer`], the shards, idempotency and group
//!   commit behind the connection, with the pure [`sequencer::check_request`].
//! - [`server`]: the sequencer's TCP listener, a thread per validator.
//! - [`client`]: [`SequencerClient`], a validator's connection, with
//!   reconnection over several sequencer addresses and typed
//!   [`CommitError::Unavailable`] for 503.
//! - [`issuer_service`]: [`IssuerService`], the issuer's sequencer of
//!   validator nodes over an `actors::Issuer`.
//! - [`validator`]: [`Validator`], a node's payment work (open, forward,
//!   answer), [`ValidatorError::Unavailable`] for 503.
//! - [`lease`]: [`Lease`], which sequencer may append, and its fencing epoch.
//! - [`testkit`]: balanced purchases and payments for tests and load.
//! - [`constants`]: every limit.
//!
//! **Architecture invariant:** a validator answers nobody before the
//! sequencer said durable; cut off from it, it answers 503 with
//! Retry-After, never a guess.

pub mod channel;
pub mod client;
pub mod constants;
pub mod io;
pub mod issuer_service;
pub mod lease;
pub mod sequencer;
pub mod server;
pub mod testkit;
pub mod validator;
pub mod wire;

pub use channel::{
    Channel, FrameError, HandshakeError, KeyFileError, NodeKey, NodeKeys, NodeName, Side,
    ValidatorHandshake, fresh_nonce, sequencer_handshake,
};
pub use client::{ClientConfig, CommitError, Committed, SequencerClient};
pub use issuer_service::IssuerService;
pub use lease::{Lease, LeaseError};
pub use sequencer::{Sequencer, SequencerError};
pub use server::{Reply, SequencerServer, Service, serve, serve_service};
pub use validator::{Validator, ValidatorError};
pub use wire::{
    CoinState, CommitRequest, FencingEpoch, FromSequencer, Refusal, RequestId, ToSequencer,
};
