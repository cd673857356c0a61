//! The issuer's projection files against the replay: the coin-status store
//! must hold exactly the unspent coins the replay has, and the accounts
//! projection the same aggregate balances and card float per server. Each
//! is a [`ProjectionCheck`] given to [`crate::AuditOptions`].
//!
//! An issuer's projections lag its log (they are checkpointed and catch up
//! at start). So the file is copied to a temporary directory, the copy is
//! caught up with the audited log by the projections crate's own apply code,
//! up to the audited seq, and then compared: a projection that was wrong
//! where it stopped stays wrong. The issuer's file itself is never written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ledger::{BalanceId, EventStore, Head, LusId, Seq};
use projections::coin_status::for_each_unspent;
use projections::{AccountsModel, CoinStatusModel, ProjectionDb, ProjectionError};

use crate::run::{ProjectionCheck, ProjectionDifference};
use crate::state::LedgerState;

fn unreadable(path: &std::path::Path, e: ProjectionError) -> ProjectionDifference {
    ProjectionDifference::Unreadable(format!("{}: {e}", path.display()))
}

/// Records applied to a projection copy per transaction.
const CATCH_UP_CHUNK_RECORDS: usize = 4096;

/// A copy of the projection at `path`, caught up with `log` to `head`.
/// The temporary directory must outlive the database.
fn caught_up_copy<P: projections::Projection>(
    path: &Path,
    model: P,
    head: Head,
    log: &dyn EventStore,
) -> Result<(tempfile::TempDir, ProjectionDb<P>), ProjectionDifference> {
    if !path.is_file() {
        return Err(ProjectionDifference::Unreadable(format!(
            "{}: no such projection file",
            path.display()
        )));
    }
    let dir = tempfile::tempdir()
        .map_err(|e| ProjectionDifference::Unreadable(format!("temporary directory: {e}")))?;
    let copy = dir.path().join("projection.redb");
    ledger::private_file::copy_private(path, &copy)
        .map_err(|e| ProjectionDifference::Unreadable(format!("{}: {e}", path.display())))?;
    let db = ProjectionDb::open(&copy, model).map_err(|e| unreadable(path, e))?;
    let mut applied = db.applied_seq().map_err(|e| unreadable(path, e))?;
    if applied > head.last_seq {
        return Err(ProjectionDifference::Differs(format!(
            "it has applied the log up to record {applied}, beyond the audited record {}",
            head.last_seq
        )));
    }
    while applied < head.last_seq {
        let wanted = usize::try_from(head.last_seq.0 - applied.0)
            .unwrap_or(usize::MAX)
            .min(CATCH_UP_CHUNK_RECORDS);
        let records = log
            .read(Seq(applied.0.saturating_add(1)), wanted)
            .map_err(|e| ProjectionDifference::Unreadable(format!("reading the log: {e}")))?;
        if records.is_empty() {
            break;
        }
        // A projection refusing a record the audit accepted is a difference.
        applied = db.apply_records(&records).map_err(|e| {
            ProjectionDifference::Differs(format!("catching up from record {applied}: {e}"))
        })?;
    }
    if applied != head.last_seq {
        return Err(ProjectionDifference::Differs(format!(
            "caught up to record {applied}, the audit ends at {}",
            head.last_seq
        )));
    }
    Ok((dir, db))
}

/// The coin-status projection file (`projections::CoinStatus`).
#[derive(Debug, Clone)]
pub struct CoinStatusFile(pub PathBuf);

impl ProjectionCheck for CoinStatusFile {
    fn name(&self) -> &str {
        "coin_status"
    }

    fn compare(
        &self,
        state: &LedgerState,
        head: Head,
        log: &dyn EventStore,
    ) -> Result<(), ProjectionDifference> {
        let (_dir, db) = caught_up_copy(&self.0, CoinStatusModel, head, log)?;
        let mut first_difference: Option<String> = None;
        let mut n_seen: usize = 0;
        db.read(|s| {
            for_each_unspent(s, &mut |body| {
                n_seen += 1;
                if first_difference.is_none() && state.coins.unspent(&body.id) != Some(body) {
                    first_difference = Some(format!(
                        "coin {} is unspent there with value {}, the replay has {:?}",
                        body.id,
                        body.value,
                        state.coins.unspent(&body.id).map(|c| c.value)
                    ));
                }
            })
        })
        .map_err(|e| unreadable(&self.0, e))?;
        if let Some(difference) = first_difference {
            return Err(ProjectionDifference::Differs(difference));
        }
        if n_seen != state.coins.n_unspent() {
            return Err(ProjectionDifference::Differs(format!(
                "it holds {n_seen} unspent coins, the replay {}",
                state.coins.n_unspent()
            )));
        }
        Ok(())
    }
}

/// The accounts projection file (`projections::Accounts`).
#[derive(Debug, Clone)]
pub struct AccountsFile(pub PathBuf);

impl ProjectionCheck for AccountsFile {
    fn name(&self) -> &str {
        "accounts"
    }

    fn compare(
        &self,
        state: &LedgerState,
        head: Head,
        log: &dyn EventStore,
    ) -> Result<(), ProjectionDifference> {
        let (_dir, db) = caught_up_copy(&self.0, AccountsModel, head, log)?;
        let theirs: BTreeMap<BalanceId, u128> = db
            .balances()
            .map_err(|e| unreadable(&self.0, e))?
            .into_iter()
            .filter(|(_, a)| !a.is_zero())
            .map(|(id, a)| (id, u128::from(a.minor_units())))
            .collect();
        let ours: BTreeMap<BalanceId, u128> = state
            .balances
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(id, v)| (*id, *v))
            .collect();
        if theirs != ours {
            let id = theirs
                .iter()
                .chain(ours.iter())
                .find(|(id, v)| theirs.get(id) != Some(v) || ours.get(id) != Some(v))
                .map(|(id, _)| *id);
            return Err(ProjectionDifference::Differs(format!(
                "aggregate balance {} is {:?} there, {:?} in the replay",
                id.map(|i| i.to_string()).unwrap_or_default(),
                id.and_then(|i| theirs.get(&i)),
                id.and_then(|i| ours.get(&i))
            )));
        }
        let their_float: BTreeMap<LusId, i128> = db
            .card_float()
            .map_err(|e| unreadable(&self.0, e))?
            .into_iter()
            .filter(|(_, f)| *f != 0)
            .collect();
        let our_float: BTreeMap<LusId, i128> = state
            .card_servers
            .iter()
            .map(|(lus, s)| (*lus, s.float_minor()))
            .filter(|(_, f)| *f != 0)
            .collect();
        if their_float != our_float {
            return Err(ProjectionDifference::Differs(format!(
                "card float per server is {their_float:?} there, {our_float:?} in the replay"
            )));
        }
        Ok(())
    }
}
