//! Every message of `docs/protocol.md` as a Rust type, and the one way they go on
//! the wire: a protocol version byte, then postcard.
//!
//! Decoding is bounded three times over: each message type names its largest
//! encoding ([`WireMessage::BYTES_MAX`]), checked before a byte is decoded;
//! collections inside are [`BoundedVec`] / [`BoundedBytes`], which refuse a
//! hostile length before allocating; and trailing bytes are refused. An
//! encoding is not unique, though: postcard accepts an overlong varint for a
//! length or an integer, so two byte strings can decode to one message.
//! Nothing keys on a message's raw bytes for that reason: signatures and MACs
//! cover the transcript [`transcript`] rebuilds from the decoded fields, and
//! replay detection keys on nonces and transaction ids. After decoding,
//! [`WireMessage::validate`] checks what serde cannot (a coin spec's
//! invariants, coin counts).
//!
//! Collections inside other crates' types (a [`ledger::CoinSpec`]'s lines, the
//! bytes of an envelope or signature) are plain `Vec`s: postcard hands serde a
//! length hint only when the remaining input could hold that many elements,
//! so they too allocate in proportion to the input (itself under `BYTES_MAX`),
//! and `validate` or the owning type checks their own bounds.
//!
//! The bodies that travel inside envelopes and ciphertexts (e.g.
//! [`purchase::WRequest1Body`]) are messages too, decoded the same way once
//! opened. What each signature and MAC covers is built by [`transcript`],
//! always under a label of [`labels`].
//!
//! Modules follow the flows: [`registration`], [`enrollment`], [`purchase`],
//! [`payment`] (also change, refresh and redeem: payments to oneself),
//! [`refund`], [`status`], [`cash_out`] (a merchant's aggregated balance
//! paid out), [`key_change`] (a participant replaces its key); [`common`]
//! holds what several flows share
//! (transaction ids, the signed rejection of P4).

pub mod bounded;
pub mod cash_out;
pub mod common;
pub mod enrollment;
pub mod key_change;
pub mod labels;
pub mod limits;
pub mod payment;
pub mod purchase;
pub mod refund;
pub mod registration;
pub mod status;

pub use bounded::{BoundExceeded, BoundedBytes, BoundedText, BoundedVec};
pub use common::{CoinList, CoinSerials, PaymentTid, RejectReason, RejectSubject, SignedReject};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The protocol version written in front of every message.
pub const PROTOCOL_VERSION: u8 = 1;

/// Why bytes off the network are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("message is empty")]
    Empty,
    #[error("message of {len} bytes exceeds the {max}-byte limit of {message}")]
    TooLong {
        message: &'static str,
        len: usize,
        max: usize,
    },
    #[error("unknown protocol version {0}, expected {PROTOCOL_VERSION}")]
    UnknownVersion(u8),
    #[error("malformed {message}: {reason}")]
    Malformed {
        message: &'static str,
        reason: String,
    },
    #[error("{count} trailing bytes after {message}")]
    TrailingBytes { message: &'static str, count: usize },
    #[error("invalid {message}: {reason}")]
    Invalid {
        message: &'static str,
        reason: &'static str,
    },
}

/// A type that travels on the wire (or inside an envelope) on its own.
pub trait WireMessage: Serialize + DeserializeOwned {
    /// What the type is called in errors.
    const NAME: &'static str;
    /// Its largest encoding, version byte included.
    const BYTES_MAX: usize;

    /// Checks what decoding alone cannot. Called by [`decode`].
    fn validate(&self) -> Result<(), WireError> {
        Ok(())
    }

    /// An [`WireError::Invalid`] naming this message.
    fn invalid(reason: &'static str) -> WireError {
        WireError::Invalid {
            message: Self::NAME,
            reason,
        }
    }
}

/// Encodes a message: the version byte, then postcard.
pub fn encode<M: WireMessage>(msg: &M) -> Vec<u8> {
    // Serializing into a Vec fails only for types serde cannot describe
    // (sequences of unknown length); ours are all plain structs and enums.
    #[allow(clippy::expect_used)]
    let out =
        postcard::to_extend(msg, vec![PROTOCOL_VERSION]).expect("wire messages always serialize");
    debug_assert!(
        out.len() <= M::BYTES_MAX,
        "{} encodes to {} bytes, above its {}-byte limit",
        M::NAME,
        out.len(),
        M::BYTES_MAX
    );
    out
}

/// Decodes a message: size limit first, then version, postcard, no trailing
/// bytes, then the type's own checks.
pub fn decode<M: WireMessage>(bytes: &[u8]) -> Result<M, WireError> {
    if bytes.len() > M::BYTES_MAX {
        return Err(WireError::TooLong {
            message: M::NAME,
            len: bytes.len(),
            max: M::BYTES_MAX,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    let (msg, rest) = postcard::take_from_bytes::<M>(body).map_err(|e| WireError::Malformed {
        message: M::NAME,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes {
            message: M::NAME,
            count: rest.len(),
        });
    }
    msg.validate()?;
    Ok(msg)
}

/// The bytes a signature or MAC covers: the postcard encoding of the tuple of
/// fields, each length-prefixed by postcard, so no two tuples share bytes.
/// The label is passed to the primitive separately, which binds it.
pub fn transcript<T: Serialize + ?Sized>(fields: &T) -> Vec<u8> {
    // As in `encode`: our transcripts are tuples of plain types.
    #[allow(clippy::expect_used)]
    postcard::to_stdvec(fields).expect("transcripts always serialize")
}
