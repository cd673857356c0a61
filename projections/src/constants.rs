//! Every limit of the projections in one place, with the unit last in each name.

use ledger::constants::{COINS_PER_TX_MAX, TEXT_BYTES_MAX};

/// Records applied per redb transaction while catching up with the log: big
/// enough that the fsync is amortised, small enough that one transaction's
/// dirty pages stay bounded (at most this many events of
/// [`COINS_PER_TX_MAX`] coins each: about a million coins, a few hundred MiB).
pub const CATCH_UP_RECORDS_MAX: usize = 1024;

/// Longest requester name or reason in an identity disclosure, in bytes: the
/// log's own limit on free text.
pub const DISCLOSURE_TEXT_BYTES_MAX: usize = TEXT_BYTES_MAX;

const _: () = assert!(CATCH_UP_RECORDS_MAX >= 64);
const _: () = assert!(COINS_PER_TX_MAX > 0);
