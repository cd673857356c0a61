//! The I/O around the [`Auditor`]: open a log, resume from a checkpoint
//! file, stream the records through the auditor in chunks, report progress,
//! hold the log to the issuer's published head, write the next checkpoint
//! file, and build the [`AuditReport`].
//!
//! Reading is strict: a read that fails, or a panic inside the storage
//! engine (caught here, on the reading thread), is `log_unreadable` at the
//! first record it could not read, never an error that ends the audit
//! early as if the log ended there.

use crate::constants::{
    DECODE_ON_READER_WHEN_QUEUED, READ_AHEAD_CHUNKS, READ_CHUNK_RECORDS_DEFAULT,
};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ledger::{
    Checkpoint, Event, EventStore, Head, RawEventStore, RawRecord, RedbStore, Seq, Sharing,
    StoreError, Timestamp,
};
use tracing::{info, warn};

use crate::auditor::{
    Auditor, CheckpointVerifier, RecordVerifier, TransactionReplay, decode_event,
    earliest_with_repeats,
};
use crate::bank::BankStatement;
use crate::report::{AuditReport, Outcome};
use crate::rule::{Rule, Violation};
use crate::snapshot::{AuditSnapshot, SnapshotError};
use crate::state::LedgerState;

/// How far an audit has got, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records read in this run so far.
    pub records_read: u64,
    /// The last record read.
    pub seq: Seq,
    /// The log's last record when the audit started.
    pub head_seq: Seq,
}

/// Called after every chunk of records.
pub type ProgressCallback = Box<dyn FnMut(Progress) + Send>;

/// Why a projection check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionDifference {
    /// The projection differs from the replay: a violation.
    Differs(String),
    /// The projection file could not be read: the audit is incomplete.
    Unreadable(String),
}

/// A check of the issuer's own projections against the replay (e.g. the
/// coin-status store must hold exactly the unspent coins). Given the replay
/// state at `head`, says what differs first. See
/// [`crate::projection_check`] for the coin-status and accounts checks.
pub trait ProjectionCheck: Send {
    /// A short name for the report, e.g. `coin_status`.
    fn name(&self) -> &str;
    /// `log` is the audited log, for a projection that lags it to catch up.
    fn compare(
        &self,
        state: &LedgerState,
        head: Head,
        log: &dyn EventStore,
    ) -> Result<(), ProjectionDifference>;
}

/// What to audit and how. Build with [`AuditOptions::new`] and set fields.
pub struct AuditOptions {
    /// The redb log file (a copy of the issuer's log, or the live file
    /// opened read-only).
    pub log: PathBuf,
    /// How the writer, if one has the file open, shares it.
    pub writer_sharing: Sharing,
    /// Verifies checkpoint signatures; without it only checkpoint hashes are
    /// checked against the chain, and the report says so.
    pub checkpoint_verifier: Option<CheckpointVerifier>,
    /// Resume after the audit that wrote this checkpoint file.
    pub from_checkpoint: Option<PathBuf>,
    /// Write the checkpoint file for the next audit here (when every rule
    /// held, or the log was only truncated).
    pub write_checkpoint: Option<PathBuf>,
    pub progress: Option<ProgressCallback>,
    pub projection_checks: Vec<Box<dyn ProjectionCheck>>,
    /// Records read, checked and handed to the replay at a time.
    pub read_chunk_records: usize,
    /// The reading thread decodes a chunk's events itself while at least
    /// this many chunks wait for the replay, and leaves them to the replay
    /// otherwise (see [`DECODE_ON_READER_WHEN_QUEUED`], the default): `0`
    /// always decodes on the reading thread, `usize::MAX` never. The result
    /// is the same either way; only the balance of the two threads differs.
    pub decode_on_reader_when_queued: usize,
    /// The auditor's own clock: a transaction dated more than
    /// [`crate::constants::LOG_TIME_FUTURE_SKEW_MAX_SECS`] after it is
    /// `log_time_in_future`. `None` (the default) reads the wall clock when
    /// the audit starts; tests of simulated clocks set their own "now".
    pub now: Option<Timestamp>,
    /// How many records past the last verified checkpoint ("signed
    /// through") are accepted: an audit of a live issuer, whose newest
    /// records await their checkpoint. `0`, the default, accepts none.
    pub allow_unsigned_tail: u64,
    /// The issuer's latest signed head, published outside the log (a file
    /// in its directory, a route of its gateway): the log must reach its
    /// seq with its hash (rule `head_not_reached`), so a log cut behind it
    /// is evident. Its signature is checked when a key is given.
    pub expect_head: Option<Checkpoint>,
    /// The bank's statement to reconcile with the log (rules
    /// `bank_entry_missing`, `bank_entry_unexplained`): a whole-log audit
    /// only, since the statement covers the whole history.
    pub bank_statement: Option<BankStatement>,
    /// Open the log through redb's integrity check (every page checksum
    /// verified; [`RedbStore::open_verified`]) instead of a plain
    /// read-only open. A file that fails it is `log_unreadable`. Not for a
    /// log its writer has open.
    pub verify_integrity: bool,
}

