//! [`Auditor`]: the pure state machine of an audit. It is fed the log's
//! records in order, exactly as stored, and stops at the first broken rule.
//! No I/O happens here: reading the log and the checkpoint file is
//! [`crate::run`]'s job. Time comes from the log itself: every record
//! carries its transaction's time (`RawRecord::at`), and the expiry, grace,
//! erasure-time and log-time rules judge each transaction at it.
//!
//! It runs in two stages, which [`crate::run`] puts on two threads (they
//! cost about the same, so the pipeline runs at the speed of either):
//! - [`RecordVerifier`], per record: the chain ([`ledger::ChainVerifier`],
//!   over the stored bytes: sequence, links, hashes, batch positions), and
//!   per transaction its id noted in [`TxIds`], whose one sort at the end
//!   finds any id committed twice (`transaction_twice`, named in log
//!   order among the other violations);
//! - [`TransactionReplay`], per record: the event's decoding (unless the
//!   reading thread decoded it: [`crate::run`] gives decoding to whichever
//!   thread has time), and for a checkpoint its place, its hash against the
//!   chain and its signature; per
//!   transaction (a whole batch): the money rules (`txn.rs`) over the
//!   replay state, and the report's counters.
//!
//! Coverage: a checkpoint vouches for the record just before it (it is a
//! transaction of its own), so each one verified extends "signed through"
//! to its own record. The records after the last one are unsigned; more of
//! them than the audit allows break `unsigned_records` at the first.

use ledger::{
    ChainError, ChainVerifier, Checkpoint, Event, EventDecodeError, Hash32, Head, RawRecord, Seq,
    Timestamp, TxId,
};

use crate::bank::BankExpectations;
use crate::constants::TX_IDS_RESERVE_MAX;
use crate::rule::{Rule, Violation};
use crate::snapshot::AuditSnapshot;
use crate::state::LedgerState;
use crate::stats::{Stats, TxPlace};
use crate::txids::TxIds;
use crate::txn::{TxContext, apply_transaction};

/// Checks a checkpoint signature: `verify(message, signature)`. Built by the
/// caller from the issuer's public key (the auditor holds no key material).
pub type CheckpointVerifier = Box<dyn Fn(&[u8], &[u8]) -> bool + Send + Sync>;

/// How an audit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every rule held.
    Holds,
    /// The first broken rule.
    Violation(Violation),
    /// The log ends inside a batch: the records from `batch_first_seq` on are
    /// an incomplete transaction (a crash or a partial copy, not fraud).
    /// Every rule held up to the last complete batch.
    Truncated {
        batch_first_seq: Seq,
        records_present: u16,
        batch_len: u16,
    },
}

/// Stage one: the chain, per record, and each transaction's id noted (see
/// [`TxIds`]: repeats are found when the audit ends). See the module docs.
#[derive(Debug, Clone)]
pub struct RecordVerifier {
    chain: ChainVerifier,
    tx_ids: TxIds,
}

impl RecordVerifier {
    /// A verifier expecting the record after `trusted` (the genesis head for
    /// a whole log, or where a previous audit stopped), with the ids of the
    /// transactions committed up to it.
    pub fn new(trusted: Head, tx_ids: TxIds) -> RecordVerifier {
        RecordVerifier {
            chain: ChainVerifier::resume(trusted),
            tx_ids,
        }
    }

    /// The next sequence number expected.
    pub fn next_seq(&self) -> Seq {
        Seq(self.chain.head().last_seq.0.saturating_add(1))
    }

    /// Makes room for about `n_records / 2` transaction ids (at most
    /// [`TX_IDS_RESERVE_MAX`]), so the list does not grow while reading.
    pub fn reserve_for_records(&mut self, n_records: u64) {
        let estimate = usize::try_from(n_records / 2).unwrap_or(usize::MAX);
        self.tx_ids.reserve(estimate.min(TX_IDS_RESERVE_MAX));
    }

