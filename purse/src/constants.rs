//! Every limit of the purse in one place, with the unit last in each name.
//! Decoders refuse records longer than these before decoding, so a damaged
//! or hostile purse file cannot make the purse allocate without bound.

use ledger::constants::COINS_PER_TX_MAX;
use protocol::wire::limits::{SIGNED_REJECT_BYTES_MAX, VALIDATION_BYTES_MAX};

/// The version of the purse's file layout, stored in its `meta` table:
/// records sealed under a passphrase-derived key.
pub const PURSE_FORMAT_VERSION: u32 = 2;
/// The first layout, which kept keys and coins in the clear: refused.
pub const UNENCRYPTED_FORMAT_VERSION: u32 = 1;
/// Largest issuer-signed statement kept as the reason a coin is bad: the
/// protocol's largest signed rejection.
pub const STATEMENT_BYTES_MAX: usize = SIGNED_REJECT_BYTES_MAX;
/// Largest encoded coin record (coin plus state, with a refusal statement).
pub const COIN_RECORD_BYTES_MAX: usize = STATEMENT_BYTES_MAX + 1024;
/// Largest message kept in the journal for re-sending (a SendCoins or
/// ValidationRequest carrying [`COINS_PER_TX_MAX`] sealed coins fits).
pub const MESSAGE_BYTES_MAX: usize = 512 * 1024;
/// Largest opaque flow context (invoice, purchase handle, TID) in the journal.
pub const CONTEXT_BYTES_MAX: usize = 16 * 1024;
/// Largest single session secret: a key share, or a flow's serialized
/// client state holding key shares (with the issuer's key and W-DESC).
pub const SECRET_BYTES_MAX: usize = 32 * 1024;
/// Most session secrets one journal entry keeps.
pub const SECRETS_PER_TX_MAX: usize = 8;
/// Largest encoded journal entry.
pub const JOURNAL_RECORD_BYTES_MAX: usize = MESSAGE_BYTES_MAX
    + CONTEXT_BYTES_MAX
    + SECRET_BYTES_MAX * SECRETS_PER_TX_MAX
    + COINS_PER_TX_MAX * 32
    + 8 * 1024;
/// Largest encoded profile (identity, key pair, suite, certificate).
pub const PROFILE_BYTES_MAX: usize = 32 * 1024;
/// Longest gateway URL, in bytes.
pub const URL_BYTES_MAX: usize = 2048;
/// Largest DER key (RSA-4096 PKCS#8 is about 2.4 KiB).
pub const KEY_DER_BYTES_MAX: usize = 8 * 1024;
/// Largest closed-transaction record in the history table.
pub const HISTORY_RECORD_BYTES_MAX: usize = 1024;
/// Coin selection runs its exact subset-sum search only while the number of
/// distinct coin values times the amounts searched stays under this; above
/// it, selection falls back to largest-first greedy (still correct, maybe
/// not exact where an exact subset exists).
pub const SELECT_DP_CELLS_MAX: u64 = 20_000_000;
/// Largest sum, in minor units, the subset-sum table covers.
pub const SELECT_DP_SUM_MINOR_MAX: u64 = 2_000_000;

const _: () = assert!(MESSAGE_BYTES_MAX >= VALIDATION_BYTES_MAX);
const _: () = assert!(SECRET_BYTES_MAX * SECRETS_PER_TX_MAX < JOURNAL_RECORD_BYTES_MAX);
const _: () = assert!(STATEMENT_BYTES_MAX < COIN_RECORD_BYTES_MAX);
const _: () = assert!(SELECT_DP_SUM_MINOR_MAX <= SELECT_DP_CELLS_MAX);
