//! The HTTP client purses and merchants use: blocking HTTP/1.1 (ureq) over
//! TLS with the issuer's authority pinned ([`ClientTls::Pinned`]; plain HTTP
//! only when configured so), a total time limit per request, bounded
//! answers, typed errors.
//!
//! A request that fails in transport (connection refused or reset, time
//! out) or is answered 503 / 409-in-flight is sent again, the same bytes,
//! up to [`ClientConfig::attempts_max`] times: the issuer and the merchant
//! server answer a repeated request as they answered the first
//! (`docs/protocol.md`, "Payment", retransmission). Callers that journal a
//! message (the purse) re-send the journaled bytes with
//! [`HttpClient::post_encoded`].

use std::sync::Arc;
use std::time::Duration;

use ledger::{Amount, BankAccount, ParticipantId, Role};
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentRequest};
use protocol::wire::payment::{
    Invoice, PaymentIssuance1, PaymentIssuance2, PaymentResult, SendCoins, ValidationRequest,
};
use protocol::wire::purchase::{
    PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WRequest1, WRequest2, WRequest3,
};
use protocol::wire::refund::{RefundAnswer, RefundRequest};
use protocol::wire::registration::{Certificate, RegisterRequest};
use protocol::wire::status::CoinStatusAnswer;
use protocol::wire::{PaymentTid, WireError, WireMessage, decode, encode};

use crate::api::{
    ApproveEnrollment, BankBalance, BankBalanceQuery, EpochErasedAnswer, EpochOpenedAnswer,
    EpochRevokedAnswer, EraseEpoch, IssuerDescriptor, OpenBankAccount, OpenEpoch, RefuseEnrollment,
    RevokeEpoch, SetStanding,
};
use crate::constants::{
    CLIENT_ATTEMPTS_MAX, CLIENT_CONNECT_TIMEOUT_MS, CLIENT_REQUEST_TIMEOUT_MS,
    CLIENT_RETRY_AFTER_SECS_MAX, CLIENT_RETRY_PAUSE_MS, RESPONSE_BODY_BYTES_MAX,
};
use crate::media::{ERROR, ErrorBody, ErrorCode, INVOICE, POSTCARD, is_media_type};
use crate::operator::{IssueClock, KeyFingerprint, OperatorKey, ScrapeToken};
use crate::tls::IssuerCa;

/// How a client secures its connections.
#[derive(Debug, Clone, Default)]
pub enum ClientTls {
    /// Plain `http://` only, without TLS: loopback library tests
    /// (`--insecure-http` on the command line). `https://`
    /// URLs are refused: there is no certificate to check them against.
    #[default]
    InsecurePlainHttp,
    /// `https://` only, trusting exactly the issuer's TLS authority (no
    /// system roots): the issuer's gateway and the merchant servers it
    /// issued certificates to. `http://` URLs are refused.
    Pinned(IssuerCa),
}

/// How a client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Total time for one attempt: connect, send, receive.
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Attempts per request (1 = no retry).
    pub attempts_max: u32,
    /// Largest answer read.
    pub response_bytes_max: usize,
    /// Plain HTTP, or HTTPS with the issuer's authority pinned.
    pub tls: ClientTls,
}

impl ClientConfig {
    /// The defaults, over HTTPS trusting only `ca`.
    pub fn pinned(ca: IssuerCa) -> ClientConfig {
        ClientConfig {
            tls: ClientTls::Pinned(ca),
            ..ClientConfig::default()
        }
    }
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            request_timeout_ms: CLIENT_REQUEST_TIMEOUT_MS,
            connect_timeout_ms: CLIENT_CONNECT_TIMEOUT_MS,
            attempts_max: CLIENT_ATTEMPTS_MAX,
            response_bytes_max: RESPONSE_BODY_BYTES_MAX,
            tls: ClientTls::InsecurePlainHttp,
        }
    }
}

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No answer: connection refused or reset, time out. Retrying later
    /// with the same bytes is safe.
    #[error("no answer from {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The server refused with its typed error.
    #[error("{url} answered {status} {code:?}: {message}", code = body.code, message = body.message.as_str())]
    Refused {
        url: String,
        status: u16,
        body: ErrorBody,
    },
    /// A status the route does not answer with, or an error without a
    /// typed body.
    #[error("{url} answered status {status}")]
    UnexpectedStatus { url: String, status: u16 },
    #[error("{url} answered {got:?}, expected {expected}")]
    WrongMediaType {
        url: String,
        got: String,
        expected: &'static str,
    },
    /// The answer is not the expected message.
    #[error("answer from {url}: {source}")]
    Wire { url: String, source: WireError },
    #[error("answer from {url} exceeds {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("bad url {0:?}")]
    BadUrl(String),
    /// An operator route was called on a client without an operator key.
    #[error("no operator key: operator requests must be signed (--operator-key)")]
    NoOperatorKey,
    /// The operator request could not be built (a route or body too long).
    #[error("building an operator request: {0}")]
    Operator(String),
}

