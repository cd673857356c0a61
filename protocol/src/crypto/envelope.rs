//! `E*_X(m)`: plaintext-aware, randomized public-key encryption to X
//! (`docs/protocol.md`, "Notation").
//!
//! - `dhaes`: DHAES as HPKE base mode (RFC 9180: DHKEM(X25519, HKDF-SHA256),
//!   HKDF-SHA256, AES-256-GCM), one `enc` and one AEAD ciphertext whatever
//!   the body's length.
//! - `aes256`, `tdes`: short bodies are one RSA-OAEP(SHA-256) block; longer
//!   ones a KEM/DEM hybrid: OAEP wraps a fresh 32-byte key, from which a CTR
//!   key and a CMAC key are derived; the body is encrypted, then MACed
//!   together with the label, the header, the wrapped key and the IV.
//!
//! Decryption returns `m` or rejects with [`CryptoError::DecryptionFailed`],
//! whichever check failed. The suite, the mode and the caller's label all
//! enter the OAEP label (RSA) or the HPKE `info` (dhaes), so flipping the
//! suite or mode of an envelope makes it fail, not decode as something else.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::dhaes::{HPKE_ENC_BYTES, HPKE_TAG_BYTES};
use super::error::CryptoError;
use super::keys::{PublicKey, RSA_OUTPUT_BYTES_MAX, SecretKey};
use super::random::{fill_random, os_random};
use super::suite::{KeyKind, SuiteId, label_prefix};

/// Largest plaintext an envelope carries: a whole coin-payment message with
/// [`ledger::constants::COINS_PER_TX_MAX`] coins fits with room to spare.
pub const ENVELOPE_BODY_BYTES_MAX: usize = 256 * 1024;
/// Largest encoded envelope.
pub const ENVELOPE_BYTES_MAX: usize = ENVELOPE_BODY_BYTES_MAX + 2 * RSA_OUTPUT_BYTES_MAX;
/// Length of the key the KEM wraps.
const KEM_KEY_BYTES: usize = 32;
/// OAEP(SHA-256) overhead: `2 * hLen + 2`.
const OAEP_OVERHEAD_BYTES: usize = 2 * 32 + 2;

const MODE_DIRECT: u8 = 1;
const MODE_HYBRID: u8 = 2;
const MODE_HPKE: u8 = 3;

/// An `E*` ciphertext. Fields are private and bounded also when decoded; the
/// only way to its content is [`SecretKey::open`] with the right label.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EnvelopeRepr", into = "EnvelopeRepr")]
pub struct Envelope {
    suite: SuiteId,
    body: Body,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Body {
    /// One OAEP block holding the whole plaintext.
    Direct { oaep: Vec<u8> },
    /// OAEP-wrapped key, then CTR ciphertext and its CMAC.
    Hybrid {
        wrapped_key: Vec<u8>,
        iv: Vec<u8>,
        ciphertext: Vec<u8>,
        mac: Vec<u8>,
    },
    /// HPKE: the encapsulated X25519 key, then the AES-256-GCM ciphertext
    /// with its tag. Only under `dhaes`.
    Hpke { enc: Vec<u8>, ciphertext: Vec<u8> },
}

/// The serialized form; [`Envelope`] is this after its bounds are checked.
#[derive(Clone, Serialize, Deserialize)]
struct EnvelopeRepr {
    suite: SuiteId,
    body: Body,
}

impl TryFrom<EnvelopeRepr> for Envelope {
    type Error = CryptoError;
    fn try_from(repr: EnvelopeRepr) -> Result<Envelope, CryptoError> {
        let suite = repr.suite;
        let rsa = suite.key_kind() == KeyKind::Rsa;
        let ok = match &repr.body {
            Body::Direct { oaep } => rsa && oaep.len() <= RSA_OUTPUT_BYTES_MAX,
            Body::Hpke { enc, ciphertext } => {
                !rsa && enc.len() == HPKE_ENC_BYTES
                    && (HPKE_TAG_BYTES..=ENVELOPE_BODY_BYTES_MAX + HPKE_TAG_BYTES)
                        .contains(&ciphertext.len())
            }
            Body::Hybrid {
                wrapped_key,
                iv,
                ciphertext,
                mac,
            } => {
                rsa && wrapped_key.len() <= RSA_OUTPUT_BYTES_MAX
                    && iv.len() == suite.block_bytes()
                    && ciphertext.len() <= ENVELOPE_BODY_BYTES_MAX
                    && mac.len() == suite.mac_bytes()
            }
        };
        if !ok {
            return Err(CryptoError::malformed("envelope"));
        }
        Ok(Envelope {
            suite,
            body: repr.body,
        })
    }
}

impl From<Envelope> for EnvelopeRepr {
    fn from(e: Envelope) -> EnvelopeRepr {
        EnvelopeRepr {
            suite: e.suite,
            body: e.body,
        }
    }
}

impl Envelope {
    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// Whether the body went through a KEM/DEM hybrid (RSA's for long
    /// bodies, or HPKE, which always is one).
    pub fn is_hybrid(&self) -> bool {
        matches!(self.body, Body::Hybrid { .. } | Body::Hpke { .. })
    }

