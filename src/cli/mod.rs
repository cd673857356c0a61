//! The subcommands, one module each.

pub mod audit;
pub mod bench;
pub mod demo;