impl AuditOptions {
    pub fn new(log: impl Into<PathBuf>) -> AuditOptions {
        AuditOptions {
            log: log.into(),
            writer_sharing: Sharing::default(),
            checkpoint_verifier: None,
            from_checkpoint: None,
            write_checkpoint: None,
            progress: None,
            projection_checks: Vec::new(),
            read_chunk_records: READ_CHUNK_RECORDS_DEFAULT,
            decode_on_reader_when_queued: DECODE_ON_READER_WHEN_QUEUED,
            now: None,
            allow_unsigned_tail: 0,
            expect_head: None,
            bank_statement: None,
            verify_integrity: false,
        }
    }
}

impl std::fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOptions")
            .field("log", &self.log)
            .field("signatures", &self.checkpoint_verifier.is_some())
            .field("from_checkpoint", &self.from_checkpoint)
            .field("write_checkpoint", &self.write_checkpoint)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Why an audit could not be carried out (exit status 2). A broken rule is
/// not an error: it is the report's [`Outcome::Violation`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("cannot read the log {path}: {source}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("reading the log: {0}")]
    Read(#[source] StoreError),
    #[error("projection {name}: {reason}")]
    Projection { name: String, reason: String },
    #[error("audit checkpoint file {path}: {source}")]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: SnapshotError,
    },
    /// The expected head's signature does not verify under the issuer's
    /// key: it anchors nothing.
    #[error("the expected head (record {0}) is not signed by the issuer's key")]
    ExpectedHeadForged(Seq),
    /// A bank statement covers the whole history: it is reconciled with a
    /// whole-log audit, not one resumed from a checkpoint file.
    #[error("a bank statement is reconciled with an audit of the whole log, not a resumed one")]
    BankStatementNeedsWholeLog,
}

/// Records whose place in the chain is verified, with their events decoded
/// (`events[i]` is `records[i]`'s) if `decoded`; otherwise the replay
/// decodes them. Chunks go back to the reading thread when the replay is
/// done with them, so the records' buffers are reused and every event is
/// freed on the thread that decoded it.
#[derive(Default)]
struct Chunk {
    records: Vec<RawRecord>,
    events: Vec<Event>,
    decoded: bool,
}

/// How the reading thread reads: records per chunk, and when it decodes.
#[derive(Debug, Clone, Copy)]
struct ReadPlan {
    chunk: usize,
    decode_when_queued: usize,
}

/// What the reading thread hands to the replay, in log order.
enum Stage1 {
    Records(Chunk),
    /// The first record that did not (every record before it was sent).
    Violation(Violation),
    /// Reading failed at record `at` (every record before it was sent).
    Failed {
        at: Seq,
        error: StoreError,
    },
}

/// Runs a read of the store, turning a panic inside the storage engine
/// into an error: a damaged file must not take the auditor down.
fn read_guarded<T>(read: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(StoreError::NotALog(format!(
            "the storage engine panicked: {message}"
        )))
    })
}

