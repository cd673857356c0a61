//! CMAC under a card key, over a domain-separated input. Every MAC input
//! starts with a label naming the message (`"vc/card/load/L1"` …) so that no
//! MAC of one message verifies as another; the fields after it are fixed
//! width, so concatenation is unambiguous.

use aes::Aes256;
use cipher::KeyInit;
use cmac::{Cmac, Mac as _};
use des::TdesEde3;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::keys::{CardKey, Suite, tdes_ede3_key};

/// The longest tag any suite produces, in bytes.
pub const MAC_BYTES_MAX: usize = 16;

/// Why a MAC did not verify. Deliberately says nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("mac does not verify")]
pub struct MacError;

/// A CMAC tag: 8 bytes under TDES, 16 under AES-256.
///
/// Equality compares the tag bytes only, in constant time: a tag decoded
/// from a card or a file may carry non-zero padding past `len`, which must
/// not make two equal tags differ, and a comparison of tags must not leak
/// how many leading bytes matched.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Mac {
    len: u8,
    bytes: [u8; MAC_BYTES_MAX],
}

impl PartialEq for Mac {
    fn eq(&self, other: &Mac) -> bool {
        bool::from(self.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl Eq for Mac {}

impl std::hash::Hash for Mac {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mac({})", hex_short(self.as_bytes()))
    }
}

fn hex_short(b: &[u8]) -> String {
    b.iter()
        .take(4)
        .map(|x| format!("{x:02x}"))
        .collect::<String>()
        + "…"
}

impl Mac {
    /// A tag from raw bytes (at most [`MAC_BYTES_MAX`]); `None` if too long.
    pub fn from_slice(raw: &[u8]) -> Option<Mac> {
        if raw.len() > MAC_BYTES_MAX {
            return None;
        }
        let mut bytes = [0u8; MAC_BYTES_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Mac {
            len: raw.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(MAC_BYTES_MAX)]
    }
}

/// Builds the bytes a MAC covers: a label, then fixed-width fields.
#[derive(Clone)]
pub struct MacInput(Vec<u8>);

impl MacInput {
    pub fn new(label: &'static str) -> MacInput {
        let mut v = Vec::with_capacity(128);
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
        MacInput(v)
    }

    pub fn bytes(mut self, b: &[u8]) -> MacInput {
        self.0.extend_from_slice(b);
        self
    }

    pub fn u32(self, x: u32) -> MacInput {
        self.bytes(&x.to_be_bytes())
    }

    pub fn u64(self, x: u64) -> MacInput {
        self.bytes(&x.to_be_bytes())
    }

    pub fn u8(self, x: u8) -> MacInput {
        self.bytes(&[x])
    }

    pub fn mac(&self) -> &[u8] {
        &self.0
    }

    /// CMAC of this input under `key`.
    pub fn sign(&self, key: &CardKey) -> Mac {
        cmac(key, &self.0)
    }

    /// Checks `tag` in constant time. The tag must have the suite's length.
    pub fn verify(&self, key: &CardKey, tag: &Mac) -> Result<(), MacError> {
        let expected = self.sign(key);
        if expected.len != tag.len {
            return Err(MacError);
        }
        if bool::from(expected.as_bytes().ct_eq(tag.as_bytes())) {
            Ok(())
        } else {
            Err(MacError)
        }
    }
}

/// CMAC (NIST SP 800-38B) of `msg` under `key`, full-block tag.
pub(crate) fn cmac(key: &CardKey, msg: &[u8]) -> Mac {
    match key.suite() {
        Suite::Tdes => {
            let mut k = tdes_ede3_key(key.expose());
            // The key length is fixed by the suite, so this cannot fail.
            #[allow(clippy::expect_used)]
            let mut m = <Cmac<TdesEde3> as KeyInit>::new_from_slice(&k).expect("24-byte key");
            k.zeroize();
            m.update(msg);
            let tag = m.finalize().into_bytes();
            #[allow(clippy::expect_used)]
            Mac::from_slice(&tag).expect("8-byte tag")
        }
        Suite::Aes256 => {
            #[allow(clippy::expect_used)]
            let mut m =
                <Cmac<Aes256> as KeyInit>::new_from_slice(key.expose()).expect("32-byte key");
            m.update(msg);
            let tag = m.finalize().into_bytes();
            #[allow(clippy::expect_used)]
            Mac::from_slice(&tag).expect("16-byte tag")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tdes_key(k1: &str, k2: &str) -> CardKey {
        let bytes = hex::decode(format!("{k1}{k2}")).expect("hex");
        CardKey::from_bytes(Suite::Tdes, &bytes).expect("16 bytes")
    }

    #[test]
    fn aes256_cmac_matches_sp800_38b_empty_message() {
        // NIST SP 800-38B, D.3 example 9 (AES-256, Mlen = 0).
        let key = hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
            .expect("hex");
        let key = CardKey::from_bytes(Suite::Aes256, &key).expect("32 bytes");
        assert_eq!(
            hex::encode(cmac(&key, b"").as_bytes()),
            "028962f61b7bf89efc6b551f4667d983"
        );
    }

    #[test]
    fn tags_with_equal_bytes_are_equal_whatever_their_padding() {
        let clean = Mac::from_slice(&[7; 8]).expect("8 bytes fit");
        let mut padded = clean;
        padded.bytes[12] = 0xff;
        assert_eq!(clean, padded);
        let mut other = clean;
        other.bytes[3] ^= 1;
        assert_ne!(clean, other);
        let shorter = Mac::from_slice(&[7; 4]).expect("4 bytes fit");
        assert_ne!(clean, shorter);
    }

    #[test]
    fn tdes_cmac_uses_k1_k2_k1() {
        // Computed with the EDE3 key K1‖K2‖K1 directly through the cmac crate
        // and compared with our double-length path.
        let k = tdes_key("0123456789abcdef", "23456789abcdef01");
        let k3 = hex::decode("0123456789abcdef23456789abcdef010123456789abcdef").expect("hex");
        let mut m = <Cmac<TdesEde3> as KeyInit>::new_from_slice(&k3).expect("24");
        m.update(b"hello card");
        let direct = m.finalize().into_bytes();
        assert_eq!(cmac(&k, b"hello card").as_bytes(), &direct[..]);
        assert_eq!(cmac(&k, b"hello card").as_bytes().len(), 8);
    }

    #[test]
    fn tampered_input_label_or_tag_is_refused() {
        let k = tdes_key("0123456789abcdef", "fedcba9876543210");
        let input = MacInput::new("vc/card/load/L1").u32(7).u64(1000);
        let tag = input.sign(&k);
        assert_eq!(input.verify(&k, &tag), Ok(()));
        let other_field = MacInput::new("vc/card/load/L1").u32(8).u64(1000);
        assert_eq!(other_field.verify(&k, &tag), Err(MacError));
        let other_label = MacInput::new("vc/card/unload/L1").u32(7).u64(1000);
        assert_eq!(other_label.verify(&k, &tag), Err(MacError));
        let mut flipped = tag;
        flipped.bytes[0] ^= 1;
        assert_eq!(input.verify(&k, &flipped), Err(MacError));
        let short = Mac::from_slice(&tag.as_bytes()[..4]).expect("short");
        assert_eq!(input.verify(&k, &short), Err(MacError));
    }
}
