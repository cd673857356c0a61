//! Placeholder replaced by the crypto benchmark below.
fn main() {}
