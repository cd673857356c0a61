//! The user index as its own service: the one party that holds the key
//! opening identities and bank accounts, in its own directory, run by its
//! own process (`varietycash index serve`) under its own OS user.
//!
//! Data flow:
//!
//! ```text
//! issuer log ──(IndexForwarder: signed RecordDelivery, in seq order)──► IndexService::receive
//!                                                                      └► projections::UserIndex
//! operator A ─┐ signed approvals of one DisclosureOrder
//! operator B ─┴──► index: attributed? ──► issuer: both keys listed and different,
//!                                          IdentityDisclosedUnderDualControl appended,
//!                                          DisclosureLogged signed by S_I
//!                  index: IndexService::disclose checks that signature ──► the identity
//! ```
//!
//! - [`IndexService`]: opens the directory ([`INDEX_KEY_FILE`], the
//!   projection file), takes deliveries (the issuer's signature, each
//!   record's chain hash and link; records at or below the applied seq are
//!   skipped, so a redelivery changes nothing: each record is applied once),
//!   and discloses only on the issuer's signed word that the disclosure is
//!   on its log.
//! - [`Outbox`]: on the issuer's side, how far the index has acknowledged
//!   the log (the log itself is the durable queue).
//! - [`wire`]: the messages between issuer and index.
//!
//! **Invariant:** the index never answers who is behind a coin or purchase
//! without a [`wire::DisclosureLogged`] verifying under the issuer's key for
//! exactly that order and both approving keys. **Invariant:** this crate
//! does no network I/O; `gateway::index` serves and delivers.

pub mod constants;
pub mod error;
pub mod outbox;
pub mod service;
pub mod wire;

pub use error::IndexError;
pub use outbox::{Outbox, OutboxError};
pub use service::{INDEX_KEY_FILE, INDEX_PUBLIC_KEY_FILE, IndexService, USER_INDEX_FILE};