/// Reads chunks of `chunk` records from `first` on and verifies the chain,
/// until the log ends, a check, a decoding or a read fails, or the receiver
/// hangs up. Chunks the replay is done with come back through `recycled`:
/// the records' buffers are reused instead of allocated per record, and
/// the events are dropped here, where they were allocated (decoding here
/// while the replay freed the events cost 30% more CPU, measured:
/// cross-thread frees).
///
/// It also decodes a chunk's events while `queued` (chunks sent and not yet
/// taken by the replay) is at least `plan.decode_when_queued`: the replay
/// is then the slower stage, and this thread would only wait. Otherwise the
/// replay decodes them. With 256-record chunks on the 10 M-event bench log
/// this balanced the threads (replay 7.2-8.1 s, reader 6.7-7.8 s of CPU,
/// against 7.6-9.0 s and 5.4-7.3 s with the replay decoding everything).
fn read_and_verify(
    store: &impl RawEventStore,
    mut verifier: RecordVerifier,
    first: Seq,
    plan: ReadPlan,
    sender: std::sync::mpsc::SyncSender<Stage1>,
    recycled: std::sync::mpsc::Receiver<Chunk>,
    queued: &AtomicUsize,
) -> RecordVerifier {
    let ReadPlan {
        chunk,
        decode_when_queued,
    } = plan;
    let mut from = first;
    loop {
        let Chunk {
            mut records,
            mut events,
            ..
        } = recycled.try_recv().unwrap_or_default();
        events.clear();
        let failure = match read_guarded(|| store.read_raw_into(from, chunk, &mut records)) {
            Ok(()) => None,
            // One unparsable record fails the whole read: verify the records
            // before it first, so a violation among them is still the one
            // reported.
            Err(StoreError::Corrupt { seq, reason }) if seq > from => {
                let before = usize::try_from(seq.0 - from.0).unwrap_or(usize::MAX);
                match read_guarded(|| store.read_raw_into(from, before.min(chunk), &mut records)) {
                    Ok(()) => Some(StoreError::Corrupt { seq, reason }),
                    Err(e) => {
                        records.clear();
                        Some(e)
                    }
                }
            }
            Err(e) => {
                records.clear();
                Some(e)
            }
        };
        let n = records.len();
        from = Seq(from.0.saturating_add(n as u64));
        let decoded = queued.load(Ordering::Relaxed) >= decode_when_queued;
        let mut violation = None;
        for (i, record) in records.iter().enumerate() {
            // The chain first, then the event: the order of one thread's
            // `Auditor::feed`, so the same rule is named for a record.
            let checked = verifier.check(record).and_then(|()| {
                if decoded {
                    events.push(decode_event(record)?);
                }
                Ok(())
            });
            if let Err(v) = checked {
                violation = Some((i, v));
                break;
            }
        }
        let violation = violation.map(|(i, v)| {
            records.truncate(i);
            v
        });
        if !records.is_empty() {
            // Counted before it is sent, so the replay's count never
            // goes below zero.
            queued.fetch_add(1, Ordering::Relaxed);
            let handed = Chunk {
                records,
                events,
                decoded,
            };
            if sender.send(Stage1::Records(handed)).is_err() {
                return verifier;
            }
        }
        if let Some(v) = violation {
            let _ = sender.send(Stage1::Violation(v));
            return verifier;
        }
        if let Some(error) = failure {
            let _ = sender.send(Stage1::Failed { at: from, error });
            return verifier;
        }
        if n < chunk {
            return verifier;
        }
    }
}

/// Audits the redb log of `opts.log`.
pub fn run_audit(opts: AuditOptions) -> Result<AuditReport, AuditError> {
    let sharing = opts.writer_sharing;
    let mut opened = read_guarded(|| RedbStore::open_read_only(&opts.log, sharing));
    if opts.verify_integrity && opened.is_ok() {
        // The plain open first: it tells a crashed writer's file
        // (`NeedsRepair`, which the caller repairs a copy of) from one that
        // fails the check.
        drop(opened);
        opened = read_guarded(|| RedbStore::open_verified(&opts.log));
    }
    let store = match opened {
        Ok(store) => store,
        // Evidence, not an I/O error: a damaged or altered file is never
        // read as a shorter log, nor waved through as unreadable.
        Err(StoreError::NotALog(why)) => {
            let violation = Violation::new(
                Seq(1),
                None,
                Rule::LogUnreadable,
                format!("the log file is not as the issuer writes it: {why}"),
            );
            let signatures_checked = opts.checkpoint_verifier.is_some();
            return Ok(early_report(
                &opts,
                Outcome::Violation(violation),
                Instant::now(),
                signatures_checked,
            ));
        }
        Err(source) => {
            return Err(AuditError::OpenLog {
                path: opts.log.clone(),
                source,
            });
        }
    };
    audit_store(&store, opts)
}

/// The report of an audit that ended before reading any record.
fn early_report(
    opts: &AuditOptions,
    outcome: Outcome,
    started: Instant,
    signatures_checked: bool,
) -> AuditReport {
    let replay = TransactionReplay::new(
        Head {
            last_seq: Seq(0),
            last_hash: ledger::Hash32::GENESIS,
        },
        LedgerState::default(),
        crate::stats::Stats::default(),
        None,
    );
    build_report(opts, &replay, outcome, None, 0, started, signatures_checked)
}

