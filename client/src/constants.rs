//! Every limit of the gateway in one place, with the unit last in each name.
//! Relations between them are asserted at compile time.

use protocol::wire::limits::{ISSUANCE_BYTES_MAX, VALIDATION_BYTES_MAX};

/// Largest request body any route accepts; each route also applies its own
/// message's `BYTES_MAX`, which is usually far smaller.
pub const REQUEST_BODY_BYTES_MAX: usize = 256 * 1024;
/// Largest response body a client reads.
pub const RESPONSE_BODY_BYTES_MAX: usize = 256 * 1024;
/// Time a client has to send its request head; a slower sender is cut off
/// (slow loris).
pub const REQUEST_HEAD_TIMEOUT_MS: u64 = 5_000;
/// Time a client has to send its request body once the head is in. Short:
/// a body still arriving holds a place among [`REQUEST_BODIES_RECEIVING_MAX`].
pub const REQUEST_BODY_TIMEOUT_MS: u64 = 5_000;
/// How long an idle keep-alive connection is kept open.
pub const KEEP_ALIVE_MS: u64 = 15_000;
/// Time given to a client to close after the server has answered.
pub const CLIENT_DISCONNECT_TIMEOUT_MS: u64 = 1_000;
/// Requests handled at once by one server (bodies fully arrived); more are
/// answered 503.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 256;
/// Requests whose bodies are still arriving, at once, on one server; more
/// are answered 503. Apart from (and larger than) the places in flight, so
/// slow senders wait here without locking honest clients out; each holds at
/// most its route's message limit for at most the body timeout.
pub const REQUEST_BODIES_RECEIVING_MAX: usize = 1_024;
/// Connections one worker holds at once.
pub const CONNECTIONS_PER_WORKER_MAX: usize = 4_096;
/// TLS handshakes one worker runs at once: as many as it holds
/// connections, so connections that never finish theirs cannot make honest
/// ones wait (each is cut at [`TLS_HANDSHAKE_TIMEOUT_MS`]).
pub const TLS_HANDSHAKES_PER_WORKER_MAX: usize = CONNECTIONS_PER_WORKER_MAX;
/// Connections one source address holds at once (an IPv6 source is its
/// /64); requests on more are answered 503 and the connection closed.
pub const CONNECTIONS_PER_SOURCE_MAX: usize = 256;
/// Requests whose bodies are still arriving, at once, from one source: a
/// sixteenth of the server's places.
pub const REQUEST_BODIES_RECEIVING_PER_SOURCE_MAX: usize = 64;
/// Requests handled at once for one source: an eighth of the places in
/// flight, so eight busy sources still leave room for a ninth.
pub const REQUESTS_IN_FLIGHT_PER_SOURCE_MAX: usize = 32;
/// Requests per second one source may make, sustained; faster ones are
/// answered 429 with Retry-After.
pub const REQUESTS_PER_SOURCE_PER_SEC: u32 = 500;
/// Requests one source may make at once after a quiet spell.
pub const REQUESTS_PER_SOURCE_BURST: u32 = 1_000;
/// Coin status queries per second one source may make, sustained: each
/// costs the issuer a signature and answers up to 256 coins, and a holder
/// checks its purse now and then, not in a loop.
pub const COIN_STATUS_PER_SOURCE_PER_SEC: u32 = 2;
/// Coin status queries one source may make at once after a quiet spell.
pub const COIN_STATUS_PER_SOURCE_BURST: u32 = 8;
/// Sources whose counts are kept at once; idle ones are forgotten first.
pub const SOURCES_TRACKED_MAX: usize = 65_536;
/// What a 503 asks the client to wait before retrying.
pub const RETRY_AFTER_SECS: u64 = 1;
/// Longest human-readable message in an error body.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 512;
/// A client's total time for one request (connect, send, receive).
pub const CLIENT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// A client's time to open a connection.
pub const CLIENT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// How often a client sends the same request before giving up on a
/// transport failure or a 503.
pub const CLIENT_ATTEMPTS_MAX: u32 = 3;
/// Pause between a client's attempts when the server gave no Retry-After.
pub const CLIENT_RETRY_PAUSE_MS: u64 = 200;
/// Longest Retry-After a client honours, so a hostile server cannot park it.
pub const CLIENT_RETRY_AFTER_SECS_MAX: u64 = 10;
/// How often a merchant server re-sends the validations its journal holds
/// for open orders whose issuer answer was lost: the issuer may have
/// committed one (its coins are then the merchant's, and no payer will
/// come back for it once its own change was refused "already spent").
pub const MERCHANT_COLLECTION_RETRY_MS: u64 = 2_000;
/// Unanswered re-sends of one journaled validation made every
/// [`MERCHANT_COLLECTION_RETRY_MS`] (an issuer restarting is back within
/// them); after these, each wait doubles.
pub const MERCHANT_COLLECTION_RETRIES_AT_PERIOD: u32 = 5;
/// The longest wait between two re-sends of one journaled validation, so
/// an issuer that is down for long is not called by every open order
/// every period.
pub const MERCHANT_COLLECTION_RETRY_MS_MAX: u64 = 60_000;
/// Orders a merchant server keeps open (invoiced, not yet paid) at once.
pub const ORDERS_OPEN_MAX: usize = 10_000;
/// Orders (paid or not) a merchant server remembers at once; the oldest paid
/// ones are forgotten first.
pub const ORDERS_KEPT_MAX: usize = 100_000;
/// Orders one client (source address) may hold open at once: an invoice
/// costs the merchant an RSA signature and a place among the open orders
/// for [`ORDER_LIFETIME_SECS`], so one client may not take them all.
pub const ORDERS_OPEN_PER_CLIENT_MAX: usize = 32;
/// SendCoins the issuer refused outright that one client (source address)
/// may post in [`PAY_REFUSALS_WINDOW_SECS`]; beyond, its pay requests get
/// 429 before any work. Each costs the merchant an RSA signature (its
/// ValidationRequest) and the issuer two decryptions.
pub const PAY_REFUSALS_PER_CLIENT_MAX: u32 = 8;
/// The window [`PAY_REFUSALS_PER_CLIENT_MAX`] counts in.
pub const PAY_REFUSALS_WINDOW_SECS: u64 = 60;
/// Clients whose refusals a merchant remembers at once (bounded memory).
pub const PAY_REFUSAL_CLIENTS_MAX: usize = 10_000;
/// How long an unpaid invoice stays payable.
pub const ORDER_LIFETIME_SECS: u64 = 3_600;
/// Longest catalog item id (in the URL).
pub const SKU_BYTES_MAX: usize = 64;
/// How far an operator request's signing time may lie from the server's
/// clock, either way; older ones are refused, and nonces are remembered
/// this long.
pub const OPERATOR_REQUEST_WINDOW_SECS: u64 = 120;
/// Largest message an operator request carries (a card agency call with
/// a load's coins is the largest).
pub const OPERATOR_BODY_BYTES_MAX: usize = crate::card::AGENCY_MESSAGE_BYTES_MAX;
/// Longest route an operator request names.
pub const OPERATOR_ROUTE_BYTES_MAX: usize = 64;
/// Longest operator signature (an RSA-4096 one).
pub const OPERATOR_SIGNATURE_BYTES_MAX: usize = 512;
/// Operator requests remembered at once (those of the last window); more
/// are refused until older ones expire.
pub const OPERATOR_NONCES_MAX: usize = 100_000;
/// Longest line of the nonce file: the issue time (at most 20 digits), the
/// key's fingerprint and the nonce in hex, two spaces and a newline.
pub const OPERATOR_NONCE_LINE_BYTES_MAX: usize = 128;
/// Largest nonce file: the server rewrites it with the live nonces once it
/// holds [`OPERATOR_NONCES_MAX`] lines, so it never grows past this; a
/// longer one is refused at start rather than read in part.
pub const OPERATOR_NONCE_FILE_BYTES_MAX: u64 =
    (OPERATOR_NONCE_LINE_BYTES_MAX * OPERATOR_NONCES_MAX) as u64;
