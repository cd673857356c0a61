//! The integration tests of `vc-projections`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

mod accounts;
mod arbitrary_events;
mod crash;
mod crash_points;
mod erasure_at_scale;
mod privacy;
mod rebuild;
mod user_index;
mod util;