    /// Checks one record's place in the chain and, at the first record of
    /// a transaction, notes its id.
    pub fn check(&mut self, record: &RawRecord) -> Result<(), Violation> {
        self.chain
            .feed(record)
            .map_err(|e| chain_violation(&e, record))?;
        if record.batch_index == 0 {
            self.tx_ids.push(record.tx, record.seq);
        }
        Ok(())
    }

    /// The transaction ids, to find repeats in and to keep.
    pub fn tx_ids(&mut self) -> &mut TxIds {
        &mut self.tx_ids
    }
}

/// `transaction_twice` at the first record of the earliest repeated
/// transaction in `tx_ids`, unless `found` (the audit's first other
/// violation) comes before it in the log.
pub fn earliest_with_repeats(tx_ids: &mut TxIds, found: Option<&Violation>) -> Option<Violation> {
    let (seq, tx) = tx_ids.first_repeat()?;
    if found.is_some_and(|v| v.seq < seq) {
        return None;
    }
    Some(Violation::new(
        seq,
        Some(tx),
        Rule::TransactionTwice,
        format!("transaction {tx} committed a second time"),
    ))
}

/// Stage two: decoding, checkpoints, and the money rules per transaction.
/// See the module docs.
pub struct TransactionReplay {
    checkpoint_verifier: Option<CheckpointVerifier>,
    /// The latest checkpoint's own record: every record up to it is vouched
    /// for by a verified checkpoint.
    signed_through: Seq,
    /// How many records past `signed_through` the verdict accepts.
    allow_unsigned_tail: u64,
    /// What the bank's statement must show, when one is to be reconciled.
    bank: Option<BankExpectations>,
    state: LedgerState,
    stats: Stats,
    /// Head at the end of the last complete transaction.
    boundary: Head,
    pending: Vec<Event>,
    /// Events this thread decoded for [`TransactionReplay::apply_records`],
    /// kept to reuse the allocation.
    decoded: Vec<Event>,
    pending_first: Seq,
    pending_open: bool,
    pending_len: u16,
    /// The time of the transaction being gathered (one per batch, which
    /// the chain verifier checked).
    pending_at: Timestamp,
    /// The auditor's own clock (see [`TransactionReplay::set_auditor_now`]).
    auditor_now: Option<Timestamp>,
}

impl std::fmt::Debug for TransactionReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionReplay")
            .field("boundary", &self.boundary)
            .field("signed_through", &self.signed_through)
            .field("signatures", &self.checkpoint_verifier.is_some())
            .finish_non_exhaustive()
    }
}

impl TransactionReplay {
    /// A replay that starts after `boundary` with `state` and `stats`,
    /// checking checkpoint signatures with `checkpoint_verifier` if given.
    pub fn new(
        boundary: Head,
        state: LedgerState,
        stats: Stats,
        checkpoint_verifier: Option<CheckpointVerifier>,
    ) -> TransactionReplay {
        TransactionReplay::resume(boundary, state, stats, Seq(0), checkpoint_verifier)
    }

    /// Like [`TransactionReplay::new`], with the records up to
    /// `signed_through` vouched for by a checkpoint already verified.
    pub fn resume(
        boundary: Head,
        state: LedgerState,
        stats: Stats,
        signed_through: Seq,
        checkpoint_verifier: Option<CheckpointVerifier>,
    ) -> TransactionReplay {
        TransactionReplay {
            checkpoint_verifier,
            signed_through: signed_through.min(boundary.last_seq),
            allow_unsigned_tail: 0,
            bank: None,
            state,
            stats,
            boundary,
            pending: Vec::new(),
            decoded: Vec::new(),
            pending_first: Seq(boundary.last_seq.0.saturating_add(1)),
            pending_open: false,
            pending_len: 0,
            pending_at: Timestamp(0),
            auditor_now: None,
        }
    }

