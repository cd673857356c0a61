//! Card cryptography: symmetric only, as deployed cards do it. Owns the
//! cipher suites ([`Suite`]), master and card keys, key diversification
//! `f(K, ID_SM) = E_K(ID_SM) ‖ E_K(¬ID_SM)` and CMAC ([`Mac`]).
//!
//! Triple-DES (double-length keys, used as EDE3 with `K1 ‖ K2 ‖ K1`, 8-byte
//! CMAC tags) is the default; AES-256 (16-byte tags) is selectable.

mod keys;
mod mac;

pub use keys::{
    CardKey, CardKeys, KeyError, MasterKey, MasterKeys, Suite, diversify, random_bytes,
};
pub use mac::{Mac, MacError, MacInput};
