//! What the issuer gateway and the merchant server share: their limits and
//! timeouts ([`ServerConfig`]), a running server ([`ServerHandle`]), the
//! guard every request passes (two bounded stages, over either 503 with
//! Retry-After; counting by route and status), `GET /health`,
//! `GET /metrics`, and typed 404 / 405 answers.
//!
//! The two stages: a request with a body first holds a place among the
//! bodies being received (a large bound, a short body timeout), and takes a
//! place in flight only once its body has fully arrived (`body_received`);
//! a request without a body goes in flight at once. So senders that trickle
//! their bodies wait in the first stage and cannot lock honest clients out
//! of the second.
//!
//! A server runs on its own thread with its own actix system, so callers
//! need no runtime: the CLI, tests and other servers start one, keep the
//! handle, and stop it. Signals are left to the caller (the CLI).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, ResponseError, web};

use crate::body::BodyLimits;
use crate::constants::{
    CLIENT_DISCONNECT_TIMEOUT_MS, CONNECTIONS_PER_WORKER_MAX, KEEP_ALIVE_MS,
    REQUEST_BODIES_RECEIVING_MAX, REQUEST_BODY_BYTES_MAX, REQUEST_BODY_TIMEOUT_MS,
    REQUEST_HEAD_TIMEOUT_MS, REQUESTS_IN_FLIGHT_MAX, TLS_HANDSHAKE_TIMEOUT_MS,
    TLS_HANDSHAKES_PER_WORKER_MAX,
};
use crate::error::{ApiError, GatewayError};
use crate::media::{ErrorCode, PROMETHEUS};
use crate::metrics::{Metrics, MetricsSource};
use crate::operator::{OperatorAuth, ScrapeToken};
use crate::sources::{ConnectionSlot, Place, Source, SourceLimits, SourceRefusal, Sources};
use crate::tls::TlsIdentity;

/// Seconds a graceful stop waits for requests in flight.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// Where a server listens and what it tolerates.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port ([`ServerHandle::addr`]).
    pub bind: SocketAddr,
    /// Worker threads (each runs its own event loop).
    pub workers: usize,
    /// Requests handled at once (their bodies fully arrived); more are
    /// answered 503 with Retry-After.
    pub requests_in_flight_max: usize,
    /// Requests whose bodies are still arriving, at once; more are answered
    /// 503 with Retry-After. Kept apart from the places in flight so that
    /// slow senders cannot take those.
    pub bodies_receiving_max: usize,
    /// Time to send the request head; slower senders are cut off (408).
    pub request_head_timeout_ms: u64,
    /// Time to send the body once the head is in (typed 408).
    pub body_timeout_ms: u64,
    /// Idle time before a keep-alive connection is closed.
    pub keep_alive_ms: u64,
    /// Ceiling on any request body (routes apply their message's own limit).
    pub body_bytes_max: usize,
    /// Whom the operator routes (`/admin/...`) answer: requests signed by
    /// these keys. [`OperatorAuth::none`] (the default) refuses them all.
    pub operators: Arc<OperatorAuth>,
    /// The bearer token `GET /metrics` requires; without one (the default)
    /// `/metrics` answers nobody.
    pub metrics_token: Option<ScrapeToken>,
    /// The certificate and key to serve HTTPS with; `None` serves plain
    /// HTTP (loopback library tests, `--insecure-http`).
    pub tls: Option<TlsIdentity>,
    /// What one source address may hold and ask.
    pub per_source: SourceLimits,
}

impl ServerConfig {
    /// The defaults of [`crate::constants`], listening on `bind`.
    pub fn new(bind: SocketAddr) -> ServerConfig {
        ServerConfig {
            bind,
            workers: 2,
            requests_in_flight_max: REQUESTS_IN_FLIGHT_MAX,
            bodies_receiving_max: REQUEST_BODIES_RECEIVING_MAX,
            request_head_timeout_ms: REQUEST_HEAD_TIMEOUT_MS,
            body_timeout_ms: REQUEST_BODY_TIMEOUT_MS,
            keep_alive_ms: KEEP_ALIVE_MS,
            body_bytes_max: REQUEST_BODY_BYTES_MAX,
            operators: Arc::new(OperatorAuth::none()),
            metrics_token: None,
            tls: None,
            per_source: SourceLimits::default(),
        }
    }

