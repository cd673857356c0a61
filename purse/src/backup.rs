//! The key backup: the purse's identity, key pair, certificate and issuer
//! record in a file of their own, so that a lost or deleted purse file does
//! not take with it the key that signs a refund (`docs/protocol.md`, "Refund": the
//! issuer revokes the coins it issued to `ID_CH` and replaces them, sealed
//! to `PK_CH`).
//!
//! The file holds a private key: it is sealed under the purse key (so the
//! purse's passphrase opens it; the key header travels in the file), created
//! 0600 with `O_EXCL` (never overwritten) and refused when group or others
//! may access it, as the purse file is. Its content is one version byte,
//! then postcard: a magic, the key header, a sealed check value and the
//! sealed contents. A wrong passphrase is [`PurseError::WrongPassphrase`];
//! a damaged file is another typed error.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::{decode, encode, open_record, seal_record};
use crate::constants::PROFILE_BYTES_MAX;
use crate::error::PurseError;
use crate::file;
use crate::profile::{IssuerInfo, PurseProfile};
use crate::seal::{KeyHeader, Passphrase, PurseKey, SEAL_OVERHEAD_BYTES, slot};
use crate::store::Purse;

/// What a key backup holds, once opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBackup {
    pub profile: PurseProfile,
    pub issuer: Option<IssuerInfo>,
}

/// The file as stored: only the magic and the key header in the clear.
#[derive(Serialize, Deserialize)]
struct SealedBackup {
    /// Tells a backup apart from other files of the same encoding.
    magic: [u8; 8],
    header: KeyHeader,
    /// [`CHECK_VALUE`] sealed: tells a wrong passphrase from damage.
    check: Vec<u8>,
    /// The [`KeyBackup`], sealed.
    contents: Vec<u8>,
}

const MAGIC: [u8; 8] = *b"vc-keys2";
const CHECK_VALUE: &[u8] = b"vc-purse key backup check";
/// A backup is a profile and an issuer record, nothing more.
const BACKUP_BYTES_MAX: usize = 2 * PROFILE_BYTES_MAX;
/// The file: the sealed contents and a little framing.
const BACKUP_FILE_BYTES_MAX: usize = BACKUP_BYTES_MAX + 2 * SEAL_OVERHEAD_BYTES + 1024;

impl KeyBackup {
    pub fn new(profile: PurseProfile, issuer: Option<IssuerInfo>) -> KeyBackup {
        KeyBackup { profile, issuer }
    }

    /// Writes the backup, sealed under `key`, to a new 0600 file at `path`
    /// (never overwriting) and syncs it.
    pub fn write(&self, path: &Path, key: &PurseKey) -> Result<(), PurseError> {
        self.profile.validate()?;
        let sealed = SealedBackup {
            magic: MAGIC,
            header: key.header(),
            check: key.seal(&slot("backup", b"check"), CHECK_VALUE)?,
            contents: seal_record(
                key,
                "backup",
                b"contents",
                "key backup",
                self,
                BACKUP_BYTES_MAX,
            )?,
        };
        let bytes = encode("key backup file", &sealed, BACKUP_FILE_BYTES_MAX)?;
        let mut f = file::create_private(path)?;
        let written = f.write_all(&bytes).and_then(|()| f.sync_all());
        if let Err(e) = written {
            // Leave no half-written backup that looks like a good one.
            if let Err(rm) = std::fs::remove_file(path) {
                tracing::warn!(error = %rm, "could not remove a half-written key backup");
            }
            return Err(e.into());
        }
        tracing::info!("key backup written");
        Ok(())
    }

    /// Reads a backup with the passphrase it was sealed under, refusing a
    /// file group or others may access.
    pub fn read(path: &Path, passphrase: &Passphrase) -> Result<KeyBackup, PurseError> {
        KeyBackup::read_with_key(path, passphrase).map(|(backup, _)| backup)
    }

    /// [`KeyBackup::read`], with the key the backup was sealed under.
    fn read_with_key(
        path: &Path,
        passphrase: &Passphrase,
    ) -> Result<(KeyBackup, PurseKey), PurseError> {
        let f = file::open_private(path)?;
        let mut bytes = Zeroizing::new(Vec::new());
        f.take(BACKUP_FILE_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)?;
        let sealed: SealedBackup = decode("key backup file", &bytes, BACKUP_FILE_BYTES_MAX)?;
        if sealed.magic != MAGIC {
            return Err(PurseError::Corrupt("not a purse key backup".into()));
        }
        let key = PurseKey::derive(passphrase, sealed.header)?;
        let check = key.open(&slot("backup", b"check"), &sealed.check)?;
        if check.as_deref().map(Vec::as_slice) != Some(CHECK_VALUE) {
            return Err(PurseError::WrongPassphrase);
        }
        let backup: KeyBackup = open_record(
            &key,
            "backup",
            b"contents",
            "key backup",
            &sealed.contents,
            BACKUP_BYTES_MAX,
        )?;
        backup.profile.validate()?;
        Ok((backup, key))
    }
}