/// Audits any store that hands out its records as stored.
pub fn audit_store(
    store: &impl RawEventStore,
    mut opts: AuditOptions,
) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    if opts.bank_statement.is_some() && opts.from_checkpoint.is_some() {
        return Err(AuditError::BankStatementNeedsWholeLog);
    }
    let verifier = opts.checkpoint_verifier.take();
    let signatures_checked = verifier.is_some();
    if let (Some(head), Some(verify)) = (&opts.expect_head, &verifier)
        && !head.verify_with(|message, signature| verify(message, signature))
    {
        return Err(AuditError::ExpectedHeadForged(head.seq));
    }
    // The head only sizes the progress bar and tells an empty log: if its
    // record cannot be read, the reading below names it at its seq.
    let head_seq = read_guarded(|| store.head()).map(|head| head.last_seq);
    let log_is_empty = matches!(head_seq, Ok(Seq(0)));
    let head_seq = head_seq.unwrap_or(Seq(0));
    let auditor_now = opts.now.unwrap_or_else(Timestamp::now);
    let (mut auditor, resumed_from) = match &opts.from_checkpoint {
        None => (Auditor::new(verifier), None),
        Some(path) => {
            let snapshot =
                AuditSnapshot::read_file(path).map_err(|source| AuditError::Checkpoint {
                    path: path.clone(),
                    source,
                })?;
            let at = snapshot.seq;
            if let Some(violation) = check_history(store, &snapshot)? {
                let replay = TransactionReplay::resume(
                    snapshot.head(),
                    snapshot.state,
                    snapshot.stats,
                    snapshot.signed_through,
                    None,
                );
                let report = build_report(
                    &opts,
                    &replay,
                    Outcome::Violation(violation),
                    Some(at),
                    0,
                    started,
                    signatures_checked,
                );
                return Ok(report);
            }
            (Auditor::resume(snapshot, verifier), Some(at))
        }
    };
    auditor.set_auditor_now(Some(auditor_now));
    auditor.set_allow_unsigned_tail(opts.allow_unsigned_tail);
    if log_is_empty && resumed_from.is_none() && opts.expect_head.is_none() {
        let (_, replay) = auditor.into_stages();
        return Ok(build_report(
            &opts,
            &replay,
            Outcome::NothingToAudit,
            None,
            0,
            started,
            signatures_checked,
        ));
    }
    let plan = ReadPlan {
        chunk: opts.read_chunk_records.max(1),
        decode_when_queued: opts.decode_on_reader_when_queued,
    };
    let first = auditor.next_seq();
    let (mut record_verifier, mut replay) = auditor.into_stages();
    record_verifier.reserve_for_records(head_seq.0.saturating_sub(first.0.saturating_sub(1)));
    if opts.bank_statement.is_some() {
        replay.expect_bank_statement();
    }
    let mut records_read: u64 = 0;
    let mut outcome = None;
    // Reading and the chain run on their own thread, a few chunks ahead of
    // the rules (decoding goes to either): on two cores the audit then
    // costs the slower stage, not their sum. `queued`: chunks sent to the
    // replay and not yet taken (see `read_and_verify`).
    let queued = AtomicUsize::new(0);
    let queued = &queued;
    let record_verifier = std::thread::scope(|scope| -> Option<RecordVerifier> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(READ_AHEAD_CHUNKS);
        let (recycle, recycled) = std::sync::mpsc::sync_channel(READ_AHEAD_CHUNKS + 1);
        let reader = scope.spawn(move || {
            read_and_verify(
                store,
                record_verifier,
                first,
                plan,
                sender,
                recycled,
                queued,
            )
        });
        for item in &receiver {
            match item {
                Stage1::Records(chunk) => {
                    queued.fetch_sub(1, Ordering::Relaxed);
                    let last_seq = chunk.records.last().map(|r| r.seq);
                    let applied = if chunk.decoded {
                        replay.apply_decoded(&chunk.records, &chunk.events, &mut records_read)
                    } else {
                        replay.apply_records(&chunk.records, &mut records_read)
                    };
                    if let Err(v) = applied {
                        outcome = Some(Outcome::Violation(v));
                        break;
                    }
                    if let (Some(progress), Some(seq)) = (opts.progress.as_mut(), last_seq) {
                        progress(Progress {
                            records_read,
                            seq,
                            head_seq,
                        });
                    }
                    // Never waits: a full recycle queue just drops the chunk.
                    let _ = recycle.try_send(chunk);
                }
                Stage1::Violation(v) => {
                    records_read += 1;
                    outcome = Some(Outcome::Violation(v));
                    break;
                }
                // A record whose stored form cannot even be parsed fails the
                // chain at that record: it is evidence, not an I/O error.
                Stage1::Failed {
                    error: StoreError::Corrupt { seq, reason },
                    ..
                } => {
                    outcome = Some(Outcome::Violation(Violation::new(
                        seq,
                        None,
                        Rule::ChainBroken,
                        format!("record unreadable: {reason}"),
                    )));
                    break;
                }
                Stage1::Failed { at, error } => {
                    outcome = Some(Outcome::Violation(Violation::new(
                        at,
                        None,
                        Rule::LogUnreadable,
                        format!("reading the log failed at this record: {error}"),
                    )));
                    break;
                }
            }
        }
        // Dropping the receiver stops the reader.
        drop(receiver);
        reader.join().ok()
    });
    let mut record_verifier = record_verifier;
    let mut outcome = outcome.unwrap_or_else(|| Outcome::from(replay.verdict()));
    // Repeated transaction ids are found now, by one sort (see `TxIds`),
    // and named if they come first in the log.
    if let Some(verifier) = record_verifier.as_mut() {
        let found = match &outcome {
            Outcome::Violation(v) => Some(v),
            _ => None,
        };
        if let Some(repeat) = earliest_with_repeats(verifier.tx_ids(), found) {
            outcome = Outcome::Violation(repeat);
        }
    }
    if matches!(outcome, Outcome::Holds | Outcome::Truncated { .. })
        && let Some(head) = &opts.expect_head
        && let Some(violation) = check_expected_head(store, replay.boundary(), head)?
    {
        outcome = Outcome::Violation(violation);
    }
    if matches!(outcome, Outcome::Holds)
        && let (Some(statement), Some(expected)) =
            (&opts.bank_statement, replay.bank_expectations())
        && let Err(violation) = expected.reconcile(statement, replay.boundary().last_seq)
    {
        outcome = Outcome::Violation(violation);
    }
    if matches!(outcome, Outcome::Holds) {
        for check in &opts.projection_checks {
            match check.compare(replay.state(), replay.boundary(), store) {
                Ok(()) => {}
                Err(ProjectionDifference::Differs(difference)) => {
                    outcome = Outcome::Violation(Violation::new(
                        replay.boundary().last_seq,
                        None,
                        Rule::ProjectionMismatch,
                        format!("projection {}: {difference}", check.name()),
                    ));
                    break;
                }
                Err(ProjectionDifference::Unreadable(reason)) => {
                    return Err(AuditError::Projection {
                        name: check.name().to_string(),
                        reason,
                    });
                }
            }
        }
    }
    if !matches!(outcome, Outcome::Violation(_))
        && let Some(path) = &opts.write_checkpoint
    {
        let boundary = replay.boundary().last_seq;
        let transactions = record_verifier
            .as_mut()
            .map(|v| v.tx_ids().sorted_through(boundary))
            .unwrap_or_default();
        let snapshot = replay.snapshot(transactions);
        snapshot
            .write_file(path)
            .map_err(|source| AuditError::Checkpoint {
                path: path.clone(),
                source,
            })?;
        info!(seq = snapshot.seq.0, "audit checkpoint written");
    }
    if let Outcome::Violation(v) = &outcome {
        warn!(
            seq = v.seq.0,
            rule = v.rule.name(),
            "audit found a violation"
        );
    }
    Ok(build_report(
        &opts,
        &replay,
        outcome,
        resumed_from,
        records_read,
        started,
        signatures_checked,
    ))
}

