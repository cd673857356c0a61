//! Key pairs: [`SecretKey`] (signing `S_X`, opening `E*_X`, PKCS#8 files)
//! and [`PublicKey`] (verification, sealing, DER encoding), and the
//! detached [`Signature`]. A key is of one [`KeyKind`]: RSA (suites `aes256`
//! and `tdes`) or Ed25519 + X25519 (suite `dhaes`, see [`super::dhaes`]).
//!
//! The RSA private-key operations go through one small trait,
//! [`PrivateKeyBackend`], implemented by AWS-LC and by the `rsa` crate
//! ([`RsaBackend`]): those two operations are most of an RSA issuer's cost.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::dhaes::{DhaesPublic, DhaesSecret};
use super::error::CryptoError;
use super::keyfile;
use super::rsa_backend::{PrivateKeyBackend, RsaBackend};
use super::suite::{KeyKind, SuiteId, label_prefix};

/// Default RSA modulus size.
pub const RSA_BITS_DEFAULT: usize = 2048;
/// Smallest RSA modulus accepted anywhere (generated, loaded or received).
pub const RSA_BITS_MIN: usize = 2048;
/// Largest RSA modulus accepted: bounds the work a hostile key can cause.
pub const RSA_BITS_MAX: usize = 4096;
/// Largest RSA output (signature, OAEP ciphertext), in bytes.
pub const RSA_OUTPUT_BYTES_MAX: usize = RSA_BITS_MAX / 8;
/// Largest public key DER accepted (RSA-4096 SPKI is 550 bytes).
pub const SPKI_DER_BYTES_MAX: usize = ledger::constants::PUBLIC_KEY_DER_BYTES_MAX;
/// Largest PKCS#8 DER private key file accepted (RSA-4096 is about 2.4 KiB).
pub const PKCS8_FILE_BYTES_MAX: usize = 16 * 1024;

const _: () = assert!(RSA_OUTPUT_BYTES_MAX <= ledger::constants::SIGNATURE_BYTES_MAX);
const _: () = assert!(super::dhaes::DHAES_PUBLIC_DER_BYTES <= SPKI_DER_BYTES_MAX);

/// The digest a signature covers: the label, framed, hashed in front of the
/// message, so that a signature made for one purpose verifies for no other.
fn signed_digest(label: &str, msg: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vc/sig/v1");
    h.update(label_prefix(label));
    h.update(msg);
    h.finalize().into()
}

fn check_bits(bits: usize) -> Result<(), CryptoError> {
    if bits < RSA_BITS_MIN {
        return Err(CryptoError::KeyTooSmall {
            bits,
            min_bits: RSA_BITS_MIN,
        });
    }
    if bits > RSA_BITS_MAX {
        return Err(CryptoError::KeyTooLarge {
            bits,
            max_bits: RSA_BITS_MAX,
        });
    }
    Ok(())
}

#[derive(Clone)]
enum SecretInner {
    Rsa(Arc<dyn PrivateKeyBackend>),
    Dhaes(Arc<DhaesSecret>),
}

/// A private key. Cheap to clone (shared), zeroized when the last clone
/// drops, never shown by `Debug`.
#[derive(Clone)]
pub struct SecretKey {
    inner: SecretInner,
    public: PublicKey,
}

impl SecretKey {
    /// A fresh RSA key of `bits` bits (2048 default, 3072 selectable, 4096
    /// at most) from the OS's CSPRNG, on the process's [`RsaBackend`].
    pub fn generate(bits: usize) -> Result<SecretKey, CryptoError> {
        check_bits(bits)?;
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
            .map_err(|e| CryptoError::Encoding(e.to_string()))?;
        SecretKey::from_backend(RsaBackend::process_default().wrap(key)?)
    }

