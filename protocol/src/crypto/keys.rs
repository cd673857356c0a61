//! RSA keys: [`SecretKey`] (PSS signing, OAEP decryption, PKCS#8 files) and
//! [`PublicKey`] (verification, sealing, SPKI encoding), and the detached
//! [`Signature`].
//!
//! The private-key operations go through one small trait,
//! [`PrivateKeyBackend`], so that a faster constant-time implementation can
//! replace the `rsa` crate without touching callers: those two operations are
//! most of the issuer's cost.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rsa::Oaep;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::CryptoError;
use super::keyfile;
use super::suite::label_prefix;

/// Default RSA modulus size.
pub const RSA_BITS_DEFAULT: usize = 2048;
/// Smallest RSA modulus accepted anywhere (generated, loaded or received).
pub const RSA_BITS_MIN: usize = 2048;
/// Largest RSA modulus accepted: bounds the work a hostile key can cause.
pub const RSA_BITS_MAX: usize = 4096;
/// Largest RSA output (signature, OAEP ciphertext), in bytes.
pub const RSA_OUTPUT_BYTES_MAX: usize = RSA_BITS_MAX / 8;
/// Largest SPKI DER public key accepted (RSA-4096 SPKI is 550 bytes).
pub const SPKI_DER_BYTES_MAX: usize = ledger::constants::PUBLIC_KEY_DER_BYTES_MAX;
/// Largest PKCS#8 DER private key file accepted (RSA-4096 is about 2.4 KiB).
pub const PKCS8_FILE_BYTES_MAX: usize = 16 * 1024;

const _: () = assert!(RSA_OUTPUT_BYTES_MAX <= ledger::constants::SIGNATURE_BYTES_MAX);

/// The private-key operations, and the only code that touches private-key
/// material. Implement it to plug in another constant-time backend.
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
}

/// The default backend: the `rsa` crate (constant-time crypto-bigint,
/// blinding from the OS RNG on every private operation).
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
}

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

/// An RSA private key. Cheap to clone (shared), zeroized when the last
/// clone drops, never shown by `Debug`.
#[derive(Clone)]
pub struct SecretKey {
    backend: Arc<dyn PrivateKeyBackend>,
    public: PublicKey,
}

impl SecretKey {
    /// A fresh key of `bits` bits (2048 default, 3072 selectable, 4096 at most)
    /// from the OS's CSPRNG.
    pub fn generate(bits: usize) -> Result<SecretKey, CryptoError> {
        check_bits(bits)?;
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
            .map_err(|e| CryptoError::Encoding(e.to_string()))?;
        SecretKey::from_backend(Arc::new(RustCryptoRsa(key)))
    }

    /// Wraps another private-key backend.
    pub fn from_backend(backend: Arc<dyn PrivateKeyBackend>) -> Result<SecretKey, CryptoError> {
        let public = PublicKey::from_rsa(backend.public_key())?;
        Ok(SecretKey { backend, public })
    }

    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }

    /// `S_X(label, msg)`: RSA-PSS(SHA-256) over the framed label and the message.
    ///
    /// # Panics
    /// If the OS has no randomness for the salt and blinding: nothing can be
    /// signed safely then.
    pub fn sign(&self, label: &str, msg: &[u8]) -> Signature {
        let digest = signed_digest(label, msg);
        #[allow(clippy::expect_used)]
        let bytes = self
            .backend
            .pss_sign_digest(&digest)
            .expect("pss signing failed: the key size was checked, so randomness is missing");
        Signature(bytes)
    }

    /// Opens an `E*` envelope sealed to this key under `label`: returns the
    /// plaintext or [`CryptoError::DecryptionFailed`].
    pub fn open(&self, label: &str, envelope: &super::Envelope) -> Result<Vec<u8>, CryptoError> {
        super::envelope::open(self, label, envelope)
    }

    pub(crate) fn backend(&self) -> &dyn PrivateKeyBackend {
        self.backend.as_ref()
    }

    /// The key as PKCS#8 DER (secret: zeroized on drop).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.backend.to_pkcs8_der()
    }

    /// Parses a PKCS#8 DER private key, refusing keys outside 2048..=4096 bits.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SecretKey, CryptoError> {
        if der.len() > PKCS8_FILE_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "pkcs8 key",
                len: der.len(),
                max: PKCS8_FILE_BYTES_MAX,
            });
        }
        let key = rsa::PrivateKey::from_pkcs8_der(der)
            .map_err(|_| CryptoError::malformed("pkcs8 private key"))?;
        check_bits(key.n().bit_width() as usize)?;
        SecretKey::from_backend(Arc::new(RustCryptoRsa(key)))
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

