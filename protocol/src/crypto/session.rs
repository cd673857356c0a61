//! Session keys `K = K_A ⊕ K_B` and the symmetric primitives under them:
//! `e_K` (randomized CTR encryption, NOT authenticated on its own) and
//! `mac_K` (CMAC). As in the paper, flows pair `e_K` with `mac_K`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::CryptoError;
use super::random::{KEY_SHARE_BYTES, KeyShare, fill_random};
use super::suite::{SuiteId, label_prefix};

/// Largest plaintext `e_K` carries (TDES's 64-bit block makes much larger
/// bodies under one key unwise; this is far below that).
pub const SESSION_BODY_BYTES_MAX: usize = 256 * 1024;
/// Longest CMAC tag (one AES block).
pub const MAC_TAG_BYTES_MAX: usize = 16;
/// Longest IV (one AES block).
const IV_BYTES_MAX: usize = 16;

/// A session key, split into an encryption key and a MAC key derived from
/// `K = K_A ⊕ K_B` under distinct labels. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey {
    #[zeroize(skip)]
    suite: SuiteId,
    enc_key: Vec<u8>,
    mac_key: Vec<u8>,
}

impl SessionKey {
    /// Forms `K = K_A ⊕ K_B` and derives the suite's encryption and MAC keys
    /// from it with SHA-256 under distinct labels.
    pub fn combine(suite: SuiteId, share_a: &KeyShare, share_b: &KeyShare) -> SessionKey {
        let mut k = Zeroizing::new([0u8; KEY_SHARE_BYTES]);
        for (out, (a, b)) in k
            .iter_mut()
            .zip(share_a.as_bytes().iter().zip(share_b.as_bytes()))
        {
            *out = a ^ b;
        }
        SessionKey {
            suite,
            enc_key: derive(suite, "vc/session/enc", k.as_slice()),
            mac_key: derive(suite, "vc/session/mac", k.as_slice()),
        }
    }

    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// The per-label CTR key: a ciphertext made for one label decrypts to
    /// noise under another.
    fn label_key(&self, label: &str) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(label_prefix("vc/session/e"));
        h.update(&self.enc_key);
        h.update(label_prefix(label));
        let mut digest = h.finalize();
        let key = digest[..self.suite.key_bytes()].to_vec();
        digest.as_mut_slice().zeroize();
        key
    }

    /// `e_K(pt)` under `label`: a fresh random IV, then CTR. Randomized, so the
    /// same plaintext never encrypts the same way twice. Not authenticated:
    /// MAC the ciphertext with [`SessionKey::mac`].
    pub fn encrypt(&self, label: &str, plaintext: &[u8]) -> Ciphertext {
        let key = Zeroizing::new(self.label_key(label));
        let mut iv = vec![0u8; self.suite.block_bytes()];
        fill_random(&mut iv);
        let mut body = plaintext.to_vec();
        #[allow(clippy::expect_used)]
        self.suite
            .ctr_apply(&key, &iv, &mut body)
            .expect("key and iv lengths are fixed by the suite");
        Ciphertext { iv, body }
    }

    /// Inverts [`SessionKey::encrypt`]. Refuses a ciphertext whose IV does
    /// not fit the suite or whose body is over [`SESSION_BODY_BYTES_MAX`];
    /// a wrong key or label yields noise, not an error (check the MAC first).
    pub fn decrypt(&self, label: &str, ciphertext: &Ciphertext) -> Result<Vec<u8>, CryptoError> {
        if ciphertext.iv.len() != self.suite.block_bytes() {
            return Err(CryptoError::malformed("ciphertext iv"));
        }
        if ciphertext.body.len() > SESSION_BODY_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "ciphertext",
                len: ciphertext.body.len(),
                max: SESSION_BODY_BYTES_MAX,
            });
        }
        let key = Zeroizing::new(self.label_key(label));
        let mut body = ciphertext.body.clone();
        self.suite.ctr_apply(&key, &ciphertext.iv, &mut body)?;
        Ok(body)
    }

    /// `mac_K(label, data)`: CMAC over the framed label and the data; 16 bytes
    /// under aes256, 8 under tdes.
    pub fn mac(&self, label: &str, data: &[u8]) -> MacTag {
        #[allow(clippy::expect_used)]
        let tag = self
            .suite
            .cmac(&self.mac_key, &[&label_prefix(label), data])
            .expect("mac key length is fixed by the suite");
        MacTag(tag)
    }

    /// Checks a tag in constant time.
    pub fn verify_mac(&self, label: &str, data: &[u8], tag: &MacTag) -> Result<(), CryptoError> {
        let expected = self.mac(label, data);
        // `ct_eq` on slices of different lengths is false without leaking content.
        if bool::from(expected.0.as_slice().ct_eq(tag.0.as_slice())) {
            Ok(())
        } else {
            Err(CryptoError::BadMac)
        }
    }
}

