//! The integration tests of `vc-gateway`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

mod authorization;
mod epoch_open_and_stop;
mod expiry_over_http;
mod flows_over_http;
mod hostile_clients;
mod hostile_merchant;
mod hostile_sources;
mod http_limits;
mod index_forwarder;
mod lost_collection_answer;
mod operator_routes;
mod refund_over_http;
mod signed_head;
mod source_limits;
mod util;
mod wallet_over_http;
mod web_pages;