    /// A fresh key for `suite`: Ed25519 + X25519 under `dhaes` (`rsa_bits`
    /// unused), RSA of `rsa_bits` bits under `aes256` and `tdes`.
    pub fn generate_for(suite: SuiteId, rsa_bits: usize) -> Result<SecretKey, CryptoError> {
        match suite.key_kind() {
            KeyKind::Rsa => SecretKey::generate(rsa_bits),
            KeyKind::Ed25519X25519 => Ok(SecretKey::from_dhaes(DhaesSecret::generate())),
        }
    }

    fn from_dhaes(secret: DhaesSecret) -> SecretKey {
        let public = PublicKey::from_dhaes(secret.public().clone());
        SecretKey {
            inner: SecretInner::Dhaes(Arc::new(secret)),
            public,
        }
    }

    /// Wraps another RSA private-key backend.
    pub fn from_backend(backend: Arc<dyn PrivateKeyBackend>) -> Result<SecretKey, CryptoError> {
        let public = PublicKey::from_rsa(backend.public_key())?;
        Ok(SecretKey {
            inner: SecretInner::Rsa(backend),
            public,
        })
    }

    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        self.public.kind()
    }

    /// The RSA backend doing this key's private operations (`None` for a
    /// `dhaes` key).
    pub fn rsa_backend(&self) -> Option<RsaBackend> {
        match &self.inner {
            SecretInner::Rsa(backend) => Some(backend.kind()),
            SecretInner::Dhaes(_) => None,
        }
    }

    /// `S_X(label, msg)`: RSA-PSS(SHA-256) or Ed25519 over the framed label
    /// and the message (hashed with SHA-256).
    ///
    /// # Panics
    /// If the OS has no randomness for the RSA salt and blinding: nothing can
    /// be signed safely then.
    pub fn sign(&self, label: &str, msg: &[u8]) -> Signature {
        let digest = signed_digest(label, msg);
        match &self.inner {
            SecretInner::Rsa(backend) => {
                #[allow(clippy::expect_used)]
                let bytes = backend.pss_sign_digest(&digest).expect(
                    "pss signing failed: the key size was checked, so randomness is missing",
                );
                Signature(bytes)
            }
            SecretInner::Dhaes(secret) => Signature(secret.sign(&digest).to_vec()),
        }
    }

    /// Opens an `E*` envelope sealed to this key under `label`: returns the
    /// plaintext or [`CryptoError::DecryptionFailed`].
    pub fn open(&self, label: &str, envelope: &super::Envelope) -> Result<Vec<u8>, CryptoError> {
        super::envelope::open(self, label, envelope)
    }

    pub(crate) fn rsa_private(&self) -> Option<&dyn PrivateKeyBackend> {
        match &self.inner {
            SecretInner::Rsa(backend) => Some(backend.as_ref()),
            SecretInner::Dhaes(_) => None,
        }
    }

    pub(crate) fn dhaes_private(&self) -> Option<&DhaesSecret> {
        match &self.inner {
            SecretInner::Rsa(_) => None,
            SecretInner::Dhaes(secret) => Some(secret),
        }
    }

    /// The key as PKCS#8 DER (secret: zeroized on drop): an RSA key, or an
    /// Ed25519 key (RFC 8410) whose seed also gives the X25519 key.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match &self.inner {
            SecretInner::Rsa(backend) => backend.to_pkcs8_der(),
            SecretInner::Dhaes(secret) => Ok(secret.to_pkcs8_der()),
        }
    }

    /// Parses a PKCS#8 DER private key: Ed25519 (a `dhaes` key), or RSA of
    /// 2048..=4096 bits on the process's [`RsaBackend`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SecretKey, CryptoError> {
        SecretKey::from_pkcs8_der_with(der, RsaBackend::process_default())
    }

    /// [`SecretKey::from_pkcs8_der`] with the RSA backend named.
    pub fn from_pkcs8_der_with(der: &[u8], backend: RsaBackend) -> Result<SecretKey, CryptoError> {
        if der.len() > PKCS8_FILE_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "pkcs8 key",
                len: der.len(),
                max: PKCS8_FILE_BYTES_MAX,
            });
        }
        if let Some(secret) = DhaesSecret::from_pkcs8_der(der) {
            return Ok(SecretKey::from_dhaes(secret));
        }
        let key = rsa::PrivateKey::from_pkcs8_der(der)
            .map_err(|_| CryptoError::malformed("pkcs8 private key"))?;
        check_bits(key.n().bit_width() as usize)?;
        SecretKey::from_backend(backend.wrap(key)?)
    }

    /// Writes the key as PKCS#8 DER to a new file of mode 0600, atomically.
    pub fn write_pkcs8(&self, path: &Path) -> Result<(), CryptoError> {
        let der = self.to_pkcs8_der()?;
        keyfile::write_secret_atomic(path, &der)
    }

    /// Reads a PKCS#8 DER key file, refusing it with
    /// [`CryptoError::WeakPermissions`] if group or others may read it.
    pub fn read_pkcs8(path: &Path) -> Result<SecretKey, CryptoError> {
        let der = keyfile::read_secret(path, PKCS8_FILE_BYTES_MAX)?;
        SecretKey::from_pkcs8_der(&der)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted>, public {:?})", self.public)
    }
}

