//! The two implementations of the RSA private-key operations (OAEP
//! decryption, PSS signing), behind [`PrivateKeyBackend`]:
//!
//! - [`RsaBackend::AwsLc`]: AWS-LC through `aws-lc-rs` (constant time,
//!   blinded, about 9x faster here); built with the `aws-lc` cargo feature,
//!   on by default;
//! - [`RsaBackend::RustCrypto`]: the pure-Rust `rsa` crate (constant-time
//!   `crypto-bigint`, blinded), the portable fallback.
//!
//! Which one new and loaded keys use is a process-wide choice
//! ([`RsaBackend::set_process_default`]), made once at start-up by the
//! binary. Both produce the same bytes on the wire: a ciphertext sealed for
//! one opens under the other, a signature made by one verifies as any other.

use std::sync::atomic::{AtomicU8, Ordering};

use rsa::Oaep;
use rsa::pkcs8::EncodePrivateKey;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::CryptoError;

/// The private-key operations, and the only code that touches RSA
/// private-key material. Implement it to plug in another constant-time
/// backend.
pub trait PrivateKeyBackend: Send + Sync {
    /// The matching public key.
    fn public_key(&self) -> rsa::PublicKey;
    /// RSA-OAEP(SHA-256, MGF1-SHA-256) decryption with `oaep_label`.
    /// Every failure is [`CryptoError::DecryptionFailed`].
    fn oaep_decrypt(
        &self,
        oaep_label: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
    /// RSA-PSS(SHA-256, salt of 32 bytes) over a SHA-256 digest.
    fn pss_sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError>;
    /// The key as PKCS#8 DER.
    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
    /// Which implementation this is.
    fn kind(&self) -> RsaBackend;
}

/// An implementation of the RSA private-key operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsaBackend {
    /// The pure-Rust `rsa` crate.
    RustCrypto,
    /// AWS-LC (`aws-lc-rs`); only in builds with the `aws-lc` feature.
    AwsLc,
}

const BACKEND_RUST_CRYPTO: u8 = 1;
const BACKEND_AWS_LC: u8 = 2;

static PROCESS_DEFAULT: AtomicU8 = AtomicU8::new(if cfg!(feature = "aws-lc") {
    BACKEND_AWS_LC
} else {
    BACKEND_RUST_CRYPTO
});

impl RsaBackend {
    /// Every backend this build has, the build's default first.
    pub fn available() -> &'static [RsaBackend] {
        if cfg!(feature = "aws-lc") {
            &[RsaBackend::AwsLc, RsaBackend::RustCrypto]
        } else {
            &[RsaBackend::RustCrypto]
        }
    }

    /// The name used on the command line and in the environment.
    pub const fn name(self) -> &'static str {
        match self {
            RsaBackend::RustCrypto => "rsa",
            RsaBackend::AwsLc => "aws-lc",
        }
    }

    /// The backend keys are made and loaded with, unless a caller names one.
    pub fn process_default() -> RsaBackend {
        match PROCESS_DEFAULT.load(Ordering::Relaxed) {
            BACKEND_AWS_LC => RsaBackend::AwsLc,
            _ => RsaBackend::RustCrypto,
        }
    }

    /// Chooses the backend for keys made or loaded from now on (keys already
    /// loaded keep theirs). Refuses one this build lacks.
    pub fn set_process_default(backend: RsaBackend) -> Result<(), CryptoError> {
        if !RsaBackend::available().contains(&backend) {
            return Err(CryptoError::BackendUnavailable(backend.name()));
        }
        let code = match backend {
            RsaBackend::RustCrypto => BACKEND_RUST_CRYPTO,
            RsaBackend::AwsLc => BACKEND_AWS_LC,
        };
        PROCESS_DEFAULT.store(code, Ordering::Relaxed);
        Ok(())
    }

    /// Wraps an `rsa` private key in this backend.
    pub(crate) fn wrap(
        self,
        key: rsa::PrivateKey,
    ) -> Result<std::sync::Arc<dyn PrivateKeyBackend>, CryptoError> {
        match self {
            RsaBackend::RustCrypto => Ok(std::sync::Arc::new(RustCryptoRsa(key))),
            #[cfg(feature = "aws-lc")]
            RsaBackend::AwsLc => Ok(std::sync::Arc::new(aws_lc::AwsLcRsa::from_rsa(key)?)),
            #[cfg(not(feature = "aws-lc"))]
            RsaBackend::AwsLc => Err(CryptoError::BackendUnavailable(self.name())),
        }
    }
}