    /// Postcard encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        #[allow(clippy::expect_used)]
        postcard::to_stdvec(self).expect("serializing an envelope into a Vec cannot fail")
    }

    /// Decodes [`Envelope::to_bytes`], refusing oversized input and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, CryptoError> {
        if bytes.len() > ENVELOPE_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "envelope",
                len: bytes.len(),
                max: ENVELOPE_BYTES_MAX,
            });
        }
        let (env, rest) = postcard::take_from_bytes::<Envelope>(bytes)
            .map_err(|_| CryptoError::malformed("envelope"))?;
        if !rest.is_empty() {
            return Err(CryptoError::malformed("envelope (trailing bytes)"));
        }
        Ok(env)
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.body {
            Body::Direct { oaep } => {
                write!(f, "Envelope({}, direct, {} bytes)", self.suite, oaep.len())
            }
            Body::Hybrid { ciphertext, .. } => write!(
                f,
                "Envelope({}, hybrid, {} body bytes)",
                self.suite,
                ciphertext.len()
            ),
            Body::Hpke { ciphertext, .. } => write!(
                f,
                "Envelope({}, hpke, {} body bytes)",
                self.suite,
                ciphertext.len().saturating_sub(HPKE_TAG_BYTES)
            ),
        }
    }
}

/// What OAEP (or HPKE's `info`) binds: version, suite, mode and the caller's label.
fn header(suite: SuiteId, mode: u8, label: &str) -> Vec<u8> {
    let mut h = label_prefix("vc/estar/v1");
    h.push(suite.code());
    h.push(mode);
    h.extend_from_slice(&label_prefix(label));
    h
}

struct DemKeys {
    enc: Zeroizing<Vec<u8>>,
    mac: Zeroizing<Vec<u8>>,
}

fn dem_keys(suite: SuiteId, kem_key: &[u8]) -> DemKeys {
    let derive = |purpose: &str| {
        let mut h = Sha256::new();
        h.update(label_prefix(purpose));
        h.update([suite.code()]);
        h.update(kem_key);
        let mut digest = h.finalize();
        let key = Zeroizing::new(digest[..suite.key_bytes()].to_vec());
        zeroize::Zeroize::zeroize(digest.as_mut_slice());
        key
    };
    DemKeys {
        enc: derive("vc/estar/dem/enc"),
        mac: derive("vc/estar/dem/mac"),
    }
}

fn dem_mac(
    suite: SuiteId,
    keys: &DemKeys,
    header: &[u8],
    wrapped_key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let wrapped_len = (wrapped_key.len() as u64).to_le_bytes();
    suite.cmac(
        &keys.mac,
        &[header, &wrapped_len, wrapped_key, iv, ciphertext],
    )
}

