//! The rules the auditor enforces, one [`Rule`] per kind of broken promise,
//! and the [`Violation`] that names the first record to break one.

use std::fmt;

use ledger::{Seq, TxId};
use serde::{Deserialize, Serialize, Serializer};

fn tx_as_hex<S: Serializer>(tx: &Option<TxId>, s: S) -> Result<S::Ok, S::Error> {
    match tx {
        Some(tx) => s.serialize_some(&tx.to_string()),
        None => s.serialize_none(),
    }
}

/// A rule of the log that the auditor checks. The order of the variants is
/// the order of gravity in which a report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// Per key epoch, more value was spent than was issued: that epoch's mint
    /// key is compromised (coins were forged with valid tags).
    EpochOverspent,
    /// A record's sequence number is not the previous one plus one.
    SequenceGap,
    /// A record's `prev_hash` or `hash` does not match the chain recomputed
    /// over the stored bytes.
    ChainBroken,
    /// A checkpoint vouches for a hash that is not the chain's hash at its
    /// sequence number (or for a sequence number the log has not reached).
    CheckpointMismatch,
    /// A checkpoint's signature does not verify under the issuer's key.
    CheckpointSignatureInvalid,
    /// A checkpoint does not vouch for the record just before it, or shares
    /// its transaction with other records: an older genuine checkpoint
    /// copied forward, or one moved. Checkpoints must strictly advance.
    CheckpointMisplaced,
    /// Records past the last verified checkpoint ("signed through") that
    /// no signature vouches for, more than the audit allows
    /// (`AuditOptions::allow_unsigned_tail`).
    UnsignedRecords,
    /// The log ends before the head the issuer signed and published
    /// (`AuditOptions::expect_head`), or holds another hash at its seq:
    /// the log was cut or rewritten behind the issuer's latest signature.
    HeadNotReached,
    /// The log file could not be read at this record: a damaged table or
    /// page, a read error, or a panic inside the storage engine (caught).
    LogUnreadable,
    /// The log no longer holds, at the seq where the previous audit's
    /// checkpoint file stopped, the hash that audit verified: history was
    /// rewritten (or cut) behind it.
    HistoryRewritten,
    /// The chain holds but the event bytes do not decode.
    Undecodable,
    /// The event decodes, but its bytes are not the one encoding of its
    /// content (an overlong varint, say): one content, one byte form.
    NonCanonical,
    /// The chain holds but the event is of a version this auditor does not
    /// know: the audit cannot judge it (an error, exit 2, not fraud).
    UnknownEventVersion,
    /// Batch positions are inconsistent (index out of order, length,
    /// transaction or time changing inside a batch).
    BatchMalformed,
    /// A transaction's time lies more than
    /// [`crate::constants::LOG_TIME_SKEW_MAX_SECS`] behind the latest time
    /// already in the log: history re-dated or reordered.
    LogTimeBackwards,
    /// A transaction's time lies more than
    /// [`crate::constants::LOG_TIME_FUTURE_SKEW_MAX_SECS`] ahead of the
    /// auditor's own clock (`AuditOptions::now`): the log is dated in the
    /// future.
    LogTimeInFuture,
    /// A coin was spent (or revoked) twice.
    DoubleSpend,
    /// A coin was spent (or revoked) that was never issued.
    SpentNeverIssued,
    /// A coin was spent with a body (value, expiry, epoch) other than the
    /// one it was issued with.
    CoinAltered,
    /// A coin id was issued a second time.
    CoinIssuedTwice,
    /// A coin was issued under an epoch never opened, or already closed.
    EpochNotOpen,
    /// An expired coin was spent other than by refresh.
    ExpiredSpend,
    /// An expired coin was refreshed after its epoch's grace period.
    RefreshAfterGrace,
    /// A transaction id committed in a second batch: the issuer ran one
    /// request twice (its idempotency failed), whatever the batches hold.
    TransactionTwice,
    /// A coin was revoked (by a refund) after its epoch's grace period,
    /// turning a coin nobody could use any more into fresh value.
    RevokedAfterGrace,
    /// Coins were issued for a purchase without a settled purchase of the
    /// same amount (coins without money).
    CoinsWithoutMoney,
    /// A purchase event does not follow request → settled | rejected, or a
    /// settlement's amount differs from the request.
    PurchaseOutOfOrder,
    /// An epoch was opened twice, with a grace period ending before expiry,
    /// or closed without being open.
    EpochOutOfOrder,
    /// A `SpentCoinsErased` names coins that were not spent (or revoked).
    ErasedUnspent,
    /// A `SpentCoinsErased` count, value or digest differs from the replay.
    ErasureMismatch,
    /// A coin of a revoked epoch left circulation other than by recoup, a
    /// recoup took a coin of an epoch not revoked, the recoups of an epoch
    /// paid out more than it owed when revoked, or a revocation's `owed`
    /// differs from the epoch's unspent value in the replay.
    RevocationBroken,
    /// A `FloatForfeited` count, value or digest differs from the epoch's
    /// unspent coins in the replay, it is not in the batch (after the
    /// `EpochErased`) of its epoch, a revoked epoch forfeits another value
    /// than its recoups still owed, or an erasure leaves coins of its
    /// epoch unspent without forfeiting them.
    ForfeitureMismatch,
    /// A coin of an epoch erased and forfeited left circulation again
    /// (spent, revoked or recouped): nothing of it is redeemable.
    ForfeitedSpent,
    /// More was withdrawn from an aggregate balance than it held.
    AggregateOverdrawn,
    /// A card transaction number was used twice for the same card.
    CardNtReused,
    /// A clearing period was settled twice, or clearings paid a load/unload
    /// server more than was loaded through it (or took more than was unloaded).
    CardFloatMismatch,
    /// A transaction does not balance on its own (value in ≠ value out).
    Unbalanced,
    /// The conservation equation fails, or a stock went negative.
    ConservationBroken,
    /// A projection of the issuer differs from the one rebuilt by replay.
    ProjectionMismatch,
    /// A settled purchase or a redemption in the log has no bank entry of
    /// the same amount in the bank's statement.
    BankEntryMissing,
    /// A bank statement entry that no settled purchase or redemption in the
    /// log explains.
    BankEntryUnexplained,
}

