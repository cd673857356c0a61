//! `varietycash log export`: a redb copy of an issuer's log, for offline
//! audit and for keeping.
//!
//! The source is a PostgreSQL log (read through a read-only session) or a
//! redb file (read-only; the live file of a running issuer too). The copy
//! holds the same records, byte for byte: the export groups the source's
//! records back into their batches, appends them to a new redb log through
//! the same chaining every backend uses, and compares each record it wrote
//! with the source's (seq, transaction, time, place in its batch, both
//! hashes, the event's bytes). Any difference, a broken chain, or a batch
//! cut short stops the export and leaves no file: the copy is written
//! under a temporary name beside the destination and renamed only once
//! complete. The export runs up to the source's head as read at its start;
//! a live writer's later records are not in it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use ledger::{
    Batch, EventStore, Hash32, RawEventStore, RawRecord, RedbStore, Seq, Sharing, StoreError,
};

/// Records read from the source per round trip.
const READ_CHUNK_RECORDS: usize = 4096;

/// The issuer's log as a file: copies between stores.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LogCommand {
    /// Copy a log (PostgreSQL or redb) to a new redb file with the same records and chain.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The log to copy: a PostgreSQL URL (a role that may read the log;
    /// the read-only auditor's is enough) or a redb file, never written.
    #[arg(long, value_name = "postgres://…|FILE")]
    from: String,
    /// The redb file to write (must not exist; written 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: LogArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        LogCommand::Export(a) => export(a),
    }
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let (source, shown) = open_source(&args.from)?;
    let copied = export_store(source.as_ref(), &args.out)
        .with_context(|| format!("exporting {shown} to {}", args.out.display()))?;
    println!(
        "exported {} records from {shown} to {}: head {} {}",
        copied.last_seq.0,
        args.out.display(),
        copied.last_seq.0,
        copied.last_hash
    );
    Ok(ExitCode::SUCCESS)
}

/// The source store, read-only, and how to name it (a URL without its
/// password).
fn open_source(from: &str) -> anyhow::Result<(Box<dyn RawEventStore>, String)> {
    if pg_store::url::is_postgres_url(from) {
        let shown = pg_store::url::redacted(from);
        let store = pg_store::PostgresStore::open_read_only(from)
            .with_context(|| format!("opening the log in {shown}"))?;
        return Ok((Box::new(store), shown));
    }
    let path = Path::new(from);
    let store = match RedbStore::open_read_only(path, Sharing::FollowableByReaders) {
        Err(StoreError::NeedsRepair) => RedbStore::open_verified(path),
        other => other,
    }
    .with_context(|| format!("opening the log {}", path.display()))?;
    Ok((Box::new(store), path.display().to_string()))
}

