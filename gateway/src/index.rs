//! The user index over HTTP: its server (`varietycash index serve`), the
//! issuer's route that logs a disclosure, and the [`IndexForwarder`] that
//! delivers the issuer's log to the index.
//!
//! | server | route | request | answer |
//! |---|---|---|---|
//! | index | `POST /v1/index/records` | `RecordDelivery` (signed by the issuer) | `DeliveryAck` (the index's applied seq) |
//! | index | `GET /v1/index/applied` | — | `DeliveryAck` |
//! | index | `POST /admin/disclose` | `DisclosureApprovals` (two operators' signed requests for [`DISCLOSE_ROUTE`] of one `DisclosureOrder`) | `DisclosedIdentity` |
//! | issuer | `POST /admin/index/disclose` | `DisclosureApprovals` | `DisclosureLogged` (signed by the issuer) |
//!
//! A disclosure: the index decodes both approvals (same order, different
//! keys) and checks that it can answer at all; it hands the approvals to
//! the issuer, which checks each as an operator request for
//! [`DISCLOSE_ROUTE`] (listed key, window, signature, nonce remembered),
//! requires two different keys, appends `IdentityDisclosedUnderDualControl`
//! and signs its word that it did; only a word that verifies under the
//! issuer's key, for this order and these two keys, makes the index answer.
//! A refused or half-approved request discloses nothing, and the issuer
//! being down means no disclosure.
//!
//! Deliveries: the forwarder (a thread in the issuer's process) reads the
//! log past the outbox's position, signs each delivery with the issuer's
//! key, and takes the index's applied seq from each answer. The index
//! being down stops nothing but the forwarder, which retries with backoff.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actors::IssuerCore;
use ledger::{EventStore, Hash32, Seq};
use protocol::wire::{BoundedBytes, BoundedVec, WireMessage, decode, encode};
use user_index::wire::{
    DeliveredRecord, DeliveryAck, DisclosedIdentity, DisclosureApprovals, DisclosureLogged,
    DisclosureOrder, RecordDelivery,
};
use user_index::{IndexError, IndexService, Outbox};

use crate::body::{BodyLimits, message_response, read_message};
use crate::error::{ApiError, GatewayError};
use crate::media::{ErrorCode, POSTCARD};
use crate::operator::{Authorized, KeyFingerprint, OperatorAuth, OperatorKey, OperatorRequest};
use crate::server::{self, ServerConfig, ServerHandle, get_resource, post_resource};
use client::client::{ClientConfig, ClientError, HttpClient};

/// The route each operator's approval of a disclosure is signed for.
pub const DISCLOSE_ROUTE: &str = "/admin/disclose";
/// The issuer's route that logs a disclosure.
pub const LOG_DISCLOSURE_ROUTE: &str = "/admin/index/disclose";
/// The outbox file in the issuer's directory.
pub const OUTBOX_FILE: &str = "index-outbox.redb";

/// Pause of the forwarder when the log has nothing new.
const FORWARDER_IDLE_MS: u64 = 100;
/// Longest pause between attempts while the index is down.
const FORWARDER_BACKOFF_MS_MAX: u64 = 5_000;

// An approval is an operator request whose body is a `DisclosureOrder`:
// it fits the index's bound whatever the largest body of other routes.
const _: () = assert!(
    DisclosureOrder::BYTES_MAX + crate::constants::OPERATOR_SIGNATURE_BYTES_MAX + 256
        <= user_index::constants::APPROVAL_BYTES_MAX
);
const _: () = assert!(DisclosureOrder::BYTES_MAX <= crate::constants::OPERATOR_BODY_BYTES_MAX);

/// One operator's signed approval of `order`, to hand to whoever sends
/// the disclosure request (within the operator window). It names the
/// issuer whose key is `issuer` (which alone checks and logs it): no other
/// server listing the same operator key takes it.
pub fn approve_disclosure(
    key: &OperatorKey,
    issuer: &protocol::crypto::PublicKey,
    order: &DisclosureOrder,
) -> Result<OperatorRequest, crate::operator::OperatorRefusal> {
    key.sign(
        Some(KeyFingerprint::of(issuer)),
        DISCLOSE_ROUTE,
        encode(order),
    )
}

/// Both approvals as one request.
pub fn approvals(first: &OperatorRequest, second: &OperatorRequest) -> DisclosureApprovals {
    let bytes = |r: &OperatorRequest| {
        // An operator request is at most OperatorRequest::BYTES_MAX, below
        // the approval bound (asserted above).
        #[allow(clippy::expect_used)]
        BoundedBytes::new(encode(r)).expect("an operator request fits an approval")
    };
    DisclosureApprovals {
        approvals: [bytes(first), bytes(second)],
    }
}

