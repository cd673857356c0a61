//! The issuer's gateway: one POST route per protocol step over the
//! [`Issuer`] handle (actors crate), bodies in postcard under [`POSTCARD`].
//!
//! | route | request | answer |
//! |---|---|---|
//! | `GET /v1/issuer` | — | [`IssuerDescriptor`] |
//! | `GET /v1/epochs/revoked` | — | [`RevokedEpochs`] |
//! | `POST /v1/register` | `RegisterRequest` | `Certificate` |
//! | `POST /v1/enroll` | `EnrollmentRequest` | `EnrollmentAnswer` |
//! | `POST /v1/purchase/1` | `WRequest1` | `WRequest2` |
//! | `POST /v1/purchase/3` | `WRequest3` | `PurchaseIssuance1` |
//! | `POST /v1/purchase/poll` | `PurchasePoll` | `PurchaseIssuance1` |
//! | `POST /v1/purchase/ack` | `PurchaseIssuance2` | 204 |
//! | `POST /v1/validate` | `ValidationRequest` | `PaymentIssuance1` |
//! | `POST /v1/validate/ack` | `PaymentIssuance2` | 204 |
//! | `POST /v1/refund` | `RefundRequest` | `RefundAnswer` |
//! | `POST /v1/coin-status` | `HeldCoinStatusQuery` (whole coins: the tags prove possession) | `CoinStatusAnswer`; rate limited per source more tightly than other routes |
//! | `POST /v1/cash-out` | `CashOutRequest` (signed by the merchant) | `CashOutReceipt` |
//! | `POST /v1/key-change` | `KeyChangeRequest` (signed by the old key, proving the new) | `Certificate` for the new key |
//! | `POST /admin/enroll/approve` | [`OperatorRequest`] of [`ApproveEnrollment`] | 204 |
//! | `POST /admin/enroll/refuse` | [`OperatorRequest`] of [`RefuseEnrollment`] | 204 |
//! | `POST /admin/participant/standing` | [`OperatorRequest`] of [`SetStanding`] | 204 |
//! | `POST /admin/card/agency` | [`OperatorRequest`] of [`AgencyCall`](crate::card::AgencyCall) (a card system's step) | [`AgencyAnswer`](crate::card::AgencyAnswer) |
//! | `POST /admin/bank/account` | [`OperatorRequest`] of [`OpenBankAccount`] | 204; with a simulated bank |
//! | `POST /admin/bank/balance` | [`OperatorRequest`] of [`BankBalanceQuery`] | [`BankBalance`]; likewise |
//! | `POST /admin/epoch/open` | [`OperatorRequest`] of [`OpenEpoch`] | [`EpochOpenedAnswer`] |
//! | `POST /admin/epoch/revoke` | [`OperatorRequest`] of [`RevokeEpoch`] | [`EpochRevokedAnswer`] |
//! | `POST /admin/epoch/erase` | [`OperatorRequest`] of [`EraseEpoch`] | [`EpochErasedAnswer`] |
//! | `GET /dashboard/login?grant=HEX`, `GET /dashboard` | an operator's signed grant, then its session cookie | the dashboard ([`crate::dashboard`]) |
//! | `POST /admin/index/disclose` | `DisclosureApprovals`: two [`OperatorRequest`]s of one `DisclosureOrder`, by two keys | `DisclosureLogged` (see [`crate::index`]) |
//!
//! Every `/admin` route answers only requests signed by an operator key of
//! [`ServerConfig::operators`] (see [`crate::operator`]); the peer's address
//! authorizes nothing.
//!
//! The issuer's work (RSA, fsync) runs on the issuer's own pool of crypto
//! workers behind the handle, so the event loops keep reading and answering
//! while commits are under way; the in-flight limit bounds how much waits
//! in that pool's mailbox. [`IssuerRuntime`] runs the issuer's actors on a
//! thread of their own for callers without an actix system (the CLI,
//! tests).

