//! The life of a coin in the purse: its [`CoinState`], the [`CoinAction`]s
//! that move it, and [`transition`], the one pure function that says which
//! moves are allowed (after Cashu CDK's `cdk-common/src/state.rs`). The store
//! calls nothing else to change a coin's state.
//!
//! ```text
//!   Available ──Reserve(t)──▶ Pending(t) ──Spend(t)──▶ Spent(t)
//!       ▲                         │
//!       └──────Release(t)─────────┤
//!   Available ──MarkBad(r)──▶ Bad(r) ◀──MarkBad(r)── Pending(t)
//! ```
//! Spent and Bad are final: nothing leaves them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::PurseError;

/// One in-flight transaction of this purse (a journal entry's key). Local to
/// the purse: the issuer identifies transactions by what was sent.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxRef([u8; 16]);

impl TxRef {
    pub const fn from_bytes(bytes: [u8; 16]) -> TxRef {
        TxRef(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A fresh reference from the OS's CSPRNG.
    pub fn random() -> Result<TxRef, PurseError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|_| PurseError::Io(std::io::Error::other("no OS randomness")))?;
        Ok(TxRef(bytes))
    }
}

impl fmt::Display for TxRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TxRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxRef({})", hex::encode(self.0))
    }
}

/// What the issuer's signed statement says is wrong with a coin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BadKind {
    /// Spent before (a double spend, or a copy of the purse spent it).
    AlreadySpent,
    /// Past its epoch's refresh grace period.
    Expired,
    /// The mint's tag does not check.
    InvalidTag,
    /// Revoked by a refund: replacements were issued to this purse.
    Revoked,
    /// Another reason the statement gives.
    Other,
}

/// Why a coin is bad: the kind and the issuer's signed statement saying so,
/// kept as evidence. The caller verifies the issuer's signature before it
/// hands the statement to the purse.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BadReason {
    pub kind: BadKind,
    pub statement: Vec<u8>,
}

impl fmt::Debug for BadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BadReason({:?}, <{} statement bytes>)",
            self.kind,
            self.statement.len()
        )
    }
}

/// The state of one coin in the purse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CoinState {
    /// The purse's to spend.
    Available,
    /// Reserved by the in-flight transaction; still the purse's money until
    /// that transaction completes.
    Pending(TxRef),
    /// Spent by the completed transaction.
    Spent(TxRef),
    /// Refused by the issuer, with its statement.
    Bad(BadReason),
}

impl CoinState {
    pub fn name(&self) -> &'static str {
        match self {
            CoinState::Available => "available",
            CoinState::Pending(_) => "pending",
            CoinState::Spent(_) => "spent",
            CoinState::Bad(_) => "bad",
        }
    }

    /// Whether the coin still counts in the purse's holdings.
    pub fn is_held(&self) -> bool {
        matches!(self, CoinState::Available | CoinState::Pending(_))
    }
}

/// What may happen to a coin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CoinAction {
    /// A transaction takes the coin as an input.
    Reserve(TxRef),
    /// The transaction ended without spending the coin.
    Release(TxRef),
    /// The transaction completed: the issuer spent the coin.
    Spend(TxRef),
    /// The issuer said, in a signed statement, that the coin is bad.
    MarkBad(BadReason),
}

impl CoinAction {
    pub fn name(&self) -> &'static str {
        match self {
            CoinAction::Reserve(_) => "reserve",
            CoinAction::Release(_) => "release",
            CoinAction::Spend(_) => "spend",
            CoinAction::MarkBad(_) => "mark-bad",
        }
    }
}

