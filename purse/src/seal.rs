//! The purse's secrets at rest: the passphrase, the key derived from it
//! (argon2id, with its parameters and salt stored in the file), and the
//! sealing of every record under that key (AES-256-GCM).
//!
//! Whoever copies a purse file (a backup, a stolen laptop, a synced folder)
//! gets nothing that spends or impersonates without the passphrase: the
//! private key, coin tags (bearer money), journal session secrets, and the
//! issuer record (whose key and URL the purse trusts) are sealed, and the
//! AEAD's associated data names the table and the row, so a sealed record
//! moved to another row or table does not open.
//!
//! The derived key lives in [`PurseKey`] only, zeroed on drop and never
//! shown by `Debug`; the passphrase is dropped (and zeroed) once the key is
//! derived. Deriving costs what [`KdfParams`] say (the default: 64 MiB and
//! 3 passes), once per open: a CLI command pays it once per process.

use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::PurseError;

/// Bytes of a salt.
pub const SALT_BYTES: usize = 16;
/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;
/// Bytes of an AES-GCM tag.
const TAG_BYTES: usize = 16;
/// What sealing adds to a record: the nonce in front, the tag behind.
pub const SEAL_OVERHEAD_BYTES: usize = NONCE_BYTES + TAG_BYTES;
/// Longest passphrase, in bytes.
pub const PASSPHRASE_BYTES_MAX: usize = 1024;
/// Most memory a stored KDF setting may ask for (1 GiB, in KiB): a hostile
/// file cannot make opening it allocate without bound.
pub const KDF_MEMORY_KIB_MAX: u32 = 1024 * 1024;
/// Most passes a stored KDF setting may ask for.
pub const KDF_PASSES_MAX: u32 = 64;
/// Most lanes a stored KDF setting may ask for.
pub const KDF_LANES_MAX: u32 = 16;

/// A passphrase: zeroed on drop, never shown by `Debug`.
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// Refuses an empty passphrase (it would protect nothing) and one
    /// longer than [`PASSPHRASE_BYTES_MAX`].
    pub fn new(passphrase: impl Into<String>) -> Result<Passphrase, PurseError> {
        let bytes = Zeroizing::new(passphrase.into().into_bytes());
        if bytes.is_empty() {
            return Err(PurseError::Invalid("the passphrase is empty"));
        }
        if bytes.len() > PASSPHRASE_BYTES_MAX {
            return Err(PurseError::TooLarge {
                what: "passphrase",
                len: bytes.len(),
                max: PASSPHRASE_BYTES_MAX,
            });
        }
        Ok(Passphrase(bytes))
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The argon2id cost of deriving a purse key, stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub passes: u32,
    /// Lanes (parallelism; computed on one thread here).
    pub lanes: u32,
}

impl KdfParams {
    /// What a purse is created with: RFC 9106's second recommended option
    /// (64 MiB, 3 passes), on one lane. About a quarter of a second.
    pub const RECOMMENDED: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 1,
    };

    /// Cheap enough for tests that open hundreds of purses. It protects a
    /// weak passphrase from nobody: only tests and throw-away demos ask for
    /// it, explicitly.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    fn check(&self) -> Result<argon2::Params, PurseError> {
        if self.memory_kib > KDF_MEMORY_KIB_MAX
            || self.passes > KDF_PASSES_MAX
            || self.lanes > KDF_LANES_MAX
        {
            return Err(PurseError::Corrupt(format!(
                "key derivation settings beyond the limits: {self:?}"
            )));
        }
        argon2::Params::new(self.memory_kib, self.passes, self.lanes, Some(32))
            .map_err(|e| PurseError::Corrupt(format!("key derivation settings {self:?}: {e}")))
    }
}

/// How a purse key was derived: what the file stores in the clear beside
/// the sealed records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHeader {
    pub kdf: KdfParams,
    pub salt: [u8; SALT_BYTES],
}

