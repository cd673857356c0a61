//! Cipher suites, wire messages and the client side of every flow, as pure
//! state machines without I/O.
//!
//! - [`crypto`]: the suites (`aes256`, `tdes`) and primitives: `E*` envelopes,
//!   signatures, session keys, `e_K`, `mac_K`, key files, identity sealing.
//! - [`checkpoint`]: how the issuer signs, and anyone verifies, a log checkpoint.
//! - [`mint`]: the [`mint::Mint`], the only code that computes or checks a coin tag.
//! - [`wire`]: every message of `docs/protocol.md`, with bounded decoding.
//! - [`flows`]: the client side of each flow, and pure issuer-side helpers.

pub mod checkpoint;
pub mod crypto;
pub mod flows;
pub mod mint;
pub mod wire;
