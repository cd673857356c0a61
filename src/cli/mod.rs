//! The subcommands, one module each.

pub mod audit;
pub mod demo;
