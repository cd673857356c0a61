//! Stored-value cards, load/unload server, purchase SAM, collection and clearing, transfers to and from soft cash.

pub mod agency;
pub mod card;
pub mod clearing;
pub mod collection;
pub mod constants;
pub mod crypto;
pub mod flows;
pub mod lus;
pub mod psam;
pub mod records;
pub mod store;
pub mod transfer;
pub mod wire;