    /// The defaults on 127.0.0.1, on a free port: plain HTTP (`tls` is
    /// `None`), no operator key, no scrape token.
    pub fn loopback() -> ServerConfig {
        ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    fn check(&self) -> Result<(), GatewayError> {
        if self.workers == 0 || self.requests_in_flight_max == 0 || self.bodies_receiving_max == 0 {
            return Err(GatewayError::Config(
                "workers, requests_in_flight_max and bodies_receiving_max must be positive".into(),
            ));
        }
        if self.request_head_timeout_ms == 0 || self.body_timeout_ms == 0 {
            return Err(GatewayError::Config("timeouts must be positive".into()));
        }
        Ok(())
    }
}

/// Shared by the guard and the operator routes of one server.
pub struct ServerState {
    /// Prefix of this server's metric names (`vc_issuer`, `vc_merchant`).
    pub metrics_prefix: &'static str,
    pub metrics: Metrics,
    pub source: Option<Arc<dyn MetricsSource>>,
    pub limits: BodyLimits,
    pub requests_in_flight_max: usize,
    pub bodies_receiving_max: usize,
    /// Requests whose bodies are still arriving.
    pub bodies_receiving: AtomicUsize,
    pub operators: Arc<OperatorAuth>,
    pub metrics_token: Option<ScrapeToken>,
    pub sources: Arc<Sources>,
}

/// A running server. Dropping it stops the server at once; [`stop`]
/// lets requests in flight finish first.
///
/// [`stop`]: ServerHandle::stop
pub struct ServerHandle {
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR` (or `http://ADDR` without TLS), the base URL
    /// clients use.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// A handle that can stop the server from elsewhere (a signal handler):
    /// `actix_web::dev::ServerHandle::stop` sends the command at once.
    pub fn stopper(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }

    /// Stops accepting, lets requests in flight finish (a few seconds at
    /// most), and waits for the server thread.
    pub fn stop(mut self) -> Result<(), GatewayError> {
        self.shutdown(true)
    }

    /// Blocks until the server stops (through [`ServerHandle::stopper`]).
    pub fn wait(mut self) -> Result<(), GatewayError> {
        self.join()
    }

    fn shutdown(&mut self, graceful: bool) -> Result<(), GatewayError> {
        // `stop` sends the command when called; the future only waits for
        // its completion, which joining the thread does too.
        drop(self.handle.stop(graceful));
        self.join()
    }

