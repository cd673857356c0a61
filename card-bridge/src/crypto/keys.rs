//! Master keys, card keys and the EMV "option A" style diversification that
//! turns one into the other. A card holds only diversified keys, so breaking
//! one card reveals no master and no other card's keys.

use aes::Aes256;
use cipher::{BlockCipherEncrypt, KeyInit};
use des::TdesEde3;
use ledger::CardId;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Which block cipher a card system uses for diversification and CMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suite {
    /// Triple-DES with double-length keys (EDE3 as `K1 ‖ K2 ‖ K1`), 8-byte MACs.
    Tdes,
    /// AES-256, 16-byte MACs.
    Aes256,
}

impl Suite {
    /// Length of a master or card key of this suite, in bytes.
    pub const fn key_bytes(self) -> usize {
        match self {
            Suite::Tdes => 16,
            Suite::Aes256 => 32,
        }
    }

    /// Length of a MAC tag of this suite, in bytes (the full cipher block).
    pub const fn mac_bytes(self) -> usize {
        match self {
            Suite::Tdes => 8,
            Suite::Aes256 => 16,
        }
    }
}

/// Why a key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("a {suite:?} key is {expected} bytes, got {got}")]
    Length {
        suite: Suite,
        expected: usize,
        got: usize,
    },
}

/// Key bytes of either suite; zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
struct KeyBytes(Vec<u8>);

fn key_bytes(suite: Suite, bytes: &[u8]) -> Result<KeyBytes, KeyError> {
    if bytes.len() != suite.key_bytes() {
        return Err(KeyError::Length {
            suite,
            expected: suite.key_bytes(),
            got: bytes.len(),
        });
    }
    Ok(KeyBytes(bytes.to_vec()))
}

/// A master key held by the load/unload server, a PSAM or the collection
/// server. Cards never hold one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKey {
    suite: Suite,
    bytes: KeyBytes,
}

/// A key diversified for one card (or one PSAM) from a [`MasterKey`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardKey {
    suite: Suite,
    bytes: KeyBytes,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({:?}, <redacted>)", self.suite)
    }
}

impl std::fmt::Debug for CardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardKey({:?}, <redacted>)", self.suite)
    }
}

/// Fills an array from the operating system's CSPRNG.
///
/// # Panics
/// If the OS has no randomness: no nonce or key may be made without it.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("operating system randomness is unavailable");
    buf
}

impl MasterKey {
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<MasterKey, KeyError> {
        Ok(MasterKey {
            suite,
            bytes: key_bytes(suite, bytes)?,
        })
    }

    /// A fresh master key from the OS's CSPRNG.
    pub fn random(suite: Suite) -> MasterKey {
        let mut raw: [u8; 32] = random_bytes();
        let key = MasterKey {
            suite,
            bytes: KeyBytes(raw[..suite.key_bytes()].to_vec()),
        };
        raw.zeroize();
        key
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }
}

impl CardKey {
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<CardKey, KeyError> {
        Ok(CardKey {
            suite,
            bytes: key_bytes(suite, bytes)?,
        })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.bytes.0
    }
}

/// Expands a double-length TDES key `K1 ‖ K2` to the EDE3 key `K1 ‖ K2 ‖ K1`.
pub(crate) fn tdes_ede3_key(double: &[u8]) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&double[..16]);
    out[16..].copy_from_slice(&double[..8]);
    out
}

fn tdes_encrypt(key16: &[u8], block: [u8; 8]) -> [u8; 8] {
    let mut k = tdes_ede3_key(key16);
    // Key length is fixed by construction (24 bytes), so this cannot fail.
    #[allow(clippy::expect_used)]
    let cipher = TdesEde3::new_from_slice(&k).expect("EDE3 key is 24 bytes");
    k.zeroize();
    let mut b = block.into();
    cipher.encrypt_block(&mut b);
    b.into()
}

fn aes_encrypt(key32: &[u8], block: [u8; 16]) -> [u8; 16] {
    #[allow(clippy::expect_used)]
    let cipher = Aes256::new_from_slice(key32).expect("AES-256 key is 32 bytes");
    let mut b = block.into();
    cipher.encrypt_block(&mut b);
    b.into()
}

/// Diversifies `master` for the card (or PSAM) `id`:
/// `f(K, ID) = E_K(ID) ‖ E_K(¬ID)`.
///
/// TDES: the 8-byte id is one block, giving a 16-byte double-length key.
/// AES-256: the id is padded to one block ISO 7816-4 style (`ID ‖ 80 ‖ 00…`),
/// giving a 32-byte key. Parity bits are left as they fall: DES ignores them.
pub fn diversify(master: &MasterKey, id: &CardId) -> CardKey {
    let id = id.as_bytes();
    let bytes = match master.suite {
        Suite::Tdes => {
            let not_id = id.map(|b| !b);
            let mut out = Vec::with_capacity(16);
            out.extend_from_slice(&tdes_encrypt(&master.bytes.0, *id));
            out.extend_from_slice(&tdes_encrypt(&master.bytes.0, not_id));
            out
        }
        Suite::Aes256 => {
            let mut padded = [0u8; 16];
            padded[..8].copy_from_slice(id);
            padded[8] = 0x80;
            let not_padded = padded.map(|b| !b);
            let mut out = Vec::with_capacity(32);
            out.extend_from_slice(&aes_encrypt(&master.bytes.0, padded));
            out.extend_from_slice(&aes_encrypt(&master.bytes.0, not_padded));
            out
        }
    };
    CardKey {
        suite: master.suite,
        bytes: KeyBytes(bytes),
    }
}

