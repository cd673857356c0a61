//! [`AuditReport`]: what an audit found, for a person ([`AuditReport::to_text`],
//! [`AuditReport::to_html`]) and for a machine ([`AuditReport::to_json`]),
//! and the exit status the CLI returns for it.

use std::fmt::Write as _;

use ledger::{Seq, Totals};
use serde::Serialize;

use crate::auditor::Verdict;
use crate::logtime::format_utc;
use crate::rule::Violation;
use crate::state::LedgerState;
use crate::stats::Stats;

/// Exit status: every rule holds.
pub const EXIT_HOLDS: u8 = 0;
/// Exit status: a rule is broken (the report names the first violation).
pub const EXIT_VIOLATION: u8 = 1;
/// Exit status: the audit could not be completed (unreadable log, damaged
/// checkpoint file, or a log that ends inside a transaction).
pub const EXIT_ERROR: u8 = 2;

/// The outcome, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Holds,
    Violation(Violation),
    /// The log ends inside a transaction; everything before it holds.
    Truncated {
        batch_first_seq: Seq,
        records_present: u16,
        batch_len: u16,
    },
    /// The log holds no record: nothing was proved, so nothing passed.
    NothingToAudit,
}

impl From<Verdict> for Outcome {
    fn from(v: Verdict) -> Outcome {
        match v {
            Verdict::Holds => Outcome::Holds,
            Verdict::Violation(v) => Outcome::Violation(v),
            Verdict::Truncated {
                batch_first_seq,
                records_present,
                batch_len,
            } => Outcome::Truncated {
                batch_first_seq,
                records_present,
                batch_len,
            },
        }
    }
}

/// One key epoch in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EpochReport {
    pub epoch: u32,
    pub issued_minor: u128,
    pub spent_minor: u128,
    pub closed: bool,
    pub erasures: u32,
    /// Revoked: what its recoups may still pay out, in minor units.
    pub revoked_still_owed_minor: Option<u128>,
    /// Erased: its coins still unspent then, forfeited, and their value.
    pub n_forfeited: u64,
    pub forfeited_minor: u128,
}

/// One load/unload server in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardServerReport {
    pub lus: u32,
    pub loaded_minor: u128,
    pub unloaded_minor: u128,
    pub paid_to_lus_minor: u128,
    pub received_from_lus_minor: u128,
    /// loads − unloads − clearings: what the issuer owes the server.
    pub float_minor: i128,
}

/// Everything an audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// The log audited, as given.
    pub log: String,
    pub outcome: Outcome,
    /// Seq of the previous audit's checkpoint when this run resumed from one.
    pub resumed_from: Option<Seq>,
    /// Last record of the last complete transaction that was audited.
    pub audited_through: Seq,
    /// Hex hash of that record.
    pub audited_through_hash: String,
    /// The last record a verified checkpoint vouches for (coverage).
    pub signed_through: Seq,
    /// Records of complete transactions past `signed_through`.
    pub unsigned_records: u64,
    pub records_read_this_run: u64,
    pub totals: Totals,
    pub unspent_coins: u64,
    pub stats: Stats,
    pub epochs: Vec<EpochReport>,
    pub card_servers: Vec<CardServerReport>,
    pub signatures_checked: bool,
    /// Facts the reader should know about what was and was not checked.
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
}

/// Minor units as `-12.34`.
pub fn format_minor(minor: i128) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

impl AuditReport {
    pub(crate) fn epochs_of(state: &LedgerState) -> Vec<EpochReport> {
        state
            .epochs
            .iter()
            .map(|(epoch, e)| EpochReport {
                epoch: epoch.0,
                issued_minor: e.issued_minor,
                spent_minor: e.spent_minor,
                closed: e.closed,
                erasures: e.n_erasures + u32::from(e.erased),
                revoked_still_owed_minor: e.revoked_still_owed,
                n_forfeited: e.n_forfeited,
                forfeited_minor: e.forfeited_minor,
            })
            .collect()
    }