    /// Judges log time also against the auditor's own clock reading `now`
    /// (rule `log_time_in_future`); without it that rule is not checked.
    pub fn set_auditor_now(&mut self, now: Option<Timestamp>) {
        self.auditor_now = now;
    }

    /// The auditor's clock reading log time is judged against, if any.
    pub fn auditor_now(&self) -> Option<Timestamp> {
        self.auditor_now
    }

    /// Whether checkpoint signatures are checked.
    pub fn verifies_signatures(&self) -> bool {
        self.checkpoint_verifier.is_some()
    }

    /// Accepts up to `n_records` records past the last checkpoint (an
    /// audit of a live issuer, whose newest records await their
    /// checkpoint); by default none.
    pub fn set_allow_unsigned_tail(&mut self, n_records: u64) {
        self.allow_unsigned_tail = n_records;
    }

    /// The last record vouched for by a verified checkpoint.
    pub fn signed_through(&self) -> Seq {
        self.signed_through
    }

    /// Gathers what a bank statement must show (see [`crate::bank`]).
    pub fn expect_bank_statement(&mut self) {
        self.bank.get_or_insert_with(BankExpectations::default);
    }

    /// What the bank's statement must show, if gathered.
    pub fn bank_expectations(&self) -> Option<&BankExpectations> {
        self.bank.as_ref()
    }

    /// Records of complete transactions past [`Self::signed_through`].
    pub fn unsigned_records(&self) -> u64 {
        self.boundary
            .last_seq
            .0
            .saturating_sub(self.signed_through.0)
    }

    /// Applies one record that passed a [`RecordVerifier`], in log order; a
    /// transaction's rules run when its last record arrives.
    pub fn apply(&mut self, record: &RawRecord) -> Result<(), Violation> {
        let event = decode_event(record)?;
        self.note_record(record, &event)?;
        self.pending.push(event);
        if record.batch_index + 1 == record.batch_len {
            let mut pending = std::mem::take(&mut self.pending);
            let result = self.finish_transaction(record.seq, record.tx, record.hash, &pending);
            pending.clear();
            self.pending = pending;
            result?;
        }
        Ok(())
    }

    /// Applies a chunk of records that passed a [`RecordVerifier`], in log
    /// order, whose events were decoded already (`events[i]` is
    /// `records[i]`'s, by [`decode_event`]), counting each record it takes
    /// in `applied`. The events are only borrowed: a transaction inside the
    /// chunk is judged on its slice of `events`, so whoever decoded them
    /// also frees them (the reading thread, see [`crate::run`]); only a
    /// transaction cut by the chunk's end is copied, to finish in the next.
    pub fn apply_decoded(
        &mut self,
        records: &[RawRecord],
        events: &[Event],
        applied: &mut u64,
    ) -> Result<(), Violation> {
        // Where the open transaction starts in this chunk, unless it began
        // in an earlier one (its events are then in `pending`).
        let mut start = 0;
        let mut carried = self.pending_open;
        for (i, (record, event)) in records.iter().zip(events).enumerate() {
            *applied += 1;
            self.note_record(record, event)?;
            if record.batch_index == 0 {
                start = i;
                carried = false;
            }
            if record.batch_index + 1 != record.batch_len {
                continue;
            }
            if carried {
                let mut pending = std::mem::take(&mut self.pending);
                pending.extend_from_slice(&events[..=i]);
                let result = self.finish_transaction(record.seq, record.tx, record.hash, &pending);
                pending.clear();
                self.pending = pending;
                result?;
                carried = false;
            } else {
                self.finish_transaction(record.seq, record.tx, record.hash, &events[start..=i])?;
            }
        }
        if self.pending_open {
            let from = if carried { 0 } else { start };
            let to = records.len().min(events.len());
            self.pending.extend_from_slice(&events[from..to]);
        }
        Ok(())
    }