/// The masters of one card scheme: separate masters for the load MACs
/// (S1, S2), for the completion MAC (S3) and for purchases (the PSAM's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeys {
    pub load: MasterKey,
    pub completion: MasterKey,
    pub purchase: MasterKey,
}

impl MasterKeys {
    pub fn random(suite: Suite) -> MasterKeys {
        MasterKeys {
            load: MasterKey::random(suite),
            completion: MasterKey::random(suite),
            purchase: MasterKey::random(suite),
        }
    }

    pub fn suite(&self) -> Suite {
        self.load.suite
    }

    /// The keys personalised into the card `id`.
    pub fn card_keys(&self, id: &CardId) -> CardKeys {
        CardKeys {
            load: diversify(&self.load, id),
            completion: diversify(&self.completion, id),
            purchase: diversify(&self.purchase, id),
        }
    }
}

/// The diversified keys a card holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardKeys {
    pub load: CardKey,
    pub completion: CardKey,
    pub purchase: CardKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cipher::BlockCipherDecrypt;
    use des::Des;

    fn des_enc(k: &[u8], b: [u8; 8]) -> [u8; 8] {
        let c = Des::new_from_slice(k).expect("8-byte key");
        let mut blk = b.into();
        c.encrypt_block(&mut blk);
        blk.into()
    }

    fn des_dec(k: &[u8], b: [u8; 8]) -> [u8; 8] {
        let c = Des::new_from_slice(k).expect("8-byte key");
        let mut blk = b.into();
        c.decrypt_block(&mut blk);
        blk.into()
    }

    /// Raw two-key TDES from single DES: E_K1(D_K2(E_K1(x))).
    fn raw_tdes(k: &[u8; 16], x: [u8; 8]) -> [u8; 8] {
        des_enc(&k[..8], des_dec(&k[8..], des_enc(&k[..8], x)))
    }

    #[test]
    fn single_des_matches_the_classic_known_answer() {
        // FIPS 81 / "Now is t" example: key 0123456789abcdef.
        let k = hex::decode("0123456789abcdef").expect("hex");
        let pt: [u8; 8] = *b"Now is t";
        assert_eq!(hex::encode(des_enc(&k, pt)), "3fa40e8a984d4815");
    }

    #[test]
    fn tdes_diversification_matches_hand_computed_vector() {
        let master_bytes: [u8; 16] = hex::decode("0123456789abcdeffedcba9876543210")
            .expect("hex")
            .try_into()
            .expect("16");
        let id_bytes: [u8; 8] = hex::decode("1122334455667788")
            .expect("hex")
            .try_into()
            .expect("8");
        let master = MasterKey::from_bytes(Suite::Tdes, &master_bytes).expect("16 bytes");
        let card = diversify(&master, &CardId::from_bytes(id_bytes));
        let left = raw_tdes(&master_bytes, id_bytes);
        let right = raw_tdes(&master_bytes, id_bytes.map(|b| !b));
        assert_eq!(&card.expose()[..8], &left);
        assert_eq!(&card.expose()[8..], &right);
        assert_ne!(left, right);
    }

    #[test]
    fn tdes_with_equal_halves_is_single_des() {
        // K1 = K2 degenerates EDE to single DES: pins the K1‖K2‖K1 expansion.
        let k = hex::decode("0123456789abcdef0123456789abcdef").expect("hex");
        let m = MasterKey::from_bytes(Suite::Tdes, &k).expect("16 bytes");
        let id = CardId::from_bytes(*b"Now is t");
        let card = diversify(&m, &id);
        assert_eq!(hex::encode(&card.expose()[..8]), "3fa40e8a984d4815");
    }

    #[test]
    fn aes_diversification_is_ecb_of_padded_id_and_complement() {
        let m = MasterKey::from_bytes(Suite::Aes256, &[7u8; 32]).expect("32 bytes");
        let id = CardId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]);
        let card = diversify(&m, &id);
        let mut padded = [0u8; 16];
        padded[..8].copy_from_slice(id.as_bytes());
        padded[8] = 0x80;
        assert_eq!(card.expose().len(), 32);
        assert_eq!(&card.expose()[..16], &aes_encrypt(&[7u8; 32], padded));
        assert_eq!(
            &card.expose()[16..],
            &aes_encrypt(&[7u8; 32], padded.map(|b| !b))
        );
    }

    #[test]
    fn different_cards_get_different_keys() {
        let masters = MasterKeys::random(Suite::Tdes);
        let a = masters.card_keys(&CardId::from_bytes([1; 8]));
        let b = masters.card_keys(&CardId::from_bytes([2; 8]));
        assert_ne!(a.load, b.load);
        assert_ne!(a.load, a.completion);
        assert_ne!(a.completion, a.purchase);
    }

    #[test]
    fn wrong_key_lengths_are_refused_and_keys_are_redacted() {
        assert!(MasterKey::from_bytes(Suite::Tdes, &[0; 24]).is_err());
        assert!(MasterKey::from_bytes(Suite::Aes256, &[0; 16]).is_err());
        let m = MasterKey::from_bytes(Suite::Tdes, &[0xab; 16]).expect("16");
        assert!(!format!("{m:?}").contains("ab"));
    }
}