impl Rule {
    /// A stable, lowercase name for reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Rule::EpochOverspent => "epoch_overspent",
            Rule::SequenceGap => "sequence_gap",
            Rule::ChainBroken => "chain_broken",
            Rule::CheckpointMismatch => "checkpoint_mismatch",
            Rule::CheckpointSignatureInvalid => "checkpoint_signature_invalid",
            Rule::CheckpointMisplaced => "checkpoint_misplaced",
            Rule::UnsignedRecords => "unsigned_records",
            Rule::HeadNotReached => "head_not_reached",
            Rule::LogUnreadable => "log_unreadable",
            Rule::HistoryRewritten => "history_rewritten",
            Rule::Undecodable => "undecodable",
            Rule::NonCanonical => "non_canonical",
            Rule::UnknownEventVersion => "unknown_event_version",
            Rule::BatchMalformed => "batch_malformed",
            Rule::LogTimeBackwards => "log_time_backwards",
            Rule::LogTimeInFuture => "log_time_in_future",
            Rule::DoubleSpend => "double_spend",
            Rule::SpentNeverIssued => "spent_never_issued",
            Rule::CoinAltered => "coin_altered",
            Rule::CoinIssuedTwice => "coin_issued_twice",
            Rule::EpochNotOpen => "epoch_not_open",
            Rule::ExpiredSpend => "expired_spend",
            Rule::RefreshAfterGrace => "refresh_after_grace",
            Rule::RevokedAfterGrace => "revoked_after_grace",
            Rule::TransactionTwice => "transaction_twice",
            Rule::CoinsWithoutMoney => "coins_without_money",
            Rule::PurchaseOutOfOrder => "purchase_out_of_order",
            Rule::EpochOutOfOrder => "epoch_out_of_order",
            Rule::ErasedUnspent => "erased_unspent",
            Rule::ErasureMismatch => "erasure_mismatch",
            Rule::RevocationBroken => "revocation_broken",
            Rule::ForfeitureMismatch => "forfeiture_mismatch",
            Rule::ForfeitedSpent => "forfeited_spent",
            Rule::AggregateOverdrawn => "aggregate_overdrawn",
            Rule::CardNtReused => "card_nt_reused",
            Rule::CardFloatMismatch => "card_float_mismatch",
            Rule::Unbalanced => "unbalanced",
            Rule::ConservationBroken => "conservation_broken",
            Rule::ProjectionMismatch => "projection_mismatch",
            Rule::BankEntryMissing => "bank_entry_missing",
            Rule::BankEntryUnexplained => "bank_entry_unexplained",
        }
    }

    /// Whether a log breaking this rule may well be honest, and the audit
    /// simply could not be completed (the CLI exits 2, not 1).
    pub fn is_inconclusive(self) -> bool {
        self == Rule::UnknownEventVersion
    }

    /// Whether this violation means the mint key of an epoch is compromised:
    /// an emergency that a report puts before everything else.
    pub fn is_emergency(self) -> bool {
        self == Rule::EpochOverspent
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Two figures that should agree and do not, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Amounts {
    /// What the log says.
    pub found_minor: i128,
    /// What the replay says it should be.
    pub expected_minor: i128,
}

/// The first broken rule: where, in which transaction, which rule, and the
/// amounts (in minor units) that disagree, when the rule is about money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub seq: Seq,
    /// The transaction of the offending record, when it could be read.
    #[serde(serialize_with = "tx_as_hex")]
    pub tx: Option<TxId>,
    pub rule: Rule,
    /// The disagreeing figures, when the rule is about money.
    pub amounts: Option<Amounts>,
    /// A sentence for the report: ids and figures, never an identity.
    pub detail: String,
}

impl Violation {
    pub fn new(seq: Seq, tx: Option<TxId>, rule: Rule, detail: impl Into<String>) -> Self {
        Violation {
            seq,
            tx,
            rule,
            amounts: None,
            detail: detail.into(),
        }
    }

    pub fn amounts(mut self, found_minor: i128, expected_minor: i128) -> Self {
        self.amounts = Some(Amounts {
            found_minor,
            expected_minor,
        });
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: rule {} broken", self.seq, self.rule)?;
        if let Some(tx) = &self.tx {
            write!(f, " in transaction {tx}")?;
        }
        write!(f, ": {}", self.detail)?;
        if let Some(a) = self.amounts {
            write!(
                f,
                " (found {}, expected {})",
                crate::report::format_minor(a.found_minor),
                crate::report::format_minor(a.expected_minor)
            )?;
        }
        Ok(())
    }
}
