//! The `dhaes` suite's key pair: one 32-byte seed gives an Ed25519 signing
//! key (`S_X`, RFC 8032) and an X25519 key for HPKE (`E*_X`, RFC 9180 base
//! mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM).
//!
//! The seed is the Ed25519 secret key itself, so the private key file is a
//! standard PKCS#8 Ed25519 key (RFC 8410); the X25519 key is derived from the
//! seed by RFC 9180's `DeriveKeyPair` over a domain-separated hash of it, so
//! the two keys are independent and neither is ever used for the other's job.
//!
//! Encodings (all fixed-length, so each key has exactly one):
//! - private: PKCS#8 v1 Ed25519, 48 bytes;
//! - public: `SEQUENCE { SPKI(Ed25519), SPKI(X25519) }`, 90 bytes of DER;
//! - signature: 64 bytes.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::CryptoError;
use super::random::os_random;
use super::suite::label_prefix;

/// The HPKE instantiation of the suite.
pub(crate) type HpkeKem = X25519HkdfSha256;
pub(crate) type HpkeKdf = HkdfSha256;
pub(crate) type HpkeAead = AesGcm256;

/// Length of an Ed25519 signature.
pub const ED25519_SIGNATURE_BYTES: usize = 64;
/// Length of an HPKE X25519 encapsulated key (`enc`).
pub const HPKE_ENC_BYTES: usize = 32;
/// Length of the AES-256-GCM tag HPKE appends to every ciphertext.
pub const HPKE_TAG_BYTES: usize = 16;

const SEED_BYTES: usize = 32;
/// PKCS#8 v1 `PrivateKeyInfo` of an Ed25519 key (RFC 8410 §7) up to the seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// `SubjectPublicKeyInfo` of an Ed25519 key (OID 1.3.101.112) up to the key.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// `SubjectPublicKeyInfo` of an X25519 key (OID 1.3.101.110) up to the key.
const SPKI_X25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];
/// The outer `SEQUENCE` around the two SPKIs (2 × 44 bytes).
const PAIR_PREFIX: [u8; 2] = [0x30, 0x58];
/// Length of the public key encoding.
pub const DHAES_PUBLIC_DER_BYTES: usize = 2 + 2 * 44;
/// Length of the private key encoding.
pub const DHAES_PKCS8_BYTES: usize = 16 + SEED_BYTES;

/// The private half: the seed and the two keys derived from it. Zeroized on
/// drop (the dalek and hpke key types zeroize themselves).
pub(crate) struct DhaesSecret {
    seed: Zeroizing<[u8; SEED_BYTES]>,
    signing: SigningKey,
    kem: <HpkeKem as hpke::Kem>::PrivateKey,
    public: DhaesPublic,
}

/// The public half: Ed25519 verifying key and X25519 HPKE key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DhaesPublic {
    verifying: VerifyingKey,
    kem: <HpkeKem as hpke::Kem>::PublicKey,
}

fn kem_ikm(seed: &[u8; SEED_BYTES]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(label_prefix("vc/dhaes/x25519-from-seed/v1"));
    h.update(seed);
    Zeroizing::new(h.finalize().into())
}

impl DhaesSecret {
    /// A fresh key pair from the OS's CSPRNG.
    pub(crate) fn generate() -> DhaesSecret {
        DhaesSecret::from_seed(Zeroizing::new(os_random::<SEED_BYTES>()))
    }

    pub(crate) fn from_seed(seed: Zeroizing<[u8; SEED_BYTES]>) -> DhaesSecret {
        let signing = SigningKey::from_bytes(&seed);
        let (kem, kem_public) = HpkeKem::derive_keypair(kem_ikm(&seed).as_slice());
        let public = DhaesPublic {
            verifying: signing.verifying_key(),
            kem: kem_public,
        };
        DhaesSecret {
            seed,
            signing,
            kem,
            public,
        }
    }

    pub(crate) fn public(&self) -> &DhaesPublic {
        &self.public
    }