/// The log must reach the issuer's published head with the hash it signed;
/// `boundary` is where the audited log's last complete transaction ends.
fn check_expected_head(
    store: &impl RawEventStore,
    boundary: Head,
    head: &Checkpoint,
) -> Result<Option<Violation>, AuditError> {
    if boundary.last_seq < head.seq {
        return Ok(Some(Violation::new(
            Seq(boundary.last_seq.0.saturating_add(1)),
            None,
            Rule::HeadNotReached,
            format!(
                "the log ends at record {}, before the head the issuer signed at record {}",
                boundary.last_seq, head.seq
            ),
        )));
    }
    let found = match read_guarded(|| store.read_raw(head.seq, 1)) {
        Ok(records) => records.first().map(|r| (r.seq, r.hash)),
        Err(_) => None,
    };
    Ok(match found {
        Some((seq, hash)) if seq == head.seq && hash == head.hash => None,
        _ => Some(Violation::new(
            head.seq,
            None,
            Rule::HeadNotReached,
            format!(
                "record {} does not have the hash the issuer signed for it: history was rewritten",
                head.seq
            ),
        )),
    })
}

/// The record where the previous audit stopped must still be there with the
/// same hash; otherwise history was rewritten behind the checkpoint.
fn check_history(
    store: &impl RawEventStore,
    snapshot: &AuditSnapshot,
) -> Result<Option<Violation>, AuditError> {
    if snapshot.seq.0 == 0 {
        return Ok(None);
    }
    let records = match read_guarded(|| store.read_raw(snapshot.seq, 1)) {
        Ok(records) => records,
        Err(StoreError::Corrupt { .. }) => Vec::new(),
        Err(e) => return Err(AuditError::Read(e)),
    };
    let violation = |detail: String| {
        Some(Violation::new(
            snapshot.seq,
            None,
            Rule::HistoryRewritten,
            detail,
        ))
    };
    Ok(match records.first() {
        Some(r) if r.seq == snapshot.seq && r.hash == snapshot.hash => None,
        Some(r) => violation(format!(
            "record {} now has hash {}, the previous audit verified {}",
            snapshot.seq, r.hash, snapshot.hash
        )),
        None => violation(format!(
            "the log no longer reaches record {}, where the previous audit stopped",
            snapshot.seq
        )),
    })
}