use std::sync::Arc;

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{Bank, Issuer, IssuerConfig, IssuerCore, IssuerError, SimulatedBank, Stage};
use protocol::flows::FlowError;
use protocol::wire::WireMessage;
use protocol::wire::enrollment::EnrollmentRequest;
use protocol::wire::payment::{PaymentIssuance2, ValidationRequest};
use protocol::wire::purchase::{PurchaseIssuance2, PurchasePoll, WRequest1, WRequest3};
use protocol::wire::refund::RefundRequest;
use protocol::wire::registration::RegisterRequest;
use protocol::wire::status::HeldCoinStatusQuery;

use crate::api::{
    ApproveEnrollment, BankBalance, BankBalanceQuery, EpochErasedAnswer, EpochOpenedAnswer,
    EpochRevokedAnswer, EraseEpoch, IssuerDescriptor, OpenBankAccount, OpenEpoch,
    REVOKED_EPOCHS_MAX, RefuseEnrollment, RevokeEpoch, RevokedEpochs, SetStanding,
};
use crate::body::{BodyLimits, message_response, read_message};
use crate::error::{ApiError, GatewayError};
use crate::media::{ErrorCode, POSTCARD};
use crate::metrics::{MetricsSource, counter, gauge};
use crate::operator::{OperatorRefusal, OperatorRequest};
use crate::server::{self, ServerConfig, ServerHandle, ServerState, get_resource, post_resource};
use crate::stage_metrics::stage_histograms;

/// What the issuer's routes share.
struct IssuerState {
    issuer: Issuer,
    /// The simulated bank, for the operator's bank routes (absent with a
    /// real bank connector: those routes then answer 404).
    bank: Option<Arc<SimulatedBank>>,
    /// The coin status route's own, tighter, rate per source address.
    status_sources: crate::sources::Sources,
    /// One card agency step at a time: the agency's file is opened for
    /// each (redb allows one opening at once).
    card_agency: std::sync::Mutex<()>,
}

/// Starts the issuer's gateway over a started [`Issuer`] (whose actix
/// system must keep running: see [`IssuerRuntime`]); returns once it
/// listens. Several gateways may serve one issuer.
pub fn serve_issuer(config: &ServerConfig, issuer: Issuer) -> Result<ServerHandle, GatewayError> {
    serve(config, issuer, None)
}

/// [`serve_issuer`], plus the operator's routes to the simulated bank
/// (open an account, read a balance), for demos and tests run as separate
/// processes.
pub fn serve_issuer_with_bank(
    config: &ServerConfig,
    issuer: Issuer,
    bank: Arc<SimulatedBank>,
) -> Result<ServerHandle, GatewayError> {
    serve(config, issuer, Some(bank))
}

fn serve(
    config: &ServerConfig,
    issuer: Issuer,
    bank: Option<Arc<SimulatedBank>>,
) -> Result<ServerHandle, GatewayError> {
    let source: Arc<dyn MetricsSource> = Arc::new(IssuerMetrics {
        core: issuer.core().clone(),
    });
    let status_sources = crate::sources::Sources::new(crate::sources::SourceLimits {
        requests_per_sec: f64::from(crate::constants::COIN_STATUS_PER_SOURCE_PER_SEC),
        requests_burst: f64::from(crate::constants::COIN_STATUS_PER_SOURCE_BURST),
        ..crate::sources::SourceLimits::unlimited()
    });
    // Operator requests name this issuer (its key's fingerprint): one
    // signed for another server that lists the same operator key is
    // refused here.
    let audience = crate::operator::KeyFingerprint::of(&issuer.public_key());
    if !config.operators.serve_for(audience) {
        return Err(GatewayError::Config(
            "these operator credentials already guard another issuer".into(),
        ));
    }
    let dashboard = web::Data::new(crate::dashboard::DashboardState::new(issuer.core().clone()));
    let state = web::Data::new(IssuerState {
        issuer,
        bank,
        status_sources,
        card_agency: std::sync::Mutex::new(()),
    });
    server::start(config, "vc_issuer", Some(source), move |cfg| {
        routes(cfg, state.clone());
        crate::dashboard::routes(cfg, dashboard.clone());
    })
}