    /// Ed25519 over `msg` (callers pass the framed digest of label and message).
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; ED25519_SIGNATURE_BYTES] {
        self.signing.sign(msg).to_bytes()
    }

    /// HPKE base-mode open: `info` binds suite, mode and label; any failure
    /// is [`CryptoError::DecryptionFailed`].
    pub(crate) fn open(
        &self,
        info: &[u8],
        enc: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let enc = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(enc)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        hpke::single_shot_open::<HpkeAead, HpkeKdf, HpkeKem>(
            &OpModeR::Base,
            &self.kem,
            &enc,
            info,
            ciphertext,
            &[],
        )
        .map_err(|_| CryptoError::DecryptionFailed)
    }

    pub(crate) fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut der = Zeroizing::new(Vec::with_capacity(DHAES_PKCS8_BYTES));
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(self.seed.as_slice());
        der
    }

    /// Parses [`DhaesSecret::to_pkcs8_der`]; `None` if `der` is not exactly
    /// a PKCS#8 v1 Ed25519 key.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Option<DhaesSecret> {
        let seed = der.strip_prefix(&PKCS8_ED25519_PREFIX)?;
        let seed: [u8; SEED_BYTES] = seed.try_into().ok()?;
        Some(DhaesSecret::from_seed(Zeroizing::new(seed)))
    }
}

/// The randomness HPKE draws for one encapsulation: exactly the IKM of the
/// ephemeral key, taken from the OS beforehand so that a missing RNG is a
/// typed error, not a panic inside the HPKE crate.
struct OneShotIkm {
    ikm: Zeroizing<[u8; 32]>,
    used: usize,
}

impl hpke::rand_core::TryRng for OneShotIkm {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        // The KEM asks for one private key's worth (32 bytes) once; anything
        // beyond that would be a change in the HPKE crate, and is refused by
        // an assertion rather than answered with reused bytes.
        assert!(
            self.used + dst.len() <= self.ikm.len(),
            "hpke asked for more randomness than one x25519 encapsulation needs"
        );
        dst.copy_from_slice(&self.ikm[self.used..self.used + dst.len()]);
        self.used += dst.len();
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for OneShotIkm {}

impl DhaesPublic {
    /// HPKE base-mode seal to this key: returns `(enc, ciphertext ‖ tag)`.
    pub(crate) fn seal(
        &self,
        info: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        getrandom::fill(ikm.as_mut_slice()).map_err(|_| CryptoError::Randomness)?;
        self.seal_with_ikm(info, plaintext, ikm)
    }

    /// [`DhaesPublic::seal`] with the ephemeral key's IKM given (RFC 9180's
    /// `ikmE`): deterministic, for known-answer tests.
    pub(crate) fn seal_with_ikm(
        &self,
        info: &[u8],
        plaintext: &[u8],
        ikm: Zeroizing<[u8; 32]>,
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let mut rng = OneShotIkm { ikm, used: 0 };
        let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<HpkeAead, HpkeKdf, HpkeKem>(
            &OpModeS::Base,
            &self.kem,
            info,
            plaintext,
            &[],
            &mut rng,
        )
        .map_err(|_| CryptoError::malformed("hpke seal"))?;
        Ok((enc.to_bytes().to_vec(), ciphertext))
    }