fn build_report(
    opts: &AuditOptions,
    auditor: &TransactionReplay,
    outcome: Outcome,
    resumed_from: Option<Seq>,
    records_read: u64,
    started: Instant,
    signatures_checked: bool,
) -> AuditReport {
    let state = auditor.state();
    let boundary = auditor.boundary();
    let mut notes = Vec::new();
    if !signatures_checked {
        notes.push("checkpoint signatures were not verified: no issuer key was given; checkpoint hashes were checked against the chain".to_string());
    }
    if !signatures_checked {
        notes.push("coverage (\"signed through\") counts checkpoints whose place and hash match the chain; without the issuer's key their signatures prove nothing".to_string());
    }
    match &opts.expect_head {
        Some(head) => notes.push(format!(
            "the log was held to the issuer's published head at record {}{}",
            head.seq,
            if signatures_checked {
                ", whose signature verifies"
            } else {
                " (its signature not verified)"
            }
        )),
        None => notes.push("no published head was given (--expect-head): a log cut after its last checkpoint would not be noticed".to_string()),
    }
    if let Some(statement) = &opts.bank_statement
        && matches!(outcome, Outcome::Holds)
    {
        notes.push(format!(
            "the bank's statement reconciles with the log: {} entries, every settled purchase and redemption matched",
            statement.entries.len()
        ));
    }
    if opts.allow_unsigned_tail > 0 {
        notes.push(format!(
            "up to {} records past the last checkpoint were accepted unsigned (--allow-unsigned-tail)",
            opts.allow_unsigned_tail
        ));
    }
    if opts.projection_checks.is_empty() {
        notes.push("no projection files were given: the issuer's projections were not compared with the replay".to_string());
    } else if matches!(outcome, Outcome::Holds) {
        let names: Vec<&str> = opts.projection_checks.iter().map(|c| c.name()).collect();
        notes.push(format!(
            "the issuer's projections equal the replay: {}",
            names.join(", ")
        ));
    }
    AuditReport {
        log: opts.log.display().to_string(),
        outcome,
        resumed_from,
        audited_through: boundary.last_seq,
        signed_through: auditor.signed_through(),
        unsigned_records: auditor.unsigned_records(),
        audited_through_hash: boundary.last_hash.to_string(),
        records_read_this_run: records_read,
        totals: state.totals,
        unspent_coins: state.coins.n_unspent() as u64,
        stats: auditor.stats().clone(),
        epochs: AuditReport::epochs_of(state),
        card_servers: AuditReport::card_servers_of(state),
        signatures_checked,
        notes,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}
