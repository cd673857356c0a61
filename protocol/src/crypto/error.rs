//! The one error type of the primitives: every way a key, an envelope, a
//! signature or a MAC can be refused.

use std::path::PathBuf;

/// Why a cryptographic operation refused its input or could not run.
///
/// Decryption failures are deliberately coarse ([`CryptoError::DecryptionFailed`]
/// covers a bad OAEP padding, a bad DEM MAC and a malformed body alike) so that
/// an attacker learns nothing from which check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("signature does not verify")]
    BadSignature,
    #[error("decryption failed")]
    DecryptionFailed,
    #[error("mac does not verify")]
    BadMac,
    #[error("rsa key of {bits} bits is too small: expected at least {min_bits}")]
    KeyTooSmall { bits: usize, min_bits: usize },
    #[error("rsa key of {bits} bits is too large: expected at most {max_bits}")]
    KeyTooLarge { bits: usize, max_bits: usize },
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    #[error("{what} is {len} bytes: expected at most {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("unknown cipher suite {0:?}: expected dhaes, aes256 or tdes")]
    UnknownSuite(String),
    /// A key of one kind used with a suite of another (an RSA key under
    /// `dhaes`, an Ed25519/X25519 key under `aes256` or `tdes`).
    #[error("a {key:?} key cannot serve suite {suite}")]
    KeyKindMismatch {
        key: super::KeyKind,
        suite: super::SuiteId,
    },
    #[error("key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is readable by group or others (mode {mode:o}): expected 0600")]
    WeakPermissions { path: PathBuf, mode: u32 },
    #[error("key encoding: {0}")]
    Encoding(String),
    #[error("operating system randomness is unavailable")]
    Randomness,
    #[error("rsa backend {0} is not in this build")]
    BackendUnavailable(&'static str),
}

impl CryptoError {
    pub(crate) fn malformed(what: &'static str) -> CryptoError {
        CryptoError::Malformed { what }
    }
}