    /// Applies a chunk of records that passed a [`RecordVerifier`], in log
    /// order, decoding their events here (like [`TransactionReplay::apply`]
    /// per record), counting each record it takes in `applied`.
    pub fn apply_records(
        &mut self,
        records: &[RawRecord],
        applied: &mut u64,
    ) -> Result<(), Violation> {
        let mut decoded = std::mem::take(&mut self.decoded);
        let mut undecodable = None;
        for record in records {
            match decode_event(record) {
                Ok(event) => decoded.push(event),
                Err(v) => {
                    undecodable = Some(v);
                    break;
                }
            }
        }
        // The records before an undecodable one are judged first: a
        // violation among them is the earlier one.
        let n = decoded.len();
        let result = self
            .apply_decoded(&records[..n], &decoded, applied)
            .and_then(|()| match undecodable {
                Some(v) => {
                    *applied += 1;
                    Err(v)
                }
                None => Ok(()),
            });
        decoded.clear();
        self.decoded = decoded;
        result
    }

    /// The per-record part of [`TransactionReplay::apply`]: a checkpoint's
    /// place, hash and signature, and the start of a transaction.
    fn note_record(&mut self, record: &RawRecord, event: &Event) -> Result<(), Violation> {
        if let Event::Checkpoint(checkpoint) = event {
            self.check_checkpoint(record, checkpoint)?;
            self.signed_through = record.seq;
        }
        if record.batch_index == 0 {
            self.pending.clear();
            self.pending_first = record.seq;
            self.pending_open = true;
            self.pending_len = record.batch_len;
            self.pending_at = record.at;
        }
        Ok(())
    }

    /// A checkpoint is a transaction of its own and vouches for the record
    /// just before it, whose hash the chain verifier has checked as this
    /// record's `prev_hash`: so checkpoints strictly advance, and a genuine
    /// one copied to a later place vouches for the wrong record.
    fn check_checkpoint(
        &self,
        record: &RawRecord,
        checkpoint: &Checkpoint,
    ) -> Result<(), Violation> {
        let violation =
            |rule, detail: String| Violation::new(record.seq, Some(record.tx), rule, detail);
        if checkpoint.seq >= record.seq {
            return Err(violation(
                Rule::CheckpointMismatch,
                format!("checkpoint vouches for {}, not yet written", checkpoint.seq),
            ));
        }
        if record.batch_len != 1 {
            return Err(violation(
                Rule::CheckpointMisplaced,
                format!(
                    "a checkpoint is a transaction of its own; this one shares its transaction with {} other records",
                    record.batch_len.saturating_sub(1)
                ),
            ));
        }
        let just_before = Seq(record.seq.0.saturating_sub(1));
        if checkpoint.seq != just_before {
            return Err(violation(
                Rule::CheckpointMisplaced,
                format!(
                    "checkpoint vouches for record {}, not the record just before it ({just_before}): checkpoints must strictly advance",
                    checkpoint.seq
                ),
            ));
        }
        if checkpoint.hash != record.prev_hash {
            return Err(violation(
                Rule::CheckpointMismatch,
                format!(
                    "checkpoint's hash for {} is not the chain's",
                    checkpoint.seq
                ),
            ));
        }
        if let Some(verify) = &self.checkpoint_verifier
            && !checkpoint.verify_with(|message, signature| verify(message, signature))
        {
            return Err(violation(
                Rule::CheckpointSignatureInvalid,
                format!(
                    "signature of the checkpoint of {} does not verify under the issuer's key",
                    checkpoint.seq
                ),
            ));
        }
        Ok(())
    }