/// The key every sealed record of one purse (and its key backups) is sealed
/// under: zeroed on drop, never shown by `Debug`.
pub struct PurseKey {
    header: KeyHeader,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for PurseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurseKey")
            .field("header", &self.header)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl PurseKey {
    /// A key for a new purse: a fresh salt, `kdf`'s cost.
    pub fn derive_new(passphrase: &Passphrase, kdf: KdfParams) -> Result<PurseKey, PurseError> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt)
            .map_err(|_| PurseError::Invalid("no operating system randomness"))?;
        PurseKey::derive(passphrase, KeyHeader { kdf, salt })
    }

    /// The key `header` says how to derive from `passphrase`.
    pub fn derive(passphrase: &Passphrase, header: KeyHeader) -> Result<PurseKey, PurseError> {
        let params = header.kdf.check()?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(&passphrase.0, &header.salt, key.as_mut())
            .map_err(|e| PurseError::Corrupt(format!("key derivation: {e}")))?;
        Ok(PurseKey { header, key })
    }

    pub fn header(&self) -> KeyHeader {
        self.header
    }

    fn cipher(&self) -> Result<Aes256Gcm, PurseError> {
        Aes256Gcm::new_from_slice(self.key.as_ref())
            .map_err(|_| PurseError::Invalid("purse key length"))
    }

    /// Seals an encoded record (version byte and postcard) for row `row`
    /// of `table`, as the purse stores it: for tools that build a purse
    /// file record by record (the fuzz harness). Whoever holds the key can
    /// do this anyway; the purse still decodes and checks every record.
    pub fn seal_row(&self, table: &str, row: &[u8], record: &[u8]) -> Result<Vec<u8>, PurseError> {
        self.seal(&slot(table, row), record)
    }

    /// Opens what [`PurseKey::seal_row`] sealed; `None` if it does not open.
    pub fn open_row(
        &self,
        table: &str,
        row: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, PurseError> {
        self.open(&slot(table, row), sealed)
    }

    /// Seals `plaintext` for the slot `aad` names: nonce, then ciphertext
    /// and tag.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, PurseError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce)
            .map_err(|_| PurseError::Invalid("no operating system randomness"))?;
        let sealed = self
            .cipher()?
            .encrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| PurseError::Invalid("record too long to seal"))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a record sealed for the slot `aad` names. `None` if it does not
    /// open: another key, another slot, or damage.
    pub(crate) fn open(
        &self,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, PurseError> {
        let Some((nonce, body)) = sealed.split_first_chunk::<NONCE_BYTES>() else {
            return Ok(None);
        };
        if body.len() < TAG_BYTES {
            return Ok(None);
        }
        Ok(self
            .cipher()?
            .decrypt(
                &Nonce::<Aes256Gcm>::from(*nonce),
                Payload { msg: body, aad },
            )
            .ok()
            .map(Zeroizing::new))
    }
}

/// The associated data of a record: the table it lives in and its row, so
/// that a sealed record opens only where it was written.
pub(crate) fn slot(table: &str, row: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + table.len() + row.len());
    aad.extend_from_slice(b"vc-purse/");
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(passphrase: &str) -> PurseKey {
        PurseKey::derive(
            &Passphrase::new(passphrase).expect("passphrase"),
            KeyHeader {
                kdf: KdfParams::INSECURE_FAST,
                salt: [7; SALT_BYTES],
            },
        )
        .expect("key")
    }

    #[test]
    fn a_record_opens_only_with_its_key_in_its_slot() {
        let k = key("correct horse");
        let sealed = k.seal(&slot("coins", b"1"), b"tag bytes").expect("seal");
        assert!(!sealed.windows(9).any(|w| w == b"tag bytes"));
        assert_eq!(
            k.open(&slot("coins", b"1"), &sealed)
                .expect("open")
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"tag bytes"[..])
        );
        assert!(
            k.open(&slot("coins", b"2"), &sealed)
                .expect("open")
                .is_none()
        );
        assert!(
            k.open(&slot("journal", b"1"), &sealed)
                .expect("open")
                .is_none()
        );
        assert!(
            key("wrong horse")
                .open(&slot("coins", b"1"), &sealed)
                .expect("open")
                .is_none()
        );
        for cut in [0, 5, 12, sealed.len() - 1] {
            assert!(
                k.open(&slot("coins", b"1"), &sealed[..cut])
                    .expect("open")
                    .is_none()
            );
        }
    }

    #[test]
    fn hostile_settings_and_empty_passphrases_are_refused() {
        assert!(Passphrase::new("").is_err());
        assert!(Passphrase::new("x".repeat(PASSPHRASE_BYTES_MAX + 1)).is_err());
        let p = Passphrase::new("p").expect("passphrase");
        for kdf in [
            KdfParams {
                memory_kib: u32::MAX,
                passes: 1,
                lanes: 1,
            },
            KdfParams {
                memory_kib: 64,
                passes: 0,
                lanes: 1,
            },
            KdfParams {
                memory_kib: 64,
                passes: 1,
                lanes: 0,
            },
            KdfParams {
                memory_kib: 64,
                passes: u32::MAX,
                lanes: 1,
            },
        ] {
            assert!(
                PurseKey::derive(
                    &p,
                    KeyHeader {
                        kdf,
                        salt: [0; SALT_BYTES]
                    }
                )
                .is_err(),
                "{kdf:?}"
            );
        }
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
    }
}