impl ClientError {
    /// The server's error code, if it refused with a typed error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Refused { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// Whether the request may have been lost before the server decided:
    /// resend the same bytes later.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Transport { .. })
            || matches!(
                self.code(),
                Some(
                    ErrorCode::Overloaded
                        | ErrorCode::InFlight
                        | ErrorCode::RequestTimeout
                        | ErrorCode::RateLimited
                )
            )
    }

    /// Whether the server refused the request's own bytes (malformed, too
    /// large, of the wrong type, or decoded but not opening or checking:
    /// 400, 413, 415, 422), so that re-sending them can only be refused
    /// again. Refusals of who is asking (401, 403), conflicts, "retry"
    /// answers, 5xx and lost answers are not: a later answer may differ.
    pub fn refuses_the_bytes(&self) -> bool {
        matches!(
            self,
            ClientError::Refused {
                status: 400 | 413 | 415 | 422,
                ..
            }
        ) && !self.is_transient()
    }
}

/// One answer, before it is decoded.
struct Answer {
    status: u16,
    media_type: String,
    body: Vec<u8>,
    retry_after_secs: Option<u64>,
}

/// An HTTP/1.1 client of one server.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    base: String,
    config: ClientConfig,
}

impl HttpClient {
    /// A client of the server at `base_url`: `https://host:port` with a
    /// pinned authority, `http://host:port` only with
    /// [`ClientTls::InsecurePlainHttp`].
    pub fn new(base_url: &str, config: ClientConfig) -> Result<HttpClient, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let scheme = match &config.tls {
            ClientTls::InsecurePlainHttp => "http://",
            ClientTls::Pinned(_) => "https://",
        };
        if !base.starts_with(scheme) || base.len() <= scheme.len() {
            return Err(ClientError::BadUrl(match &config.tls {
                ClientTls::InsecurePlainHttp => format!(
                    "{base_url} (plain http:// only: this client has no issuer certificate to check https against)"
                ),
                ClientTls::Pinned(_) => format!(
                    "{base_url} (https:// only: plain HTTP is refused without --insecure-http)"
                ),
            }));
        }
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.request_timeout_ms)))
            .timeout_connect(Some(Duration::from_millis(config.connect_timeout_ms)))
            .http_status_as_error(false)
            .max_redirects(0);
        if let ClientTls::Pinned(ca) = &config.tls {
            let root = ureq::tls::Certificate::from_der(ca.der()).to_owned();
            builder = builder.https_only(true).tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .unversioned_rustls_crypto_provider(crate::tls::crypto_provider())
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
                    .build(),
            );
        }
        let agent: ureq::Agent = builder.build().new_agent();
        Ok(HttpClient {
            agent,
            base,
            config,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// This client, reading answers of up to `max` bytes (never fewer than
    /// it already reads): for a route whose message limit is above the
    /// default, so that its largest answer is not refused as too large.
    fn reading_up_to(&self, max: usize) -> HttpClient {
        let mut wide = self.clone();
        wide.config.response_bytes_max = wide.config.response_bytes_max.max(max);
        wide
    }

    fn once(
        &self,
        url: &str,
        body: Option<(&str, &[u8])>,
        authorization: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let transport = |e: ureq::Error| ClientError::Transport {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let mut response = match body {
            Some((media_type, bytes)) => {
                let mut request = self.agent.post(url).header("Content-Type", media_type);
                if let Some(value) = authorization {
                    request = request.header("Authorization", value);
                }
                request.send(bytes).map_err(transport)?
            }
            None => {
                let mut request = self.agent.get(url);
                if let Some(value) = authorization {
                    request = request.header("Authorization", value);
                }
                request.call().map_err(transport)?
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header("content-type").unwrap_or_default();
        let retry_after_secs = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let max = self.config.response_bytes_max;
        let body = match response
            .body_mut()
            .with_config()
            .limit(max as u64)
            .read_to_vec()
        {
            Ok(body) => body,
            Err(ureq::Error::BodyExceedsLimit(_)) => {
                return Err(ClientError::TooLarge {
                    url: url.to_owned(),
                    max,
                });
            }
            Err(e) => return Err(transport(e)),
        };
        Ok(Answer {
            status,
            media_type,
            body,
            retry_after_secs,
        })
    }

    /// Sends, retrying transient failures with the same bytes; returns a
    /// 2xx answer or the typed refusal.
    fn exchange(&self, path: &str, body: Option<(&str, &[u8])>) -> Result<Answer, ClientError> {
        self.exchange_attempts(path, body, self.config.attempts_max)
    }

    /// [`HttpClient::exchange`] with at most `attempts` attempts.
    fn exchange_attempts(
        &self,
        path: &str,
        body: Option<(&str, &[u8])>,
        attempts: u32,
    ) -> Result<Answer, ClientError> {
        self.exchange_with(path, body, None, attempts)
    }

    /// [`HttpClient::exchange_attempts`] with an `Authorization` header.
    fn exchange_with(
        &self,
        path: &str,
        body: Option<(&str, &[u8])>,
        authorization: Option<&str>,
        attempts: u32,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{}", self.base, path);
        let attempts = attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (result, retry_after_secs) = match self.once(&url, body, authorization) {
                Ok(answer) => {
                    let retry_after_secs = answer.retry_after_secs;
                    (self.check(&url, answer), retry_after_secs)
                }
                Err(e) => (Err(e), None),
            };
            match result {
                Err(e) if attempt < attempts && e.is_transient() => {
                    // The server's Retry-After, within our bound, so a
                    // hostile server cannot park the client.
                    let pause = retry_after_secs
                        .map(|s| Duration::from_secs(s.min(CLIENT_RETRY_AFTER_SECS_MAX)))
                        .unwrap_or(Duration::from_millis(CLIENT_RETRY_PAUSE_MS));
                    tracing::debug!(%url, attempt, error = %e, "retrying with the same bytes");
                    std::thread::sleep(pause);
                }
                other => return other,
            }
        }
    }

    fn check(&self, url: &str, answer: Answer) -> Result<Answer, ClientError> {
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        if is_media_type(&answer.media_type, ERROR) {
            let body = decode::<ErrorBody>(&answer.body).map_err(|source| ClientError::Wire {
                url: url.to_owned(),
                source,
            })?;
            return Err(ClientError::Refused {
                url: url.to_owned(),
                status: answer.status,
                body,
            });
        }
        Err(ClientError::UnexpectedStatus {
            url: url.to_owned(),
            status: answer.status,
        })
    }

    fn decode_answer<M: WireMessage>(
        &self,
        path: &str,
        answer: Answer,
        media_type: &'static str,
    ) -> Result<M, ClientError> {
        let url = format!("{}{}", self.base, path);
        if answer.status == 204 || !is_media_type(&answer.media_type, media_type) {
            return Err(ClientError::WrongMediaType {
                url,
                got: answer.media_type,
                expected: media_type,
            });
        }
        decode::<M>(&answer.body).map_err(|source| ClientError::Wire { url, source })
    }

    /// POSTs already-encoded bytes (e.g. a journaled message) and decodes
    /// the answer as `Resp`.
    pub fn post_encoded<Resp: WireMessage>(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<Resp, ClientError> {
        let answer = self.exchange(path, Some((POSTCARD, body)))?;
        self.decode_answer(path, answer, POSTCARD)
    }

    /// POSTs already-encoded bytes to a route that answers 204.
    pub fn post_encoded_ack(&self, path: &str, body: &[u8]) -> Result<(), ClientError> {
        let answer = self.exchange(path, Some((POSTCARD, body)))?;
        if answer.status == 204 {
            Ok(())
        } else {
            Err(ClientError::UnexpectedStatus {
                url: format!("{}{}", self.base, path),
                status: answer.status,
            })
        }
    }

    fn post<Req: WireMessage, Resp: WireMessage>(
        &self,
        path: &str,
        msg: &Req,
    ) -> Result<Resp, ClientError> {
        self.post_encoded(path, &encode(msg))
    }

    /// `GET path`, decoding the answer as `M` of `media_type`.
    pub fn get_message<M: WireMessage>(
        &self,
        path: &str,
        media_type: &'static str,
    ) -> Result<M, ClientError> {
        self.get(path, media_type)
    }

    fn get<M: WireMessage>(&self, path: &str, media_type: &'static str) -> Result<M, ClientError> {
        let answer = self.exchange(path, None)?;
        self.decode_answer(path, answer, media_type)
    }

    /// `GET path` as text (health, the shop page).
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let answer = self.exchange(path, None)?;
        self.text(path, answer)
    }

    /// `GET /metrics` with the server's scrape token.
    pub fn metrics(&self, token: &ScrapeToken) -> Result<String, ClientError> {
        let bearer = format!("Bearer {}", token.as_str());
        let answer =
            self.exchange_with("/metrics", None, Some(&bearer), self.config.attempts_max)?;
        self.text("/metrics", answer)
    }

    fn text(&self, path: &str, answer: Answer) -> Result<String, ClientError> {
        String::from_utf8(answer.body).map_err(|_| ClientError::WrongMediaType {
            url: format!("{}{}", self.base, path),
            got: "non-UTF-8 body".into(),
            expected: "text",
        })
    }
}

/// The issuer's gateway, one method per protocol step.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    http: HttpClient,
    /// Signs the operator routes' requests.
    operator: Option<Arc<OperatorKey>>,
    /// The issuer's key fingerprint, which operator requests name.
    operator_audience: Arc<std::sync::OnceLock<KeyFingerprint>>,
    issue_clock: Arc<IssueClock>,
}

impl IssuerClient {
    pub fn new(base_url: &str, config: ClientConfig) -> Result<IssuerClient, ClientError> {
        Ok(IssuerClient {
            http: HttpClient::new(base_url, config)?,
            operator: None,
            operator_audience: Arc::new(std::sync::OnceLock::new()),
            issue_clock: Arc::new(IssueClock::default()),
        })
    }

    /// This client, signing operator requests with `key`.
    pub fn with_operator(mut self, key: OperatorKey) -> IssuerClient {
        self.operator = Some(Arc::new(key));
        self
    }

    /// Sends `msg` to the operator route `path`, signed anew for each
    /// attempt (the issuer refuses a signed request seen before); at most
    /// `attempts` attempts.
    fn operator_exchange<M: WireMessage>(
        &self,
        path: &str,
        msg: &M,
        attempts: u32,
    ) -> Result<Answer, ClientError> {
        let key = self.operator.as_ref().ok_or(ClientError::NoOperatorKey)?;
        let audience = self.operator_audience()?;
        let body = encode(msg);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let signed = key
                .sign_at(Some(audience), path, body.clone(), self.issue_clock.next())
                .map_err(|e| ClientError::Operator(e.to_string()))?;
            match self
                .http
                .exchange_attempts(path, Some((POSTCARD, &encode(&signed))), 1)
            {
                Err(e) if attempt < attempts.max(1) && e.is_transient() => {
                    std::thread::sleep(Duration::from_millis(CLIENT_RETRY_PAUSE_MS));
                }
                other => return other,
            }
        }
    }

    /// The issuer operator requests are signed for: its public key's
    /// fingerprint, read once from `GET /v1/issuer` (over this client's
    /// pinned TLS), so a request signed here is refused by any other
    /// server that lists the same operator key.
    pub fn operator_audience(&self) -> Result<KeyFingerprint, ClientError> {
        if let Some(audience) = self.operator_audience.get() {
            return Ok(*audience);
        }
        let descriptor = self.descriptor()?;
        let key =
            protocol::crypto::PublicKey::from_ledger(&descriptor.public_key).map_err(|_| {
                ClientError::Operator("the issuer's descriptor holds no valid key".into())
            })?;
        Ok(*self
            .operator_audience
            .get_or_init(|| KeyFingerprint::of(&key)))
    }

    fn operator_ack<M: WireMessage>(&self, path: &str, msg: &M) -> Result<(), ClientError> {
        let answer = self.operator_exchange(path, msg, self.http.config.attempts_max)?;
        if answer.status == 204 {
            Ok(())
        } else {
            Err(ClientError::UnexpectedStatus {
                url: format!("{}{}", self.http.base, path),
                status: answer.status,
            })
        }
    }

    /// The underlying client, for re-sending journaled bytes.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn health(&self) -> Result<(), ClientError> {
        self.http.get_text("/health").map(drop)
    }

    /// `GET /metrics` with the server's scrape token.
    pub fn metrics(&self, token: &ScrapeToken) -> Result<String, ClientError> {
        self.http.metrics(token)
    }

    /// `ID_I`, `PK_I` and the suite.
    pub fn descriptor(&self) -> Result<IssuerDescriptor, ClientError> {
        self.http.get("/v1/issuer", POSTCARD)
    }

    /// The key epochs revoked and not yet erased: their coins are recouped.
    pub fn revoked_epochs(&self) -> Result<crate::api::RevokedEpochs, ClientError> {
        self.http.get("/v1/epochs/revoked", POSTCARD)
    }

    pub fn register(&self, msg: &RegisterRequest) -> Result<Certificate, ClientError> {
        self.http.post("/v1/register", msg)
    }

    pub fn enroll(&self, msg: &EnrollmentRequest) -> Result<EnrollmentAnswer, ClientError> {
        self.http.post("/v1/enroll", msg)
    }

    /// Operator: approves a pending enrollment (signed with the operator
    /// key: [`IssuerClient::with_operator`]).
    pub fn approve_enrollment(&self, id: &ParticipantId, role: Role) -> Result<(), ClientError> {
        let msg = ApproveEnrollment {
            id: id.clone(),
            role,
        };
        self.operator_ack("/admin/enroll/approve", &msg)
    }

    /// Card system (signed with an operator key): one step of the issuer's
    /// card agency. Every step is idempotent at the agency, so a step
    /// without an answer is sent again (signed afresh).
    pub fn card_agency(
        &self,
        call: &crate::card::AgencyCall,
    ) -> Result<crate::card::AgencyAnswer, ClientError> {
        let path = "/admin/card/agency";
        // A clearing period's finished records come in one answer of up to
        // AgencyAnswer's limit, far above the default answer size: read
        // at the default, a busy period could never be cleared.
        let wide = IssuerClient {
            http: self
                .http
                .reading_up_to(crate::card::AGENCY_ANSWER_BYTES_MAX),
            ..self.clone()
        };
        let answer = wide.operator_exchange(path, call, self.http.config.attempts_max)?;
        wide.http.decode_answer(path, answer, POSTCARD)
    }

    /// Operator: refuses a pending enrollment.
    pub fn refuse_enrollment(&self, id: &ParticipantId, role: Role) -> Result<(), ClientError> {
        let msg = RefuseEnrollment {
            id: id.clone(),
            role,
        };
        self.operator_ack("/admin/enroll/refuse", &msg)
    }

    /// Operator: suspends, revokes or reinstates (`Standing::Active`) a
    /// participant.
    pub fn set_standing(
        &self,
        id: &ParticipantId,
        standing: ledger::Standing,
    ) -> Result<(), ClientError> {
        let msg = SetStanding {
            id: id.clone(),
            standing,
        };
        self.operator_ack("/admin/participant/standing", &msg)
    }

    /// Operator: opens an account at the issuer's simulated bank.
    pub fn open_bank_account(
        &self,
        account: &BankAccount,
        balance: Amount,
    ) -> Result<(), ClientError> {
        let msg = OpenBankAccount {
            account: account.clone(),
            balance,
        };
        self.operator_ack("/admin/bank/account", &msg)
    }

    /// Operator: an account's balance at the issuer's simulated bank.
    pub fn bank_balance(&self, account: &BankAccount) -> Result<Amount, ClientError> {
        let msg = BankBalanceQuery {
            account: account.clone(),
        };
        let path = "/admin/bank/balance";
        let answer = self.operator_exchange(path, &msg, self.http.config.attempts_max)?;
        let answer: BankBalance = self.http.decode_answer(path, answer, POSTCARD)?;
        Ok(answer.balance)
    }

    /// Operator: opens the next mint key epoch on the serving issuer. Sent
    /// once, never retried: a request that reached the issuer opened an
    /// epoch, and a second would open another.
    pub fn open_epoch(&self) -> Result<EpochOpenedAnswer, ClientError> {
        let path = "/admin/epoch/open";
        let answer = self.operator_exchange(path, &OpenEpoch {}, 1)?;
        self.http.decode_answer(path, answer, POSTCARD)
    }

    /// Operator: revokes key epoch `epoch` on the serving issuer
    /// (idempotent, so retried).
    pub fn revoke_epoch(&self, epoch: ledger::KeyEpoch) -> Result<EpochRevokedAnswer, ClientError> {
        let path = "/admin/epoch/revoke";
        let answer = self.operator_exchange(path, &RevokeEpoch { epoch }, 3)?;
        self.http.decode_answer(path, answer, POSTCARD)
    }

    /// Operator: erases key epoch `epoch`, past its grace, on the serving
    /// issuer (idempotent, so retried).
    pub fn erase_epoch(&self, epoch: ledger::KeyEpoch) -> Result<EpochErasedAnswer, ClientError> {
        let path = "/admin/epoch/erase";
        let answer = self.operator_exchange(path, &EraseEpoch { epoch }, 3)?;
        self.http.decode_answer(path, answer, POSTCARD)
    }

    pub fn wrequest1(&self, msg: &WRequest1) -> Result<WRequest2, ClientError> {
        self.http.post("/v1/purchase/1", msg)
    }

    pub fn wrequest3(&self, msg: &WRequest3) -> Result<PurchaseIssuance1, ClientError> {
        self.http.post("/v1/purchase/3", msg)
    }

    pub fn purchase_poll(&self, msg: &PurchasePoll) -> Result<PurchaseIssuance1, ClientError> {
        self.http.post("/v1/purchase/poll", msg)
    }

    pub fn purchase_ack(&self, msg: &PurchaseIssuance2) -> Result<(), ClientError> {
        self.http.post_encoded_ack("/v1/purchase/ack", &encode(msg))
    }

    pub fn validate(&self, msg: &ValidationRequest) -> Result<PaymentIssuance1, ClientError> {
        self.http.post("/v1/validate", msg)
    }

    pub fn validate_ack(&self, msg: &PaymentIssuance2) -> Result<(), ClientError> {
        self.http.post_encoded_ack("/v1/validate/ack", &encode(msg))
    }

    pub fn refund(&self, msg: &RefundRequest) -> Result<RefundAnswer, ClientError> {
        self.http.post("/v1/refund", msg)
    }

    /// A holder's coin status query (whole coins: the tags prove
    /// possession); check the answer with
    /// `protocol::flows::verify_coin_status` against `query.serials()`.
    pub fn held_coin_status(
        &self,
        query: &protocol::wire::status::HeldCoinStatusQuery,
    ) -> Result<CoinStatusAnswer, ClientError> {
        self.http.post("/v1/coin-status", query)
    }

    /// A participant's key change, signed by its old key; safe to retry
    /// (once the new key is registered, a repeat only gets a certificate).
    pub fn change_key(
        &self,
        msg: &protocol::wire::key_change::KeyChangeRequest,
    ) -> Result<Certificate, ClientError> {
        self.http.post("/v1/key-change", msg)
    }

    /// A merchant's signed cash-out; safe to retry (the request id makes a
    /// repeat pay nothing more).
    pub fn cash_out(
        &self,
        msg: &protocol::wire::cash_out::CashOutRequest,
    ) -> Result<protocol::wire::cash_out::CashOutReceipt, ClientError> {
        self.http.post("/v1/cash-out", msg)
    }
}

