//! The auditor: replays the issuer's log on the auditor's own machine and
//! proves that cash was conserved, holding no mint key and no user-index key.
//!
//! Data flow: [`run_audit`] opens a redb log read-only (or [`audit_store`]
//! takes any [`ledger::RawEventStore`]), optionally resumes from an
//! [`AuditSnapshot`] file, and streams the records, as stored, through an
//! [`Auditor`]: a pure state machine that checks the hash chain
//! ([`ledger::ChainVerifier`]), checkpoints and their signatures, then, per
//! transaction, the money rules ([`Rule`]) with `ledger::conservation`. The
//! result is an [`AuditReport`] rendered as text, JSON or HTML, whose
//! [`AuditReport::exit_code`] is the CLI's exit status.
//!
//! **Invariant:** the auditor uses the issuer's own balance and
//! conservation functions (`ledger::Flows::check_balanced`,
//! `ledger::Totals::apply`); it never has a second rule for them.

pub mod auditor;
pub mod bank;
pub mod coins;
pub mod constants;
pub mod html;
pub mod logtime;
pub mod projection_check;
pub mod report;
pub mod rule;
pub mod run;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod txids;
mod txn;

pub use auditor::{Auditor, CheckpointVerifier, RecordVerifier, TransactionReplay, Verdict};
pub use bank::{BankEntry, BankStatement, BankStatementError};
pub use coins::{CoinEntry, CoinTable};
pub use projection_check::{AccountsFile, CoinStatusFile};
pub use report::{AuditReport, EXIT_ERROR, EXIT_HOLDS, EXIT_VIOLATION, Outcome, format_minor};
pub use rule::{Amounts, Rule, Violation};
pub use run::{
    AuditError, AuditOptions, Progress, ProgressCallback, ProjectionCheck, ProjectionDifference,
    audit_store, run_audit,
};
pub use snapshot::{AuditSnapshot, SnapshotError};
pub use state::LedgerState;
pub use stats::Stats;
pub use txn::erased_digest;
