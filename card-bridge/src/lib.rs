//! Stored-value cards, load/unload server, purchase SAM, collection and clearing, transfers to and from soft cash.

pub mod card;
pub mod constants;
pub mod crypto;
pub mod wire;
