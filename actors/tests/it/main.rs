//! The integration tests of `vc-actors`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

mod card_agency;
mod checkpoint;
mod crash_stores;
mod durability;
mod epoch_end;
mod fail_stop;
mod files;
mod issuer_actors;
mod log_open;
mod log_state_snapshot;
mod model;
mod model_based;
mod participants;
mod payment;
mod purchase;
mod racing;
mod refund;
mod tx_index;
mod util;