#[derive(Clone)]
enum PublicInner {
    Rsa(rsa::PublicKey),
    Dhaes(DhaesPublic),
}

/// A public key: RSA of 2048 to 4096 bits (SPKI DER), or a `dhaes` pair of
/// Ed25519 and X25519 keys (a DER `SEQUENCE` of their two SPKIs).
/// Serializes as that DER.
#[derive(Clone)]
pub struct PublicKey {
    inner: PublicInner,
    spki_der: Vec<u8>,
    fingerprint: [u8; 32],
}

impl PublicKey {
    fn from_rsa(inner: rsa::PublicKey) -> Result<PublicKey, CryptoError> {
        check_bits(inner.n().bit_width() as usize)?;
        let spki_der = inner
            .to_public_key_der()
            .map_err(|e| CryptoError::Encoding(e.to_string()))?
            .into_vec();
        let fingerprint = Sha256::digest(&spki_der).into();
        Ok(PublicKey {
            inner: PublicInner::Rsa(inner),
            spki_der,
            fingerprint,
        })
    }

    fn from_dhaes(inner: DhaesPublic) -> PublicKey {
        let spki_der = inner.to_der();
        let fingerprint = Sha256::digest(&spki_der).into();
        PublicKey {
            inner: PublicInner::Dhaes(inner),
            spki_der,
            fingerprint,
        }
    }