/// The issuer's actors (crypto pool, housekeeper) on an actix system of
/// their own thread. Stopping or dropping it stops them and returns once
/// the issuer's core is dropped, so its files (the redb log above all) are
/// closed: a process may exit right after, and an auditor may open the log
/// read-only at once.
pub struct IssuerRuntime {
    // Declared first: dropped before `actors` waits for the core, whose
    // last reference the runtime's own handle would otherwise keep.
    issuer: Issuer,
    actors: ActorThread,
}

impl std::fmt::Debug for IssuerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerRuntime").finish_non_exhaustive()
    }
}

/// How long stopping waits for the actors' threads to let go of the core.
pub const ISSUER_CLOSE_WAIT_MS: u64 = 10_000;

impl IssuerRuntime {
    /// Opens the issuer from its files (creating them on first start) and
    /// starts its actors; returns once they run.
    pub fn start(config: IssuerConfig, bank: Arc<dyn Bank>) -> Result<IssuerRuntime, GatewayError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vc-issuer-actors".into())
            .spawn(move || {
                let runner = actix_web::rt::System::new();
                let started = runner.block_on(async move {
                    Issuer::start(config, bank).map(|i| (i, actix_web::rt::System::current()))
                });
                let ok = started.is_ok();
                let _ = ready_tx.send(started);
                if ok && let Err(e) = runner.run() {
                    tracing::error!(error = %e, "the issuer's actor system failed");
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok((issuer, system))) => Ok(IssuerRuntime {
                actors: ActorThread {
                    core: Some(issuer.core().clone()),
                    system,
                    thread: Some(thread),
                },
                issuer,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(GatewayError::Issuer(Box::new(e)))
            }
            Err(_) => {
                let _ = thread.join();
                Err(GatewayError::NotStarted)
            }
        }
    }

    /// The handle gateways serve (cheap to clone).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Stops the actors and returns once the issuer's files are closed
    /// (see [`IssuerRuntime::try_stop`]; a failure to close goes to the
    /// log).
    pub fn stop(self) {
        if let Err(e) = self.try_stop() {
            tracing::error!(error = %e, "stopping the issuer");
        }
    }

    /// Stops the actors, waits for their thread, then waits until every
    /// other holder of the issuer's core has let go (the pool's worker
    /// threads do so a little after the system stops) and drops the last
    /// reference in this thread, which closes the log. Fails if someone
    /// still holds the core after [`ISSUER_CLOSE_WAIT_MS`] (a gateway not
    /// stopped first, a handle kept): the files then close when they let go.
    pub fn try_stop(self) -> Result<(), GatewayError> {
        let IssuerRuntime { issuer, mut actors } = self;
        drop(issuer);
        actors.close()
    }
}

/// The actix system the actors run on, and a reference to the core kept
/// so that the last one is dropped by the thread that stops the issuer.
struct ActorThread {
    core: Option<Arc<IssuerCore>>,
    system: actix_web::rt::System,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ActorThread {
    fn close(&mut self) -> Result<(), GatewayError> {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let Some(core) = self.core.take() else {
            return Ok(());
        };
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(ISSUER_CLOSE_WAIT_MS);
        // Only this thread can add a reference (no one else holds one once
        // the count is 1, and the core hands out no weak ones), so once it
        // reads 1 the drop below is the last and runs here, joining the
        // log's writer thread and closing the redb files before returning.
        while Arc::strong_count(&core) > 1 {
            if std::time::Instant::now() > deadline {
                return Err(GatewayError::NotClosed {
                    waited_ms: ISSUER_CLOSE_WAIT_MS,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(core);
        Ok(())
    }
}

impl Drop for ActorThread {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "stopping the issuer");
        }
    }
}

/// Maps the issuer's refusal of a request to a status and code. Technical
/// failures become a bare 500; their details go to the issuer's log.
pub fn issuer_error(e: IssuerError) -> ApiError {
    use StatusCode as S;
    let refused = |e: &dyn std::fmt::Display| {
        ApiError::new(S::UNPROCESSABLE_ENTITY, ErrorCode::Refused, e.to_string())
    };
    match e {
        IssuerError::Flow(FlowError::Wire(w)) => w.into(),
        IssuerError::Flow(FlowError::UnknownParticipant) | IssuerError::UnknownParticipant => {
            ApiError::new(
                S::FORBIDDEN,
                ErrorCode::NotRegistered,
                "participant is not registered",
            )
        }
        IssuerError::Flow(FlowError::ReplayedNonce) => ApiError::new(
            S::CONFLICT,
            ErrorCode::Replayed,
            FlowError::ReplayedNonce.to_string(),
        ),
        IssuerError::Flow(flow) => refused(&flow),
        IssuerError::InFlight => ApiError::new(
            S::CONFLICT,
            ErrorCode::InFlight,
            "the same transaction is in flight; retry",
        )
        .with_retry_after(crate::constants::RETRY_AFTER_SECS),
        IssuerError::IdentityTaken => ApiError::new(
            S::CONFLICT,
            ErrorCode::IdentityTaken,
            "identity already registered with another key",
        ),
        IssuerError::IdentityReserved => ApiError::new(
            S::CONFLICT,
            ErrorCode::IdentityTaken,
            "identity reserved for the issuer and its services",
        ),
        IssuerError::NoSuchEnrollment => ApiError::new(
            S::FORBIDDEN,
            ErrorCode::NotEnrolled,
            "no enrollment for this participant and role",
        ),
        IssuerError::EnrollmentRefused => ApiError::new(
            S::FORBIDDEN,
            ErrorCode::EnrollmentRefused,
            "the issuer's operator refused this enrollment",
        ),
        IssuerError::ParticipantSuspended => ApiError::new(
            S::FORBIDDEN,
            ErrorCode::Suspended,
            "the participant is suspended by the issuer's operator",
        ),
        IssuerError::ParticipantRevoked => ApiError::new(
            S::FORBIDDEN,
            ErrorCode::Revoked,
            "the participant is revoked by the issuer's operator",
        ),
        IssuerError::UnknownPurchase => ApiError::new(
            S::NOT_FOUND,
            ErrorCode::UnknownPurchase,
            "unknown or expired purchase",
        ),
        IssuerError::PurchaseClosed => ApiError::new(
            S::GONE,
            ErrorCode::PurchaseClosed,
            "purchase already acknowledged",
        ),
        IssuerError::Session(
            s @ (actors::SessionError::Unknown
            | actors::SessionError::Expired
            | actors::SessionError::AlreadyUsed),
        ) => refused(&s),
        IssuerError::Session(actors::SessionError::Full) => ApiError::overloaded(),
        IssuerError::AboveBalance { .. } | IssuerError::NothingToCashOut => ApiError::new(
            S::UNPROCESSABLE_ENTITY,
            ErrorCode::AboveBalance,
            e.to_string(),
        ),
        IssuerError::Stopped => ApiError::new(
            S::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            "the issuer is stopping",
        ),
        // Fresh coins of an epoch that is ending: nothing committed, the
        // same request tried again gets coins of the current epoch.
        IssuerError::IssuedUnderClosingEpoch(_) => {
            ApiError::new(S::CONFLICT, ErrorCode::InFlight, e.to_string())
                .with_retry_after(crate::constants::RETRY_AFTER_SECS)
        }
        other => ApiError::internal("issuer", &other),
    }
}

/// Decodes the body as `Req`, hands it to the issuer's step `run`, answers
/// its result (or 204 for `()`).
async fn step<Req, Resp, F, Fut>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    limits: web::Data<BodyLimits>,
    run: F,
) -> Result<HttpResponse, ApiError>
where
    Req: WireMessage,
    Resp: Answer,
    F: FnOnce(Issuer, Req) -> Fut,
    Fut: Future<Output = Result<Resp, IssuerError>>,
{
    let msg: Req = read_message(&req, payload, **limits).await?;
    let answer = run(state.issuer.clone(), msg).await.map_err(issuer_error)?;
    Ok(answer.into_response())
}

/// `POST /v1/validate`, its whole handler timed (reading and decoding the
/// body, the validation, encoding the answer) as the issuer's
/// [`Stage::HttpHandler`]: with the issuer's own stages, it shows where a
/// payment's latency goes.
async fn validate_timed(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let issuer = state.issuer.clone();
    let answer = step(
        req,
        payload,
        state,
        limits,
        |issuer: Issuer, msg: ValidationRequest| async move { issuer.validate(msg).await },
    )
    .await;
    issuer
        .stage_timings()
        .record(Stage::HttpHandler, started.elapsed());
    answer
}

/// What a step answers: a message, or nothing (an acknowledgement).
trait Answer {
    fn into_response(self) -> HttpResponse;
}

impl Answer for () {
    fn into_response(self) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }
}

macro_rules! answers {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn into_response(self) -> HttpResponse {
                message_response(&self, POSTCARD)
            }
        }
    )*};
}