impl std::fmt::Display for RsaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RsaBackend {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<RsaBackend, CryptoError> {
        match s {
            "rsa" => Ok(RsaBackend::RustCrypto),
            "aws-lc" => Ok(RsaBackend::AwsLc),
            _ => Err(CryptoError::BackendUnavailable(
                "unknown (expected aws-lc or rsa)",
            )),
        }
    }
}

/// The `rsa` crate (constant-time crypto-bigint, blinding from the OS RNG on
/// every private operation).
struct RustCryptoRsa(rsa::PrivateKey);

impl PrivateKeyBackend for RustCryptoRsa {
    fn public_key(&self) -> rsa::PublicKey {
        self.0.to_public_key()
    }

    fn oaep_decrypt(
        &self,
        oaep_label: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0
            .decrypt(
                Oaep::<Sha256>::new_with_label(oaep_label.to_vec()),
                ciphertext,
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::DecryptionFailed)
    }

    fn pss_sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        self.0
            .pss_sign_prehash::<Sha256>(digest)
            .map_err(|_| CryptoError::Randomness)
    }

    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = self
            .0
            .to_pkcs8_der()
            .map_err(|e| CryptoError::Encoding(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    fn kind(&self) -> RsaBackend {
        RsaBackend::RustCrypto
    }
}

#[cfg(feature = "aws-lc")]
mod aws_lc {
    use aws_lc_rs::digest::{Digest, SHA256};
    use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
    use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaKeyPair};
    use rsa::pkcs8::EncodePrivateKey;
    use zeroize::Zeroizing;

    use super::{CryptoError, PrivateKeyBackend, RsaBackend};

    /// AWS-LC's RSA: the same key parsed twice from its PKCS#8, once for
    /// signing and once for OAEP; the public half and the PKCS#8 are kept for
    /// encoding.
    pub(super) struct AwsLcRsa {
        signing: RsaKeyPair,
        decrypting: OaepPrivateDecryptingKey,
        public: rsa::PublicKey,
        pkcs8: Zeroizing<Vec<u8>>,
    }

    impl AwsLcRsa {
        pub(super) fn from_rsa(key: rsa::PrivateKey) -> Result<AwsLcRsa, CryptoError> {
            let pkcs8 = Zeroizing::new(
                key.to_pkcs8_der()
                    .map_err(|e| CryptoError::Encoding(e.to_string()))?
                    .as_bytes()
                    .to_vec(),
            );
            let rejected = |_| CryptoError::malformed("pkcs8 private key (aws-lc)");
            let signing = RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
            let decrypting = PrivateDecryptingKey::from_pkcs8(&pkcs8)
                .map_err(rejected)
                .and_then(|k| {
                    OaepPrivateDecryptingKey::new(k)
                        .map_err(|_| CryptoError::malformed("pkcs8 private key (aws-lc)"))
                })?;
            Ok(AwsLcRsa {
                signing,
                decrypting,
                public: key.to_public_key(),
                pkcs8,
            })
        }
    }

    impl PrivateKeyBackend for AwsLcRsa {
        fn public_key(&self) -> rsa::PublicKey {
            self.public.clone()
        }

        fn oaep_decrypt(
            &self,
            oaep_label: &[u8],
            ciphertext: &[u8],
        ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
            let mut out = Zeroizing::new(vec![0u8; self.decrypting.min_output_size()]);
            let len = self
                .decrypting
                .decrypt(
                    &OAEP_SHA256_MGF1SHA256,
                    ciphertext,
                    &mut out,
                    Some(oaep_label),
                )
                .map_err(|_| CryptoError::DecryptionFailed)?
                .len();
            out.truncate(len);
            Ok(out)
        }

        fn pss_sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
            let digest = Digest::import_less_safe(digest, &SHA256)
                .map_err(|_| CryptoError::malformed("sha-256 digest"))?;
            let mut signature = vec![0u8; self.signing.public_modulus_len()];
            self.signing
                .sign_digest(&RSA_PSS_SHA256, &digest, &mut signature)
                .map_err(|_| CryptoError::Randomness)?;
            Ok(signature)
        }

        fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
            Ok(self.pkcs8.clone())
        }

        fn kind(&self) -> RsaBackend {
            RsaBackend::AwsLc
        }
    }
}
