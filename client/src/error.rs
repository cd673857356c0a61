//! Errors: [`GatewayError`] for starting and running a server, [`ApiError`]
//! for what a route answers a client (a status, an [`ErrorCode`] and a
//! message, sent as an [`ErrorBody`]).

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use protocol::wire::{WireError, encode};

use crate::constants::RETRY_AFTER_SECS;
use crate::media::{ERROR, ErrorBody, ErrorCode};

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server thread ended before it was listening")]
    NotStarted,
    #[error("purse: {0}")]
    Purse(#[from] purse::PurseError),
    #[error("the merchant's purse has no issuer record")]
    NoIssuer,
    /// The issuer behind a gateway failed to start (its own typed error,
    /// `actors::IssuerError`, which this crate does not link).
    #[error("issuer: {0}")]
    Issuer(Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("configuration: {0}")]
    Config(String),
    #[error("the issuer's core was still held {waited_ms} ms after its actors stopped")]
    NotClosed { waited_ms: u64 },
}

/// A refusal sent to a client: status, code, message, and for 503 and
/// in-flight conflicts a Retry-After.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code:?}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::Malformed, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        )
    }

    pub fn overloaded() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            "too many requests in flight",
        )
        .with_retry_after(RETRY_AFTER_SECS)
    }

    /// A server-side failure: the details go to the log, not to the client.
    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, what, "request failed inside the server");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("internal error ({what})"),
        )
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code, &self.message)
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> ApiError {
        match e {
            WireError::TooLong { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                e.to_string(),
            ),
            other => ApiError::malformed(other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((CONTENT_TYPE, ERROR));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((RETRY_AFTER, secs.to_string()));
        }
        response.body(encode(&self.body()))
    }
}
