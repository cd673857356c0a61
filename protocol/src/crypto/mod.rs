//! Cipher suites and primitives (`docs/protocol.md` notation in brackets):
//!
//! - [`SuiteId`]: `dhaes` (default), `aes256` or `tdes`; its [`KeyKind`] and the
//!   block cipher under CTR and CMAC.
//! - [`SecretKey`] / [`PublicKey`]: Ed25519 + X25519 under `dhaes`, RSA under
//!   `aes256` and `tdes`; `S_X` is [`SecretKey::sign`] (Ed25519, or PSS with
//!   SHA-256), `E*_X` is [`PublicKey::seal`] / [`SecretKey::open`] giving an
//!   [`Envelope`] (HPKE; or OAEP, or OAEP-KEM + CTR-then-CMAC DEM for long
//!   bodies).
//! - [`RsaBackend`]: which implementation does the RSA private operations
//!   (AWS-LC by default, the `rsa` crate as the portable fallback).
//! - [`KeyShare`] (`K_X`), [`Nonce`] (`R_X`), [`SessionKey`] (`K = K_A ⊕ K_B`)
//!   with `e_K` ([`SessionKey::encrypt`] → [`Ciphertext`]) and `mac_K`
//!   ([`SessionKey::mac`] → [`MacTag`]).
//! - [`IdentitySealer`] / [`IdentityUnsealer`]: identities and bank accounts
//!   sealed to the user-index key.
//!
//! Every signature, MAC, envelope and session encryption takes a
//! domain-separation label (e.g. `"vc/purchase/3"`), so that nothing made for
//! one message verifies, opens or decrypts as another.
//!
//! **Invariant:** private-key operations happen only in
//! [`PrivateKeyBackend`] implementations (RSA) and in `dhaes`'s key pair;
//! secrets zeroize on drop and never show in `Debug`. A key serves only the
//! suites of its kind ([`PublicKey::check_suite`]).

mod dhaes;
mod envelope;
mod error;
#[cfg(test)]
mod hostile_input_tests;
mod keyfile;
mod keys;
mod random;
mod rsa_backend;
mod sealing;
mod session;
mod suite;

pub use dhaes::{
    DHAES_PKCS8_BYTES, DHAES_PUBLIC_DER_BYTES, ED25519_SIGNATURE_BYTES, HPKE_ENC_BYTES,
    HPKE_TAG_BYTES,
};
pub use envelope::{ENVELOPE_BODY_BYTES_MAX, ENVELOPE_BYTES_MAX, Envelope};
pub use error::CryptoError;
pub use keys::{
    PKCS8_FILE_BYTES_MAX, PublicKey, RSA_BITS_DEFAULT, RSA_BITS_MAX, RSA_BITS_MIN,
    RSA_OUTPUT_BYTES_MAX, SPKI_DER_BYTES_MAX, SecretKey, Signature,
};
pub use random::{KEY_SHARE_BYTES, KeyShare, NONCE_BYTES, Nonce};
pub use rsa_backend::{PrivateKeyBackend, RsaBackend};
pub use sealing::{IdentitySealer, IdentityUnsealer, SEAL_ACCOUNT_LABEL, SEAL_IDENTITY_LABEL};
pub use session::{Ciphertext, MAC_TAG_BYTES_MAX, MacTag, SESSION_BODY_BYTES_MAX, SessionKey};
pub use suite::{KeyKind, SuiteId};

pub(crate) use keyfile::{create_secret_new, read_secret, write_secret_atomic};
pub(crate) use suite::label_prefix;

/// Keys shared by the tests of this crate: RSA generation is slow in debug
/// builds, so each size is generated once per test binary.
#[cfg(test)]
pub(crate) mod test_keys {
    use std::sync::OnceLock;

    use super::{SecretKey, SuiteId};

    pub(crate) fn rsa_2048() -> &'static SecretKey {
        static KEY: OnceLock<SecretKey> = OnceLock::new();
        KEY.get_or_init(|| SecretKey::generate(2048).expect("rsa-2048 keygen"))
    }

    pub(crate) fn rsa_3072() -> &'static SecretKey {
        static KEY: OnceLock<SecretKey> = OnceLock::new();
        KEY.get_or_init(|| SecretKey::generate(3072).expect("rsa-3072 keygen"))
    }

    /// A second 2048-bit key, for "the wrong key cannot open it" tests.
    pub(crate) fn rsa_2048_other() -> &'static SecretKey {
        static KEY: OnceLock<SecretKey> = OnceLock::new();
        KEY.get_or_init(|| SecretKey::generate(2048).expect("rsa-2048 keygen"))
    }

    pub(crate) fn dhaes() -> &'static SecretKey {
        static KEY: OnceLock<SecretKey> = OnceLock::new();
        KEY.get_or_init(|| SecretKey::generate_for(SuiteId::Dhaes, 0).expect("dhaes keygen"))
    }

    pub(crate) fn dhaes_other() -> &'static SecretKey {
        static KEY: OnceLock<SecretKey> = OnceLock::new();
        KEY.get_or_init(|| SecretKey::generate_for(SuiteId::Dhaes, 0).expect("dhaes keygen"))
    }

    /// The key the tests use under `suite` (RSA-2048 for the RSA suites).
    pub(crate) fn for_suite(suite: SuiteId) -> &'static SecretKey {
        match suite {
            SuiteId::Dhaes => dhaes(),
            SuiteId::Aes256 | SuiteId::Tdes => rsa_2048(),
        }
    }

    /// A second key of the same kind as [`for_suite`]'s.
    pub(crate) fn other_for_suite(suite: SuiteId) -> &'static SecretKey {
        match suite {
            SuiteId::Dhaes => dhaes_other(),
            SuiteId::Aes256 | SuiteId::Tdes => rsa_2048_other(),
        }
    }
}