answers!(
    protocol::wire::registration::Certificate,
    protocol::wire::enrollment::EnrollmentAnswer,
    protocol::wire::purchase::WRequest2,
    protocol::wire::purchase::PurchaseIssuance1,
    protocol::wire::payment::PaymentIssuance1,
    protocol::wire::refund::RefundAnswer,
    protocol::wire::cash_out::CashOutReceipt,
    protocol::wire::status::CoinStatusAnswer
);

macro_rules! step_route {
    ($path:literal, $req:ty, $method:ident) => {
        post_resource(
            $path,
            |req: HttpRequest,
             payload: web::Payload,
             state: web::Data<IssuerState>,
             limits: web::Data<BodyLimits>| {
                step(
                    req,
                    payload,
                    state,
                    limits,
                    |issuer: Issuer, msg: $req| async move { issuer.$method(msg).await },
                )
            },
        )
    };
}

/// `POST /v1/coin-status`: the holder's query, under the route's own rate
/// per source (checked before the body is read), then the issuer's signed
/// answer. A source the table has no room for is told to come back.
async fn coin_status(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let source = req
        .conn_data::<crate::sources::ConnectionSlot>()
        .map(|slot| slot.source)
        .or_else(|| req.peer_addr().map(|a| crate::sources::Source::of(a.ip())));
    if let Some(source) = source
        && let Err(refusal) = state.status_sources.allow_request(source)
    {
        return Err(match refusal {
            crate::sources::SourceRefusal::TooFast => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many coin status queries from this address",
            )
            .with_retry_after(crate::constants::RETRY_AFTER_SECS),
            crate::sources::SourceRefusal::Full => ApiError::overloaded(),
        });
    }
    step(
        req,
        payload,
        state,
        limits,
        |issuer: Issuer, msg: HeldCoinStatusQuery| async move {
            issuer.held_coin_status(msg).await
        },
    )
    .await
}