/// The one place that decides a coin's next state. Pure: no I/O, no clock.
///
/// A transaction may only release or spend a coin it reserved itself, so a
/// confused caller cannot spend another transaction's inputs; nothing leaves
/// Spent or Bad, so a spent coin is never counted again.
pub fn transition(state: &CoinState, action: &CoinAction) -> Result<CoinState, PurseError> {
    let next = match (state, action) {
        (CoinState::Available, CoinAction::Reserve(tx)) => Some(CoinState::Pending(*tx)),
        (CoinState::Pending(held), CoinAction::Release(tx)) if held == tx => {
            Some(CoinState::Available)
        }
        (CoinState::Pending(held), CoinAction::Spend(tx)) if held == tx => {
            Some(CoinState::Spent(*tx))
        }
        (CoinState::Available | CoinState::Pending(_), CoinAction::MarkBad(reason)) => {
            Some(CoinState::Bad(reason.clone()))
        }
        _ => None,
    };
    next.ok_or(PurseError::TransitionRefused {
        from: state.name(),
        action: action.name(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: u8) -> TxRef {
        TxRef::from_bytes([n; 16])
    }

    fn bad() -> BadReason {
        BadReason {
            kind: BadKind::AlreadySpent,
            statement: b"signed".to_vec(),
        }
    }

    fn all_states() -> Vec<CoinState> {
        vec![
            CoinState::Available,
            CoinState::Pending(tx(1)),
            CoinState::Spent(tx(1)),
            CoinState::Bad(bad()),
        ]
    }

    fn all_actions() -> Vec<CoinAction> {
        vec![
            CoinAction::Reserve(tx(1)),
            CoinAction::Release(tx(1)),
            CoinAction::Spend(tx(1)),
            CoinAction::Reserve(tx(2)),
            CoinAction::Release(tx(2)),
            CoinAction::Spend(tx(2)),
            CoinAction::MarkBad(bad()),
        ]
    }

    /// The whole table: every state against every action, with the
    /// expected outcome written out, so a new arm in `transition` that
    /// allows something unintended fails here.
    #[test]
    fn every_state_action_pair_has_the_expected_outcome() {
        let expected = |s: &CoinState, a: &CoinAction| -> Option<CoinState> {
            match (s.name(), a) {
                ("available", CoinAction::Reserve(t)) => Some(CoinState::Pending(*t)),
                ("available", CoinAction::MarkBad(r)) => Some(CoinState::Bad(r.clone())),
                ("pending", CoinAction::Release(t)) if *t == tx(1) => Some(CoinState::Available),
                ("pending", CoinAction::Spend(t)) if *t == tx(1) => Some(CoinState::Spent(tx(1))),
                ("pending", CoinAction::MarkBad(r)) => Some(CoinState::Bad(r.clone())),
                _ => None,
            }
        };
        let mut allowed = 0;
        let mut refused = 0;
        for s in all_states() {
            for a in all_actions() {
                match (transition(&s, &a), expected(&s, &a)) {
                    (Ok(next), Some(want)) => {
                        assert_eq!(next, want, "{s:?} + {a:?}");
                        allowed += 1;
                    }
                    (Err(PurseError::TransitionRefused { from, action }), None) => {
                        assert_eq!((from, action), (s.name(), a.name()));
                        refused += 1;
                    }
                    (got, want) => panic!("{s:?} + {a:?}: got {got:?}, expected {want:?}"),
                }
            }
        }
        assert_eq!((allowed, refused), (6, 22));
    }

    #[test]
    fn available_can_be_reserved_or_marked_bad() {
        assert_eq!(
            transition(&CoinState::Available, &CoinAction::Reserve(tx(3))).ok(),
            Some(CoinState::Pending(tx(3)))
        );
        assert_eq!(
            transition(&CoinState::Available, &CoinAction::MarkBad(bad())).ok(),
            Some(CoinState::Bad(bad()))
        );
    }

    #[test]
    fn available_cannot_be_released_or_spent_without_a_reservation() {
        assert!(transition(&CoinState::Available, &CoinAction::Release(tx(1))).is_err());
        assert!(transition(&CoinState::Available, &CoinAction::Spend(tx(1))).is_err());
    }

    #[test]
    fn pending_coin_belongs_to_its_transaction_only() {
        let pending = CoinState::Pending(tx(1));
        assert!(transition(&pending, &CoinAction::Reserve(tx(2))).is_err());
        assert!(transition(&pending, &CoinAction::Reserve(tx(1))).is_err());
        assert!(transition(&pending, &CoinAction::Spend(tx(2))).is_err());
        assert!(transition(&pending, &CoinAction::Release(tx(2))).is_err());
        assert_eq!(
            transition(&pending, &CoinAction::Spend(tx(1))).ok(),
            Some(CoinState::Spent(tx(1)))
        );
        assert_eq!(
            transition(&pending, &CoinAction::Release(tx(1))).ok(),
            Some(CoinState::Available)
        );
    }

    #[test]
    fn spent_and_bad_are_final() {
        for s in [CoinState::Spent(tx(1)), CoinState::Bad(bad())] {
            for a in all_actions() {
                assert!(transition(&s, &a).is_err(), "{s:?} left by {a:?}");
            }
        }
    }

    #[test]
    fn only_available_and_pending_are_held() {
        let held: Vec<bool> = all_states().iter().map(CoinState::is_held).collect();
        assert_eq!(held, vec![true, true, false, false]);
    }
}