/// The longest line written: `u64::MAX` (20 digits), a space, the key's
/// fingerprint (64 hex digits), a space, the nonce in hex, the newline.
const OPERATOR_NONCE_LINE_BYTES_WRITTEN_MAX: usize =
    20 + 1 + 64 + 1 + 2 * protocol::crypto::NONCE_BYTES + 1;
const _: () = assert!(OPERATOR_NONCE_LINE_BYTES_WRITTEN_MAX <= OPERATOR_NONCE_LINE_BYTES_MAX);
/// Largest PEM file (certificate, chain or key) read.
pub const TLS_PEM_FILE_BYTES_MAX: u64 = 64 * 1024;
/// Time a TLS client has to finish its handshake; a connection that sends
/// nothing is closed then.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 3_000;
/// Shortest `/metrics` bearer token accepted.
pub const SCRAPE_TOKEN_BYTES_MIN: usize = 16;

const _: () = assert!(REQUEST_BODY_BYTES_MAX >= VALIDATION_BYTES_MAX);
const _: () = assert!(RESPONSE_BODY_BYTES_MAX >= ISSUANCE_BYTES_MAX + 1024);
const _: () = assert!(REQUEST_HEAD_TIMEOUT_MS < KEEP_ALIVE_MS);
const _: () = assert!(REQUEST_BODY_TIMEOUT_MS < CLIENT_REQUEST_TIMEOUT_MS);
const _: () = assert!(REQUEST_BODIES_RECEIVING_MAX > REQUESTS_IN_FLIGHT_MAX);
const _: () = assert!(ORDERS_OPEN_MAX <= ORDERS_KEPT_MAX);
const _: () = assert!(ORDERS_OPEN_PER_CLIENT_MAX * 100 <= ORDERS_OPEN_MAX);
const _: () = assert!(RETRY_AFTER_SECS <= CLIENT_RETRY_AFTER_SECS_MAX);
const _: () = assert!(OPERATOR_BODY_BYTES_MAX <= REQUEST_BODY_BYTES_MAX);
const _: () = assert!(REQUESTS_IN_FLIGHT_PER_SOURCE_MAX < REQUESTS_IN_FLIGHT_MAX);
const _: () = assert!(REQUEST_BODIES_RECEIVING_PER_SOURCE_MAX < REQUEST_BODIES_RECEIVING_MAX);
const _: () = assert!(CONNECTIONS_PER_SOURCE_MAX < CONNECTIONS_PER_WORKER_MAX);
const _: () = assert!(REQUESTS_PER_SOURCE_BURST >= REQUESTS_PER_SOURCE_PER_SEC);
const _: () = assert!(COIN_STATUS_PER_SOURCE_BURST < REQUESTS_PER_SOURCE_BURST);
const _: () = assert!(TLS_HANDSHAKE_TIMEOUT_MS <= REQUEST_HEAD_TIMEOUT_MS);

/// How often a wallet polls a pending purchase before handing it back as
/// pending (it stays journaled; `Wallet::resume` polls again later).
pub const WALLET_POLLS_MAX: u32 = 50;
/// Pause between a wallet's polls of a pending purchase.
pub const WALLET_POLL_INTERVAL_MS: u64 = 100;
/// Rounds of change a wallet makes before a payment's coins are exact.
pub const WALLET_CHANGE_ROUNDS_MAX: u32 = 2;
/// How long a wallet waits for a merchant server that does not answer (or
/// only answers "retry later") before `Wallet::resume` stops asking it and
/// reclaims the payment's coins through the issuer. A merchant that answers
/// anything but a proof of payment is not waited for.
pub const WALLET_MERCHANT_WAIT_SECS: u64 = 10 * 60;
