//! The user index's limits and signature labels, units last.

use ledger::constants::{EVENT_BYTES_MAX, TEXT_BYTES_MAX};

/// Records in one delivery from the issuer.
pub const RECORDS_PER_DELIVERY_MAX: usize = 256;
/// The largest delivery, encoded: room for one record of the largest event.
pub const DELIVERY_BYTES_MAX: usize = 240 * 1024;
/// What the issuer aims a delivery at (it always sends at least one record).
pub const DELIVERY_BYTES_TARGET: usize = 160 * 1024;
/// Who asks for a disclosure (a court, an agency), in bytes.
pub const DISCLOSURE_REQUESTER_BYTES_MAX: usize = 64;
/// Why (a case number, a warrant), in bytes.
pub const DISCLOSURE_REASON_BYTES_MAX: usize = 120;
/// One operator's approval, an encoded `client::operator::OperatorRequest`.
pub const APPROVAL_BYTES_MAX: usize = 1024;
/// A signature of the issuer (RSA up to 4096 bits).
pub const SIGNATURE_BYTES_MAX: usize = 512;

/// The issuer's signature over a delivery.
pub const DELIVERY_LABEL: &str = "vc/index/delivery/1";
/// The issuer's signature over a logged disclosure.
pub const DISCLOSURE_LOGGED_LABEL: &str = "vc/index/disclosure-logged/1";

const _: () = assert!(EVENT_BYTES_MAX + 1024 < DELIVERY_BYTES_MAX);
const _: () = assert!(DELIVERY_BYTES_TARGET < DELIVERY_BYTES_MAX);
const _: () = assert!(DISCLOSURE_REQUESTER_BYTES_MAX <= TEXT_BYTES_MAX);
const _: () = assert!(DISCLOSURE_REASON_BYTES_MAX <= TEXT_BYTES_MAX);
