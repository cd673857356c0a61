//! Files and directories that only their owner may read: the one way every
//! party (issuer, purse, merchant, card bridge, auditor) creates the files
//! it keeps, whatever the process's umask.
//!
//! Every file a party keeps holds something an outsider must not read: key
//! shares, sealed identities, bank accounts, the log, coin tags, card keys.
//! So every such file is created mode 0600 and every directory 0700 before
//! redb or anything else opens it, and the mode is set explicitly after
//! creation (a umask can only take bits away, but a umask of 000 must not
//! leave anything to chance either).
//!
//! A file that already exists with group or other bits is **tightened** to
//! 0600, with a warning naming it and its old mode. Refusing it instead
//! would stop every party whose files an earlier version created 0644 and
//! protect nothing: whoever could read it has already had the chance, and
//! tightening closes the hole from now on; the warning tells the operator
//! to consider what the file held as possibly seen. (The purse and key
//! files a user copies around are stricter: `purse` refuses those.)
//!
//! Modes are checked and set on the opened descriptor, not by path, so a
//! file swapped between the check and the open is still the one checked.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every file a party keeps.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of every directory a party keeps its files in.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The permission bits that let anyone but the owner in.
const GROUP_OTHER_BITS: u32 = 0o077;

/// Makes sure `path` is a regular file of mode 0600, creating it empty if
/// it does not exist (redb initializes an empty file as a new database).
/// Call it before anything opens the file by path.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
        .map_err(|e| with_path(e, "opening", path))?;
    tighten(&file, path)?;
    Ok(())
}

/// Creates a new file of mode 0600 at `path`, failing with
/// [`io::ErrorKind::AlreadyExists`] if anything is there.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
        .map_err(|e| with_path(e, "creating", path))?;
    file.set_permissions(Permissions::from_mode(PRIVATE_FILE_MODE))?;
    Ok(file)
}

/// Creates `dir` and any missing parents with mode 0700, and tightens
/// `dir` itself to 0700 if it exists with group or other bits.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(|e| with_path(e, "creating directory", dir))?;
    let dir_file = File::open(dir).map_err(|e| with_path(e, "opening directory", dir))?;
    let mode = dir_file.metadata()?.permissions().mode() & 0o777;
    if mode & GROUP_OTHER_BITS != 0 {
        dir_file.set_permissions(Permissions::from_mode(PRIVATE_DIR_MODE))?;
        tracing::warn!(
            path = %dir.display(),
            old_mode = format_args!("{mode:o}"),
            "directory was open to group or others: tightened to 0700"
        );
    }
    Ok(())
}

/// Replaces (or creates) `path` with `bytes` atomically, mode 0600: written
/// and synced under a temporary name beside it, then renamed over it.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path_beside(path)?;
    let result = (|| {
        let mut file = create_new_private(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path).map_err(|e| with_path(e, "renaming into", path))?;
        sync_parent_dir(path)
    })();
    if result.is_err() {
        // Best effort: the temporary file holds nothing anybody relies on.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Copies `from` to `to` (replacing it), the copy mode 0600 whatever the
/// source's mode: `std::fs::copy` would give the copy the source's mode.
pub fn copy_private(from: &Path, to: &Path) -> io::Result<u64> {
    let mut source = File::open(from).map_err(|e| with_path(e, "opening", from))?;
    let mut target = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE_MODE)
        .open(to)
        .map_err(|e| with_path(e, "creating", to))?;
    tighten(&target, to)?;
    let n_bytes = io::copy(&mut source, &mut target)?;
    target.sync_all()?;
    Ok(n_bytes)
}

/// Whether group or others have any access to the open file.
pub fn is_open_to_others(file: &File) -> io::Result<bool> {
    Ok(file.metadata()?.permissions().mode() & GROUP_OTHER_BITS != 0)
}

fn tighten(file: &File, path: &Path) -> io::Result<()> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode != PRIVATE_FILE_MODE {
        file.set_permissions(Permissions::from_mode(PRIVATE_FILE_MODE))?;
        if mode & GROUP_OTHER_BITS != 0 {
            tracing::warn!(
                path = %path.display(),
                old_mode = format_args!("{mode:o}"),
                "file was readable or writable by group or others: tightened to 0600; \
                 treat what it holds as possibly seen"
            );
        }
    }
    Ok(())
}

fn temp_path_beside(path: &Path) -> io::Result<PathBuf> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| io::Error::other(e.to_string()))?;
    let mut name = path.file_name().map(|n| n.to_os_string()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    name.push(format!(".tmp-{}", hex::encode(suffix)));
    Ok(path.with_file_name(name))
}

/// Makes a rename durable: the directory entry itself must reach the disk.
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn creates_0600_files_and_0700_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).expect("dir");
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
        assert_eq!(mode_of(&nested), 0o700);
        let path = nested.join("f.redb");
        ensure_private_file(&path).expect("file");
        assert_eq!(mode_of(&path), 0o600);
        write_private(&nested.join("c.toml"), b"x = 1").expect("write");
        assert_eq!(mode_of(&nested.join("c.toml")), 0o600);
        assert_eq!(
            std::fs::read(nested.join("c.toml")).expect("read"),
            b"x = 1"
        );
        let new = create_new_private(&nested.join("n")).expect("new");
        drop(new);
        assert_eq!(mode_of(&nested.join("n")), 0o600);
        assert_eq!(
            create_new_private(&nested.join("n"))
                .map(|_| ())
                .map_err(|e| e.kind()),
            Err(io::ErrorKind::AlreadyExists)
        );
    }

    #[test]
    fn an_existing_open_file_or_directory_is_tightened_and_keeps_its_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sessions.redb");
        std::fs::write(&path, b"content").expect("write");
        std::fs::set_permissions(&path, Permissions::from_mode(0o666)).expect("chmod");
        ensure_private_file(&path).expect("tighten");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"content");
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir(dir.path()).expect("tighten dir");
        assert_eq!(mode_of(dir.path()), 0o700);
    }

    #[test]
    fn a_copy_is_0600_whatever_the_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("log.redb");
        std::fs::write(&from, b"log").expect("write");
        std::fs::set_permissions(&from, Permissions::from_mode(0o644)).expect("chmod");
        let to = dir.path().join("copy.redb");
        assert_eq!(copy_private(&from, &to).expect("copy"), 3);
        assert_eq!(mode_of(&to), 0o600);
    }

    #[test]
    fn a_directory_where_a_file_belongs_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(ensure_private_file(dir.path()).is_err());
    }
}