async fn descriptor(state: web::Data<IssuerState>) -> HttpResponse {
    let issuer = &state.issuer;
    let descriptor = IssuerDescriptor {
        id_i: issuer.id(),
        public_key: issuer.public_key().to_ledger(),
        suite: issuer.suite(),
    };
    message_response(&descriptor, POSTCARD)
}

/// The epochs revoked and not yet erased. Public, like the revocation
/// itself (every holder of the epoch's coins must learn it); a client
/// that believes a false list only refreshes its own coins.
async fn revoked_epochs(state: web::Data<IssuerState>) -> HttpResponse {
    let epochs = state
        .issuer
        .core()
        .revoked_epochs()
        .into_iter()
        .take(REVOKED_EPOCHS_MAX)
        .collect();
    message_response(&RevokedEpochs { epochs }, POSTCARD)
}

/// The issuer's latest signed log head (seq, hash, signature), as text:
/// the anchor an auditor holds the log to (`audit --expect-head URL`).
/// Public: it reveals no more than the log's length.
async fn signed_head(state: web::Data<IssuerState>) -> Result<HttpResponse, ApiError> {
    match state.issuer.published_head() {
        Ok(Some(text)) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(text)),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "the issuer has signed no checkpoint yet",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("reading the signed head: {e}"),
        )),
    }
}

/// Maps an operator request's refusal to its answer.
pub(crate) fn operator_refusal(e: OperatorRefusal) -> ApiError {
    use StatusCode as S;
    match e {
        OperatorRefusal::UnknownKey(_)
        | OperatorRefusal::WrongServer
        | OperatorRefusal::WrongRoute { .. } => {
            ApiError::new(S::FORBIDDEN, ErrorCode::Forbidden, e.to_string())
        }
        OperatorRefusal::Replayed => {
            ApiError::new(S::UNAUTHORIZED, ErrorCode::Replayed, e.to_string())
        }
        OperatorRefusal::NoRoom(_) => ApiError::overloaded(),
        OperatorRefusal::Store(io) => ApiError::internal("operator nonce store", &io),
        OperatorRefusal::Tables(kv) => ApiError::internal("operator nonce store", &kv),
        other => ApiError::new(
            S::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            other.to_string(),
        ),
    }
}

