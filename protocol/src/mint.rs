//! The mint: the only code that computes or checks a coin tag, standing in
//! for the paper's tamper-proof hardware. It owns one key per [`KeyEpoch`],
//! kept in its own key file (mode 0600; refused if group or others can read
//! it), replaced atomically whenever an epoch is opened.
//!
//! A tag is a 128-bit MAC over [`CoinBody::tag_input`] under a domain label:
//! AES-256-CMAC under `dhaes` and `aes256`; under `tdes`, two CMAC-TDES tags (64 bits
//! each) under two independent keys, concatenated.
//!
//! Key file format: `MINT_FILE_MAGIC`, then the postcard encoding of the
//! suite and the `(epoch, key)` list, then SHA-256 of everything before it
//! (so a torn or corrupted file is detected rather than used).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ledger::{Coin, CoinBody, KeyEpoch, Tag};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{self, CryptoError, SuiteId};

/// Domain label under which every tag is computed.
pub const MINT_TAG_LABEL: &str = "vc/mint/tag";
/// Most epochs one mint file holds.
pub const MINT_EPOCHS_MAX: usize = 4096;
/// Largest mint file accepted.
pub const MINT_FILE_BYTES_MAX: usize = 1024 * 1024;
const MINT_FILE_MAGIC: &[u8; 8] = b"VCMINT01";
const CHECKSUM_BYTES: usize = 32;

const _: () = assert!(MINT_EPOCHS_MAX * (8 + 4 + 48) + 64 < MINT_FILE_BYTES_MAX);

