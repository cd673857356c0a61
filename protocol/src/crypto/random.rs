//! Fresh randomness from the operating system: key shares `K_X` and nonces
//! `R_X` (`docs/protocol.md` notation).

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Fills a buffer from the operating system's CSPRNG.
///
/// # Panics
/// If the OS has no randomness to give: no key or nonce can be made safely then.
pub(crate) fn os_random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    fill_random(&mut buf);
    buf
}

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Panics
/// If the OS has no randomness to give.
pub(crate) fn fill_random(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("operating system randomness is unavailable");
}

/// Length of a key share, in bytes.
pub const KEY_SHARE_BYTES: usize = 32;
/// Length of a nonce, in bytes.
pub const NONCE_BYTES: usize = 16;

/// A key share `K_X`: 32 random bytes one party contributes to a session key
/// (`K = K_A ⊕ K_B`, see [`crate::crypto::SessionKey::combine`]). Secret:
/// zeroized on drop, redacted in `Debug`; it travels only inside `E*`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct KeyShare([u8; KEY_SHARE_BYTES]);

impl KeyShare {
    /// A fresh share from the OS's CSPRNG.
    pub fn random() -> KeyShare {
        KeyShare(os_random())
    }

    pub fn from_bytes(bytes: [u8; KEY_SHARE_BYTES]) -> KeyShare {
        KeyShare(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_SHARE_BYTES] {
        &self.0
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyShare(<redacted>)")
    }
}

/// A nonce `R_X`: 16 fresh random bytes that make a message unique to one run
/// of a flow. Not secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nonce([u8; NONCE_BYTES]);

impl Nonce {
    /// A fresh nonce from the OS's CSPRNG.
    pub fn random() -> Nonce {
        Nonce(os_random())
    }

    pub const fn from_bytes(bytes: [u8; NONCE_BYTES]) -> Nonce {
        Nonce(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; NONCE_BYTES] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_shares_and_nonces_differ() {
        assert_ne!(KeyShare::random(), KeyShare::random());
        assert_ne!(Nonce::random(), Nonce::random());
    }

    #[test]
    fn key_share_debug_is_redacted() {
        let share = KeyShare::from_bytes([0xab; KEY_SHARE_BYTES]);
        let shown = format!("{share:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
