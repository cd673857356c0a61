//! The integration tests of `vc-ledger`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

extern crate vc_ledger as ledger;

mod conformance;
mod corruption;
mod crash_safety;
mod fsync_failure;
mod group_commit;
mod proptests;
mod redb_files;
mod tail;
mod util;