    fn join(&mut self) -> Result<(), GatewayError> {
        match self.thread.take() {
            Some(thread) => match thread.join() {
                Ok(result) => Ok(result?),
                Err(_) => Err(GatewayError::Io(std::io::Error::other(
                    "the server thread panicked",
                ))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.shutdown(false);
        }
    }
}

/// Where a request stands against the server's two limits; leaves its
/// place when dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Holds a place among the bodies being received.
    Receiving,
    /// Holds a place in flight.
    InFlight,
    /// Holds no place (refused on arrival of its body).
    Out,
}

/// A request's place, shared by the guard and (through the request's
/// extensions) the body reader, which moves it in flight.
pub(crate) struct Admission {
    state: web::Data<ServerState>,
    stage: Cell<Stage>,
    /// Whose share the place is counted in too.
    source: Option<Source>,
}

impl Admission {
    fn leave(&self) {
        match self.stage.replace(Stage::Out) {
            Stage::Receiving => {
                self.state.bodies_receiving.fetch_sub(1, Ordering::AcqRel);
                if let Some(source) = self.source {
                    self.state.sources.leave(source, Place::Body);
                }
            }
            Stage::InFlight => {
                self.state.metrics.leave();
                if let Some(source) = self.source {
                    self.state.sources.leave(source, Place::InFlight);
                }
            }
            Stage::Out => {}
        }
    }
}

/// Takes a place of `kind` in the server's global count and in the
/// source's share, or neither.
fn take_place(state: &ServerState, source: Option<Source>, kind: Place) -> bool {
    if let Some(source) = source
        && !state.sources.take(source, kind)
    {
        return false;
    }
    let taken = match kind {
        Place::Body => try_take(&state.bodies_receiving, state.bodies_receiving_max),
        Place::InFlight => state.metrics.try_enter(state.requests_in_flight_max),
    };
    if !taken && let Some(source) = source {
        state.sources.leave(source, kind);
    }
    taken
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Takes one of `max` places counted by `counter`, unless all are taken.
fn try_take(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// Whether the request says a body follows.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(TRANSFER_ENCODING) {
        return true;
    }
    match headers.get(CONTENT_LENGTH) {
        None => false,
        // An unreadable length is the body reader's to refuse: count it as a body.
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0),
    }
}

/// Called by the body reader once the whole body of `req` has arrived:
/// the request leaves the bodies being received and takes a place in
/// flight, or is refused 503 (real overload). A request the guard did not
/// admit (no server state) passes.
pub(crate) fn body_received(req: &actix_web::HttpRequest) -> Result<(), ApiError> {
    let Some(admission) = req.extensions().get::<Rc<Admission>>().cloned() else {
        return Ok(());
    };
    if admission.stage.get() != Stage::Receiving {
        return Ok(());
    }
    admission.leave();
    let state = &admission.state;
    if take_place(state, admission.source, Place::InFlight) {
        admission.stage.set(Stage::InFlight);
        Ok(())
    } else {
        state.metrics.count_overloaded();
        Err(ApiError::overloaded())
    }
}

fn route_of(req: &actix_web::HttpRequest) -> String {
    req.match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// Every request passes here: operator routes (`/health`, `/metrics`) are
/// always served; a request with a body takes a place among the bodies
/// being received (in flight once the body is in: [`body_received`]), one
/// without a body a place in flight; if there is none, a 503 with
/// Retry-After at once (no queue). Each answer is counted.
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<web::Data<ServerState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let connection = req.conn_data::<ConnectionSlot>();
    let source = connection
        .map(|slot| slot.source)
        .or_else(|| req.peer_addr().map(|addr| Source::of(addr.ip())));
    if connection.is_some_and(|slot| slot.over_limit) {
        state.metrics.count_overloaded();
        state
            .metrics
            .observe(&route_of(req.request()), 503, started.elapsed());
        let mut response = ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            "too many connections from this address",
        )
        .with_retry_after(crate::constants::RETRY_AFTER_SECS)
        .error_response();
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        return Ok(req.into_response(response));
    }
    if let Some(source) = source
        && let Err(refusal) = state.sources.allow_request(source)
    {
        let error = match refusal {
            SourceRefusal::TooFast => ApiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many requests from this address",
            )
            .with_retry_after(crate::constants::RETRY_AFTER_SECS),
            SourceRefusal::Full => ApiError::overloaded(),
        };
        state.metrics.observe(
            &route_of(req.request()),
            error.status.as_u16(),
            started.elapsed(),
        );
        return Ok(req.into_response(error.error_response()));
    }
    let operator = matches!(req.path(), "/health" | "/metrics");
    let admitted = if operator {
        None
    } else if has_body(&req) {
        take_place(&state, source, Place::Body).then_some(Stage::Receiving)
    } else {
        take_place(&state, source, Place::InFlight).then_some(Stage::InFlight)
    };
    let place = if operator {
        None
    } else if let Some(stage) = admitted {
        let admission = Rc::new(Admission {
            state: state.clone(),
            stage: Cell::new(stage),
            source,
        });
        req.extensions_mut().insert(admission.clone());
        Some(admission)
    } else {
        state.metrics.count_overloaded();
        let route = route_of(req.request());
        state.metrics.observe(&route, 503, started.elapsed());
        return Ok(req.into_response(ApiError::overloaded().error_response()));
    };
    let result = next.call(req).await;
    // The place is left when the answer is ready, not when it is sent.
    if let Some(place) = place {
        place.leave();
    }
    if let Ok(res) = &result {
        res.request().extensions_mut().remove::<Rc<Admission>>();
    }
    match &result {
        Ok(res) => {
            let route = route_of(res.request());
            state
                .metrics
                .observe(&route, res.status().as_u16(), started.elapsed());
        }
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            state
                .metrics
                .observe("unmatched", status, started.elapsed());
        }
    }
    result.map(ServiceResponse::map_into_boxed_body)
}

/// The peer of a new connection, plain or TLS.
fn peer_of(connection: &dyn std::any::Any) -> Option<SocketAddr> {
    use actix_web::rt::net::TcpStream;
    if let Some(tcp) = connection.downcast_ref::<TcpStream>() {
        return tcp.peer_addr().ok();
    }
    if let Some(tls) =
        connection.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
    {
        return tls.get_ref().0.peer_addr().ok();
    }
    None
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body("ok\n")
}

/// Whether the request carries the server's scrape token.
fn require_scrape_token(req: &actix_web::HttpRequest, state: &ServerState) -> Result<(), ApiError> {
    let Some(token) = &state.metrics_token else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this server has no scrape token configured: /metrics answers nobody",
        ));
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match given {
        Some(header) if token.matches_header(header) => Ok(()),
        Some(_) => Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "wrong scrape token",
        )),
        None => Err(ApiError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "/metrics needs `Authorization: Bearer <scrape token>`",
        )),
    }
}