fn derive(suite: SuiteId, purpose: &str, k: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(label_prefix(purpose));
    h.update([suite.code()]);
    h.update(k);
    let mut digest = h.finalize();
    let key = digest[..suite.key_bytes()].to_vec();
    digest.as_mut_slice().zeroize();
    key
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}, <redacted>)", self.suite)
    }
}

/// `e_K(m)`: IV and CTR body. Bounded also when decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CiphertextRepr", into = "CiphertextRepr")]
pub struct Ciphertext {
    iv: Vec<u8>,
    body: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct CiphertextRepr {
    iv: Vec<u8>,
    body: Vec<u8>,
}

impl TryFrom<CiphertextRepr> for Ciphertext {
    type Error = CryptoError;
    fn try_from(r: CiphertextRepr) -> Result<Ciphertext, CryptoError> {
        if r.iv.len() > IV_BYTES_MAX || r.body.len() > SESSION_BODY_BYTES_MAX {
            return Err(CryptoError::malformed("ciphertext"));
        }
        Ok(Ciphertext {
            iv: r.iv,
            body: r.body,
        })
    }
}

impl From<Ciphertext> for CiphertextRepr {
    fn from(c: Ciphertext) -> CiphertextRepr {
        CiphertextRepr {
            iv: c.iv,
            body: c.body,
        }
    }
}

impl Ciphertext {
    /// The bytes a MAC over this ciphertext should cover: IV then body,
    /// length-framed.
    pub fn mac_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.iv.len() + self.body.len());
        out.extend_from_slice(&(self.iv.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(&(self.body.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

/// `mac_K(m)`: a CMAC tag, at most 16 bytes also when decoded.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct MacTag(Vec<u8>);

impl MacTag {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<MacTag, CryptoError> {
        if bytes.len() > MAC_TAG_BYTES_MAX {
            return Err(CryptoError::TooLong {
                what: "mac tag",
                len: bytes.len(),
                max: MAC_TAG_BYTES_MAX,
            });
        }
        Ok(MacTag(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for MacTag {
    type Error = CryptoError;
    fn try_from(bytes: Vec<u8>) -> Result<MacTag, CryptoError> {
        MacTag::from_bytes(bytes)
    }
}

impl From<MacTag> for Vec<u8> {
    fn from(t: MacTag) -> Vec<u8> {
        t.0
    }
}

impl fmt::Debug for MacTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacTag(<{} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "vc/test/session";

    fn pair(suite: SuiteId) -> (SessionKey, SessionKey) {
        let a = KeyShare::random();
        let b = KeyShare::random();
        (
            SessionKey::combine(suite, &a, &b),
            SessionKey::combine(suite, &b, &a),
        )
    }

    #[test]
    fn both_parties_derive_the_same_key_in_either_order() {
        for suite in SuiteId::ALL {
            let (alice, bob) = pair(suite);
            let ct = alice.encrypt(LABEL, b"hello bob");
            assert_eq!(bob.decrypt(LABEL, &ct).expect("decrypt"), b"hello bob");
            let tag = alice.mac(LABEL, b"data");
            bob.verify_mac(LABEL, b"data", &tag).expect("mac verifies");
            assert_eq!(tag.as_bytes().len(), suite.mac_bytes());
        }
    }

    #[test]
    fn encryption_round_trips_at_every_small_length_and_is_randomized() {
        for suite in SuiteId::ALL {
            let (key, _) = pair(suite);
            for len in 0..70 {
                let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ct = key.encrypt(LABEL, &plain);
                assert_eq!(ct.len(), len);
                assert_eq!(key.decrypt(LABEL, &ct).expect("decrypt"), plain);
            }
            assert_ne!(key.encrypt(LABEL, b"same"), key.encrypt(LABEL, b"same"));
        }
    }

    #[test]
    fn suites_and_labels_give_different_keys() {
        let a = KeyShare::random();
        let b = KeyShare::random();
        let aes = SessionKey::combine(SuiteId::Aes256, &a, &b);
        let tdes = SessionKey::combine(SuiteId::Tdes, &a, &b);
        assert_ne!(
            aes.mac(LABEL, b"x").as_bytes()[..8],
            tdes.mac(LABEL, b"x").as_bytes()[..]
        );
        // e_K is not authenticated: a wrong label yields noise, not the message.
        let ct = aes.encrypt(LABEL, b"sixteen byte msg");
        assert_ne!(
            aes.decrypt("vc/test/other", &ct).expect("decrypts"),
            b"sixteen byte msg"
        );
        // Encryption and MAC keys are independent: the MAC key is not the CTR key.
        assert_ne!(aes.enc_key, aes.mac_key);
    }

    #[test]
    fn every_flipped_bit_of_ciphertext_or_tag_is_rejected_by_the_mac() {
        for suite in SuiteId::ALL {
            let (key, _) = pair(suite);
            let ct = key.encrypt(LABEL, b"pay 12.50 to merchant 7");
            let tag = key.mac(LABEL, &ct.mac_input());
            let encoded = postcard::to_stdvec(&(ct.clone(), tag.clone())).expect("encode");
            for bit in 0..encoded.len() * 8 {
                let mut flipped = encoded.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                let Ok((ct2, tag2)) = postcard::from_bytes::<(Ciphertext, MacTag)>(&flipped) else {
                    continue; // refused while decoding: also a rejection
                };
                assert!(
                    matches!(
                        key.verify_mac(LABEL, &ct2.mac_input(), &tag2),
                        Err(CryptoError::BadMac)
                    ),
                    "{suite} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn truncated_tag_wrong_label_or_wrong_key_is_rejected() {
        for suite in SuiteId::ALL {
            let (key, _) = pair(suite);
            let (other, _) = pair(suite);
            let tag = key.mac(LABEL, b"data");
            let mut short = tag.as_bytes().to_vec();
            short.pop();
            let short = MacTag::from_bytes(short).expect("bounded");
            for (k, label, data, t) in [
                (&key, LABEL, &b"data"[..], &short),
                (&key, "vc/test/other", b"data", &tag),
                (&key, LABEL, b"dat", &tag),
                (&other, LABEL, b"data", &tag),
            ] {
                assert!(matches!(
                    k.verify_mac(label, data, t),
                    Err(CryptoError::BadMac)
                ));
            }
        }
    }

    #[test]
    fn decoding_bounds_are_enforced() {
        assert!(MacTag::from_bytes(vec![0; MAC_TAG_BYTES_MAX + 1]).is_err());
        let (key, _) = pair(SuiteId::Aes256);
        let mut ct = key.encrypt(LABEL, b"abc");
        ct.iv.pop();
        assert!(matches!(
            key.decrypt(LABEL, &ct),
            Err(CryptoError::Malformed { .. })
        ));
        let huge = CiphertextRepr {
            iv: vec![0; 16],
            body: vec![0; SESSION_BODY_BYTES_MAX + 1],
        };
        let bytes = postcard::to_stdvec(&huge).expect("encode");
        assert!(postcard::from_bytes::<Ciphertext>(&bytes).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let (key, _) = pair(SuiteId::Aes256);
        let shown = format!("{key:?}");
        assert_eq!(shown, "SessionKey(aes256, <redacted>)");
    }
}
