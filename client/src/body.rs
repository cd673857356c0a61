//! Request and response bodies: a request body is taken only under the
//! route's media type, only up to the route's message limit, and only
//! within [`crate::ServerConfig::body_timeout_ms`]; then it is decoded by
//! `protocol::wire::decode` (bounded, versioned, no trailing bytes). Only
//! once the whole body is in does the request take a place in flight
//! (`server::body_received`).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use protocol::wire::{WireMessage, decode, encode};

use crate::error::ApiError;
use crate::media::{ErrorCode, POSTCARD, is_media_type};

/// Per-server body settings, kept in the app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Ceiling over every route's own message limit.
    pub body_bytes_max: usize,
    pub body_timeout: Duration,
}

/// Checks that the request says it carries `media_type`.
pub fn require_media_type(req: &HttpRequest, media_type: &str) -> Result<(), ApiError> {
    let header = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if is_media_type(header, media_type) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!("expected a body of type {media_type}"),
        ))
    }
}

fn too_large(name: &str, max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BodyTooLarge,
        format!("a {name} is at most {max} bytes"),
    )
}

/// Reads at most `max` bytes of body within the time limit.
pub async fn read_bounded(
    req: &HttpRequest,
    payload: web::Payload,
    name: &str,
    max: usize,
    limits: BodyLimits,
) -> Result<web::Bytes, ApiError> {
    let max = max.min(limits.body_bytes_max);
    // Refuse a declared oversize before reading a byte of it.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large(name, max));
    }
    match actix_web::rt::time::timeout(limits.body_timeout, payload.to_bytes_limited(max)).await {
        Err(_elapsed) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            format!(
                "the body did not arrive within {} ms",
                limits.body_timeout.as_millis()
            ),
        )),
        Ok(Err(_exceeded)) => Err(too_large(name, max)),
        Ok(Ok(Err(e))) => Err(ApiError::malformed(format!("body unreadable: {e}"))),
        Ok(Ok(Ok(bytes))) => {
            crate::server::body_received(req)?;
            Ok(bytes)
        }
    }
}

/// Takes the request body as the message `M`: media type, size, time, then
/// the bounded decoder.
pub async fn read_message<M: WireMessage>(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<M, ApiError> {
    require_media_type(req, POSTCARD)?;
    let bytes = read_bounded(req, payload, M::NAME, M::BYTES_MAX, limits).await?;
    Ok(decode::<M>(&bytes)?)
}

/// A 200 carrying `msg` under `media_type`.
pub fn message_response<M: WireMessage>(msg: &M, media_type: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, media_type))
        .body(encode(msg))
}