    /// Parses the DER of [`PublicKey::to_spki_der`], refusing more than
    /// [`SPKI_DER_BYTES_MAX`] bytes, RSA keys outside 2048..=4096 bits,
    /// invalid or small-order Ed25519 points, and non-canonical encodings.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, CryptoError> {
        if der.len() > SPKI_DER_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "spki public key",
                len: der.len(),
                max: SPKI_DER_BYTES_MAX,
            });
        }
        if let Some(dhaes) = DhaesPublic::from_der(der) {
            return Ok(PublicKey::from_dhaes(dhaes?));
        }
        let inner = rsa::PublicKey::from_public_key_der(der)
            .map_err(|_| CryptoError::malformed("spki public key"))?;
        let key = PublicKey::from_rsa(inner)?;
        // Only the canonical encoding is accepted, so a key has one fingerprint.
        if key.spki_der != der {
            return Err(CryptoError::malformed("spki public key (non-canonical)"));
        }
        Ok(key)
    }

    /// The key's DER: RSA SPKI, or the `dhaes` pair of SPKIs.
    pub fn to_spki_der(&self) -> Vec<u8> {
        self.spki_der.clone()
    }

    /// SHA-256 of the DER encoding.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self.inner {
            PublicInner::Rsa(_) => KeyKind::Rsa,
            PublicInner::Dhaes(_) => KeyKind::Ed25519X25519,
        }
    }

    /// Refuses a suite this key cannot serve (an RSA key under `dhaes`, an
    /// Ed25519/X25519 key under `aes256` or `tdes`).
    pub fn check_suite(&self, suite: SuiteId) -> Result<(), CryptoError> {
        if self.kind() == suite.key_kind() {
            Ok(())
        } else {
            Err(CryptoError::KeyKindMismatch {
                key: self.kind(),
                suite,
            })
        }
    }

    /// RSA modulus size in bits; `None` for a `dhaes` key.
    pub fn rsa_bits(&self) -> Option<usize> {
        self.rsa().map(|k| k.n().bit_width() as usize)
    }

    /// Modulus size in bytes for RSA (the length of every signature and OAEP
    /// block); `None` for a `dhaes` key.
    pub(crate) fn rsa_modulus_bytes(&self) -> Option<usize> {
        self.rsa().map(|k| k.size())
    }

    pub(crate) fn rsa(&self) -> Option<&rsa::PublicKey> {
        match &self.inner {
            PublicInner::Rsa(k) => Some(k),
            PublicInner::Dhaes(_) => None,
        }
    }

    pub(crate) fn dhaes(&self) -> Option<&DhaesPublic> {
        match &self.inner {
            PublicInner::Rsa(_) => None,
            PublicInner::Dhaes(k) => Some(k),
        }
    }

    /// Checks `S_X(label, msg)`.
    pub fn verify(
        &self,
        label: &str,
        msg: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        let digest = signed_digest(label, msg);
        match &self.inner {
            PublicInner::Rsa(inner) => {
                if signature.0.len() != inner.size() {
                    return Err(CryptoError::BadSignature);
                }
                inner
                    .pss_verify_prehash::<Sha256>(&digest, &signature.0)
                    .map_err(|_| CryptoError::BadSignature)
            }
            PublicInner::Dhaes(inner) => inner.verify(&digest, &signature.0),
        }
    }

    /// `E*_X(plaintext)` under `label`: see [`super::Envelope`]. Refuses a
    /// suite the key cannot serve ([`CryptoError::KeyKindMismatch`]).
    pub fn seal(
        &self,
        suite: super::SuiteId,
        label: &str,
        plaintext: &[u8],
    ) -> Result<super::Envelope, CryptoError> {
        super::envelope::seal(self, suite, label, plaintext)
    }

    /// Writes the DER to `path` (mode 0644), atomically.
    pub fn write_spki(&self, path: &Path) -> Result<(), CryptoError> {
        keyfile::write_public_atomic(path, &self.spki_der)
    }

    /// Reads a DER public key file.
    pub fn read_spki(path: &Path) -> Result<PublicKey, CryptoError> {
        let der = keyfile::read_public(path, SPKI_DER_BYTES_MAX)?;
        PublicKey::from_spki_der(&der)
    }

    /// The form events carry.
    pub fn to_ledger(&self) -> ledger::PublicKeyDer {
        ledger::PublicKeyDer(self.spki_der.clone())
    }

    pub fn from_ledger(der: &ledger::PublicKeyDer) -> Result<PublicKey, CryptoError> {
        PublicKey::from_spki_der(&der.0)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.spki_der.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fp: String = self.fingerprint[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        match self.rsa_bits() {
            Some(bits) => write!(f, "PublicKey(rsa-{bits}, {fp})"),
            None => write!(f, "PublicKey(ed25519+x25519, {fp})"),
        }
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.spki_der)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let der: Vec<u8> = serde_bytes_vec(deserializer)?;
        PublicKey::from_spki_der(&der).map_err(serde::de::Error::custom)
    }
}

