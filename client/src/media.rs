//! Media types, and the typed error body every refusal carries.
//!
//! A protocol message travels as `protocol::wire::encode` bytes (version
//! byte, then postcard) under [`POSTCARD`]; a merchant's invoice under
//! [`INVOICE`]; an error under [`ERROR`] as an encoded [`ErrorBody`], so a
//! client tells a refusal from an answer by the status and decodes it with
//! the same bounded decoder.

use protocol::wire::{BoundedText, WireMessage};
use serde::{Deserialize, Serialize};

use crate::constants::ERROR_MESSAGE_BYTES_MAX;

/// Protocol messages: `protocol::wire` encoding.
pub const POSTCARD: &str = "application/vnd.varietycash+postcard";
/// A merchant's invoice document (the protocol's `Invoice`, wire encoding):
/// what a purse opens to pay.
pub const INVOICE: &str = "application/vnd.varietycash.invoice";
/// An [`ErrorBody`], wire encoding.
pub const ERROR: &str = "application/vnd.varietycash.error+postcard";
/// Prometheus text exposition format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What went wrong, for programs; [`ErrorBody::message`] is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not the route's message (bad postcard, bad version,
    /// trailing bytes, invariants), or a query parameter is missing.
    Malformed,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 408: the body did not arrive in time.
    RequestTimeout,
    /// 413: the body is larger than the route's message may be.
    BodyTooLarge,
    /// 415: the body is not of the route's media type.
    UnsupportedMediaType,
    /// 503: too many requests in flight; retry after the Retry-After header.
    Overloaded,
    /// 422: the message decodes but does not open or check (envelope,
    /// signature, MAC, session). No signed statement is owed.
    Refused,
    /// 403: the participant is not registered.
    NotRegistered,
    /// 403: the participant is not enrolled for this.
    NotEnrolled,
    /// 409: the identity is registered with another key.
    IdentityTaken,
    /// 409: the same transaction is being processed; retry.
    InFlight,
    /// 409: a single-use request came again (W3: a WRequest3 whose `R_I`
    /// was used); for a client resuming from its journal, proof that the
    /// first copy arrived. 401 on an operator route: a signed operator
    /// request whose nonce was used before.
    Replayed,
    /// 404: no such purchase (or its session expired).
    UnknownPurchase,
    /// 410: the purchase was acknowledged; its coins are served no more.
    PurchaseClosed,
    /// 404: no such order at this merchant (or it expired).
    UnknownOrder,
    /// 403: an operator request signed by a key this server does not
    /// list, or for another route; a wrong scrape token.
    Forbidden,
    /// 501: the issuer does not offer this step yet.
    NotImplemented,
    /// 502: the merchant could not reach the issuer, or the issuer's answer
    /// did not check.
    IssuerUnavailable,
    /// 500: the server failed; details are in its log, not here.
    Internal,
    /// 401: an operator route got a request that is not signed, whose
    /// signature does not verify, that is stale or was used before; or
    /// `/metrics` got no bearer token.
    Unauthenticated,
    /// 429: this address asks faster than its rate; retry after the
    /// Retry-After header.
    RateLimited,
    /// 422: a cash-out of more than the aggregated balance, or of all of an
    /// empty one; nothing was paid.
    AboveBalance,
    /// 403: the issuer's operator suspended the participant; its requests
    /// are refused until it is reinstated.
    Suspended,
    /// 403: the issuer's operator revoked the participant, for good.
    Revoked,
    /// 403: the issuer's operator refused this enrollment.
    EnrollmentRefused,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: BoundedText<ERROR_MESSAGE_BYTES_MAX>,
}

impl ErrorBody {
    /// An error body; a message longer than the limit is cut at a character
    /// boundary.
    pub fn new(code: ErrorCode, message: &str) -> ErrorBody {
        let mut end = message.len().min(ERROR_MESSAGE_BYTES_MAX);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = BoundedText::new(&message[..end])
            .unwrap_or_else(|_| BoundedText::new("").expect("an empty text fits any bound"));
        ErrorBody { code, message }
    }
}

impl WireMessage for ErrorBody {
    const NAME: &'static str = "ErrorBody";
    const BYTES_MAX: usize = ERROR_MESSAGE_BYTES_MAX + 16;
}

/// Whether a Content-Type header value names `expected` (parameters such as
/// `charset` are ignored; the comparison is case-insensitive, as RFC 9110
/// says of media types).
pub fn is_media_type(header: &str, expected: &str) -> bool {
    let essence = header.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::wire::{decode, encode};

    #[test]
    fn error_body_round_trips_and_long_messages_are_cut_at_a_char_boundary() {
        let long = "é".repeat(ERROR_MESSAGE_BYTES_MAX);
        let body = ErrorBody::new(ErrorCode::Malformed, &long);
        assert!(body.message.as_str().len() <= ERROR_MESSAGE_BYTES_MAX);
        assert!(body.message.as_str().chars().all(|c| c == 'é'));
        let bytes = encode(&body);
        assert_eq!(decode::<ErrorBody>(&bytes).expect("decodes"), body);
    }

    #[test]
    fn media_type_ignores_parameters_and_case_but_not_the_type() {
        assert!(is_media_type(POSTCARD, POSTCARD));
        assert!(is_media_type(
            "Application/VND.varietycash+postcard; charset=binary",
            POSTCARD
        ));
        assert!(!is_media_type("application/json", POSTCARD));
        assert!(!is_media_type(INVOICE, POSTCARD));
    }
}