/// Why the mint refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    #[error("no mint key for {0}")]
    UnknownEpoch(KeyEpoch),
    #[error("coin tag does not verify")]
    BadTag,
    #[error("{0} is already open")]
    EpochAlreadyOpen(KeyEpoch),
    #[error("mint file {0} already exists")]
    AlreadyExists(PathBuf),
    #[error("mint holds {MINT_EPOCHS_MAX} epochs already")]
    TooManyEpochs,
    #[error("mint file is corrupt: {0}")]
    Corrupt(&'static str),
    #[error(transparent)]
    Key(#[from] CryptoError),
}

/// Length of one epoch's key material under `suite`.
const fn key_material_bytes(suite: SuiteId) -> usize {
    match suite {
        SuiteId::Dhaes | SuiteId::Aes256 => 32,
        // Two independent three-key TDES keys, one per 64-bit half.
        SuiteId::Tdes => 2 * 24,
    }
}

/// One epoch's key material; zeroized on drop.
struct MintKey(Zeroizing<Vec<u8>>);

#[derive(Serialize, Deserialize)]
struct MintFileBody {
    suite: SuiteId,
    epochs: Vec<(KeyEpoch, Vec<u8>)>,
}

/// The mint. `Send + Sync`: tags are computed through `&self`.
pub struct Mint {
    path: PathBuf,
    suite: SuiteId,
    keys: BTreeMap<KeyEpoch, MintKey>,
}

impl Mint {
    /// Creates a new, empty mint file at `path` (mode 0600). Refuses to
    /// replace an existing file: that would destroy the keys of live coins.
    pub fn create(path: &Path, suite: SuiteId) -> Result<Mint, MintError> {
        let body = Zeroizing::new(MintFileBody {
            suite,
            epochs: Vec::new(),
        });
        match crypto::create_secret_new(path, &encode_file(&body)?) {
            Err(CryptoError::KeyFile { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                return Err(MintError::AlreadyExists(path.to_path_buf()));
            }
            other => other?,
        }
        Ok(Mint {
            path: path.to_path_buf(),
            suite,
            keys: BTreeMap::new(),
        })
    }

    /// Opens an existing mint file, refusing it if group or others can read it.
    pub fn open(path: &Path) -> Result<Mint, MintError> {
        let bytes = crypto::read_secret(path, MINT_FILE_BYTES_MAX)?;
        let (suite, keys) = decode_file(&bytes)?;
        Ok(Mint {
            path: path.to_path_buf(),
            suite,
            keys,
        })
    }

    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// The epochs this mint has keys for, in order.
    pub fn epochs(&self) -> impl Iterator<Item = KeyEpoch> + '_ {
        self.keys.keys().copied()
    }

    pub fn has_epoch(&self, epoch: KeyEpoch) -> bool {
        self.keys.contains_key(&epoch)
    }

    /// Opens `epoch` with a fresh random key, persisted (temp file, fsync,
    /// rename) before it is used: no tag is ever made under a key that a
    /// crash could lose.
    pub fn open_epoch(&mut self, epoch: KeyEpoch) -> Result<(), MintError> {
        if self.keys.contains_key(&epoch) {
            return Err(MintError::EpochAlreadyOpen(epoch));
        }
        if self.keys.len() >= MINT_EPOCHS_MAX {
            return Err(MintError::TooManyEpochs);
        }
        let mut material = Zeroizing::new(vec![0u8; key_material_bytes(self.suite)]);
        getrandom::fill(&mut material).map_err(|_| CryptoError::Randomness)?;
        let mut next: BTreeMap<KeyEpoch, &[u8]> = self
            .keys
            .iter()
            .map(|(e, k)| (*e, k.0.as_slice()))
            .collect();
        next.insert(epoch, material.as_slice());
        self.write_file(&next)?;
        self.keys.insert(epoch, MintKey(material));
        tracing::info!(%epoch, suite = %self.suite, "mint epoch opened");
        Ok(())
    }

    /// The tag of `body` under its epoch's key.
    pub fn tag(&self, body: &CoinBody) -> Result<Tag, MintError> {
        let key = self
            .keys
            .get(&body.epoch)
            .ok_or(MintError::UnknownEpoch(body.epoch))?;
        compute_tag(self.suite, &key.0, body)
    }

    /// Checks a coin's tag in constant time.
    pub fn check(&self, coin: &Coin) -> Result<(), MintError> {
        let expected = self.tag(&coin.body)?;
        if bool::from(expected.0.ct_eq(&coin.tag.0)) {
            Ok(())
        } else {
            Err(MintError::BadTag)
        }
    }

    /// Destroys `epoch`'s key, persisted before it is forgotten: from then on
    /// no coin of that epoch verifies. For epochs past their grace period, and
    /// for an epoch whose key is suspected compromised.
    pub fn retire_epoch(&mut self, epoch: KeyEpoch) -> Result<(), MintError> {
        if !self.keys.contains_key(&epoch) {
            return Err(MintError::UnknownEpoch(epoch));
        }
        let remaining: BTreeMap<KeyEpoch, &[u8]> = self
            .keys
            .iter()
            .filter(|(e, _)| **e != epoch)
            .map(|(e, k)| (*e, k.0.as_slice()))
            .collect();
        self.write_file(&remaining)?;
        self.keys.remove(&epoch);
        tracing::info!(%epoch, "mint epoch retired");
        Ok(())
    }

    fn write_file(&self, keys: &BTreeMap<KeyEpoch, &[u8]>) -> Result<(), MintError> {
        let body = Zeroizing::new(MintFileBody {
            suite: self.suite,
            epochs: keys.iter().map(|(e, k)| (*e, k.to_vec())).collect(),
        });
        let bytes = encode_file(&body)?;
        crypto::write_secret_atomic(&self.path, &bytes)?;
        Ok(())
    }
}

impl zeroize::Zeroize for MintFileBody {
    fn zeroize(&mut self) {
        for (_, key) in &mut self.epochs {
            key.zeroize();
        }
    }
}

fn encode_file(body: &MintFileBody) -> Result<Zeroizing<Vec<u8>>, MintError> {
    let encoded = Zeroizing::new(
        postcard::to_stdvec(body).map_err(|_| MintError::Corrupt("cannot encode mint file"))?,
    );
    let mut out = Zeroizing::new(Vec::with_capacity(
        MINT_FILE_MAGIC.len() + encoded.len() + CHECKSUM_BYTES,
    ));
    out.extend_from_slice(MINT_FILE_MAGIC);
    out.extend_from_slice(&encoded);
    let checksum = Sha256::digest(out.as_slice());
    out.extend_from_slice(&checksum);
    Ok(out)
}

fn decode_file(bytes: &[u8]) -> Result<(SuiteId, BTreeMap<KeyEpoch, MintKey>), MintError> {
    if bytes.len() < MINT_FILE_MAGIC.len() + CHECKSUM_BYTES {
        return Err(MintError::Corrupt("too short"));
    }
    let (content, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    if Sha256::digest(content).as_slice() != checksum {
        return Err(MintError::Corrupt("checksum mismatch"));
    }
    let payload = content
        .strip_prefix(MINT_FILE_MAGIC.as_slice())
        .ok_or(MintError::Corrupt("not a mint file"))?;
    let (body, rest) = postcard::take_from_bytes::<MintFileBody>(payload)
        .map_err(|_| MintError::Corrupt("undecodable"))?;
    let body = Zeroizing::new(body);
    if !rest.is_empty() {
        return Err(MintError::Corrupt("trailing bytes"));
    }
    if body.epochs.len() > MINT_EPOCHS_MAX {
        return Err(MintError::TooManyEpochs);
    }
    let mut keys = BTreeMap::new();
    for (epoch, key) in &body.epochs {
        if key.len() != key_material_bytes(body.suite) {
            return Err(MintError::Corrupt("key length does not fit the suite"));
        }
        if keys
            .insert(*epoch, MintKey(Zeroizing::new(key.clone())))
            .is_some()
        {
            return Err(MintError::Corrupt("epoch listed twice"));
        }
    }
    Ok((body.suite, keys))
}

fn compute_tag(suite: SuiteId, key: &[u8], body: &CoinBody) -> Result<Tag, MintError> {
    let label = crypto::label_prefix(MINT_TAG_LABEL);
    let input = body.tag_input();
    let mut tag = [0u8; 16];
    match suite {
        SuiteId::Dhaes | SuiteId::Aes256 => {
            let mac = suite.cmac(key, &[&label, &input])?;
            tag.copy_from_slice(&mac);
        }
        SuiteId::Tdes => {
            let (k1, k2) = key.split_at(24);
            let left = suite.cmac(k1, &[&label, &input])?;
            let right = suite.cmac(k2, &[&label, &input])?;
            tag[..8].copy_from_slice(&left);
            tag[8..].copy_from_slice(&right);
        }
    }
    Ok(Tag(tag))
}

impl fmt::Debug for Mint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mint")
            .field("path", &self.path)
            .field("suite", &self.suite)
            .field("epochs", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use ledger::{Amount, CoinId, Timestamp};

    use super::*;

    fn body(epoch: u32) -> CoinBody {
        CoinBody {
            id: CoinId::from_bytes([7; 16]),
            value: Amount::from_minor(250),
            expiry: Timestamp(1_900_000_000),
            epoch: KeyEpoch(epoch),
        }
    }

    fn new_mint(dir: &tempfile::TempDir, suite: SuiteId) -> Mint {
        let mut mint = Mint::create(&dir.path().join("mint.key"), suite).expect("create");
        mint.open_epoch(KeyEpoch(1)).expect("epoch 1");
        mint
    }

    #[test]
    fn tags_verify_in_both_suites() {
        for suite in SuiteId::ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let mint = new_mint(&dir, suite);
            let tag = mint.tag(&body(1)).expect("tag");
            mint.check(&Coin { body: body(1), tag }).expect("checks");
            assert_eq!(mint.suite(), suite);
        }
    }

    #[test]
    fn a_changed_field_or_tag_bit_fails() {
        for suite in SuiteId::ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut mint = new_mint(&dir, suite);
            mint.open_epoch(KeyEpoch(2)).expect("epoch 2");
            let coin = Coin {
                body: body(1),
                tag: mint.tag(&body(1)).expect("tag"),
            };
            let mut changed = [coin; 4];
            changed[0].body.id = CoinId::from_bytes([8; 16]);
            changed[1].body.value = Amount::from_minor(251);
            changed[2].body.expiry = Timestamp(1_900_000_001);
            changed[3].body.epoch = KeyEpoch(2);
            for c in changed {
                assert!(matches!(mint.check(&c), Err(MintError::BadTag)), "{c:?}");
            }
            for bit in 0..128 {
                let mut c = coin;
                c.tag.0[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    matches!(mint.check(&c), Err(MintError::BadTag)),
                    "bit {bit}"
                );
            }
        }
    }

    #[test]
    fn tdes_tag_halves_use_independent_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mint = new_mint(&dir, SuiteId::Tdes);
        let tag = mint.tag(&body(1)).expect("tag");
        assert_ne!(tag.0[..8], tag.0[8..]);
    }

    #[test]
    fn unknown_epoch_is_a_typed_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mint = new_mint(&dir, SuiteId::Aes256);
        assert!(matches!(
            mint.tag(&body(9)),
            Err(MintError::UnknownEpoch(KeyEpoch(9)))
        ));
        let coin = Coin {
            body: body(9),
            tag: Tag([0; 16]),
        };
        assert!(matches!(
            mint.check(&coin),
            Err(MintError::UnknownEpoch(KeyEpoch(9)))
        ));
    }

    #[test]
    fn reopened_mint_gives_the_same_tags() {
        for suite in SuiteId::ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("mint.key");
            let mut mint = Mint::create(&path, suite).expect("create");
            mint.open_epoch(KeyEpoch(1)).expect("epoch");
            mint.open_epoch(KeyEpoch(2)).expect("epoch");
            let tags = [
                mint.tag(&body(1)).expect("tag"),
                mint.tag(&body(2)).expect("tag"),
            ];
            drop(mint);
            let reopened = Mint::open(&path).expect("open");
            assert_eq!(reopened.suite(), suite);
            assert_eq!(
                reopened.epochs().collect::<Vec<_>>(),
                [KeyEpoch(1), KeyEpoch(2)]
            );
            assert_eq!(reopened.tag(&body(1)).expect("tag"), tags[0]);
            assert_eq!(reopened.tag(&body(2)).expect("tag"), tags[1]);
        }
    }

    #[test]
    fn different_mints_and_epochs_give_different_tags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = new_mint(&dir, SuiteId::Aes256);
        a.open_epoch(KeyEpoch(2)).expect("epoch");
        let dir2 = tempfile::tempdir().expect("tempdir");
        let b = new_mint(&dir2, SuiteId::Aes256);
        assert_ne!(a.tag(&body(1)).expect("tag"), b.tag(&body(1)).expect("tag"));
        let mut body2 = body(1);
        body2.epoch = KeyEpoch(2);
        assert_ne!(a.tag(&body(1)).expect("tag"), a.tag(&body2).expect("tag"));
    }

    #[test]
    fn key_file_is_0600_and_refused_when_others_can_read_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mint.key");
        drop(new_mint(&dir, SuiteId::Aes256));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            Mint::open(&path),
            Err(MintError::Key(CryptoError::WeakPermissions { .. }))
        ));
    }

    #[test]
    fn create_refuses_to_replace_and_epochs_open_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut mint = new_mint(&dir, SuiteId::Aes256);
        assert!(matches!(
            Mint::create(&dir.path().join("mint.key"), SuiteId::Aes256),
            Err(MintError::AlreadyExists(_))
        ));
        assert!(matches!(
            mint.open_epoch(KeyEpoch(1)),
            Err(MintError::EpochAlreadyOpen(KeyEpoch(1)))
        ));
    }

    #[test]
    fn every_corrupted_byte_of_the_key_file_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mint.key");
        drop(new_mint(&dir, SuiteId::Tdes));
        let bytes = std::fs::read(&path).expect("read");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(decode_file(&bad), Err(MintError::Corrupt(_))),
                "byte {i}"
            );
        }
        assert!(matches!(
            decode_file(&bytes[..bytes.len() - 1]),
            Err(MintError::Corrupt(_))
        ));
    }

    #[test]
    fn a_retired_epoch_no_longer_verifies_even_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mint.key");
        let mut mint = new_mint(&dir, SuiteId::Aes256);
        mint.open_epoch(KeyEpoch(2)).expect("epoch 2");
        let kept = mint.tag(&body(2)).expect("tag");
        mint.retire_epoch(KeyEpoch(1)).expect("retire");
        assert!(matches!(
            mint.tag(&body(1)),
            Err(MintError::UnknownEpoch(KeyEpoch(1)))
        ));
        assert!(matches!(
            mint.retire_epoch(KeyEpoch(1)),
            Err(MintError::UnknownEpoch(KeyEpoch(1)))
        ));
        let reopened = Mint::open(&path).expect("open");
        assert_eq!(reopened.epochs().collect::<Vec<_>>(), [KeyEpoch(2)]);
        assert_eq!(reopened.tag(&body(2)).expect("tag"), kept);
    }

    #[test]
    fn debug_does_not_show_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mint = new_mint(&dir, SuiteId::Aes256);
        let shown = format!("{mint:?}");
        assert!(shown.contains("epochs"));
        assert!(!shown.contains("key: ["));
    }
}
