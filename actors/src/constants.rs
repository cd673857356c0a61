//! Every limit of the issuer in one place, with the unit last in each name.
//! Relations between them are asserted at compile time.

use ledger::constants::COINS_PER_TX_MAX;

/// Most coin shards an issuer may run.
pub const SHARDS_MAX: u16 = 1024;
/// Most flow sessions (purchase key shares, nonces) held at once; a flood
/// of WRequest1 cannot grow the session store past this.
pub const SESSIONS_MAX: usize = 1_000_000;
/// Purchase sessions one purchaser may hold at once whose purchase has
/// begun (WRequest3 accepted: a debit asked, coins not yet acknowledged).
/// Sessions not begun yet (WRequest1 answered, no WRequest3) take the same
/// slots but give way to a new one, so one enrolled purchaser cannot fill
/// the store, nor lock itself out by abandoning purchases.
pub const PURCHASE_SESSIONS_PER_PURCHASER_MAX: usize = 8;
/// Room kept above [`SESSIONS_MAX`] for payments' ack sessions, so a flood
/// of purchase sessions cannot stop payments. A payment is refused (503)
/// before it moves money once the store holds `SESSIONS_MAX +
/// ACK_SESSIONS_HEADROOM` records; its ack session itself is never refused
/// for room, because by then its batch may be in the log.
pub const ACK_SESSIONS_HEADROOM: usize = 1_000_000;
/// How long a payment's ack session (and then its tombstone) is kept. It
/// bridges the Issuance1 answer and the payee's Issuance2 ack, seconds
/// apart; a payee that lost the answer retries the validation request,
/// which writes a fresh one. Held records are rate × this, so 15 minutes
/// keeps 400 payments/s at 360,000 records, inside the headroom.
// Read by the issuer, which the loom build leaves out.
#[cfg_attr(loom, allow(dead_code))]
pub const PAYMENT_SESSION_SECS: u64 = 15 * 60;
/// Longest encoded session payload, in bytes.
pub const SESSION_BYTES_MAX: usize = 4096;
/// Most session writes grouped into one transaction (one fsync).
pub const SESSION_WRITES_PER_COMMIT_MAX: usize = 1024;
/// Most statement entries the simulated bank returns in one call.
pub const STATEMENT_ENTRIES_MAX: usize = 100_000;
/// Longest encoded bank record, in bytes.
pub const BANK_RECORD_BYTES_MAX: usize = 1024;

/// Most participants' keys the registry keeps parsed (each a few hundred
/// bytes at most); a full cache is emptied.
pub const PARSED_KEYS_CACHED_MAX: usize = 65_536;

const _: () = assert!(SHARDS_MAX > 0);
const _: () = assert!(COINS_PER_TX_MAX <= u16::MAX as usize);
const _: () = assert!(SESSION_BYTES_MAX >= 256);
const _: () = assert!(SESSION_WRITES_PER_COMMIT_MAX > 0);
