//! The sequencer's lease: which of several sequencer processes may append
//! to the log, and its fencing epoch.
//!
//! Exclusion is an exclusive `flock(2)` on `DIR/sequencer.lease`, held for
//! the life of the process: the kernel drops it when the holder dies, by
//! `kill -9` too, and never while it lives, paused or not. A standby polls
//! for it. Whoever takes it raises the fencing epoch in
//! `DIR/sequencer.epoch` (written and fsynced before it serves) and tells
//! each validator its epoch in the handshake; a validator never goes back
//! to a lower epoch, so a sequencer that lost the lease cannot win a
//! validator back.
//!
//! The log itself (redb) takes its own exclusive lock when opened, so even
//! a process that skipped the lease could not append beside the holder.
//! Both locks are local to one host: the redb log is one machine's file.
//! Fail-over across hosts needs a shared store: a PostgreSQL store would
//! hold the lease as a row with the epoch, and every append would check
//! `epoch = mine` in the same transaction (or hold a session advisory lock).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::wire::FencingEpoch;

const LEASE_FILE: &str = "sequencer.lease";
const EPOCH_FILE: &str = "sequencer.epoch";

/// Why the lease could not be taken or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    #[error("lease file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("epoch file {0} is damaged")]
    BadEpochFile(PathBuf),
}

/// The held lease. Dropping it (or dying) releases it.
#[derive(Debug)]
pub struct Lease {
    _file: File,
    epoch: FencingEpoch,
}

impl Lease {
    /// Takes the lease in `dir` if nobody holds it; `None` if somebody does.
    pub fn try_acquire(dir: &Path) -> Result<Option<Lease>, LeaseError> {
        let path = dir.join(LEASE_FILE);
        let io_err = |source| LeaseError::Io {
            path: path.clone(),
            source,
        };
        ledger::private_file::ensure_private_file(&path).map_err(io_err)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Ok(None),
            Err(e) => return Err(io_err(e.into())),
        }
        let epoch_path = dir.join(EPOCH_FILE);
        // The last epoch: no higher one to take (a damaged or forged file).
        let epoch = read_epoch(dir)?
            .0
            .checked_add(1)
            .map(FencingEpoch)
            .ok_or_else(|| LeaseError::BadEpochFile(epoch_path.clone()))?;
        ledger::private_file::write_private(&epoch_path, epoch.0.to_string().as_bytes()).map_err(
            |source| LeaseError::Io {
                path: epoch_path.clone(),
                source,
            },
        )?;
        Ok(Some(Lease { _file: file, epoch }))
    }

    /// Waits for the lease, polling every `poll`.
    pub fn acquire(dir: &Path, poll: std::time::Duration) -> Result<Lease, LeaseError> {
        loop {
            if let Some(lease) = Lease::try_acquire(dir)? {
                return Ok(lease);
            }
            std::thread::sleep(poll);
        }
    }

    pub fn epoch(&self) -> FencingEpoch {
        self.epoch
    }
}

/// The last epoch any sequencer took in `dir` (0 if none).
pub fn read_epoch(dir: &Path) -> Result<FencingEpoch, LeaseError> {
    let path = dir.join(EPOCH_FILE);
    let mut text = String::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_string(&mut text)
                .map_err(|source| LeaseError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FencingEpoch(0)),
        Err(source) => return Err(LeaseError::Io { path, source }),
    }
    text.trim()
        .parse::<u64>()
        .map(FencingEpoch)
        .map_err(|_| LeaseError::BadEpochFile(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn one_holder_at_a_time_and_each_holder_a_higher_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lease::try_acquire(dir.path()).unwrap().unwrap();
        assert_eq!(first.epoch(), FencingEpoch(1));
        // flock is per open file description: a second open in this
        // process is refused like another process would be.
        assert!(Lease::try_acquire(dir.path()).unwrap().is_none());
        drop(first);
        let second = Lease::try_acquire(dir.path()).unwrap().unwrap();
        assert_eq!(second.epoch(), FencingEpoch(2));
        assert_eq!(read_epoch(dir.path()).unwrap(), FencingEpoch(2));
    }

    #[test]
    fn a_damaged_epoch_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EPOCH_FILE), "x").unwrap();
        assert!(matches!(
            Lease::try_acquire(dir.path()),
            Err(LeaseError::BadEpochFile(_))
        ));
    }

    // The highest epoch has no successor: taking the lease over it is a
    // typed error, not an overflow (a panic, or epoch 0 in a release
    // build, which every validator would refuse).
    #[test]
    fn an_epoch_file_at_the_last_epoch_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EPOCH_FILE), u64::MAX.to_string()).unwrap();
        assert!(matches!(
            Lease::try_acquire(dir.path()),
            Err(LeaseError::BadEpochFile(_))
        ));
    }
}