impl Purse {
    /// Writes this purse's identity, keys, certificate and issuer record to
    /// a new 0600 file at `path`, sealed so that this purse's passphrase
    /// opens it.
    pub fn backup_keys(&self, path: impl AsRef<Path>) -> Result<(), PurseError> {
        KeyBackup::new(self.profile()?, self.issuer()?).write(path.as_ref(), self.key())
    }

    /// Creates an empty purse at `path` with the identity and keys of the
    /// backup at `backup`, opened with `passphrase` (which then opens the
    /// new purse too): what is left after a purse file was lost. Its coins
    /// come back by a refund.
    pub fn restore(
        path: impl AsRef<Path>,
        backup: impl AsRef<Path>,
        passphrase: &Passphrase,
    ) -> Result<Purse, PurseError> {
        let (backup, key) = KeyBackup::read_with_key(backup.as_ref(), passphrase)?;
        let purse = Purse::create(path, &backup.profile, backup.issuer.as_ref(), key)?;
        tracing::info!("purse restored from a key backup");
        Ok(purse)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use ledger::ParticipantId;
    use protocol::crypto::SuiteId;

    use super::*;
    use crate::seal::KdfParams;

    fn passphrase() -> Passphrase {
        Passphrase::new("correct horse battery staple").expect("passphrase")
    }

    fn key() -> PurseKey {
        PurseKey::derive_new(&passphrase(), KdfParams::INSECURE_FAST).expect("key")
    }

    /// One key for every test here: RSA key generation is slow.
    fn profile() -> PurseProfile {
        static PROFILE: std::sync::OnceLock<PurseProfile> = std::sync::OnceLock::new();
        PROFILE
            .get_or_init(|| {
                PurseProfile::generate(
                    ParticipantId::new("zorro").expect("id"),
                    SuiteId::Aes256,
                    2048,
                )
                .expect("profile")
            })
            .clone()
    }

    #[test]
    fn a_restored_purse_has_the_backed_up_identity_and_key_and_no_coins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original =
            Purse::create(dir.path().join("a.purse"), &profile(), None, key()).expect("purse");
        original.set_certificate(vec![7; 40]).expect("cert");
        original
            .backup_keys(dir.path().join("keys"))
            .expect("backup");
        let mode = std::fs::metadata(dir.path().join("keys"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(original);
        std::fs::remove_file(dir.path().join("a.purse")).expect("lost");
        let restored = Purse::restore(
            dir.path().join("b.purse"),
            dir.path().join("keys"),
            &passphrase(),
        )
        .expect("restore");
        let p = restored.profile().expect("profile");
        assert_eq!(p.participant.as_str(), "zorro");
        assert_eq!(p.certificate, Some(vec![7; 40]));
        assert_eq!(restored.coins().expect("coins"), Vec::new());
        drop(restored);
        // The restored purse opens with the backup's passphrase.
        Purse::open(dir.path().join("b.purse"), &passphrase()).expect("reopen");
    }

    #[test]
    fn a_backup_holds_no_key_in_the_clear_and_a_wrong_passphrase_is_told() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        let profile = profile();
        KeyBackup::new(profile.clone(), None)
            .write(&path, &key())
            .expect("write");
        let bytes = std::fs::read(&path).expect("read");
        let secret = profile.secret_key.expose_pkcs8_der();
        assert!(!bytes.windows(32).any(|w| w == &secret[100..132]));
        assert!(!bytes.windows(5).any(|w| w == b"zorro"));
        let wrong = Passphrase::new("wrong").expect("passphrase");
        assert!(matches!(
            KeyBackup::read(&path, &wrong),
            Err(PurseError::WrongPassphrase)
        ));
        assert!(matches!(
            Purse::restore(dir.path().join("p"), &path, &wrong),
            Err(PurseError::WrongPassphrase)
        ));
        assert!(!dir.path().join("p").exists());
        assert_eq!(
            KeyBackup::read(&path, &passphrase()).expect("read").profile,
            profile
        );
    }

    #[test]
    fn a_backup_readable_by_others_is_refused_and_none_is_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        KeyBackup::new(profile(), None)
            .write(&path, &key())
            .expect("write");
        assert!(matches!(
            KeyBackup::new(profile(), None).write(&path, &key()),
            Err(PurseError::AlreadyExists(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            KeyBackup::read(&path, &passphrase()),
            Err(PurseError::PermissionsTooOpen { .. })
        ));
    }

    #[test]
    fn a_damaged_or_foreign_backup_is_a_typed_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        KeyBackup::new(profile(), None)
            .write(&path, &key())
            .expect("write");
        let good = std::fs::read(&path).expect("read");
        for cut in [1, 9, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).expect("truncate");
            assert!(
                KeyBackup::read(&path, &passphrase()).is_err(),
                "cut at {cut}"
            );
        }
        let mut foreign = good.clone();
        foreign[2] ^= 0xff;
        std::fs::write(&path, &foreign).expect("flip");
        assert!(KeyBackup::read(&path, &passphrase()).is_err());
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).expect("flip");
        assert!(matches!(
            KeyBackup::read(&path, &passphrase()),
            Err(PurseError::Corrupt(_))
        ));
    }
}
