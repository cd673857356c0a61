//! Key files on disk: secret files are created 0600 and written atomically
//! (temporary file, fsync, rename, fsync of the directory); a secret file that
//! group or others can read is refused rather than used.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::CryptoError;
use super::random::os_random;

/// Permission bits a secret file may not have: any access by group or others.
const SECRET_MODE_FORBIDDEN_BITS: u32 = 0o077;
const SECRET_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CryptoError + '_ {
    move |source| CryptoError::KeyFile {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` as a secret (mode 0600), replacing any old file
/// atomically: a crash leaves either the old file or the new one, never a mix.
pub(crate) fn write_secret_atomic(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    write_atomic(path, bytes, SECRET_MODE)
}

/// Writes a public file (mode 0644) atomically.
pub(crate) fn write_public_atomic(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    write_atomic(path, bytes, PUBLIC_MODE)
}

/// Writes `bytes` to a NEW secret file at `path` (mode 0600), failing with
/// [`std::io::ErrorKind::AlreadyExists`] if anything is there: the file is
/// written and synced under a temporary name, then hard-linked into place,
/// which cannot replace an existing file.
pub(crate) fn create_secret_new(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    let tmp = temp_path_beside(path);
    let result = write_temp(&tmp, bytes, SECRET_MODE).and_then(|()| {
        fs::hard_link(&tmp, path).map_err(io_error(path))?;
        sync_parent_dir(path)
    });
    // Best effort: once linked, the temporary name is only a second entry.
    let _ = fs::remove_file(&tmp);
    result
}

fn write_temp(tmp: &Path, bytes: &[u8], mode: u32) -> Result<(), CryptoError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(io_error(tmp))?;
    // The umask may have cleared bits but never adds any; set the mode
    // explicitly anyway so the result does not depend on the caller's umask.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_error(tmp))?;
    file.write_all(bytes).map_err(io_error(tmp))?;
    file.sync_all().map_err(io_error(tmp))
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CryptoError> {
    let tmp = temp_path_beside(path);
    let result = (|| {
        write_temp(&tmp, bytes, mode)?;
        fs::rename(&tmp, path).map_err(io_error(path))?;
        sync_parent_dir(path)
    })();
    if result.is_err() {
        // Best effort: the temporary file holds nothing the caller relies on.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_path_beside(path: &Path) -> PathBuf {
    let suffix: [u8; 8] = os_random();
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}", hex_lower(&suffix)));
    path.with_file_name(name)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes the rename durable: the directory entry itself must reach the disk.
fn sync_parent_dir(path: &Path) -> Result<(), CryptoError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(parent))
}

/// Reads a secret file of at most `max_bytes`, refusing it if group or others
/// may access it. Permissions are checked on the opened handle, so the file
/// checked is the file read.
pub(crate) fn read_secret(
    path: &Path,
    max_bytes: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let file = File::open(path).map_err(io_error(path))?;
    let meta = file.metadata().map_err(io_error(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & SECRET_MODE_FORBIDDEN_BITS != 0 {
        return Err(CryptoError::WeakPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    read_bounded(file, path, max_bytes).map(Zeroizing::new)
}

/// Reads a public file of at most `max_bytes`.
pub(crate) fn read_public(path: &Path, max_bytes: usize) -> Result<Vec<u8>, CryptoError> {
    let file = File::open(path).map_err(io_error(path))?;
    read_bounded(file, path, max_bytes)
}

fn read_bounded(file: File, path: &Path, max_bytes: usize) -> Result<Vec<u8>, CryptoError> {
    let mut bytes = Vec::new();
    file.take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() > max_bytes {
        return Err(CryptoError::TooLong {
            what: "key file",
            len: bytes.len(),
            max: max_bytes,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn secret_files_are_created_0600_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        write_secret_atomic(&path, b"secret").expect("write");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(read_secret(&path, 64).expect("read").as_slice(), b"secret");
        // Replacing keeps 0600 and leaves no temporary file behind.
        write_secret_atomic(&path, b"second").expect("rewrite");
        assert_eq!(read_secret(&path, 64).expect("read").as_slice(), b"second");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn secret_files_readable_by_others_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        write_secret_atomic(&path, b"secret").expect("write");
        for mode in [0o644, 0o640, 0o604, 0o610] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            match read_secret(&path, 64) {
                Err(CryptoError::WeakPermissions { mode: seen, .. }) => assert_eq!(seen, mode),
                other => panic!("mode {mode:o} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn create_new_never_replaces_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        create_secret_new(&path, b"first").expect("create");
        assert_eq!(mode_of(&path), 0o600);
        match create_secret_new(&path, b"second") {
            Err(CryptoError::KeyFile { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists)
            }
            other => panic!("replaced an existing file: {other:?}"),
        }
        assert_eq!(read_secret(&path, 64).expect("read").as_slice(), b"first");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        write_secret_atomic(&path, &[0u8; 65]).expect("write");
        assert!(matches!(
            read_secret(&path, 64),
            Err(CryptoError::TooLong { len: 65, .. })
        ));
        assert!(matches!(
            read_secret(&dir.path().join("missing"), 64),
            Err(CryptoError::KeyFile { .. })
        ));
    }
}
