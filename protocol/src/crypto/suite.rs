//! The cipher suites and their symmetric primitives: CTR encryption and CMAC,
//! written once, generic over the block cipher, and instantiated for AES-256
//! (`dhaes`, the default, and `aes256`) and Triple-DES EDE3 (`tdes`, the
//! paper's choice). Which public-key algorithms a suite uses is
//! [`SuiteId::key_kind`].

use std::fmt;
use std::str::FromStr;

use aes::Aes256;
use cipher::{KeyIvInit, StreamCipher};
use cmac::{Cmac, KeyInit, Mac};
use des::TdesEde3;
use serde::{Deserialize, Serialize};

use super::error::CryptoError;

/// A cipher suite. Every envelope and session names its suite.
///
/// `dhaes` uses HPKE (X25519, HKDF-SHA256, AES-256-GCM) for `E*` and Ed25519
/// for `S_X`; `aes256` and `tdes` use RSA-OAEP(SHA-256) and RSA-PSS(SHA-256).
/// Session keys and the mint use the suite's block cipher under CTR and CMAC
/// (AES-256 for `dhaes` and `aes256`).
///
/// The variants' order is their serialized form (postcard writes the index):
/// new suites go at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SuiteId {
    /// RSA keys; AES-256 in CTR mode, AES-256-CMAC (128-bit tags).
    Aes256,
    /// Triple-DES EDE3 in CTR mode, CMAC-TDES (64-bit tags). Kept for fidelity
    /// to the paper and for card systems; its 64-bit block limits how much
    /// one key may process, so bodies under it are bounded. RSA keys.
    Tdes,
    /// DHAES as HPKE (RFC 9180): `E*` is HPKE base mode with DHKEM(X25519,
    /// HKDF-SHA256), HKDF-SHA256 and AES-256-GCM; `S_X` is Ed25519 (RFC
    /// 8032); session keys and mint tags as `aes256`. The default.
    #[default]
    Dhaes,
}

/// The public-key algorithms behind a suite's `E*` and `S_X`: a key of one
/// kind serves only the suites of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA-OAEP(SHA-256) and RSA-PSS(SHA-256), 2048..=4096 bits.
    Rsa,
    /// An Ed25519 signing key and an X25519 HPKE key, both derived from one
    /// 32-byte seed.
    Ed25519X25519,
}

impl SuiteId {
    /// Every suite, default first.
    pub const ALL: [SuiteId; 3] = [SuiteId::Dhaes, SuiteId::Aes256, SuiteId::Tdes];

    /// The name used in configuration and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            SuiteId::Dhaes => "dhaes",
            SuiteId::Aes256 => "aes256",
            SuiteId::Tdes => "tdes",
        }
    }

    /// The kind of key pair the suite's `E*` and `S_X` need.
    pub const fn key_kind(self) -> KeyKind {
        match self {
            SuiteId::Dhaes => KeyKind::Ed25519X25519,
            SuiteId::Aes256 | SuiteId::Tdes => KeyKind::Rsa,
        }
    }

    /// Block size of the suite's cipher, which is also its CTR IV length.
    pub const fn block_bytes(self) -> usize {
        match self {
            SuiteId::Dhaes | SuiteId::Aes256 => 16,
            SuiteId::Tdes => 8,
        }
    }

    /// Key length of the suite's cipher.
    pub const fn key_bytes(self) -> usize {
        match self {
            SuiteId::Dhaes | SuiteId::Aes256 => 32,
            SuiteId::Tdes => 24,
        }
    }

    /// Length of a CMAC tag under the suite: one block.
    pub const fn mac_bytes(self) -> usize {
        self.block_bytes()
    }

    /// One byte naming the suite inside authenticated headers.
    pub(crate) const fn code(self) -> u8 {
        match self {
            SuiteId::Aes256 => 1,
            SuiteId::Tdes => 2,
            SuiteId::Dhaes => 3,
        }
    }

    /// Raw CTR mode (the IV is the whole initial counter block, big-endian
    /// increment): XORs the keystream for `(key, iv)` into `buf`. No label and
    /// no authentication; protocol code uses [`crate::crypto::SessionKey`].
    /// Public for known-answer tests and card systems.
    pub fn ctr_apply(self, key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            SuiteId::Dhaes | SuiteId::Aes256 => {
                ctr_apply_with::<ctr::Ctr128BE<Aes256>>(key, iv, buf)
            }
            SuiteId::Tdes => ctr_apply_with::<ctr::Ctr64BE<TdesEde3>>(key, iv, buf),
        }
    }

    /// Raw CMAC (NIST SP 800-38B) of the concatenation of `parts` under
    /// `key`: one block long. No label; protocol code uses
    /// [`crate::crypto::SessionKey::mac`]. Public for known-answer tests and
    /// card systems.
    pub fn cmac(self, key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
        match self {
            SuiteId::Dhaes | SuiteId::Aes256 => cmac_with::<Cmac<Aes256>>(key, parts),
            SuiteId::Tdes => cmac_with::<Cmac<TdesEde3>>(key, parts),
        }
    }
}