    pub(crate) fn card_servers_of(state: &LedgerState) -> Vec<CardServerReport> {
        state
            .card_servers
            .iter()
            .map(|(lus, s)| CardServerReport {
                lus: lus.0,
                loaded_minor: s.loaded_minor,
                unloaded_minor: s.unloaded_minor,
                paid_to_lus_minor: s.paid_to_lus_minor,
                received_from_lus_minor: s.received_from_lus_minor,
                float_minor: s.float_minor(),
            })
            .collect()
    }

    /// The CLI's exit status: 0 all holds, 1 a violation, 2 could not finish
    /// (a truncated log is not fraud, but not a complete audit either).
    pub fn exit_code(&self) -> u8 {
        match &self.outcome {
            Outcome::Holds => EXIT_HOLDS,
            Outcome::Violation(v) if v.rule.is_inconclusive() => EXIT_ERROR,
            Outcome::Violation(_) => EXIT_VIOLATION,
            Outcome::Truncated { .. } | Outcome::NothingToAudit => EXIT_ERROR,
        }
    }

    /// The first violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        match &self.outcome {
            Outcome::Violation(v) => Some(v),
            _ => None,
        }
    }

    /// The log's time span as people read it: `first … latest (N days)`.
    pub fn log_time_span(&self) -> Option<String> {
        let (first, latest) = (self.stats.first_at?, self.stats.latest_at?);
        let days = (latest.0.saturating_sub(first.0)) as f64 / crate::logtime::SECS_PER_DAY as f64;
        Some(format!(
            "{} to {} ({days:.1} days)",
            format_utc(first),
            format_utc(latest)
        ))
    }

    /// Records per second of this run.
    pub fn records_per_sec(&self) -> u64 {
        (u128::from(self.records_read_this_run) * 1000 / u128::from(self.elapsed_ms.max(1))) as u64
    }

    /// One-line verdict.
    pub fn headline(&self) -> String {
        match &self.outcome {
            Outcome::Holds => format!(
                "AUDIT PASSED: every rule holds through record {}",
                self.audited_through
            ),
            Outcome::Violation(v) if v.rule.is_emergency() => {
                format!("EMERGENCY: MINT KEY COMPROMISED: {v}")
            }
            Outcome::Violation(v) if v.rule.is_inconclusive() => {
                format!("AUDIT INCOMPLETE: {v}")
            }
            Outcome::Violation(v) => format!("AUDIT FAILED: {v}"),
            Outcome::Truncated {
                batch_first_seq,
                records_present,
                batch_len,
            } => format!(
                "LOG TRUNCATED (not fraud): the transaction starting at record {batch_first_seq} has {records_present} of its {batch_len} records; every rule holds through record {}",
                self.audited_through
            ),
            Outcome::NothingToAudit => {
                "NOTHING TO AUDIT: the log holds no record (an issuer's log is never empty)"
                    .to_string()
            }
        }
    }

    /// The human summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.headline());
        let _ = writeln!(out);
        let _ = writeln!(out, "log: {}", self.log);
        if let Some(seq) = self.resumed_from {
            let _ = writeln!(out, "resumed from the audit checkpoint at record {seq}");
        }
        let _ = writeln!(
            out,
            "audited through record {} (hash {})",
            self.audited_through, self.audited_through_hash
        );
        let _ = writeln!(
            out,
            "records: {} in all, {} read in this run ({} records/s); transactions: {}",
            self.stats.records,
            self.records_read_this_run,
            self.records_per_sec(),
            self.stats.transactions
        );
        let _ = writeln!(
            out,
            "signed through record {} ({} records after it unsigned)",
            self.signed_through, self.unsigned_records
        );
        if let Some(span) = self.log_time_span() {
            let _ = writeln!(out, "log time: {span}");
        }
        let _ = writeln!(
            out,
            "checkpoints: {} matched the chain, {} signatures verified",
            self.stats.checkpoints_verified, self.stats.checkpoint_signatures_verified
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "money");
        let t = &self.totals;
        let rows = [
            ("real money in", self.stats.money_in_minor as i128),
            ("real money out", self.stats.money_out_minor as i128),
            ("outstanding e-money", t.outstanding),
            ("aggregated balances", t.aggregates),
            ("owed to card systems", t.card_float),
            ("forfeited (breakage)", t.forfeited),
            ("coins issued", self.stats.coins_issued_minor as i128),
            ("coins spent", self.stats.coins_spent_minor as i128),
            ("coins revoked", self.stats.coins_revoked_minor as i128),
            (
                "returned debits (loss)",
                self.stats.debits_returned_minor as i128,
            ),
        ];
        for (label, minor) in rows {
            let _ = writeln!(out, "  {label:<22} {:>16}", format_minor(minor));
        }
        let _ = writeln!(
            out,
            "  conservation: {} + {} + {} + {} = {} − {}  ({} unspent coins)",
            format_minor(t.outstanding),
            format_minor(t.aggregates),
            format_minor(t.card_float),
            format_minor(t.forfeited),
            format_minor(t.real_in),
            format_minor(t.real_out),
            self.unspent_coins
        );
        if t.forfeited > 0 {
            let _ = writeln!(
                out,
                "  forfeited: {0} of coins were still unspent when their key epoch was \
                 erased; nobody can present them any more, so they left the outstanding \
                 e-money and their money stays with the issuer",
                format_minor(t.forfeited)
            );
        }
        if self.stats.debits_returned_minor > 0 {
            let _ = writeln!(
                out,
                "  returned debits: the bank took back {0} after the coins were issued; the \
                 issuer's own funds cover it (in real money in and out)",
                format_minor(self.stats.debits_returned_minor as i128)
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "disclosures of identity: {}",
            self.stats.disclosures.len()
        );
        for d in &self.stats.disclosures {
            let approvers = if d.approver_keys.is_empty() {
                "no dual control".to_owned()
            } else {
                format!("approved by keys {}", d.approver_keys.join(" and "))
            };
            let _ = writeln!(
                out,
                "  at record {:<10} {} to {:?} ({:?}), {approvers}",
                d.seq, d.subject, d.requester, d.reason
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "events by kind");
        for (kind, n) in &self.stats.events_by_kind {
            let _ = writeln!(out, "  {kind:<24} {n:>12}");
        }
        if !self.stats.largest.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "largest transactions");
            for t in &self.stats.largest {
                let _ = writeln!(
                    out,
                    "  {:>16}  at record {:<10} tx {}  {}",
                    format_minor(t.value_minor as i128),
                    t.seq,
                    t.tx,
                    t.kinds
                );
            }
        }
        if !self.epochs.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "key epochs (value spent ≤ value issued)");
            for e in &self.epochs {
                let _ = writeln!(
                    out,
                    "  epoch-{:<6} issued {:>14} spent {:>14}{}{}{}{}",
                    e.epoch,
                    format_minor(e.issued_minor as i128),
                    format_minor(e.spent_minor as i128),
                    if e.closed { "  closed" } else { "" },
                    match e.revoked_still_owed_minor {
                        Some(left) =>
                            format!("  revoked ({} left to recoup)", format_minor(left as i128)),
                        None => String::new(),
                    },
                    if e.erasures > 0 { "  erased" } else { "" },
                    if e.n_forfeited > 0 {
                        format!(
                            "  forfeited {} in {} coins",
                            format_minor(e.forfeited_minor as i128),
                            e.n_forfeited
                        )
                    } else {
                        String::new()
                    }
                );
            }
        }
        if !self.card_servers.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "card float per load/unload server (loads − unloads − clearings)"
            );
            for c in &self.card_servers {
                let _ = writeln!(
                    out,
                    "  lus-{:<6} loads {:>12} unloads {:>12} cleared {:>12}/{:>12} float {:>12}",
                    c.lus,
                    format_minor(c.loaded_minor as i128),
                    format_minor(c.unloaded_minor as i128),
                    format_minor(c.paid_to_lus_minor as i128),
                    format_minor(c.received_from_lus_minor as i128),
                    format_minor(c.float_minor)
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for note in &self.notes {
                let _ = writeln!(out, "note: {note}");
            }
        }
        out
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> String {
        // Every field is a plain number, string, list or map: serializing
        // cannot fail, but a library never panics on it either.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"report serialization failed: {e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_print_as_currency() {
        assert_eq!(format_minor(0), "0.00");
        assert_eq!(format_minor(1234), "12.34");
        assert_eq!(format_minor(-5), "-0.05");
    }
}