    fn finish_transaction(
        &mut self,
        last_seq: Seq,
        tx: TxId,
        hash: Hash32,
        events: &[Event],
    ) -> Result<(), Violation> {
        let ctx = TxContext {
            first_seq: self.pending_first,
            tx,
            now: self.pending_at,
            auditor_now: self.auditor_now,
        };
        let flows = apply_transaction(&mut self.state, events, ctx)?;
        if let Some(bank) = &mut self.bank {
            bank.note_transaction(self.pending_first, tx, events);
        }
        for (i, event) in events.iter().enumerate() {
            self.stats.count_event(event.kind());
            self.stats
                .note_disclosure(Seq(self.pending_first.0 + i as u64), event);
            if matches!(event, Event::Checkpoint(_)) {
                self.stats.checkpoints_verified += 1;
                if self.checkpoint_verifier.is_some() {
                    self.stats.checkpoint_signatures_verified += 1;
                }
            }
        }
        self.stats.observe_transaction(
            TxPlace {
                first_seq: self.pending_first,
                last_seq,
                tx,
                at: self.pending_at,
            },
            || {
                let mut kinds: Vec<&str> = events.iter().map(Event::kind).collect();
                kinds.dedup();
                kinds.join("+")
            },
            &flows,
            &self.state.totals,
        );
        self.pending_open = false;
        self.boundary = Head {
            last_seq,
            last_hash: hash,
        };
        Ok(())
    }

    /// Where the replay stands: holds, or truncated inside a transaction,
    /// unless more records than allowed lie past the last checkpoint.
    pub fn verdict(&self) -> Verdict {
        if self.unsigned_records() > self.allow_unsigned_tail {
            let first = Seq(self.signed_through.0.saturating_add(1));
            let detail = format!(
                "records {first} to {} ({} records) are vouched for by no verified checkpoint; at most {} may be unsigned",
                self.boundary.last_seq,
                self.unsigned_records(),
                self.allow_unsigned_tail
            );
            return Verdict::Violation(Violation::new(first, None, Rule::UnsignedRecords, detail));
        }
        if self.pending_open {
            return Verdict::Truncated {
                batch_first_seq: self.pending_first,
                records_present: u16::try_from(self.pending.len()).unwrap_or(u16::MAX),
                batch_len: self.pending_len,
            };
        }
        Verdict::Holds
    }

    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn boundary(&self) -> Head {
        self.boundary
    }

    /// The state to resume from, at the last complete transaction, with
    /// the transaction ids the [`RecordVerifier`] kept up to it (sorted).
    pub fn snapshot(&self, transactions: Vec<TxId>) -> AuditSnapshot {
        AuditSnapshot::new(
            self.boundary,
            self.state.clone(),
            self.stats.clone(),
            self.signed_through,
            transactions,
        )
    }
}

/// Both stages on one thread, stopping at the first violation.
#[derive(Debug)]
pub struct Auditor {
    records: RecordVerifier,
    replay: TransactionReplay,
    violation: Option<Violation>,
}

impl Auditor {
    /// An auditor expecting the first record of a log.
    pub fn new(checkpoint_verifier: Option<CheckpointVerifier>) -> Auditor {
        let genesis = Head {
            last_seq: Seq(0),
            last_hash: Hash32::GENESIS,
        };
        Auditor {
            records: RecordVerifier::new(genesis, TxIds::default()),
            replay: TransactionReplay::new(
                genesis,
                LedgerState::default(),
                Stats::default(),
                checkpoint_verifier,
            ),
            violation: None,
        }
    }

    /// An auditor continuing after a snapshot a previous audit took. The
    /// caller must first check that the log still has the snapshot's hash at
    /// the snapshot's seq ([`AuditSnapshot::head`]).
    pub fn resume(
        snapshot: AuditSnapshot,
        checkpoint_verifier: Option<CheckpointVerifier>,
    ) -> Auditor {
        let head = snapshot.head();
        Auditor {
            records: RecordVerifier::new(head, TxIds::new(snapshot.transactions)),
            replay: TransactionReplay::resume(
                head,
                snapshot.state,
                snapshot.stats,
                snapshot.signed_through,
                checkpoint_verifier,
            ),
            violation: None,
        }
    }

    /// Splits the auditor into its two stages, to run them on two threads.
    pub fn into_stages(self) -> (RecordVerifier, TransactionReplay) {
        (self.records, self.replay)
    }

