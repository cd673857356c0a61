//! The integration tests of `vc-cluster`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

mod over_tcp;
mod validator_node;
