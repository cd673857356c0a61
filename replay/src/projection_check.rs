//! The issuer's projection files against the replay: the coin-status store
//! must hold exactly the unspent coins the replay has, and the accounts
//! projection the same aggregate balances and card float per server. Each
//! is a [`ProjectionCheck`] given to [`crate::AuditOptions`]; the files are
//! copies the issuer handed over, opened only when the replay is done.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ledger::{BalanceId, Head, LusId};
use projections::coin_status::for_each_unspent;
use projections::{AccountsModel, CoinStatusModel, ProjectionDb, ProjectionError};

use crate::run::{ProjectionCheck, ProjectionDifference};
use crate::state::LedgerState;

fn unreadable(path: &std::path::Path, e: ProjectionError) -> ProjectionDifference {
    ProjectionDifference::Unreadable(format!("{}: {e}", path.display()))
}

fn open_existing<P: projections::Projection>(
    path: &std::path::Path,
    model: P,
) -> Result<ProjectionDb<P>, ProjectionDifference> {
    // Opening creates a missing file: refuse that, an auditor writes nothing
    // it was not asked to.
    if !path.is_file() {
        return Err(ProjectionDifference::Unreadable(format!(
            "{}: no such projection file",
            path.display()
        )));
    }
    ProjectionDb::open(path, model).map_err(|e| unreadable(path, e))
}

fn check_applied<P: projections::Projection>(
    db: &ProjectionDb<P>,
    head: Head,
) -> Result<(), ProjectionDifference> {
    let applied = db.applied_seq().map_err(|e| unreadable(db.path(), e))?;
    if applied != head.last_seq {
        return Err(ProjectionDifference::Differs(format!(
            "it has applied the log up to record {applied}, the audit ends at {}",
            head.last_seq
        )));
    }
    Ok(())
}

/// The coin-status projection file (`projections::CoinStatus`).
#[derive(Debug, Clone)]
pub struct CoinStatusFile(pub PathBuf);

impl ProjectionCheck for CoinStatusFile {
    fn name(&self) -> &str {
        "coin_status"
    }

    fn compare(&self, state: &LedgerState, head: Head) -> Result<(), ProjectionDifference> {
        let db = open_existing(&self.0, CoinStatusModel)?;
        check_applied(&db, head)?;
        let mut first_difference: Option<String> = None;
        let mut n_seen: usize = 0;
        db.read(|s| {
            for_each_unspent(s, &mut |body| {
                n_seen += 1;
                if first_difference.is_none() && state.unspent.get(&body.id) != Some(&body) {
                    first_difference = Some(format!(
                        "coin {} is unspent there with value {}, the replay has {:?}",
                        body.id,
                        body.value,
                        state.unspent.get(&body.id).map(|c| c.value)
                    ));
                }
            })
        })
        .map_err(|e| unreadable(&self.0, e))?;
        if let Some(difference) = first_difference {
            return Err(ProjectionDifference::Differs(difference));
        }
        if n_seen != state.unspent.len() {
            return Err(ProjectionDifference::Differs(format!(
                "it holds {n_seen} unspent coins, the replay {}",
                state.unspent.len()
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

    fn compare(&self, state: &LedgerState, head: Head) -> Result<(), ProjectionDifference> {
        let db = open_existing(&self.0, AccountsModel)?;
        check_applied(&db, head)?;
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