async fn metrics(
    req: actix_web::HttpRequest,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    require_scrape_token(&req, &state)?;
    let mut out = String::new();
    state.metrics.render(state.metrics_prefix, &mut out);
    {
        use std::fmt::Write as _;
        let prefix = state.metrics_prefix;
        let _ = writeln!(
            out,
            "# HELP {prefix}_http_bodies_receiving Requests whose bodies are still arriving.\n# TYPE {prefix}_http_bodies_receiving gauge\n{prefix}_http_bodies_receiving {}",
            state.bodies_receiving.load(Ordering::Acquire)
        );
        let _ = writeln!(
            out,
            "# HELP {prefix}_http_sources_tracked Source addresses whose limits are being counted.\n# TYPE {prefix}_http_sources_tracked gauge\n{prefix}_http_sources_tracked {}",
            state.sources.n_tracked()
        );
    }
    if let Some(source) = &state.source {
        source.render(&mut out);
    }
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, PROMETHEUS))
        .body(out))
}

pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

pub(crate) async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed())
}

/// A resource answering GET with `handler` and other methods with 405.
pub fn get_resource<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(method_not_allowed))
}

/// A resource answering POST with `handler` and other methods with 405.
pub fn post_resource<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(method_not_allowed))
}

/// Starts a server on its own thread with the shared guard and operator
/// routes, plus the routes `configure` adds; returns once it listens.
pub fn start<F>(
    config: &ServerConfig,
    metrics_prefix: &'static str,
    source: Option<Arc<dyn MetricsSource>>,
    configure: F,
) -> Result<ServerHandle, GatewayError>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    config.check()?;
    let state = web::Data::new(ServerState {
        metrics_prefix,
        metrics: Metrics::default(),
        source,
        limits: BodyLimits {
            body_bytes_max: config.body_bytes_max,
            body_timeout: Duration::from_millis(config.body_timeout_ms),
        },
        requests_in_flight_max: config.requests_in_flight_max,
        bodies_receiving_max: config.bodies_receiving_max,
        bodies_receiving: AtomicUsize::new(0),
        operators: config.operators.clone(),
        metrics_token: config.metrics_token.clone(),
        sources: Arc::new(Sources::new(config.per_source)),
    });
    let tls = config
        .tls
        .as_ref()
        .map(|identity| identity.server_config())
        .transpose()
        .map_err(|e| GatewayError::Config(format!("TLS: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let sources = state.sources.clone();
    let config = config.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("{metrics_prefix}-http"))
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let factory_state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(factory_state.clone())
                        .app_data(web::Data::new(factory_state.limits))
                        .wrap(from_fn(guard))
                        .service(get_resource("/health", health))
                        .service(get_resource("/metrics", metrics))
                        .configure(configure.clone())
                        .default_service(web::to(not_found))
                })
                .on_connect(move |connection, data| {
                    if let Some(peer) = peer_of(connection) {
                        data.insert(sources.connect(Source::of(peer.ip())));
                    }
                })
                .workers(config.workers)
                .max_connections(CONNECTIONS_PER_WORKER_MAX)
                .max_connection_rate(TLS_HANDSHAKES_PER_WORKER_MAX)
                .tls_handshake_timeout(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS))
                .client_request_timeout(Duration::from_millis(config.request_head_timeout_ms))
                .client_disconnect_timeout(Duration::from_millis(CLIENT_DISCONNECT_TIMEOUT_MS))
                .keep_alive(Duration::from_millis(config.keep_alive_ms))
                .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
                .disable_signals();
                let bound = match tls {
                    Some(tls) => server.bind_rustls_0_23(config.bind, tls),
                    None => server.bind(config.bind),
                };
                let bound = match bound {
                    Ok(bound) => bound,
                    Err(source) => {
                        let _ = ready_tx.send(Err(GatewayError::Bind {
                            addr: config.bind,
                            source,
                        }));
                        return Ok(());
                    }
                };
                let addr = bound.addrs().first().copied().unwrap_or(config.bind);
                let server = bound.run();
                let _ = ready_tx.send(Ok((addr, server.handle())));
                server.await
            })
        })?;
    match ready_rx.recv() {
        Ok(Ok((addr, handle))) => {
            tracing::info!(%addr, server = metrics_prefix, scheme, "listening");
            Ok(ServerHandle {
                addr,
                scheme,
                handle,
                thread: Some(thread),
            })
        }
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(GatewayError::NotStarted)
        }
    }
}