/// Reads the body as an [`OperatorRequest`] for this route, checks it
/// against the server's operator keys (remembering its nonce durably), logs
/// who asked, and decodes the message it carries. The peer's address plays
/// no part.
async fn operator_message<M: WireMessage>(
    req: &HttpRequest,
    payload: web::Payload,
    server: &web::Data<ServerState>,
    limits: BodyLimits,
) -> Result<M, ApiError> {
    crate::body::require_media_type(req, POSTCARD)?;
    let bytes = crate::body::read_bounded(
        req,
        payload,
        OperatorRequest::NAME,
        OperatorRequest::BYTES_MAX,
        limits,
    )
    .await?;
    let route = req.path().to_owned();
    let operators = server.operators.clone();
    let checked_route = route.clone();
    let authorized = web::block(move || {
        operators.authorize(&bytes, &checked_route, crate::operator::now_micros())
    })
    .await
    .map_err(|e| ApiError::internal("blocking pool", &e))?;
    let authorized = match authorized {
        Ok(authorized) => authorized,
        Err(e) => {
            tracing::warn!(%route, refusal = %e, "operator request refused");
            return Err(operator_refusal(e));
        }
    };
    tracing::info!(
        %route,
        operator_key = %authorized.key.short(),
        operator = %authorized.key_name,
        "operator request"
    );
    Ok(protocol::wire::decode::<M>(&authorized.body)?)
}

