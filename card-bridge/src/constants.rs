//! Every limit of the card bridge in one place, unit last in each name;
//! relations between them are asserted at compile time.

/// Entries in each of a card's two cyclic logs (loads and unloads; purchases).
/// Kept apart so a run of off-line purchases cannot push out the record an
/// in-doubt load needs before the card is next presented to a LUS.
pub const CARD_LOG_ENTRIES: usize = 8;
/// Log slots on a card: two rings of [`CARD_LOG_ENTRIES`].
pub const CARD_LOG_SLOTS: usize = 2 * CARD_LOG_ENTRIES;
/// Capacity of one card memory segment (length byte included), in bytes.
pub const CARD_SEGMENT_BYTES_MAX: usize = 128;
/// Largest record a durable store will decode, in bytes.
pub const RECORD_BYTES_MAX: usize = 64 * 1024;
/// Largest wire message of the card protocols, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 4 * 1024;
/// Most purchases one PSAM batch may carry.
pub const BATCH_ENTRIES_MAX: usize = 256;
/// Closed PSAM batches that may await collection at once.
pub const PSAM_UNSENT_BATCHES_MAX: usize = 8;
/// Largest PSAM state file, in bytes.
pub const PSAM_STATE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Nonce length (R_SM, R'_SM, R_LUS, R_PSAM), in bytes.
pub const NONCE_BYTES: usize = 16;

const _: () = assert!(CARD_LOG_ENTRIES >= 2 && CARD_LOG_SLOTS < 64);
const _: () = assert!(CARD_SEGMENT_BYTES_MAX <= 256);
const _: () = assert!(BATCH_ENTRIES_MAX * 128 < RECORD_BYTES_MAX);
const _: () = assert!((PSAM_UNSENT_BATCHES_MAX + 1) * RECORD_BYTES_MAX <= PSAM_STATE_BYTES_MAX);
