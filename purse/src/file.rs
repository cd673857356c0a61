//! The purse file on disk: created 0600, and refused when group or others
//! may read or write it (it holds the private key, coin tags, which are
//! bearer money, and session secrets). The mode is checked on the opened
//! file descriptor, so a file swapped between check and open is still caught.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::PurseError;

/// The only mode a purse file may have.
pub const PURSE_FILE_MODE: u32 = 0o600;

/// Creates a new, empty purse file readable and writable by its owner only.
/// Fails if the file exists: a purse is never overwritten.
pub(crate) fn create_private(path: &Path) -> Result<File, PurseError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(PURSE_FILE_MODE)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => PurseError::AlreadyExists(path.display().to_string()),
            _ => PurseError::Io(e),
        })?;
    // The umask can only remove bits, but set the mode explicitly anyway.
    file.set_permissions(std::fs::Permissions::from_mode(PURSE_FILE_MODE))?;
    check_private(&file, path)?;
    sync_parent_dir(path)?;
    Ok(file)
}

/// Makes the new file's directory entry durable: redb's commits sync the
/// file, not the directory that names it.
fn sync_parent_dir(path: &Path) -> Result<(), PurseError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()?;
    Ok(())
}

/// Opens an existing purse file, refusing it if group or others have any
/// access to it or if it is empty.
pub(crate) fn open_private(path: &Path) -> Result<File, PurseError> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    check_private(&file, path)?;
    if file.metadata()?.len() == 0 {
        return Err(PurseError::Corrupt("purse file is empty".into()));
    }
    Ok(file)
}

fn check_private(file: &File, path: &Path) -> Result<(), PurseError> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(PurseError::Invalid("purse path is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PurseError::PermissionsTooOpen {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}