/// Copies `source` up to its present head into a new redb log at `out`;
/// returns the copy's head (the source's).
pub fn export_store(source: &dyn RawEventStore, out: &Path) -> anyhow::Result<ledger::Head> {
    if out.exists() {
        bail!("{} exists: the export writes a new file", out.display());
    }
    let file_name = out
        .file_name()
        .with_context(|| format!("{} names no file", out.display()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(file_name);
    partial_name.push(".partial");
    let partial = out.with_file_name(partial_name);
    if partial.exists() {
        std::fs::remove_file(&partial)
            .with_context(|| format!("removing an unfinished export {}", partial.display()))?;
    }
    let result = copy_into(source, &partial);
    match result {
        Ok(head) => {
            std::fs::rename(&partial, out)
                .with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
            Ok(head)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn copy_into(source: &dyn RawEventStore, to: &Path) -> anyhow::Result<ledger::Head> {
    let head = source.head().context("reading the source's head")?;
    let dest = RedbStore::open(to).with_context(|| format!("creating {}", to.display()))?;
    let mut next = Seq(1);
    let mut prev_hash = Hash32::GENESIS;
    // Records of a batch the last chunk cut in two.
    let mut pending: Vec<RawRecord> = Vec::new();
    while next.0 <= head.last_seq.0 {
        let want = usize::try_from(head.last_seq.0 - next.0 + 1)
            .unwrap_or(usize::MAX)
            .min(READ_CHUNK_RECORDS);
        let chunk = source
            .read_raw(next, want)
            .with_context(|| format!("reading the source from seq {}", next.0))?;
        if chunk.is_empty() {
            bail!(
                "the source ends at seq {} but its head was {}",
                next.0 - 1,
                head.last_seq.0
            );
        }
        for record in &chunk {
            check_link(record, next, prev_hash)?;
            prev_hash = record.hash;
            next = Seq(next.0 + 1);
        }
        pending.extend(chunk);
        let complete = complete_prefix(&pending)?;
        let (done, rest) = pending.split_at(complete);
        append_same(&dest, done)?;
        pending = rest.to_vec();
    }
    if !pending.is_empty() {
        bail!(
            "the source's last batch (from seq {}) is cut short",
            pending[0].seq.0
        );
    }
    let copied = dest.head().context("reading the copy's head")?;
    if copied != head {
        bail!("the copy's head differs from the source's");
    }
    Ok(copied)
}

/// The record is the one expected here: its seq, linked to the previous
/// record, its own hash matching its contents.
fn check_link(record: &RawRecord, seq: Seq, prev_hash: Hash32) -> anyhow::Result<()> {
    if record.seq != seq {
        bail!(
            "the source has seq {} where {} belongs",
            record.seq.0,
            seq.0
        );
    }
    if record.prev_hash != prev_hash {
        bail!("the source's chain breaks at seq {}", seq.0);
    }
    if record.recomputed_hash() != record.hash {
        bail!("the source's record {} does not match its own hash", seq.0);
    }
    Ok(())
}

/// How many of `records` (which start a batch) form whole batches.
fn complete_prefix(records: &[RawRecord]) -> anyhow::Result<usize> {
    let mut i = 0;
    while i < records.len() {
        let first = &records[i];
        if first.batch_index != 0 || first.batch_len == 0 {
            bail!("the source's record {} does not start a batch", first.seq.0);
        }
        let len = usize::from(first.batch_len);
        if i + len > records.len() {
            break;
        }
        for (k, r) in records[i..i + len].iter().enumerate() {
            if usize::from(r.batch_index) != k
                || r.batch_len != first.batch_len
                || r.tx != first.tx
                || r.at != first.at
            {
                bail!("the source's batch at seq {} is inconsistent", first.seq.0);
            }
        }
        i += len;
    }
    Ok(i)
}

/// Appends whole batches to `dest` in one transaction, then checks that
/// what `dest` stored is the source's records exactly.
fn append_same(dest: &RedbStore, records: &[RawRecord]) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let mut batches = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let len = usize::from(records[i].batch_len);
        let events = records[i..i + len]
            .iter()
            .map(|r| r.decode().map(|stored| stored.record.event))
            .collect::<Result<Vec<_>, StoreError>>()
            .with_context(|| format!("decoding the source's batch at seq {}", records[i].seq.0))?;
        batches.push(Batch {
            tx: records[i].tx,
            at: records[i].at,
            events,
        });
        i += len;
    }
    dest.append(&batches)
        .with_context(|| format!("writing seqs {} to {}", first.seq.0, last.seq.0))?;
    let written = dest
        .read_raw(first.seq, records.len())
        .context("reading the copy back")?;
    if written.as_slice() != records {
        let at = written
            .iter()
            .zip(records)
            .find(|(w, r)| w != r)
            .map_or(first.seq.0, |(_, r)| r.seq.0);
        bail!("the copy's record {at} differs from the source's (its event re-encodes otherwise)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::testkit::sample_batch;

    fn source_with(batches: &[Batch]) -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(dir.path().join("src.redb")).expect("open");
        for chunk in batches.chunks(3) {
            store.append(chunk).expect("append");
        }
        (dir, store)
    }

    fn all_raw(store: &dyn RawEventStore) -> Vec<RawRecord> {
        store.read_raw(Seq(1), usize::MAX).expect("read")
    }

    /// The copy holds the source's records byte for byte, with the same
    /// head, across chunk boundaries that cut batches in two.
    #[test]
    fn the_copy_has_the_same_records_and_chain() {
        let batches: Vec<Batch> = (0..40)
            .map(|i| sample_batch(i, 1 + (i % 5) as usize))
            .collect();
        let (dir, source) = source_with(&batches);
        let out = dir.path().join("copy.redb");
        let head = export_store(&source, &out).expect("export");
        assert_eq!(head, source.head().expect("head"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&out).expect("metadata").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the copy is private");
        let copy = RedbStore::open_read_only(&out, Sharing::FollowableByReaders).expect("open");
        assert_eq!(all_raw(&copy), all_raw(&source));
        let encoded = |s: &dyn RawEventStore| {
            all_raw(s)
                .iter()
                .map(ledger::redb_store::encode_record_value)
                .collect::<Vec<_>>()
        };
        assert_eq!(encoded(&copy), encoded(&source));
    }

    /// Batches longer than a chunk's remainder are carried to the next read.
    #[test]
    fn batches_cut_by_a_chunk_are_carried_over() {
        let n = READ_CHUNK_RECORDS / 7 + 3;
        let batches: Vec<Batch> = (0..n as u64).map(|i| sample_batch(i, 7)).collect();
        let (dir, source) = source_with(&batches);
        let out = dir.path().join("copy.redb");
        export_store(&source, &out).expect("export");
        let copy = RedbStore::open_read_only(&out, Sharing::FollowableByReaders).expect("open");
        assert_eq!(all_raw(&copy), all_raw(&source));
    }

    /// An existing file is never overwritten, and a failed export leaves
    /// nothing behind.
    #[test]
    fn an_existing_file_is_refused() {
        let (dir, source) = source_with(&[sample_batch(0, 2)]);
        let out = dir.path().join("copy.redb");
        std::fs::write(&out, b"keep me").expect("write");
        assert!(export_store(&source, &out).is_err());
        assert_eq!(std::fs::read(&out).expect("read"), b"keep me");
    }

    /// A source whose chain is broken is refused, and no copy is left.
    #[test]
    fn a_broken_chain_is_refused() {
        struct Tampered(RedbStore);
        impl EventStore for Tampered {
            fn append(&self, b: &[Batch]) -> Result<Vec<Seq>, StoreError> {
                self.0.append(b)
            }
            fn head(&self) -> Result<ledger::Head, StoreError> {
                self.0.head()
            }
            fn read(&self, from: Seq, n: usize) -> Result<Vec<ledger::StoredRecord>, StoreError> {
                self.0.read(from, n)
            }
        }
        impl RawEventStore for Tampered {
            fn read_raw(&self, from: Seq, n: usize) -> Result<Vec<RawRecord>, StoreError> {
                let mut records = self.0.read_raw(from, n)?;
                if let Some(r) = records.iter_mut().find(|r| r.seq == Seq(3)) {
                    r.event_bytes.push(0);
                }
                Ok(records)
            }
        }
        let (dir, source) = source_with(&[sample_batch(0, 2), sample_batch(1, 2)]);
        let out = dir.path().join("copy.redb");
        let err = export_store(&Tampered(source), &out).expect_err("tampered");
        assert!(format!("{err:#}").contains("record 3"), "{err:#}");
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }
}
