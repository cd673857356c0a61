//! HTTP on the parties' side: what purses, merchants and card systems run,
//! without the issuer. Nothing here links `vc-actors`, `vc-projections` or
//! actix (`tests/it/crate_edges.rs` checks it in `Cargo.lock`); the issuer's
//! own gateway (`vc-gateway`) builds on the server plumbing below.
//!
//! - [`client`]: [`IssuerClient`] and [`MerchantClient`], blocking HTTP/1.1
//!   clients with timeouts and typed errors; a retry re-sends the same bytes.
//! - [`wallet`]: [`Wallet`], a participant's purse driven over HTTP (buy,
//!   pay, change, refresh, redeem, refund), journaled before every message and
//!   resumable.
//! - [`merchant`]: [`serve_merchant`] runs a shop: HTML pages, invoices
//!   ([`media::INVOICE`]), and a pay endpoint that validates the payer's
//!   coins with the issuer and keeps what it gets in the merchant's purse.
//! - [`purse_ui`]: the purse page on 127.0.0.1 for its owner's browser
//!   (`varietycash purse ui`).
//! - [`card`]: the card agency's calls over the wire ([`card::AgencyCall`])
//!   and [`card::RemoteAgency`], the agency's traits on the card system's
//!   side.
//! - [`api`]: the issuer's HTTP API messages that are not the protocol's
//!   ([`IssuerDescriptor`], the operator's requests and answers).
//! - [`server`]: what every server shares: [`ServerConfig`] (limits and
//!   timeouts), [`ServerHandle`], the in-flight limit (503 + Retry-After),
//!   `GET /health` and `GET /metrics` ([`metrics`]); [`body`]: bounded
//!   request bodies; [`error`]: [`GatewayError`] and [`ApiError`].
//! - [`media`]: media types and the typed error body [`ErrorBody`] every 4xx
//!   and 5xx carries.
//! - [`operator`]: signed [`operator::OperatorRequest`]s, the keys a server
//!   accepts ([`OperatorAuth`]) with their replay store, and the `/metrics`
//!   [`ScrapeToken`].
//! - [`sources`]: limits per source address ([`SourceLimits`]).
//! - [`tls`]: the issuer's TLS authority ([`TlsAuthority`]), what clients
//!   pin ([`IssuerCa`]) and what servers present ([`TlsIdentity`]).
//! - [`web_session`]: the one-time secrets, session cookies, CSRF tokens
//!   and page headers the browser-facing routes share (pages rendered by
//!   `vc-web`).
//!
//! **Architecture invariant:** a browser-facing route answers only the
//! session handed out for its one-time link or, for the dashboard, for a
//! grant signed with a listed operator key; the purse page's forms only
//! with the session's CSRF token and its own `Origin`.
//!
//! **Architecture invariant:** the peer's address authorizes nothing: the
//! operator routes answer signed requests of listed keys only.
//!
//! **Architecture invariant:** only this crate and `vc-gateway` speak HTTP.
//! Nothing read from a socket is decoded except by `protocol::wire::decode`
//! under the message's own size limit, after the body was read under that
//! same limit and a time limit; no input makes a handler panic.

pub mod api;
pub mod body;
pub mod card;
pub mod client;
pub mod constants;
pub mod error;
pub mod media;
pub mod merchant;
pub mod metrics;
pub mod operator;
pub mod purse_ui;
pub mod server;
pub mod sources;
pub mod tls;
pub mod wallet;
pub mod web_session;

pub use api::{
    EpochErasedAnswer, EpochOpenedAnswer, EpochRevokedAnswer, EraseEpoch, IssuerDescriptor,
    OpenEpoch, REVOKED_EPOCHS_MAX, RevokeEpoch, RevokedEpochs,
};
pub use client::{ClientConfig, ClientError, ClientTls, IssuerClient, MerchantClient};
pub use error::{ApiError, GatewayError};
pub use media::{ErrorBody, ErrorCode};
pub use merchant::{
    CatalogItem, ClientLimits, CollectOption, MerchantConfig, serve_merchant,
    serve_merchant_with_limits,
};
pub use operator::{KeyFingerprint, NonceStore, OperatorAuth, OperatorKey, ScrapeToken};
pub use server::{ServerConfig, ServerHandle};
pub use sources::SourceLimits;
pub use tls::{IssuerCa, TlsAuthority, TlsError, TlsIdentity};
pub use wallet::{
    PaymentExpectation, PurchaseOutcome, RefundOutcome, ResumeReport, Wallet, WalletError,
};