impl fmt::Display for SuiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SuiteId {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<SuiteId, CryptoError> {
        match s {
            "dhaes" => Ok(SuiteId::Dhaes),
            "aes256" => Ok(SuiteId::Aes256),
            "tdes" => Ok(SuiteId::Tdes),
            other => Err(CryptoError::UnknownSuite(other.chars().take(32).collect())),
        }
    }
}

/// CTR mode over any block cipher the `ctr` crate can drive.
fn ctr_apply_with<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError>
where
    C: KeyIvInit + StreamCipher,
{
    let mut stream =
        C::new_from_slices(key, iv).map_err(|_| CryptoError::malformed("ctr key or iv length"))?;
    stream
        .try_apply_keystream(buf)
        .map_err(|_| CryptoError::malformed("ctr keystream exhausted"))
}

/// CMAC over any block cipher the `cmac` crate can drive.
fn cmac_with<M>(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, CryptoError>
where
    M: Mac + KeyInit,
{
    let mut mac = <M as KeyInit>::new_from_slice(key)
        .map_err(|_| CryptoError::malformed("cmac key length"))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().to_vec())
}

/// The framing every label gets before it is MACed, hashed or used as a key
/// derivation input: its length, then its bytes, so that no label is a prefix
/// of another's encoding.
pub(crate) fn label_prefix(label: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + label.len());
    out.extend_from_slice(&(label.len() as u64).to_le_bytes());
    out.extend_from_slice(label.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names_round_trip() {
        for suite in SuiteId::ALL {
            assert_eq!(suite.to_string().parse::<SuiteId>().ok(), Some(suite));
        }
        assert_eq!(SuiteId::default(), SuiteId::Dhaes);
        assert_eq!(SuiteId::ALL[0], SuiteId::default());
        // The serialized form is the variant index: existing suites keep theirs.
        for (suite, index) in [
            (SuiteId::Aes256, 0u8),
            (SuiteId::Tdes, 1),
            (SuiteId::Dhaes, 2),
        ] {
            assert_eq!(postcard::to_stdvec(&suite).expect("encode"), vec![index]);
        }
        assert!(matches!(
            "des".parse::<SuiteId>(),
            Err(CryptoError::UnknownSuite(_))
        ));
    }

    #[test]
    fn ctr_round_trips_and_changes_the_bytes() {
        for suite in SuiteId::ALL {
            let key = vec![7u8; suite.key_bytes()];
            let iv = vec![9u8; suite.block_bytes()];
            let plain = b"thirty-three bytes of plaintext!!".to_vec();
            let mut buf = plain.clone();
            suite.ctr_apply(&key, &iv, &mut buf).expect("ctr");
            assert_ne!(buf, plain);
            suite.ctr_apply(&key, &iv, &mut buf).expect("ctr");
            assert_eq!(buf, plain);
        }
    }

    #[test]
    fn wrong_key_length_is_a_typed_error() {
        for suite in SuiteId::ALL {
            let mut buf = [0u8; 4];
            let short = [0u8; 5];
            assert!(matches!(
                suite.ctr_apply(&short, &vec![0; suite.block_bytes()], &mut buf),
                Err(CryptoError::Malformed { .. })
            ));
            assert!(matches!(
                suite.cmac(&short, &[b"x"]),
                Err(CryptoError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn cmac_has_one_block_and_sees_part_boundaries_only_through_framing() {
        for suite in SuiteId::ALL {
            let key = vec![3u8; suite.key_bytes()];
            let whole = suite.cmac(&key, &[b"abcdef"]).expect("cmac");
            let split = suite.cmac(&key, &[b"abc", b"def"]).expect("cmac");
            assert_eq!(whole.len(), suite.mac_bytes());
            // CMAC itself is over the concatenation: framing is the caller's job.
            assert_eq!(whole, split);
            assert_ne!(label_prefix("ab"), label_prefix("a"));
        }
    }
}