/// A merchant server, as a payer's purse sees it.
#[derive(Debug, Clone)]
pub struct MerchantClient {
    http: HttpClient,
}

impl MerchantClient {
    pub fn new(base_url: &str, config: ClientConfig) -> Result<MerchantClient, ClientError> {
        Ok(MerchantClient {
            http: HttpClient::new(base_url, config)?,
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// A new order of catalog item `sku` for payer `id_pa`: its invoice.
    pub fn invoice(&self, sku: &str, id_pa: &ParticipantId) -> Result<Invoice, ClientError> {
        if !crate::merchant::is_valid_sku(sku) {
            return Err(ClientError::BadUrl(format!("item {sku:?}")));
        }
        self.http.get(
            &format!("/item/{sku}/invoice?payer={}", id_pa.as_str()),
            INVOICE,
        )
    }

    /// The invoice of an order already made (its id is the invoice's TID).
    pub fn order_invoice(&self, tid_py: &PaymentTid) -> Result<Invoice, ClientError> {
        self.http.get(&format!("/order/{tid_py}/invoice"), INVOICE)
    }

    /// Pays an order: SendCoins in, the payee's answer (receipt or the
    /// issuer's rejection) out. A retry of the same bytes gets the same
    /// answer.
    pub fn pay(&self, tid_py: &PaymentTid, msg: &SendCoins) -> Result<PaymentResult, ClientError> {
        self.pay_encoded(tid_py, &encode(msg))
    }

    /// [`MerchantClient::pay`] with journaled bytes.
    pub fn pay_encoded(
        &self,
        tid_py: &PaymentTid,
        send_coins: &[u8],
    ) -> Result<PaymentResult, ClientError> {
        self.http
            .post_encoded(&format!("/order/{tid_py}/pay"), send_coins)
    }
}