pub(crate) fn seal(
    key: &PublicKey,
    suite: SuiteId,
    label: &str,
    plaintext: &[u8],
) -> Result<Envelope, CryptoError> {
    if plaintext.len() > ENVELOPE_BODY_BYTES_MAX {
        return Err(CryptoError::TooLong {
            what: "envelope body",
            len: plaintext.len(),
            max: ENVELOPE_BODY_BYTES_MAX,
        });
    }
    key.check_suite(suite)?;
    if let Some(dhaes) = key.dhaes() {
        let (enc, ciphertext) = dhaes.seal(&header(suite, MODE_HPKE, label), plaintext)?;
        return Ok(Envelope {
            suite,
            body: Body::Hpke { enc, ciphertext },
        });
    }
    let modulus_bytes = key
        .rsa_modulus_bytes()
        .ok_or(CryptoError::KeyKindMismatch {
            key: key.kind(),
            suite,
        })?;
    let oaep_capacity = modulus_bytes.saturating_sub(OAEP_OVERHEAD_BYTES);
    if plaintext.len() <= oaep_capacity {
        let oaep = oaep_encrypt(key, &header(suite, MODE_DIRECT, label), plaintext)?;
        return Ok(Envelope {
            suite,
            body: Body::Direct { oaep },
        });
    }
    let header = header(suite, MODE_HYBRID, label);
    let kem_key = Zeroizing::new(os_random::<KEM_KEY_BYTES>());
    let wrapped_key = oaep_encrypt(key, &header, kem_key.as_slice())?;
    let keys = dem_keys(suite, kem_key.as_slice());
    let mut iv = vec![0u8; suite.block_bytes()];
    fill_random(&mut iv);
    let mut ciphertext = plaintext.to_vec();
    suite.ctr_apply(&keys.enc, &iv, &mut ciphertext)?;
    let mac = dem_mac(suite, &keys, &header, &wrapped_key, &iv, &ciphertext)?;
    Ok(Envelope {
        suite,
        body: Body::Hybrid {
            wrapped_key,
            iv,
            ciphertext,
            mac,
        },
    })
}

fn oaep_encrypt(key: &PublicKey, oaep_label: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
    key.rsa()
        .ok_or(CryptoError::malformed("rsa public key"))?
        .encrypt(
            &mut getrandom::SysRng,
            rsa::Oaep::<Sha256>::new_with_label(oaep_label.to_vec()),
            msg,
        )
        .map_err(|e| CryptoError::Encoding(e.to_string()))
}

pub(crate) fn open(
    key: &SecretKey,
    label: &str,
    envelope: &Envelope,
) -> Result<Vec<u8>, CryptoError> {
    let suite = envelope.suite;
    // A key of the wrong kind for the envelope's suite opens nothing; the
    // error is the same as for any other failure.
    if key.public().check_suite(suite).is_err() {
        return Err(CryptoError::DecryptionFailed);
    }
    if let Body::Hpke { enc, ciphertext } = &envelope.body {
        let secret = key.dhaes_private().ok_or(CryptoError::DecryptionFailed)?;
        return secret.open(&header(suite, MODE_HPKE, label), enc, ciphertext);
    }
    let (Some(backend), Some(modulus_bytes)) =
        (key.rsa_private(), key.public().rsa_modulus_bytes())
    else {
        return Err(CryptoError::DecryptionFailed);
    };
    match &envelope.body {
        Body::Hpke { .. } => Err(CryptoError::DecryptionFailed),
        Body::Direct { oaep } => {
            if oaep.len() != modulus_bytes {
                return Err(CryptoError::DecryptionFailed);
            }
            let plain = backend.oaep_decrypt(&header(suite, MODE_DIRECT, label), oaep)?;
            Ok(plain.to_vec())
        }
        Body::Hybrid {
            wrapped_key,
            iv,
            ciphertext,
            mac,
        } => {
            if wrapped_key.len() != modulus_bytes
                || iv.len() != suite.block_bytes()
                || mac.len() != suite.mac_bytes()
            {
                return Err(CryptoError::DecryptionFailed);
            }
            let header = header(suite, MODE_HYBRID, label);
            let kem_key = backend.oaep_decrypt(&header, wrapped_key)?;
            if kem_key.len() != KEM_KEY_BYTES {
                return Err(CryptoError::DecryptionFailed);
            }
            open_dem(suite, &header, &kem_key, wrapped_key, iv, ciphertext, mac)
        }
    }
}

