//! Every limit of the ledger in one place, with the unit last in each name.
//! Decoders and validators refer to these; relations between them are
//! asserted at compile time.

/// Most coins one transaction may take in or give out.
pub const COINS_PER_TX_MAX: usize = 1024;
/// Most `(count, denomination)` lines in one coin spec.
pub const SPEC_LINES_MAX: usize = 64;
/// Longest participant identity, in bytes (UTF-8).
pub const PARTICIPANT_ID_BYTES_MAX: usize = 64;
/// Longest sealed field (an identity or a bank account under the user-index key).
pub const SEALED_BYTES_MAX: usize = 1024;
/// Longest DER public key carried in an event (RSA-4096 SPKI fits).
pub const PUBLIC_KEY_DER_BYTES_MAX: usize = 1024;
/// Longest signature carried in an event (RSA-4096).
pub const SIGNATURE_BYTES_MAX: usize = 512;
/// Longest free-text field (reasons, requester names) in an event.
pub const TEXT_BYTES_MAX: usize = 256;
/// Most events in one batch (one protocol transaction).
pub const BATCH_EVENTS_MAX: usize = 64;
/// Largest encoded event, in bytes: a hostile record cannot make a reader allocate more.
pub const EVENT_BYTES_MAX: usize = 128 * 1024;

const _: () = assert!(COINS_PER_TX_MAX * 64 < EVENT_BYTES_MAX);
const _: () = assert!(SEALED_BYTES_MAX < EVENT_BYTES_MAX);
const _: () = assert!(BATCH_EVENTS_MAX > 8);