async fn approve_enrollment(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: ApproveEnrollment = operator_message(&req, payload, &server, **limits).await?;
    state
        .issuer
        .approve_enrollment(msg.id, msg.role)
        .await
        .map_err(issuer_error)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn refuse_enrollment(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: RefuseEnrollment = operator_message(&req, payload, &server, **limits).await?;
    state
        .issuer
        .refuse_enrollment(msg.id, msg.role)
        .await
        .map_err(issuer_error)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn set_standing(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: SetStanding = operator_message(&req, payload, &server, **limits).await?;
    state
        .issuer
        .set_standing(msg.id, msg.standing)
        .await
        .map_err(issuer_error)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /admin/card/agency`: one step of the issuer's card agency, for a
/// card system (signed with an operator key). The agency opens over the
/// serving issuer's core for the step (its open loads are already held by
/// the issuer's start), one step at a time.
async fn card_agency(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let call: crate::card::AgencyCall = operator_message(&req, payload, &server, **limits).await?;
    let state = state.into_inner();
    let answer = web::block(move || {
        let _one_at_a_time = ledger::sync::lock(&state.card_agency);
        let core = state.issuer.core();
        actors::CardAgency::open(core)
            .map(|agency| crate::card::answer_agency_call(&agency, call))
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal("blocking pool", &e))?
    .map_err(|e| ApiError::internal("card agency", &e))?;
    Ok(message_response(&answer, POSTCARD))
}

fn simulated_bank(state: &IssuerState) -> Result<Arc<SimulatedBank>, ApiError> {
    state.bank.clone().ok_or_else(ApiError::not_found)
}

fn bank_error(e: actors::BankError) -> ApiError {
    use actors::BankError as B;
    match e {
        B::UnknownAccount | B::AccountClosed => {
            ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, e.to_string())
        }
        B::AccountExists => ApiError::new(StatusCode::CONFLICT, ErrorCode::Refused, e.to_string()),
        other => ApiError::internal("bank", &other),
    }
}

async fn open_bank_account(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: OpenBankAccount = operator_message(&req, payload, &server, **limits).await?;
    let bank = simulated_bank(&state)?;
    web::block(move || bank.open_account(&msg.account, msg.balance))
        .await
        .map_err(|e| ApiError::internal("blocking pool", &e))?
        .map_err(bank_error)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn bank_balance(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let msg: BankBalanceQuery = operator_message(&req, payload, &server, **limits).await?;
    let bank = simulated_bank(&state)?;
    let balance = web::block(move || bank.balance(&msg.account))
        .await
        .map_err(|e| ApiError::internal("blocking pool", &e))?
        .map_err(bank_error)?;
    Ok(message_response(&BankBalance { balance }, POSTCARD))
}

async fn open_epoch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let OpenEpoch {} = operator_message(&req, payload, &server, **limits).await?;
    let (epoch, info) = state.issuer.open_epoch_now().await.map_err(issuer_error)?;
    let info = info.ok_or_else(|| {
        ApiError::internal(
            "epoch",
            &format_args!("epoch {} is not in the state", epoch.0),
        )
    })?;
    Ok(message_response(
        &EpochOpenedAnswer {
            epoch,
            coins_expire_at: info.coins_expire_at,
            grace_ends_at: info.grace_ends_at,
        },
        POSTCARD,
    ))
}

async fn revoke_epoch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let RevokeEpoch { epoch } = operator_message(&req, payload, &server, **limits).await?;
    let r = state
        .issuer
        .revoke_epoch(epoch)
        .await
        .map_err(epoch_error)?;
    Ok(message_response(
        &EpochRevokedAnswer {
            epoch: r.epoch,
            owed: r.owed,
            still_owed: r.still_owed,
        },
        POSTCARD,
    ))
}

async fn erase_epoch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let EraseEpoch { epoch } = operator_message(&req, payload, &server, **limits).await?;
    let e = state.issuer.erase_epoch(epoch).await.map_err(epoch_error)?;
    Ok(message_response(
        &EpochErasedAnswer {
            epoch: e.epoch,
            through: e.through,
            n_coins: e.n_coins,
            value: e.value,
            forfeited_n_coins: e.forfeited_n_coins,
            forfeited: e.forfeited,
        },
        POSTCARD,
    ))
}

/// An epoch step's refusal: the operator's mistakes are 422 with the
/// reason, transactions in flight a 409 to retry.
fn epoch_error(e: IssuerError) -> ApiError {
    match e {
        IssuerError::UnknownEpoch(_)
        | IssuerError::EpochErased(_)
        | IssuerError::GraceNotOver { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Refused,
            e.to_string(),
        ),
        IssuerError::EpochInUse { .. } => {
            ApiError::new(StatusCode::CONFLICT, ErrorCode::InFlight, e.to_string())
                .with_retry_after(crate::constants::RETRY_AFTER_SECS)
        }
        other => issuer_error(other),
    }
}

fn routes(cfg: &mut web::ServiceConfig, state: web::Data<IssuerState>) {
    cfg.app_data(state)
        .service(get_resource("/v1/issuer", descriptor))
        .service(get_resource("/v1/epochs/revoked", revoked_epochs))
        .service(get_resource("/v1/log/head", signed_head))
        .service(step_route!("/v1/register", RegisterRequest, register))
        .service(step_route!(
            "/v1/enroll",
            EnrollmentRequest,
            request_enrollment
        ))
        .service(step_route!("/v1/purchase/1", WRequest1, wrequest1))
        .service(step_route!("/v1/purchase/3", WRequest3, wrequest3))
        .service(step_route!(
            "/v1/purchase/poll",
            PurchasePoll,
            purchase_poll
        ))
        .service(step_route!(
            "/v1/purchase/ack",
            PurchaseIssuance2,
            purchase_issuance2
        ))
        .service(post_resource("/v1/validate", validate_timed))
        .service(step_route!(
            "/v1/validate/ack",
            PaymentIssuance2,
            payment_issuance2
        ))
        .service(step_route!("/v1/refund", RefundRequest, refund))
        .service(post_resource("/v1/coin-status", coin_status))
        .service(step_route!(
            "/v1/cash-out",
            protocol::wire::cash_out::CashOutRequest,
            cash_out
        ))
        .service(step_route!(
            "/v1/key-change",
            protocol::wire::key_change::KeyChangeRequest,
            change_key
        ))
        .service(post_resource("/admin/enroll/approve", approve_enrollment))
        .service(post_resource("/admin/enroll/refuse", refuse_enrollment))
        .service(post_resource("/admin/participant/standing", set_standing))
        .service(post_resource("/admin/card/agency", card_agency))
        .service(post_resource("/admin/bank/account", open_bank_account))
        .service(post_resource("/admin/bank/balance", bank_balance))
        .service(post_resource("/admin/epoch/open", open_epoch))
        .service(post_resource("/admin/epoch/revoke", revoke_epoch))
        .service(post_resource("/admin/epoch/erase", erase_epoch))
        .service(post_resource(
            crate::index::LOG_DISCLOSURE_ROUTE,
            log_disclosure,
        ));
}

/// `POST /admin/index/disclose`: see [`crate::index`].
async fn log_disclosure(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IssuerState>,
    server: web::Data<ServerState>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    crate::index::log_disclosure(
        req,
        payload,
        state.issuer.core().clone(),
        server.operators.clone(),
        **limits,
    )
    .await
}

/// The issuer's own figures at `/metrics`.
struct IssuerMetrics {
    core: Arc<IssuerCore>,
}

impl MetricsSource for IssuerMetrics {
    fn render(&self, out: &mut String) {
        let totals = self.core.totals();
        gauge(
            out,
            "vc_issuer_outstanding_emoney_minor",
            "Value of unspent coins (minor units), as the issuer's running totals say.",
            totals.outstanding as f64,
        );
        gauge(
            out,
            "vc_issuer_aggregated_balances_minor",
            "Merchants' aggregated balances (minor units).",
            totals.aggregates as f64,
        );
        gauge(
            out,
            "vc_issuer_card_float_minor",
            "Value owed to card systems (minor units).",
            totals.card_float as f64,
        );
        counter(
            out,
            "vc_issuer_real_money_in_minor_total",
            "Real money received: settled purchases, card unloads (minor units).",
            totals.real_in as f64,
        );
        counter(
            out,
            "vc_issuer_real_money_out_minor_total",
            "Real money paid out: redemptions, card loads (minor units).",
            totals.real_out as f64,
        );
        gauge(
            out,
            "vc_issuer_unspent_coins",
            "Unspent coins held by the shards.",
            self.core.n_unspent() as f64,
        );
        gauge(
            out,
            "vc_issuer_idempotency_entries",
            "Committed transactions held in memory: those the transaction index has not applied yet.",
            self.core.n_committed_in_memory() as f64,
        );
        match ledger::EventStore::head(self.core.store().as_ref()) {
            Ok(head) => counter(
                out,
                "vc_issuer_log_records_total",
                "Records in the issuer's log (its last sequence number).",
                head.last_seq.0 as f64,
            ),
            Err(e) => tracing::warn!(error = %e, "log head unreadable for metrics"),
        }
        let log = self.core.log_commit_stats();
        counter(
            out,
            "vc_issuer_log_commits_total",
            "Durable group commits of the log (one fsync each).",
            log.commits as f64,
        );
        counter(
            out,
            "vc_issuer_log_committed_batches_total",
            "Transactions (batches) in those commits; divided by the commits: the group-commit batch size.",
            log.batches as f64,
        );
        counter(
            out,
            "vc_issuer_log_committed_records_total",
            "Records in those commits.",
            log.records as f64,
        );
        let sessions = self.core.session_commit_stats();
        counter(
            out,
            "vc_issuer_session_commits_total",
            "Group commits of the session store (one fsync each).",
            sessions.commits as f64,
        );
        counter(
            out,
            "vc_issuer_session_writes_total",
            "Session writes in those commits.",
            sessions.writes as f64,
        );
        stage_histograms(
            out,
            "vc_issuer_stage_seconds",
            "Time of each stage of a validation (pool_wait .. session_wait; validation: the whole, in the issuer; http_handler: with the body and answer) and of each durable commit (log_append, session_commit).",
            &self.core.stage_timings().snapshot(),
        );
        if let Some((epoch, _)) = self.core.current_epoch() {
            gauge(
                out,
                "vc_issuer_key_epoch",
                "The key epoch new coins are minted under.",
                f64::from(epoch.0),
            );
        }
    }
}
