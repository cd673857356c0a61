//! The integration tests of `vc-protocol`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

extern crate vc_protocol as protocol;

mod flow_attacks;
mod flow_end_to_end;
mod flow_support;
mod kat_cmac;
mod wire_messages;