/// An RSA public key of 2048 to 4096 bits. Serializes as its SPKI DER bytes.
#[derive(Clone)]
pub struct PublicKey {
    inner: rsa::PublicKey,
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
            inner,
            spki_der,
            fingerprint,
        })
    }

    /// Parses SPKI DER, refusing more than [`SPKI_DER_BYTES_MAX`] bytes and
    /// keys outside 2048..=4096 bits.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, CryptoError> {
        if der.len() > SPKI_DER_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "spki public key",
                len: der.len(),
                max: SPKI_DER_BYTES_MAX,
            });
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

    pub fn to_spki_der(&self) -> Vec<u8> {
        self.spki_der.clone()
    }

    /// SHA-256 of the SPKI DER encoding.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.inner.n().bit_width() as usize
    }

    /// Modulus size in bytes: the length of every signature and OAEP block.
    pub fn modulus_bytes(&self) -> usize {
        self.inner.size()
    }

    pub(crate) fn rsa(&self) -> &rsa::PublicKey {
        &self.inner
    }

    /// Checks `S_X(label, msg)`.
    pub fn verify(
        &self,
        label: &str,
        msg: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        if signature.0.len() != self.modulus_bytes() {
            return Err(CryptoError::BadSignature);
        }
        let digest = signed_digest(label, msg);
        self.inner
            .pss_verify_prehash::<Sha256>(&digest, &signature.0)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// `E*_X(plaintext)` under `label`: see [`super::Envelope`].
    pub fn seal(
        &self,
        suite: super::SuiteId,
        label: &str,
        plaintext: &[u8],
    ) -> Result<super::Envelope, CryptoError> {
        super::envelope::seal(self, suite, label, plaintext)
    }

    /// Writes the SPKI DER to `path` (mode 0644), atomically.
    pub fn write_spki(&self, path: &Path) -> Result<(), CryptoError> {
        keyfile::write_public_atomic(path, &self.spki_der)
    }

    /// Reads an SPKI DER file.
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
        write!(f, "PublicKey(rsa-{}, {fp})", self.bits())
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

/// A detached RSA-PSS signature `S_X(m)`: at most [`RSA_OUTPUT_BYTES_MAX`]
/// bytes, also when decoded.
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
    fn signatures_verify_under_both_key_sizes() {
        for key in [test_keys::rsa_2048(), test_keys::rsa_3072()] {
            let sig = key.sign("vc/test/sign", b"message");
            assert_eq!(sig.as_bytes().len(), key.public().modulus_bytes());
            key.public()
                .verify("vc/test/sign", b"message", &sig)
                .expect("verifies");
        }
        assert_eq!(test_keys::rsa_3072().public().bits(), 3072);
    }

    #[test]
    fn signature_rejects_other_label_message_or_key() {
        let key = test_keys::rsa_2048();
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
            test_keys::rsa_2048_other()
                .public()
                .verify("vc/test/a", b"message", &sig),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn every_flipped_signature_bit_is_rejected() {
        let key = test_keys::rsa_2048();
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
                "bit {bit} flipped still verifies"
            );
        }
    }

    #[test]
    fn truncated_or_extended_signature_is_rejected() {
        let key = test_keys::rsa_2048();
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
        assert!(matches!(
            Signature::from_bytes(vec![0; RSA_OUTPUT_BYTES_MAX + 1]),
            Err(CryptoError::TooLong { .. })
        ));
    }

    #[test]
    fn signatures_are_randomized() {
        let key = test_keys::rsa_2048();
        assert_ne!(key.sign("vc/test/r", b"m"), key.sign("vc/test/r", b"m"));
    }

    #[test]
    fn pkcs8_file_is_0600_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("issuer.pk8");
        let key = test_keys::rsa_2048();
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
        let public = test_keys::rsa_2048().public();
        let der = public.to_spki_der();
        let back = PublicKey::from_spki_der(&der).expect("parses");
        assert_eq!(back, public);
        assert_eq!(back.fingerprint(), public.fingerprint());
        assert_ne!(
            public.fingerprint(),
            test_keys::rsa_2048_other().public().fingerprint()
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
        let mut trailing = test_keys::rsa_2048().public().to_spki_der();
        trailing.push(0);
        assert!(PublicKey::from_spki_der(&trailing).is_err());
    }

    #[test]
    fn debug_never_shows_private_material() {
        let key = test_keys::rsa_2048();
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