/// What both approvals must agree on: the order and two different keys.
/// Checks no signature (the issuer does, against its operator keys).
pub fn read_approvals(
    approvals: &DisclosureApprovals,
) -> Result<(DisclosureOrder, [KeyFingerprint; 2]), ApiError> {
    let read = |bytes: &BoundedBytes<{ user_index::constants::APPROVAL_BYTES_MAX }>| {
        decode::<OperatorRequest>(bytes.as_bytes()).map_err(|e| {
            ApiError::malformed(format!("an approval is not an operator request: {e}"))
        })
    };
    let first = read(&approvals.approvals[0])?;
    let second = read(&approvals.approvals[1])?;
    if first.key == second.key {
        return Err(refused(
            "a disclosure needs two approvals by two different operator keys",
        ));
    }
    if first.body != second.body {
        return Err(refused("the two approvals are for different orders"));
    }
    if first.route.as_str() != DISCLOSE_ROUTE || second.route.as_str() != DISCLOSE_ROUTE {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("an approval is signed for another route than {DISCLOSE_ROUTE}"),
        ));
    }
    let order = decode::<DisclosureOrder>(first.body.as_bytes())?;
    Ok((order, [first.key, second.key]))
}

fn refused(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Refused,
        message,
    )
}

fn hashes(keys: [KeyFingerprint; 2]) -> [Hash32; 2] {
    [Hash32(keys[0].0), Hash32(keys[1].0)]
}

// --- the issuer's side ----------------------------------------------------------

/// The issuer's `POST /admin/index/disclose`: checks both approvals as
/// operator requests for [`DISCLOSE_ROUTE`] (each nonce remembered, so
/// neither works twice), two different keys, then logs the disclosure and
/// answers its signed word.
pub(crate) async fn log_disclosure(
    req: HttpRequest,
    payload: web::Payload,
    core: Arc<IssuerCore>,
    operators: Arc<OperatorAuth>,
    limits: BodyLimits,
) -> Result<HttpResponse, ApiError> {
    let msg: DisclosureApprovals = read_message(&req, payload, limits).await?;
    let (order, keys) = read_approvals(&msg)?;
    let authorized = web::block(move || -> Result<Vec<Authorized>, ApiError> {
        let now = crate::operator::now_micros();
        msg.approvals
            .iter()
            .map(|a| {
                operators
                    .authorize(a.as_bytes(), DISCLOSE_ROUTE, now)
                    .map_err(crate::issuer::operator_refusal)
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::internal("blocking pool", &e))?;
    let authorized = match authorized {
        Ok(authorized) => authorized,
        Err(e) => {
            tracing::warn!(refusal = %e, "disclosure approval refused");
            return Err(e);
        }
    };
    for a in &authorized {
        tracing::info!(
            operator_key = %a.key.short(),
            operator = %a.key_name,
            "disclosure approved"
        );
    }
    let event = order.event(hashes(keys));
    let logged = web::block(move || core.log_disclosure(event))
        .await
        .map_err(|e| ApiError::internal("blocking pool", &e))?
        .map_err(|e| match e {
            actors::DisclosureLogError::Issuer(e) => crate::issuer::issuer_error(e),
            other => refused(&other.to_string()),
        })?;
    let (seq, signature) = logged;
    let signature = BoundedBytes::new(signature.as_bytes().to_vec())
        .map_err(|_| ApiError::internal("signature", &"longer than its bound"))?;
    Ok(message_response(
        &DisclosureLogged {
            seq,
            approver_keys: hashes(keys),
            signature,
        },
        POSTCARD,
    ))
}

// --- the index's server -----------------------------------------------------------

struct IndexState {
    index: Arc<IndexService>,
    issuer: HttpClient,
}

/// Serves the user index: deliveries from the issuer, and disclosures,
/// each logged by the issuer at `issuer` before it is answered.
pub fn serve_index(
    config: &ServerConfig,
    index: Arc<IndexService>,
    issuer: HttpClient,
) -> Result<ServerHandle, GatewayError> {
    let state = web::Data::new(IndexState { index, issuer });
    server::start(config, "vc_index", None, move |cfg| {
        cfg.app_data(state.clone())
            .service(post_resource("/v1/index/records", receive))
            .service(get_resource("/v1/index/applied", applied))
            .service(post_resource(DISCLOSE_ROUTE, disclose));
    })
}

fn index_error(e: IndexError) -> ApiError {
    match e {
        IndexError::NotFromTheIssuer
        | IndexError::BadHash(_)
        | IndexError::BrokenChain(_)
        | IndexError::BadRecord { .. }
        | IndexError::NotLogged
        | IndexError::ApprovalsDisagree => refused(&e.to_string()),
        IndexError::NotAttributed(_) => {
            ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, e.to_string())
        }
        other => ApiError::internal("user index", &other),
    }
}

async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IndexState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: RecordDelivery = read_message(&req, payload, **limits).await?;
    let index = state.index.clone();
    let applied = web::block(move || match index.receive(&msg) {
        // A delivery past the next record applies nothing; the answer
        // tells the issuer where to start again.
        Err(IndexError::Gap { .. }) => index.applied(),
        other => other,
    })
    .await
    .map_err(|e| ApiError::internal("blocking pool", &e))?
    .map_err(index_error)?;
    Ok(message_response(&DeliveryAck { applied }, POSTCARD))
}

async fn applied(state: web::Data<IndexState>) -> Result<HttpResponse, ApiError> {
    let index = state.index.clone();
    let applied = web::block(move || index.applied())
        .await
        .map_err(|e| ApiError::internal("blocking pool", &e))?
        .map_err(index_error)?;
    Ok(message_response(&DeliveryAck { applied }, POSTCARD))
}

async fn disclose(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IndexState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: DisclosureApprovals = read_message(&req, payload, **limits).await?;
    let (order, keys) = read_approvals(&msg)?;
    let state = state.into_inner();
    let answer = web::block(move || -> Result<DisclosedIdentity, ApiError> {
        state.index.check_attributed(&order).map_err(index_error)?;
        let logged: DisclosureLogged = state
            .issuer
            .post_encoded(LOG_DISCLOSURE_ROUTE, &encode(&msg))
            .map_err(|e| match e {
                ClientError::Refused { status, body, .. } => ApiError::new(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    body.code,
                    format!("the issuer refused: {}", body.message.as_str()),
                ),
                other => ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::IssuerUnavailable,
                    format!("the issuer could not log the disclosure: {other}"),
                ),
            })?;
        state
            .index
            .disclose(&order, hashes(keys), &logged)
            .map_err(index_error)
    })
    .await
    .map_err(|e| ApiError::internal("blocking pool", &e))??;
    Ok(message_response(&answer, POSTCARD))
}

