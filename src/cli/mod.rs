//! The subcommands, one module each.

pub mod audit;
pub mod bank;
pub mod bench;
pub mod card;
pub mod cluster;
pub mod common;
pub mod demo;
pub mod index;
pub mod issuer;
pub mod log;
pub mod merchant;
pub mod purse;
