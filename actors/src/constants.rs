//! Every limit of the issuer in one place, with the unit last in each name.
//! Relations between them are asserted at compile time.

use ledger::constants::COINS_PER_TX_MAX;

/// Most coin shards an issuer may run.
pub const SHARDS_MAX: u16 = 1024;
/// Most sessions (key shares, nonces) held at once; a flood of WRequest1
/// cannot grow the session store past this.
pub const SESSIONS_MAX: usize = 1_000_000;
/// Longest encoded session payload, in bytes.
pub const SESSION_BYTES_MAX: usize = 4096;
/// Most session writes grouped into one transaction (one fsync).
pub const SESSION_WRITES_PER_COMMIT_MAX: usize = 1024;
/// Most statement entries the simulated bank returns in one call.
pub const STATEMENT_ENTRIES_MAX: usize = 100_000;
/// Longest encoded bank record, in bytes.
pub const BANK_RECORD_BYTES_MAX: usize = 1024;

const _: () = assert!(SHARDS_MAX > 0);
const _: () = assert!(COINS_PER_TX_MAX <= u16::MAX as usize);
const _: () = assert!(SESSION_BYTES_MAX >= 256);
const _: () = assert!(SESSION_WRITES_PER_COMMIT_MAX > 0);
