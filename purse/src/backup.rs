//! The key backup: the purse's identity, key pair, certificate and issuer
//! record in a file of their own, so that a lost or deleted purse file does
//! not take with it the key that signs a refund (PROTOCOLS.md "Refund": the
//! issuer revokes the coins it issued to `ID_CH` and replaces them, sealed
//! to `PK_CH`).
//!
//! The file holds a private key: it is created 0600 with `O_EXCL` (never
//! overwritten) and refused when group or others may access it, as the
//! purse file is. Its content is one version byte, a magic, then postcard;
//! a damaged file is a typed error.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::{decode, encode};
use crate::constants::PROFILE_BYTES_MAX;
use crate::error::PurseError;
use crate::file;
use crate::profile::{IssuerInfo, PurseProfile};
use crate::store::Purse;

/// What a key backup file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBackup {
    /// Tells a backup apart from other files of the same encoding.
    magic: [u8; 8],
    pub profile: PurseProfile,
    pub issuer: Option<IssuerInfo>,
}

const MAGIC: [u8; 8] = *b"vc-keys1";
/// A backup is a profile and an issuer record, nothing more.
const BACKUP_BYTES_MAX: usize = 2 * PROFILE_BYTES_MAX;

impl KeyBackup {
    pub fn new(profile: PurseProfile, issuer: Option<IssuerInfo>) -> KeyBackup {
        KeyBackup {
            magic: MAGIC,
            profile,
            issuer,
        }
    }

    /// Writes the backup to a new 0600 file at `path` (never overwriting)
    /// and syncs it.
    pub fn write(&self, path: &Path) -> Result<(), PurseError> {
        self.profile.validate()?;
        let bytes = Zeroizing::new(encode("key backup", self, BACKUP_BYTES_MAX)?);
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

    /// Reads a backup, refusing a file group or others may access.
    pub fn read(path: &Path) -> Result<KeyBackup, PurseError> {
        let f = file::open_private(path)?;
        let mut bytes = Zeroizing::new(Vec::new());
        f.take(BACKUP_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)?;
        let backup: KeyBackup = decode("key backup", &bytes, BACKUP_BYTES_MAX)?;
        if backup.magic != MAGIC {
            return Err(PurseError::Corrupt("not a purse key backup".into()));
        }
        backup.profile.validate()?;
        Ok(backup)
    }
}

impl Purse {
    /// Writes this purse's identity, keys, certificate and issuer record to
    /// a new 0600 file at `path`.
    pub fn backup_keys(&self, path: impl AsRef<Path>) -> Result<(), PurseError> {
        KeyBackup::new(self.profile()?, self.issuer()?).write(path.as_ref())
    }

    /// Creates an empty purse at `path` with the identity and keys of the
    /// backup at `backup`: what is left after a purse file was lost. Its
    /// coins come back by a refund.
    pub fn restore(path: impl AsRef<Path>, backup: impl AsRef<Path>) -> Result<Purse, PurseError> {
        let backup = KeyBackup::read(backup.as_ref())?;
        let purse = Purse::create(path, &backup.profile, backup.issuer.as_ref())?;
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
        let original = Purse::create(dir.path().join("a.purse"), &profile(), None).expect("purse");
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
        let restored =
            Purse::restore(dir.path().join("b.purse"), dir.path().join("keys")).expect("restore");
        let p = restored.profile().expect("profile");
        assert_eq!(p.participant.as_str(), "zorro");
        assert_eq!(p.certificate, Some(vec![7; 40]));
        assert_eq!(restored.coins().expect("coins"), Vec::new());
    }

    #[test]
    fn a_backup_readable_by_others_is_refused_and_none_is_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        KeyBackup::new(profile(), None).write(&path).expect("write");
        assert!(matches!(
            KeyBackup::new(profile(), None).write(&path),
            Err(PurseError::AlreadyExists(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            KeyBackup::read(&path),
            Err(PurseError::PermissionsTooOpen { .. })
        ));
    }

    #[test]
    fn a_damaged_or_foreign_backup_is_a_typed_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        KeyBackup::new(profile(), None).write(&path).expect("write");
        let good = std::fs::read(&path).expect("read");
        for cut in [1, 9, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).expect("truncate");
            assert!(KeyBackup::read(&path).is_err(), "cut at {cut}");
        }
        let mut foreign = good.clone();
        foreign[2] ^= 0xff;
        std::fs::write(&path, &foreign).expect("flip");
        assert!(KeyBackup::read(&path).is_err());
    }
}
