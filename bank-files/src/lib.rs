//! Bank files in ISO 20022, the XML messages banks exchange: what the
//! issuer sends its bank and what the bank sends back.
//!
//! - [`Iban`], [`Bic`]: accounts and banks, their check digits validated
//!   (ISO 13616 mod-97 for an IBAN; the ISO 9362 shape for a BIC).
//! - [`pain008`]: `pain.008.001.08`, customer direct debit initiation:
//!   one debit per coin purchase, its end-to-end id the purchase id.
//! - [`pain001`]: `pain.001.001.09`, customer credit transfer initiation:
//!   redemptions and merchants' cash-outs, end-to-end id the transaction.
//! - [`camt053`]: `camt.053.001.08`, bank to customer statement: what
//!   was booked on the issuer's account, returned debits with their
//!   ISO reason code.
//! - [`rules`]: what the schema demands of these messages, checked on the
//!   XML itself (the XSDs are not in this repository: see `README.md`).
//!
//! Written and read with `quick-xml`'s serde support; amounts are
//! `ledger::Amount` (minor units) on our side and decimal text with at
//! most two fraction digits in the files.
//!
//! **Invariant:** every file this crate writes passes [`rules`], and every
//! file it reads is checked by [`rules`] before a value is taken from it.

pub mod amount;
pub mod camt053;
pub mod error;
pub mod iban;
pub mod pain001;
pub mod pain008;
pub mod rules;

pub use error::BankFileError;
pub use iban::{Bic, Iban};

/// The longest identifier ISO 20022 allows in `Max35Text` fields
/// (message, payment information and end-to-end ids).
pub const MAX35_TEXT_CHARS_MAX: usize = 35;
/// The longest name in `Max140Text`.
pub const MAX140_TEXT_CHARS_MAX: usize = 140;
/// Transactions in one file: well under what banks accept per file.
pub const TRANSACTIONS_PER_FILE_MAX: usize = 10_000;
/// The largest file read, in bytes.
pub const FILE_BYTES_MAX: usize = 16 * 1024 * 1024;