    /// Checks an Ed25519 signature strictly (no small-order keys, canonical
    /// `S`, no malleability).
    pub(crate) fn verify(&self, msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let bytes: &[u8; ED25519_SIGNATURE_BYTES] = signature
            .try_into()
            .map_err(|_| CryptoError::BadSignature)?;
        let signature = ed25519_dalek::Signature::from_bytes(bytes);
        self.verifying
            .verify_strict(msg, &signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    pub(crate) fn to_der(&self) -> Vec<u8> {
        let mut der = Vec::with_capacity(DHAES_PUBLIC_DER_BYTES);
        der.extend_from_slice(&PAIR_PREFIX);
        der.extend_from_slice(&SPKI_ED25519_PREFIX);
        der.extend_from_slice(self.verifying.as_bytes());
        der.extend_from_slice(&SPKI_X25519_PREFIX);
        der.extend_from_slice(&self.kem.to_bytes());
        der
    }

    /// Parses [`DhaesPublic::to_der`]: `None` if `der` is not that shape;
    /// [`CryptoError::Malformed`] if it is but a key is not a valid point.
    pub(crate) fn from_der(der: &[u8]) -> Option<Result<DhaesPublic, CryptoError>> {
        let rest = der.strip_prefix(&PAIR_PREFIX)?;
        let rest = rest.strip_prefix(&SPKI_ED25519_PREFIX)?;
        let (ed, rest) = rest.split_at_checked(32)?;
        let x = rest.strip_prefix(&SPKI_X25519_PREFIX)?;
        if x.len() != 32 {
            return None;
        }
        Some((|| {
            let ed: &[u8; 32] = ed.try_into().map_err(|_| bad_public())?;
            let verifying = VerifyingKey::from_bytes(ed).map_err(|_| bad_public())?;
            if verifying.is_weak() {
                return Err(bad_public());
            }
            let kem = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(x).map_err(|_| bad_public())?;
            Ok(DhaesPublic { verifying, kem })
        })())
    }
}

fn bad_public() -> CryptoError {
    CryptoError::malformed("ed25519/x25519 public key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// RFC 8032 §7.1, TEST 1..3: seed → public key, and the signature.
    #[test]
    fn rfc8032_ed25519_vectors() {
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (seed, public, msg, sig) in vectors {
            let seed: [u8; 32] = unhex(seed).try_into().expect("32 bytes");
            let key = DhaesSecret::from_seed(Zeroizing::new(seed));
            assert_eq!(key.public().verifying.as_bytes().to_vec(), unhex(public));
            let msg = unhex(msg);
            assert_eq!(key.sign(&msg).to_vec(), unhex(sig));
            key.public().verify(&msg, &unhex(sig)).expect("verifies");
            let mut bad = unhex(sig);
            bad[63] ^= 0x10;
            assert!(key.public().verify(&msg, &bad).is_err());
        }
    }

    /// RFC 9180 test vectors (the RFC's test-vectors.json), mode 0 (base),
    /// DHKEM(X25519, HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, AES-256-GCM
    /// 0x0002: the recipient's key from skRm gives pkRm, and the first two
    /// encryptions of the context open to the given plaintext.
    #[test]
    fn rfc9180_x25519_hkdf_sha256_aes256gcm_base_vectors() {
        let info = unhex("4f6465206f6e2061204772656369616e2055726e");
        let sk_rm = unhex("497b4502664cfea5d5af0b39934dac72242a74f8480451e1aee7d6a53320333d");
        let pk_rm = unhex("430f4b9859665145a6b1ba274024487bd66f03a2dd577d7753c68d7d7d00c00c");
        let sk_em = unhex("179d4b53b6365c45b600c4163b61d95cbc2f4d9e36f1695558dce265ab8bab11");
        let pk_em = unhex("6c93e09869df3402d7bf231bf540fadd35cd56be14f97178f0954db94b7fc256");
        let pt = unhex("4265617574792069732074727574682c20747275746820626561757479");
        let encryptions = [
            (
                "436f756e742d30",
                "e5d84cd531cfb583096e7cfa9641bd3079cf3a91cda813c52deb5f512be9931980a41de125a925cdad859d5b7a",
            ),
            (
                "436f756e742d31",
                "2c43aff25343fdbff864506f0818b9d87df84ea01b1a2144d23b4d40c26bf655fdf197fe40297a8aebeed5cc2d",
            ),
        ];
        type Sk = <HpkeKem as hpke::Kem>::PrivateKey;
        let sk_r = Sk::from_bytes(&sk_rm).expect("skRm");
        assert_eq!(HpkeKem::sk_to_pk(&sk_r).to_bytes().to_vec(), pk_rm);
        let sk_e = Sk::from_bytes(&sk_em).expect("skEm");
        assert_eq!(HpkeKem::sk_to_pk(&sk_e).to_bytes().to_vec(), pk_em);

        let enc = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(&pk_em).expect("enc");
        let mut ctx =
            hpke::setup_receiver::<HpkeAead, HpkeKdf, HpkeKem>(&OpModeR::Base, &sk_r, &enc, &info)
                .expect("setup");
        for (aad, ct) in encryptions {
            let opened = ctx.open(&unhex(ct), &unhex(aad)).expect("opens");
            assert_eq!(opened, pt);
        }
        // The suite's own open (single shot, sequence 0, empty aad) refuses
        // the vector's first ciphertext, whose aad is not empty.
        let key = DhaesSecret {
            seed: Zeroizing::new([0; 32]),
            signing: SigningKey::from_bytes(&[0; 32]),
            kem: sk_r,
            public: DhaesSecret::generate().public().clone(),
        };
        assert!(key.open(&info, &pk_em, &unhex(encryptions[0].1)).is_err());
    }

    /// The sender side of the same RFC 9180 vector: the ephemeral key comes
    /// from the vector's ikmE through the suite's own randomness source
    /// (`OneShotIkm`, which hands the HPKE crate's `DeriveKeyPair` exactly
    /// the 32 bytes a seal draws), so `enc` is the vector's pkEm and the
    /// context's first two encryptions are the vector's ciphertexts; the
    /// recipient's key comes from ikmR. The suite's own single-shot seal
    /// with that ikmE gives the same `enc`, and its ciphertext (empty aad,
    /// sequence 0) opens under skRm.
    #[test]
    fn rfc9180_x25519_hkdf_sha256_aes256gcm_base_vectors_sender_side() {
        let info = unhex("4f6465206f6e2061204772656369616e2055726e");
        let ikm_e = unhex("2cd7c601cefb3d42a62b04b7a9041494c06c7843818e0ce28a8f704ae7ab20f9");
        let ikm_r = unhex("dac33b0e9db1b59dbbea58d59a14e7b5896e9bdf98fad6891e99d1686492b9ee");
        let sk_rm = unhex("497b4502664cfea5d5af0b39934dac72242a74f8480451e1aee7d6a53320333d");
        let pk_rm = unhex("430f4b9859665145a6b1ba274024487bd66f03a2dd577d7753c68d7d7d00c00c");
        let pk_em = unhex("6c93e09869df3402d7bf231bf540fadd35cd56be14f97178f0954db94b7fc256");
        let pt = unhex("4265617574792069732074727574682c20747275746820626561757479");
        let encryptions = [
            (
                "436f756e742d30",
                "e5d84cd531cfb583096e7cfa9641bd3079cf3a91cda813c52deb5f512be9931980a41de125a925cdad859d5b7a",
            ),
            (
                "436f756e742d31",
                "2c43aff25343fdbff864506f0818b9d87df84ea01b1a2144d23b4d40c26bf655fdf197fe40297a8aebeed5cc2d",
            ),
        ];
        let ikm = |bytes: &[u8]| -> Zeroizing<[u8; 32]> {
            Zeroizing::new(bytes.try_into().expect("32 bytes"))
        };

        let (sk_r, pk_r) = HpkeKem::derive_keypair(&ikm_r);
        // The crate keeps the scalar clamped (RFC 7748); the vector's skRm
        // is the same scalar unclamped.
        let mut clamped = sk_rm.clone();
        clamped[0] &= 248;
        clamped[31] = (clamped[31] & 127) | 64;
        assert_eq!(sk_r.to_bytes().to_vec(), clamped);
        assert_eq!(pk_r.to_bytes().to_vec(), pk_rm);

        let mut rng = OneShotIkm {
            ikm: ikm(&ikm_e),
            used: 0,
        };
        let (enc, mut ctx) = hpke::setup_sender_with_rng::<HpkeAead, HpkeKdf, HpkeKem>(
            &OpModeS::Base,
            &pk_r,
            &info,
            &mut rng,
        )
        .expect("setup");
        assert_eq!(enc.to_bytes().to_vec(), pk_em);
        for (aad, ct) in encryptions {
            assert_eq!(ctx.seal(&pt, &unhex(aad)).expect("seals"), unhex(ct));
        }

        let public = DhaesPublic {
            verifying: DhaesSecret::generate().public().verifying,
            kem: pk_r,
        };
        let (enc, sealed) = public.seal_with_ikm(&info, &pt, ikm(&ikm_e)).expect("seal");
        assert_eq!(enc, pk_em);
        let key = DhaesSecret {
            seed: Zeroizing::new([0; 32]),
            signing: SigningKey::from_bytes(&[0; 32]),
            kem: sk_r,
            public: public.clone(),
        };
        assert_eq!(key.open(&info, &enc, &sealed).expect("opens"), pt);
    }

    #[test]
    fn seal_with_the_same_ikm_is_deterministic_and_opens() {
        let key = DhaesSecret::generate();
        let a = key
            .public()
            .seal_with_ikm(b"info", b"body", Zeroizing::new([7; 32]))
            .expect("seal");
        let b = key
            .public()
            .seal_with_ikm(b"info", b"body", Zeroizing::new([7; 32]))
            .expect("seal");
        assert_eq!(a, b);
        assert_eq!(a.0.len(), HPKE_ENC_BYTES);
        assert_eq!(a.1.len(), 4 + HPKE_TAG_BYTES);
        assert_eq!(key.open(b"info", &a.0, &a.1).expect("open"), b"body");
        assert!(key.open(b"other", &a.0, &a.1).is_err());
    }

    #[test]
    fn encodings_round_trip_and_are_fixed_length() {
        let key = DhaesSecret::generate();
        let der = key.to_pkcs8_der();
        assert_eq!(der.len(), DHAES_PKCS8_BYTES);
        let back = DhaesSecret::from_pkcs8_der(&der).expect("parses");
        assert!(back.public() == key.public());
        let public = key.public().to_der();
        assert_eq!(public.len(), DHAES_PUBLIC_DER_BYTES);
        let parsed = DhaesPublic::from_der(&public)
            .expect("shape")
            .expect("valid");
        assert!(parsed == *key.public());
        assert!(DhaesPublic::from_der(&public[..public.len() - 1]).is_none());
        let mut long = public.clone();
        long.push(0);
        assert!(DhaesPublic::from_der(&long).is_none());
        assert!(DhaesSecret::from_pkcs8_der(&der[..der.len() - 1]).is_none());
    }

    /// A low-order X25519 key (here zero) parses, but nothing seals to it
    /// and nothing opens under it: HPKE refuses an all-zero shared secret.
    #[test]
    fn a_low_order_x25519_key_seals_nothing() {
        let key = DhaesSecret::generate();
        let mut der = key.public().to_der();
        let at = 2 + 44 + 12;
        der[at..at + 32].copy_from_slice(&[0; 32]);
        let public = DhaesPublic::from_der(&der).expect("shape").expect("parses");
        assert!(public.seal(b"info", b"m").is_err());
        assert!(matches!(
            key.open(b"info", &[0; 32], &[0; 32]),
            Err(CryptoError::DecryptionFailed)
        ));
    }

    #[test]
    fn small_order_ed25519_keys_are_refused() {
        // The identity point: every signature "verifies" under it without strict checks.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = DhaesSecret::generate();
        let mut der = key.public().to_der();
        der[2 + 12..2 + 44].copy_from_slice(&identity);
        assert!(matches!(
            DhaesPublic::from_der(&der),
            Some(Err(CryptoError::Malformed { .. }))
        ));
    }
}