    /// Judges log time also against the auditor's own clock reading `now`
    /// (see [`TransactionReplay::set_auditor_now`]).
    pub fn set_auditor_now(&mut self, now: Option<Timestamp>) {
        self.replay.set_auditor_now(now);
    }

    /// Whether signatures of checkpoints are checked.
    pub fn verifies_signatures(&self) -> bool {
        self.replay.verifies_signatures()
    }

    /// See [`TransactionReplay::set_allow_unsigned_tail`].
    pub fn set_allow_unsigned_tail(&mut self, n_records: u64) {
        self.replay.set_allow_unsigned_tail(n_records);
    }

    /// The last record vouched for by a verified checkpoint.
    pub fn signed_through(&self) -> Seq {
        self.replay.signed_through()
    }

    /// The next sequence number the auditor expects.
    pub fn next_seq(&self) -> Seq {
        self.records.next_seq()
    }

    pub fn state(&self) -> &LedgerState {
        self.replay.state()
    }

    pub fn stats(&self) -> &Stats {
        self.replay.stats()
    }

    /// The end of the last complete transaction: where a resumed audit starts.
    pub fn boundary(&self) -> Head {
        self.replay.boundary()
    }

    /// Checks the next record. After the first violation every call returns
    /// it again: an audit stops at the first broken rule.
    pub fn feed(&mut self, record: &RawRecord) -> Result<(), Violation> {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        let result = self
            .records
            .check(record)
            .and_then(|()| self.replay.apply(record));
        if let Err(v) = &result {
            self.violation = Some(v.clone());
        }
        result
    }

    /// Ends the audit: the verdict, with the state at the last complete
    /// transaction. A repeated transaction id is found here (see
    /// [`TxIds`]), and named if it comes first in the log.
    pub fn verdict(&self) -> Verdict {
        let found = match &self.violation {
            Some(v) => Verdict::Violation(v.clone()),
            None => self.replay.verdict(),
        };
        let mut tx_ids = self.records.tx_ids.clone();
        let other = match &found {
            Verdict::Violation(v) => Some(v),
            _ => None,
        };
        match earliest_with_repeats(&mut tx_ids, other) {
            Some(repeat) => Verdict::Violation(repeat),
            None => found,
        }
    }

    /// The state to resume from, at the last complete transaction; `None`
    /// after a violation (a broken log is no base for the next audit).
    pub fn snapshot(&self) -> Option<AuditSnapshot> {
        if self.violation.is_some() || matches!(self.verdict(), Verdict::Violation(_)) {
            return None;
        }
        let boundary = self.replay.boundary().last_seq;
        Some(
            self.replay
                .snapshot(self.records.tx_ids.sorted_through(boundary)),
        )
    }
}

/// Decodes a record's event, or names the rule its bytes break.
pub fn decode_event(record: &RawRecord) -> Result<Event, Violation> {
    Event::decode(&record.event_bytes).map_err(|e| {
        let rule = match e {
            EventDecodeError::UnknownVersion(_) => Rule::UnknownEventVersion,
            EventDecodeError::NonCanonical => Rule::NonCanonical,
            _ => Rule::Undecodable,
        };
        Violation::new(record.seq, Some(record.tx), rule, e.to_string())
    })
}

fn chain_violation(e: &ChainError, record: &RawRecord) -> Violation {
    let rule = match e {
        ChainError::SeqGap { .. } => Rule::SequenceGap,
        ChainError::PrevHashMismatch { .. } | ChainError::HashMismatch { .. } => Rule::ChainBroken,
        _ => Rule::BatchMalformed,
    };
    // A record out of place is reported at the position it was read in.
    let seq = match e {
        ChainError::SeqGap { expected, .. } => *expected,
        other => other.seq(),
    };
    Violation::new(seq, Some(record.tx), rule, e.to_string())
}