/// Deserializes a byte string without a `serde_bytes` dependency. Postcard
/// encodes `serialize_bytes` and a `Vec<u8>` identically.
fn serde_bytes_vec<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    Vec::<u8>::deserialize(deserializer)
}

/// A detached signature `S_X(m)` (RSA-PSS, or 64 bytes of Ed25519): at most
/// [`RSA_OUTPUT_BYTES_MAX`] bytes, also when decoded.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct Signature(Vec<u8>);

impl Signature {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Signature, CryptoError> {
        if bytes.len() > RSA_OUTPUT_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "signature",
                len: bytes.len(),
                max: RSA_OUTPUT_BYTES_MAX,
            });
        }
        Ok(Signature(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form events carry.
    pub fn to_ledger(&self) -> ledger::SignatureBytes {
        ledger::SignatureBytes(self.0.clone())
    }

    pub fn from_ledger(sig: &ledger::SignatureBytes) -> Result<Signature, CryptoError> {
        Signature::from_bytes(sig.0.clone())
    }
}

impl TryFrom<Vec<u8>> for Signature {
    type Error = CryptoError;
    fn try_from(bytes: Vec<u8>) -> Result<Signature, CryptoError> {
        Signature::from_bytes(bytes)
    }
}

impl From<Signature> for Vec<u8> {
    fn from(sig: Signature) -> Vec<u8> {
        sig.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(<{} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::crypto::test_keys;

    #[test]
    fn signatures_verify_under_every_key_kind_and_size() {
        for key in [
            test_keys::rsa_2048(),
            test_keys::rsa_3072(),
            test_keys::dhaes(),
        ] {
            let sig = key.sign("vc/test/sign", b"message");
            let expected_len = key.public().rsa_modulus_bytes().unwrap_or(64);
            assert_eq!(sig.as_bytes().len(), expected_len);
            key.public()
                .verify("vc/test/sign", b"message", &sig)
                .expect("verifies");
        }
        assert_eq!(test_keys::rsa_3072().public().rsa_bits(), Some(3072));
        assert_eq!(test_keys::dhaes().public().rsa_bits(), None);
    }

    #[test]
    fn a_key_serves_only_the_suites_of_its_kind() {
        for suite in SuiteId::ALL {
            let key = test_keys::for_suite(suite);
            assert_eq!(key.kind(), suite.key_kind());
            key.public().check_suite(suite).expect("its own suite");
            let other_kind = if suite == SuiteId::Dhaes {
                test_keys::rsa_2048()
            } else {
                test_keys::dhaes()
            };
            assert!(matches!(
                other_kind.public().check_suite(suite),
                Err(CryptoError::KeyKindMismatch { .. })
            ));
            assert_eq!(
                SecretKey::generate_for(suite, 2048)
                    .expect("generate")
                    .kind(),
                suite.key_kind()
            );
        }
    }

    #[test]
    fn signatures_of_one_kind_do_not_verify_under_the_other() {
        let rsa_sig = test_keys::rsa_2048().sign("vc/test/x", b"m");
        let ed_sig = test_keys::dhaes().sign("vc/test/x", b"m");
        assert!(
            test_keys::dhaes()
                .public()
                .verify("vc/test/x", b"m", &rsa_sig)
                .is_err()
        );
        assert!(
            test_keys::rsa_2048()
                .public()
                .verify("vc/test/x", b"m", &ed_sig)
                .is_err()
        );
    }

    #[test]
    fn signature_rejects_other_label_message_or_key() {
        for suite in [SuiteId::Dhaes, SuiteId::Aes256] {
            let key = test_keys::for_suite(suite);
            let sig = key.sign("vc/test/a", b"message");
            let public = key.public();
            assert!(matches!(
                public.verify("vc/test/b", b"message", &sig),
                Err(CryptoError::BadSignature)
            ));
            assert!(matches!(
                public.verify("vc/test/a", b"messagf", &sig),
                Err(CryptoError::BadSignature)
            ));
            // The label is framed: moving bytes between label and message fails.
            assert!(matches!(
                public.verify("vc/test/am", b"essage", &sig),
                Err(CryptoError::BadSignature)
            ));
            assert!(matches!(
                test_keys::other_for_suite(suite)
                    .public()
                    .verify("vc/test/a", b"message", &sig),
                Err(CryptoError::BadSignature)
            ));
        }
    }

    #[test]
    fn every_flipped_signature_bit_is_rejected() {
        for suite in [SuiteId::Dhaes, SuiteId::Aes256] {
            let key = test_keys::for_suite(suite);
            let public = key.public();
            let sig = key.sign("vc/test/flip", b"m");
            for bit in 0..sig.as_bytes().len() * 8 {
                let mut bytes = sig.as_bytes().to_vec();
                bytes[bit / 8] ^= 1 << (bit % 8);
                let flipped = Signature::from_bytes(bytes).expect("same length");
                assert!(
                    matches!(
                        public.verify("vc/test/flip", b"m", &flipped),
                        Err(CryptoError::BadSignature)
                    ),
                    "{suite}: bit {bit} flipped still verifies"
                );
            }
        }
    }

    #[test]
    fn truncated_or_extended_signature_is_rejected() {
        for suite in [SuiteId::Dhaes, SuiteId::Aes256] {
            let key = test_keys::for_suite(suite);
            let sig = key.sign("vc/test/len", b"m");
            let mut short = sig.as_bytes().to_vec();
            short.pop();
            let mut long = sig.as_bytes().to_vec();
            long.push(0);
            for bytes in [short, long, Vec::new()] {
                let bad = Signature::from_bytes(bytes).expect("within bound");
                assert!(matches!(
                    key.public().verify("vc/test/len", b"m", &bad),
                    Err(CryptoError::BadSignature)
                ));
            }
        }
        assert!(matches!(
            Signature::from_bytes(vec![0; RSA_OUTPUT_BYTES_MAX + 1]),
            Err(CryptoError::TooLong { .. })
        ));
    }

    #[test]
    fn rsa_signatures_are_randomized_and_ed25519_ones_deterministic() {
        let key = test_keys::rsa_2048();
        assert_ne!(key.sign("vc/test/r", b"m"), key.sign("vc/test/r", b"m"));
        let key = test_keys::dhaes();
        assert_eq!(key.sign("vc/test/r", b"m"), key.sign("vc/test/r", b"m"));
    }

    #[test]
    fn pkcs8_file_is_0600_and_round_trips() {
        for suite in [SuiteId::Dhaes, SuiteId::Aes256] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("issuer.pk8");
            let key = test_keys::for_suite(suite);
            key.write_pkcs8(&path).expect("write");
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let back = SecretKey::read_pkcs8(&path).expect("read");
            assert_eq!(back.public(), key.public());
            let sig = back.sign("vc/test/file", b"m");
            key.public()
                .verify("vc/test/file", b"m", &sig)
                .expect("same key");
        }
    }

    #[test]
    fn pkcs8_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("issuer.pk8");
        test_keys::rsa_2048().write_pkcs8(&path).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            SecretKey::read_pkcs8(&path),
            Err(CryptoError::WeakPermissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn garbage_pkcs8_is_a_typed_error() {
        assert!(matches!(
            SecretKey::from_pkcs8_der(b"not a key"),
            Err(CryptoError::Malformed { .. })
        ));
    }

    #[test]
    fn spki_round_trips_with_a_stable_fingerprint() {
        for suite in [SuiteId::Dhaes, SuiteId::Aes256] {
            let public = test_keys::for_suite(suite).public();
            let der = public.to_spki_der();
            let back = PublicKey::from_spki_der(&der).expect("parses");
            assert_eq!(back, public);
            assert_eq!(back.fingerprint(), public.fingerprint());
            assert_ne!(
                public.fingerprint(),
                test_keys::other_for_suite(suite).public().fingerprint()
            );
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("issuer.spki");
            public.write_spki(&path).expect("write");
            assert_eq!(PublicKey::read_spki(&path).expect("read"), public);
            let encoded = postcard::to_stdvec(&public).expect("serialize");
            let decoded: PublicKey = postcard::from_bytes(&encoded).expect("deserialize");
            assert_eq!(decoded, public);
            assert_eq!(
                PublicKey::from_ledger(&public.to_ledger()).expect("ledger form"),
                public
            );
        }
    }

    #[test]
    fn small_oversized_and_garbage_public_keys_are_refused() {
        let small = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).expect("keygen");
        let der = small
            .to_public_key()
            .to_public_key_der()
            .expect("der")
            .into_vec();
        assert!(matches!(
            PublicKey::from_spki_der(&der),
            Err(CryptoError::KeyTooSmall { bits: 1024, .. })
        ));
        assert!(matches!(
            SecretKey::generate(1024),
            Err(CryptoError::KeyTooSmall { .. })
        ));
        assert!(matches!(
            PublicKey::from_spki_der(&vec![0x30; SPKI_DER_BYTES_MAX + 1]),
            Err(CryptoError::TooLong { .. })
        ));
        assert!(matches!(
            PublicKey::from_spki_der(b"\x30\x03\x02\x01\x01"),
            Err(CryptoError::Malformed { .. })
        ));
        for key in [test_keys::rsa_2048(), test_keys::dhaes()] {
            let mut trailing = key.public().to_spki_der();
            trailing.push(0);
            assert!(PublicKey::from_spki_der(&trailing).is_err());
            let mut short = key.public().to_spki_der();
            short.pop();
            assert!(PublicKey::from_spki_der(&short).is_err());
        }
    }

    /// The two RSA backends are interchangeable: a key loaded into either
    /// opens what was sealed to it, and signs what the other verifies.
    #[test]
    fn rsa_backends_interoperate() {
        let der = test_keys::rsa_2048().to_pkcs8_der().expect("der");
        let keys: Vec<SecretKey> = RsaBackend::available()
            .iter()
            .map(|b| SecretKey::from_pkcs8_der_with(&der, *b).expect("load"))
            .collect();
        for (key, backend) in keys.iter().zip(RsaBackend::available()) {
            assert_eq!(key.rsa_backend(), Some(*backend));
            assert_eq!(key.public(), test_keys::rsa_2048().public());
            assert_eq!(key.to_pkcs8_der().expect("der").as_slice(), der.as_slice());
        }
        for sealer in &keys {
            for suite in [SuiteId::Aes256, SuiteId::Tdes] {
                for len in [10, 1000] {
                    let plain = vec![0x5a; len];
                    let env = sealer
                        .public()
                        .seal(suite, "vc/test/x", &plain)
                        .expect("seal");
                    for opener in &keys {
                        assert_eq!(opener.open("vc/test/x", &env).expect("open"), plain);
                    }
                }
            }
            let sig = sealer.sign("vc/test/s", b"m");
            for verifier in &keys {
                verifier
                    .public()
                    .verify("vc/test/s", b"m", &sig)
                    .expect("verify");
            }
        }
    }

    #[test]
    fn the_aws_lc_backend_is_built_by_default() {
        assert_eq!(
            RsaBackend::available().contains(&RsaBackend::AwsLc),
            cfg!(feature = "aws-lc")
        );
        assert_eq!(RsaBackend::available()[0], RsaBackend::process_default());
    }

    #[test]
    fn debug_never_shows_private_material() {
        for key in [test_keys::rsa_2048(), test_keys::dhaes()] {
            let der = key.to_pkcs8_der().expect("der");
            let shown = format!("{key:?}");
            assert!(shown.contains("redacted"));
            let tail: String = der[der.len() - 8..]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(!shown.contains(&tail));
        }
    }
}
