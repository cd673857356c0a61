//! The size limit of every message, with the unit last in each name. Each
//! message's [`super::WireMessage::BYTES_MAX`] is built from these; the
//! relations between them are asserted at compile time.

use ledger::constants::{
    COINS_PER_TX_MAX, PARTICIPANT_ID_BYTES_MAX, PUBLIC_KEY_DER_BYTES_MAX, SIGNATURE_BYTES_MAX,
    TEXT_BYTES_MAX,
};

/// Largest encoding of one coin: 16-byte id, value, expiry and epoch as
/// varints (at most 10 + 10 + 5 bytes), 16-byte tag.
pub const COIN_BYTES_MAX: usize = 16 + 10 + 10 + 5 + 16;
/// Largest encoding of the most coins one message may carry, count included.
pub const COINS_BYTES_MAX: usize = COINS_PER_TX_MAX * COIN_BYTES_MAX + 10;
/// Most coin serials a message may list (bad coins, revoked coins, a query).
pub const SERIALS_MAX: usize = COINS_PER_TX_MAX;
/// Largest encoding of a list of serials.
pub const SERIALS_BYTES_MAX: usize = SERIALS_MAX * 16 + 10;
/// Largest encoding of a participant id or bank account, length included.
pub const ID_BYTES_MAX: usize = PARTICIPANT_ID_BYTES_MAX + 2;
/// Largest encoding of a signature, length included (RSA-4096).
pub const SIGNATURE_ENCODED_BYTES_MAX: usize = SIGNATURE_BYTES_MAX + 3;
/// Largest encoding of a DER public key, length included (RSA-4096).
pub const PUBLIC_KEY_ENCODED_BYTES_MAX: usize = PUBLIC_KEY_DER_BYTES_MAX + 3;
/// Largest encoding of a coin spec, as its lines bound it.
pub const SPEC_BYTES_MAX: usize = ledger::constants::SPEC_LINES_MAX * (5 + 10) + 2;
/// Most a public-key envelope adds to its plaintext: the RSA-4096 block that
/// wraps the body key, suite, IV, MAC and length prefixes.
pub const ENVELOPE_OVERHEAD_BYTES_MAX: usize = 1024;
/// Most a session-key ciphertext or MAC adds: suite, IV, tag, lengths.
pub const CIPHERTEXT_OVERHEAD_BYTES_MAX: usize = 128;
/// Budget for a message of a few ids, keys, nonces and one signature or cert.
pub const SMALL_MESSAGE_BYTES_MAX: usize = 4 * 1024;
/// Longest free text: a purchase description or a rejection's detail.
pub const TEXT_MAX: usize = TEXT_BYTES_MAX;

/// An issuer certificate: id, key, expiry, signature.
pub const CERTIFICATE_BYTES_MAX: usize =
    ID_BYTES_MAX + PUBLIC_KEY_ENCODED_BYTES_MAX + 10 + SIGNATURE_ENCODED_BYTES_MAX;
/// The issuer's signed rejection (P4): subject, reason, serials, time, signature.
pub const SIGNED_REJECT_BYTES_MAX: usize =
    SMALL_MESSAGE_BYTES_MAX + SERIALS_BYTES_MAX + SIGNATURE_ENCODED_BYTES_MAX;
/// The plaintext inside SendCoins' `EncC_1`.
pub const SEND_COINS_BODY_BYTES_MAX: usize = COINS_BYTES_MAX + SMALL_MESSAGE_BYTES_MAX;
/// SendCoins: `EncC_1` and its envelope.
pub const SEND_COINS_BYTES_MAX: usize = SEND_COINS_BODY_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
/// The plaintext inside a ValidationRequest: SendCoins plus V-DESC, ids and
/// the payee's signature.
pub const VALIDATION_BODY_BYTES_MAX: usize =
    SEND_COINS_BYTES_MAX + SPEC_BYTES_MAX + SMALL_MESSAGE_BYTES_MAX + SIGNATURE_ENCODED_BYTES_MAX;
/// A ValidationRequest.
pub const VALIDATION_BYTES_MAX: usize = VALIDATION_BODY_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES_MAX;
/// A list of coins encrypted under a session key.
pub const ENCRYPTED_COINS_BYTES_MAX: usize = COINS_BYTES_MAX + CIPHERTEXT_OVERHEAD_BYTES_MAX;
/// Any Issuance1 (purchase, payment, refund): coins under `e_K`, a MAC, a key
/// envelope, or a signed receipt or rejection, whichever is largest.
pub const ISSUANCE_BYTES_MAX: usize = ENCRYPTED_COINS_BYTES_MAX
    + SERIALS_BYTES_MAX
    + SIGNED_REJECT_BYTES_MAX
    + SMALL_MESSAGE_BYTES_MAX;

const _: () = assert!(CERTIFICATE_BYTES_MAX < SMALL_MESSAGE_BYTES_MAX);
const _: () = assert!(SPEC_BYTES_MAX < SMALL_MESSAGE_BYTES_MAX);
const _: () = assert!(ID_BYTES_MAX * 4 + TEXT_MAX + 64 < SMALL_MESSAGE_BYTES_MAX);
const _: () = assert!(SEND_COINS_BYTES_MAX < VALIDATION_BODY_BYTES_MAX);
// A whole ValidationRequest stays far below what an HTTP body limit of a
// megabyte would let in.
const _: () = assert!(VALIDATION_BYTES_MAX < 256 * 1024);
