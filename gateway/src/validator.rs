//! A validator node's gateway: the payment routes of the issuer's gateway
//! over a [`cluster::Validator`], which opens each request with the
//! issuer's key and has the issuer's sequencer decide it. The node holds
//! no coin state and answers nobody before the sequencer said durable.
//!
//! | route | request | answer |
//! |---|---|---|
//! | `GET /v1/issuer` | — | [`IssuerDescriptor`] (the node's copy of the issuer's key) |
//! | `POST /v1/validate` | `ValidationRequest` | `PaymentIssuance1` |
//! | `POST /v1/validate/ack` | `PaymentIssuance2` | 204 |
//!
//! Every other route of the issuer (registration, purchases, refunds, the
//! operator's) is the sequencer's own gateway's: 404 here. With no
//! sequencer reachable, a payment route answers 503 with Retry-After.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use cluster::wire::PaymentRefusal;
use cluster::{Validator, ValidatorError};
use protocol::flows::FlowError;
use protocol::wire::payment::{PaymentIssuance2, ValidationRequest};

use crate::api::IssuerDescriptor;
use crate::body::{BodyLimits, message_response, read_message};
use crate::error::{ApiError, GatewayError};
use crate::issuer::issuer_error;
use crate::media::{ErrorCode, POSTCARD};
use crate::server::{self, ServerConfig, ServerHandle, get_resource, post_resource};

/// Starts a validator node's gateway; returns once it listens.
pub fn serve_validator(
    config: &ServerConfig,
    validator: Validator,
) -> Result<ServerHandle, GatewayError> {
    let state = web::Data::new(validator);
    server::start(config, "vc_validator", None, move |cfg| {
        cfg.app_data(state.clone())
            .service(get_resource("/v1/issuer", descriptor))
            .service(post_resource("/v1/validate", validate))
            .service(post_resource("/v1/validate/ack", acknowledge));
    })
}

/// What the node's client is told: the status and code the issuer's own
/// gateway gives for the same refusal, and 503 + Retry-After when no
/// sequencer answered.
pub fn validator_error(e: ValidatorError) -> ApiError {
    use StatusCode as S;
    match e {
        ValidatorError::Unavailable { retry_after_secs } => ApiError::new(
            S::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            "the issuer's sequencer is unreachable; retry",
        )
        .with_retry_after(retry_after_secs),
        ValidatorError::Flow(flow) => issuer_error(actors::IssuerError::Flow(flow)),
        ValidatorError::Refused(refusal) => match refusal {
            PaymentRefusal::InFlight => issuer_error(actors::IssuerError::InFlight),
            PaymentRefusal::NotRegistered => {
                issuer_error(actors::IssuerError::Flow(FlowError::UnknownParticipant))
            }
            PaymentRefusal::Suspended => issuer_error(actors::IssuerError::ParticipantSuspended),
            PaymentRefusal::Revoked => issuer_error(actors::IssuerError::ParticipantRevoked),
            PaymentRefusal::Refused(reason) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, ErrorCode::Refused, reason)
            }
            // The payee's key changed twice while the node checked: the
            // client's retry is checked under the newest.
            PaymentRefusal::Busy | PaymentRefusal::KeyChanged => ApiError::overloaded(),
            // A misconfigured node: its client may be served by another.
            PaymentRefusal::NotServed => {
                tracing::error!(
                    "this node's sequencer serves no payments (a bare `issuer serve --role \
                     sequencer`): point --sequencer at `issuer serve --cluster-listen`"
                );
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    ErrorCode::Overloaded,
                    "this node's sequencer serves no payments; retry at another node",
                )
                .with_retry_after(crate::constants::RETRY_AFTER_SECS)
            }
            other => ApiError::internal("sequencer", &other),
        },
        other => ApiError::internal("sequencer", &other),
    }
}

async fn descriptor(validator: web::Data<Validator>) -> HttpResponse {
    let descriptor = IssuerDescriptor {
        id_i: validator.id().clone(),
        public_key: validator.public_key().to_ledger(),
        suite: validator.suite(),
    };
    message_response(&descriptor, POSTCARD)
}

async fn validate(
    req: HttpRequest,
    payload: web::Payload,
    validator: web::Data<Validator>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: ValidationRequest = read_message(&req, payload, **limits).await?;
    let validator = validator.get_ref().clone();
    // Opening is public-key work and the sequencer's answer waits for the
    // log: off the event loop.
    let answer = web::block(move || validator.validate(&msg))
        .await
        .map_err(|e| ApiError::internal("validator", &e))?
        .map_err(validator_error)?;
    Ok(message_response(&answer, POSTCARD))
}

async fn acknowledge(
    req: HttpRequest,
    payload: web::Payload,
    validator: web::Data<Validator>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: PaymentIssuance2 = read_message(&req, payload, **limits).await?;
    let validator = validator.get_ref().clone();
    web::block(move || validator.acknowledge(&msg))
        .await
        .map_err(|e| ApiError::internal("validator", &e))?
        .map_err(validator_error)?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_cut_off_answers_503_with_retry_after() {
        let e = validator_error(ValidatorError::Unavailable {
            retry_after_secs: 1,
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after_secs, Some(1));
        let response = actix_web::ResponseError::error_response(&e);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }

    #[test]
    fn the_issuers_refusals_keep_their_status() {
        let status = |r| validator_error(ValidatorError::Refused(r)).status;
        assert_eq!(status(PaymentRefusal::InFlight), StatusCode::CONFLICT);
        assert_eq!(status(PaymentRefusal::NotRegistered), StatusCode::FORBIDDEN);
        assert_eq!(status(PaymentRefusal::Suspended), StatusCode::FORBIDDEN);
        assert_eq!(
            status(PaymentRefusal::Refused("no".into())),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(PaymentRefusal::Busy),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(PaymentRefusal::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        // A node pointed at a bare sequencer: another node may serve.
        assert_eq!(
            status(PaymentRefusal::NotServed),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
