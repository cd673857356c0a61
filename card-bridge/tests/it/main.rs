//! The integration tests of `vc-card-bridge`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

mod card;
mod clearing;
mod decoding;
mod false_claims;
mod issuer_events;
mod load_unload;
mod purchases;
mod simulation;
mod system;
mod tampered_cards;
mod tears_and_losses;
mod tidy;
mod transfers;
mod util;