/// A client of the index's routes.
#[derive(Debug, Clone)]
pub struct IndexClient {
    http: HttpClient,
}

impl IndexClient {
    pub fn new(base_url: &str, config: ClientConfig) -> Result<IndexClient, ClientError> {
        Ok(IndexClient {
            http: HttpClient::new(base_url, config)?,
        })
    }

    pub fn deliver(&self, delivery: &RecordDelivery) -> Result<DeliveryAck, ClientError> {
        self.http
            .post_encoded("/v1/index/records", &encode(delivery))
    }

    pub fn applied(&self) -> Result<Seq, ClientError> {
        Ok(self
            .http
            .get_message::<DeliveryAck>("/v1/index/applied", POSTCARD)?
            .applied)
    }

    pub fn disclose(
        &self,
        approvals: &DisclosureApprovals,
    ) -> Result<DisclosedIdentity, ClientError> {
        self.http.post_encoded(DISCLOSE_ROUTE, &encode(approvals))
    }
}

// --- the forwarder ----------------------------------------------------------------

/// Delivers the issuer's log to the index from a thread of its own.
/// Dropping or stopping it stops the thread.
pub struct IndexForwarder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for IndexForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexForwarder").finish_non_exhaustive()
    }
}

impl IndexForwarder {
    /// Starts delivering the log of `core` past the position of the outbox
    /// at `outbox_path` to the index `client` talks to.
    pub fn start(
        core: Arc<IssuerCore>,
        client: IndexClient,
        outbox_path: &Path,
    ) -> Result<IndexForwarder, GatewayError> {
        let outbox = Outbox::open(outbox_path).map_err(|e| GatewayError::Config(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vc-index-forwarder".into())
            .spawn(move || forward(&core, &client, &outbox, &stopping))
            .map_err(GatewayError::Io)?;
        Ok(IndexForwarder {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for IndexForwarder {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Where the outbox goes on the index's acknowledgement `acked`, given the
/// log's last seq `head`: the index may be ahead of the outbox (a
/// restarted issuer without its outbox) or behind it (a gap, a restored
/// index), but it cannot have applied a record the log does not hold. An
/// acknowledgement past the head is the index's error or lie, and is not
/// believed: taken, it would skip the records appended up to it, and
/// `u64::MAX` would leave no next record to read.
fn acknowledged_position(acked: Seq, head: Seq) -> Option<Seq> {
    (acked <= head).then_some(acked)
}

/// The next delivery past `delivered`: up to the per-delivery bounds.
fn next_delivery(core: &IssuerCore, delivered: Seq) -> Result<Option<RecordDelivery>, String> {
    let Some(next) = delivered.0.checked_add(1) else {
        return Ok(None);
    };
    let records = core
        .store()
        .read(Seq(next), user_index::constants::RECORDS_PER_DELIVERY_MAX)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(records.len());
    let mut bytes = 0usize;
    for stored in records {
        let raw = ledger::RawRecord {
            seq: stored.record.seq,
            tx: stored.record.tx,
            at: stored.record.at,
            batch_index: stored.record.batch_index,
            batch_len: stored.record.batch_len,
            prev_hash: stored.prev_hash,
            hash: stored.hash,
            // Decoding refuses non-canonical bytes, so this is what is stored.
            event_bytes: stored.record.event.encode(),
        };
        bytes += raw.event_bytes.len() + 128;
        if !out.is_empty() && bytes > user_index::constants::DELIVERY_BYTES_TARGET {
            break;
        }
        out.push(DeliveredRecord::from_raw(raw).map_err(|e| e.to_string())?);
    }
    if out.is_empty() {
        return Ok(None);
    }
    let signature = core.sign_index_delivery(&RecordDelivery::signed_bytes(&out));
    Ok(Some(RecordDelivery {
        records: BoundedVec::new(out).map_err(|_| "too many records".to_owned())?,
        signature: BoundedBytes::new(signature.as_bytes().to_vec())
            .map_err(|_| "signature too long".to_owned())?,
    }))
}

fn forward(core: &IssuerCore, client: &IndexClient, outbox: &Outbox, stop: &AtomicBool) {
    let mut backoff_ms = FORWARDER_IDLE_MS;
    let mut failing = false;
    while !stop.load(Ordering::SeqCst) {
        let (delivered, head) = match (outbox.delivered(), core.store().head()) {
            (Ok(seq), Ok(head)) => (seq, head.last_seq),
            (Err(e), _) => {
                tracing::error!(error = %e, "the index outbox is unreadable");
                sleep_unless_stopped(stop, FORWARDER_BACKOFF_MS_MAX);
                continue;
            }
            (_, Err(e)) => {
                tracing::error!(error = %e, "reading the log's head failed");
                sleep_unless_stopped(stop, FORWARDER_BACKOFF_MS_MAX);
                continue;
            }
        };
        // An outbox past the head (an acknowledgement taken before it was
        // checked, a log restored from an older copy) would wait for records
        // that may never come: the index is asked again from the start, and
        // its answer says where it stands.
        let delivered = acknowledged_position(delivered, head).unwrap_or(Seq(0));
        let delivery = match next_delivery(core, delivered) {
            Ok(Some(delivery)) => delivery,
            Ok(None) => {
                sleep_unless_stopped(stop, FORWARDER_IDLE_MS);
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the log for the index failed");
                sleep_unless_stopped(stop, FORWARDER_BACKOFF_MS_MAX);
                continue;
            }
        };
        match client.deliver(&delivery) {
            Ok(ack) => {
                if failing {
                    tracing::info!(applied = ack.applied.0, "the user index answers again");
                    failing = false;
                }
                backoff_ms = FORWARDER_IDLE_MS;
                let head = match core.store().head() {
                    Ok(head) => head.last_seq,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the log's head failed");
                        sleep_unless_stopped(stop, FORWARDER_BACKOFF_MS_MAX);
                        continue;
                    }
                };
                let Some(applied) = acknowledged_position(ack.applied, head) else {
                    tracing::error!(
                        acknowledged = ack.applied.0,
                        head = head.0,
                        "the user index acknowledged records past the log's head; not believed"
                    );
                    sleep_unless_stopped(stop, FORWARDER_BACKOFF_MS_MAX);
                    continue;
                };
                if let Err(e) = outbox.set_delivered(applied) {
                    tracing::error!(error = %e, "recording the index's acknowledgement failed");
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "the user index is unreachable; records wait in the log");
                    failing = true;
                }
                sleep_unless_stopped(stop, backoff_ms);
                backoff_ms = (backoff_ms * 2).min(FORWARDER_BACKOFF_MS_MAX);
            }
        }
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, ms: u64) {
    let mut left = ms;
    while left > 0 && !stop.load(Ordering::SeqCst) {
        let step = left.min(50);
        std::thread::sleep(Duration::from_millis(step));
        left -= step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The index's acknowledgement moves the outbox anywhere up to the log's
    // head (ahead of it after a restart without the outbox, back after a
    // gap), never past it: a lying index cannot make the issuer skip
    // records it appends later, nor stop the forwarder with `u64::MAX`.
    #[test]
    fn an_acknowledgement_past_the_logs_head_is_not_believed() {
        let head = Seq(40);
        for acked in [Seq(0), Seq(7), Seq(40)] {
            assert_eq!(acknowledged_position(acked, head), Some(acked));
        }
        for acked in [Seq(41), Seq(1_000), Seq(u64::MAX)] {
            assert_eq!(acknowledged_position(acked, head), None);
        }
    }
}