/// The DEM half of opening: check the MAC over header, wrapped key, IV and
/// ciphertext, and only then decrypt.
fn open_dem(
    suite: SuiteId,
    header: &[u8],
    kem_key: &[u8],
    wrapped_key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    mac: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let keys = dem_keys(suite, kem_key);
    let expected = dem_mac(suite, &keys, header, wrapped_key, iv, ciphertext)?;
    if !bool::from(expected.ct_eq(mac)) {
        return Err(CryptoError::DecryptionFailed);
    }
    let mut plain = ciphertext.to_vec();
    suite
        .ctr_apply(&keys.enc, iv, &mut plain)
        .map_err(|_| CryptoError::DecryptionFailed)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys;

    const LABEL: &str = "vc/test/envelope";

    /// The RSA suites' mode switch (one OAEP block or hybrid) sits at the OAEP
    /// capacity; HPKE has no switch, so any sizes do.
    fn sizes_around_capacity(key: &SecretKey) -> Vec<usize> {
        let cap = key
            .public()
            .rsa_modulus_bytes()
            .map_or(190, |m| m - OAEP_OVERHEAD_BYTES);
        vec![0, 1, cap - 1, cap, cap + 1, 4096]
    }

    /// Every suite with its keys: RSA-2048 and RSA-3072 under the RSA suites.
    fn suites_and_keys() -> Vec<(SuiteId, &'static SecretKey)> {
        let mut out = vec![(SuiteId::Dhaes, test_keys::dhaes())];
        for suite in [SuiteId::Aes256, SuiteId::Tdes] {
            out.push((suite, test_keys::rsa_2048()));
            out.push((suite, test_keys::rsa_3072()));
        }
        out
    }

    #[test]
    fn seal_then_open_round_trips_in_every_suite_and_key_size() {
        for (suite, key) in suites_and_keys() {
            for len in sizes_around_capacity(key) {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let env = key.public().seal(suite, LABEL, &plain).expect("seal");
                assert_eq!(env.suite(), suite);
                let oaep_cap = key
                    .public()
                    .rsa_modulus_bytes()
                    .map(|m| m - OAEP_OVERHEAD_BYTES);
                assert_eq!(env.is_hybrid(), oaep_cap.is_none_or(|cap| len > cap));
                let decoded = Envelope::from_bytes(&env.to_bytes()).expect("decode");
                assert_eq!(key.open(LABEL, &decoded).expect("open"), plain);
            }
        }
    }

    #[test]
    fn sealing_is_randomized() {
        for suite in SuiteId::ALL {
            let public = test_keys::for_suite(suite).public();
            for len in [10, 1000] {
                let a = public.seal(suite, LABEL, &vec![1; len]).expect("seal");
                let b = public.seal(suite, LABEL, &vec![1; len]).expect("seal");
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn wrong_label_or_wrong_key_is_rejected() {
        for suite in SuiteId::ALL {
            let key = test_keys::for_suite(suite);
            for len in [10, 1000] {
                let env = key
                    .public()
                    .seal(suite, LABEL, &vec![5; len])
                    .expect("seal");
                assert!(matches!(
                    key.open("vc/test/other", &env),
                    Err(CryptoError::DecryptionFailed)
                ));
                assert!(matches!(
                    test_keys::other_for_suite(suite).open(LABEL, &env),
                    Err(CryptoError::DecryptionFailed)
                ));
            }
        }
    }

    #[test]
    fn a_key_of_the_wrong_kind_neither_seals_nor_opens() {
        assert!(matches!(
            test_keys::rsa_2048()
                .public()
                .seal(SuiteId::Dhaes, LABEL, b"x"),
            Err(CryptoError::KeyKindMismatch { .. })
        ));
        for suite in [SuiteId::Aes256, SuiteId::Tdes] {
            assert!(matches!(
                test_keys::dhaes().public().seal(suite, LABEL, b"x"),
                Err(CryptoError::KeyKindMismatch { .. })
            ));
        }
        let env = test_keys::dhaes()
            .public()
            .seal(SuiteId::Dhaes, LABEL, b"x")
            .expect("seal");
        assert!(matches!(
            test_keys::rsa_2048().open(LABEL, &env),
            Err(CryptoError::DecryptionFailed)
        ));
        let env = test_keys::rsa_2048()
            .public()
            .seal(SuiteId::Aes256, LABEL, b"x")
            .expect("seal");
        assert!(matches!(
            test_keys::dhaes().open(LABEL, &env),
            Err(CryptoError::DecryptionFailed)
        ));
    }

    fn open_bytes(key: &SecretKey, bytes: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Envelope::from_bytes(bytes).and_then(|e| key.open(LABEL, &e))
    }

    fn assert_rejected(outcome: Result<Vec<u8>, CryptoError>, what: &str) {
        assert!(
            matches!(
                outcome,
                Err(CryptoError::DecryptionFailed | CryptoError::Malformed { .. })
            ),
            "{what}: {outcome:?}"
        );
    }

    /// Flips bits of the whole encoding and checks none opens: every bit of
    /// a direct or HPKE envelope; every 5th bit of an RSA hybrid one, whose
    /// DEM fields are flipped exhaustively (without RSA) by the test below.
    /// Each RSA attempt is a private operation, a few milliseconds.
    fn assert_bit_flips_rejected(key: &SecretKey, env: &Envelope) {
        let bytes = env.to_bytes();
        let stride = if matches!(env.body, Body::Hybrid { .. }) {
            5
        } else {
            1
        };
        for bit in (0..bytes.len() * 8).step_by(stride) {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_rejected(open_bytes(key, &flipped), &format!("bit {bit}"));
        }
    }

    #[test]
    fn every_flipped_bit_of_a_direct_envelope_is_rejected() {
        let key = test_keys::rsa_2048();
        let env = key
            .public()
            .seal(SuiteId::Aes256, LABEL, b"short")
            .expect("seal");
        assert!(!env.is_hybrid());
        assert_bit_flips_rejected(key, &env);
    }

    #[test]
    fn every_flipped_bit_of_an_hpke_envelope_is_rejected() {
        let key = test_keys::dhaes();
        for len in [0, 5, 300] {
            let env = key
                .public()
                .seal(SuiteId::Dhaes, LABEL, &vec![9u8; len])
                .expect("seal");
            assert!(matches!(env.body, Body::Hpke { .. }));
            assert_bit_flips_rejected(key, &env);
        }
    }

    #[test]
    fn flipped_bits_of_a_hybrid_envelope_are_rejected() {
        let key = test_keys::rsa_2048();
        for suite in [SuiteId::Aes256, SuiteId::Tdes] {
            let env = key.public().seal(suite, LABEL, &[9u8; 200]).expect("seal");
            assert!(env.is_hybrid());
            assert_bit_flips_rejected(key, &env);
        }
    }

    /// Every bit of the RSA DEM's inputs (wrapped key, IV, ciphertext, MAC
    /// and the header that carries the label) is covered by its MAC: no flip
    /// opens.
    #[test]
    fn every_flipped_bit_of_the_dem_is_rejected() {
        for suite in [SuiteId::Aes256, SuiteId::Tdes] {
            let kem_key = [0x42u8; KEM_KEY_BYTES];
            let header = header(suite, MODE_HYBRID, LABEL);
            let wrapped_key = vec![0x17u8; 256];
            let keys = dem_keys(suite, &kem_key);
            let iv = vec![0x55u8; suite.block_bytes()];
            let mut ciphertext = b"a body of some forty bytes, give or take".to_vec();
            suite
                .ctr_apply(&keys.enc, &iv, &mut ciphertext)
                .expect("ctr");
            let mac = dem_mac(suite, &keys, &header, &wrapped_key, &iv, &ciphertext).expect("mac");
            let fields = [header, wrapped_key, iv, ciphertext, mac];
            assert!(
                open_dem(
                    suite, &fields[0], &kem_key, &fields[1], &fields[2], &fields[3], &fields[4]
                )
                .is_ok()
            );
            for field in 0..fields.len() {
                for bit in 0..fields[field].len() * 8 {
                    let mut f = fields.clone();
                    f[field][bit / 8] ^= 1 << (bit % 8);
                    assert_rejected(
                        open_dem(suite, &f[0], &kem_key, &f[1], &f[2], &f[3], &f[4]),
                        &format!("{suite} field {field} bit {bit}"),
                    );
                }
                let mut f = fields.clone();
                f[field].pop();
                assert_rejected(
                    open_dem(suite, &f[0], &kem_key, &f[1], &f[2], &f[3], &f[4]),
                    &format!("{suite} field {field} truncated"),
                );
            }
        }
    }

    #[test]
    fn truncated_or_extended_encoding_is_rejected() {
        for suite in SuiteId::ALL {
            let key = test_keys::for_suite(suite);
            for len in [5, 300] {
                let bytes = key
                    .public()
                    .seal(suite, LABEL, &vec![3; len])
                    .expect("seal")
                    .to_bytes();
                // Every truncation fails to decode (a length prefix overruns
                // or a bound is missed), so each costs microseconds.
                for cut in 1..=bytes.len() {
                    assert!(
                        Envelope::from_bytes(&bytes[..bytes.len() - cut]).is_err(),
                        "{suite}: cut {cut} decoded"
                    );
                }
                let mut long = bytes.clone();
                long.push(0);
                assert!(matches!(
                    Envelope::from_bytes(&long),
                    Err(CryptoError::Malformed { .. })
                ));
            }
        }
    }

    #[test]
    fn oversized_bodies_are_refused() {
        for suite in SuiteId::ALL {
            let public = test_keys::for_suite(suite).public();
            assert!(matches!(
                public.seal(suite, LABEL, &vec![0; ENVELOPE_BODY_BYTES_MAX + 1]),
                Err(CryptoError::TooLong { .. })
            ));
        }
        assert!(matches!(
            Envelope::from_bytes(&vec![0; ENVELOPE_BYTES_MAX + 1]),
            Err(CryptoError::TooLong { .. })
        ));
    }

    #[test]
    fn the_largest_body_seals_and_opens_under_every_suite() {
        for suite in SuiteId::ALL {
            let key = test_keys::for_suite(suite);
            let plain = vec![0x33; ENVELOPE_BODY_BYTES_MAX];
            let env = key.public().seal(suite, LABEL, &plain).expect("seal");
            let bytes = env.to_bytes();
            assert!(bytes.len() <= ENVELOPE_BYTES_MAX);
            let back = Envelope::from_bytes(&bytes).expect("decode");
            assert_eq!(key.open(LABEL, &back).expect("open"), plain);
        }
    }

    #[test]
    fn switching_the_suite_of_an_envelope_makes_it_fail() {
        let key = test_keys::rsa_2048();
        for len in [5, 300] {
            let env = key
                .public()
                .seal(SuiteId::Aes256, LABEL, &vec![1; len])
                .expect("seal");
            let mut switched = env.clone();
            switched.suite = SuiteId::Tdes;
            if let Body::Hybrid { iv, mac, .. } = &mut switched.body {
                iv.truncate(SuiteId::Tdes.block_bytes());
                mac.truncate(SuiteId::Tdes.mac_bytes());
            }
            assert!(matches!(
                key.open(LABEL, &switched),
                Err(CryptoError::DecryptionFailed)
            ));
            // An RSA body under the dhaes suite does not even decode.
            let mut to_dhaes = EnvelopeRepr::from(env);
            to_dhaes.suite = SuiteId::Dhaes;
            assert!(Envelope::try_from(to_dhaes).is_err());
        }
        // An HPKE body relabelled as an RSA suite does not decode either.
        let env = test_keys::dhaes()
            .public()
            .seal(SuiteId::Dhaes, LABEL, b"x")
            .expect("seal");
        for suite in [SuiteId::Aes256, SuiteId::Tdes] {
            let mut repr = EnvelopeRepr::from(env.clone());
            repr.suite = suite;
            assert!(Envelope::try_from(repr).is_err());
        }
    }
}
