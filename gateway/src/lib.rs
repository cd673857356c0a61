//! The issuer's gateway: the issuer over HTTP.
//!
//! - [`issuer`]: [`serve_issuer`] puts an [`actors::Issuer`] behind
//!   actix-web, one POST route per protocol step (`/v1/register`,
//!   `/v1/purchase/1`, `/v1/validate`, ...), bodies in postcard under
//!   `client::media::POSTCARD`; [`IssuerRuntime`] runs the issuer's actors
//!   for callers without an actix system.
//! - [`dashboard`]: the operator's dashboard on the issuer's gateway.
//! - [`index`]: the user index served over HTTP, and the issuer's log of
//!   disclosures.
//! - `stage_metrics`: the issuer's stage timings on `/metrics`.
//!
//! The server plumbing (limits, TLS, bodies, typed errors, metrics,
//! operator requests) and the API's messages are `vc-client`'s, shared with
//! the merchant server and the purse page; the clients purses and
//! merchants use live there too, so none of them links the issuer.
//!
//! **Architecture invariant:** the peer's address authorizes nothing: the
//! operator routes answer signed requests of listed keys only.

// The plumbing's modules by their own names, so that `crate::server`,
// `crate::body`, ... read the same here as in the merchant server.
use client::{
    api, body, card, constants, error, media, metrics, operator, server, sources, web_session,
};

pub mod dashboard;
pub mod index;
pub mod issuer;
mod stage_metrics;

pub use issuer::{IssuerRuntime, serve_issuer, serve_issuer_with_bank};
