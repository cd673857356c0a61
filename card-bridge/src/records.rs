//! The records the card systems exchange and keep: a load request as the
//! agency guarantees it, a finished card transaction as the LUS reports it
//! to the agency, and the issuer-log events they become.

use ledger::{Amount, BankAccount, CardId, Event, LusId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;
use crate::wire::{Direction, L1, Outcome};

/// The agency's reference for one load or unload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LoadId(pub [u8; 16]);

impl LoadId {
    pub fn random() -> LoadId {
        LoadId(random_bytes())
    }
}

/// What the agency (AG) guarantees at step 2: the L1 it forwards, and whose
/// money it is (who paid for a load; whom to credit for an unload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRequest {
    pub load_id: LoadId,
    pub lus: LusId,
    pub holder: BankAccount,
    pub l1: L1,
}

impl LoadRequest {
    pub fn direction(&self) -> Direction {
        self.l1.direction
    }

    pub fn amount(&self) -> Amount {
        self.l1.amount
    }
}

/// A load or unload the LUS has finished (committed or rejected), as it
/// reports it to the agency. `(lus, card, nt)` identifies it everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardTxRecord {
    pub lus: LusId,
    pub load_id: LoadId,
    pub card: CardId,
    pub nt: u32,
    pub direction: Direction,
    pub amount: Amount,
    pub outcome: Outcome,
    /// The LUS clearing period the record was finished in.
    pub period: u32,
}

impl CardTxRecord {
    /// The fact the issuer's log records when it is the agency: a committed
    /// load (`CardLoaded`: the issuer owes the LUS) or unload (`CardUnloaded`).
    /// Rejected records move no money and give no event. `guaranteed_at` is
    /// when the agency guaranteed the transaction: a load's coins are judged
    /// unexpired at that time, however long the load stayed in doubt.
    pub fn to_event(&self, guaranteed_at: Timestamp) -> Option<Event> {
        match (self.outcome, self.direction) {
            (Outcome::Rejected, _) => None,
            (Outcome::Committed, Direction::Load) => Some(Event::CardLoaded {
                lus: self.lus,
                card: self.card,
                nt: self.nt,
                amount: self.amount,
                guaranteed_at,
            }),
            (Outcome::Committed, Direction::Unload) => Some(Event::CardUnloaded {
                lus: self.lus,
                card: self.card,
                nt: self.nt,
                amount: self.amount,
            }),
        }
    }

    /// Durable key: `lus ‖ card ‖ nt`, big-endian so keys sort by card then NT.
    pub fn key(&self) -> Vec<u8> {
        record_key(self.lus, &self.card, self.nt)
    }
}

pub(crate) fn record_key(lus: LusId, card: &CardId, nt: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&lus.0.to_be_bytes());
    k.extend_from_slice(card.as_bytes());
    k.extend_from_slice(&nt.to_be_bytes());
    k
}

/// One clearing period settled between a LUS and its agency in real money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub lus: LusId,
    pub period: u32,
    pub loads: Amount,
    pub unloads: Amount,
    /// What the agency pays the LUS (net loads), or zero.
    pub paid_to_lus: Amount,
    /// What the LUS pays the agency (net unloads), or zero.
    pub received_from_lus: Amount,
}

impl Settlement {
    /// The issuer-log event of this settlement (`Cleared`).
    pub fn to_event(&self) -> Event {
        Event::Cleared {
            lus: self.lus,
            period: self.period,
            paid_to_lus: self.paid_to_lus,
            received_from_lus: self.received_from_lus,
        }
    }
}
