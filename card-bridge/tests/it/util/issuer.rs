//! A durable stand-in for the issuer's soft-cash side, for the transfer
//! tests: coins are (serial, value) bundles with a state, the agency duties
//! are the crate's DurableAgency, and coins held for a load are spent when
//! it commits and freed when it is rejected. Every operation is idempotent.

use std::path::Path;

use ledger::{Amount, CardId, LusId};
use serde::{Deserialize, Serialize};
use vc_card_bridge::agency::{Agency, AgencyError, DurableAgency};
use vc_card_bridge::crypto::random_bytes;
use vc_card_bridge::records::{CardTxRecord, LoadId, LoadRequest, Settlement};
use vc_card_bridge::store::{Db, WriteBatch};
use vc_card_bridge::transfer::{SoftCash, SoftCashError, TransferId};
use vc_card_bridge::wire::{Direction, Outcome};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCoins {
    pub serial: [u8; 16],
    pub value: Amount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum CoinState {
    Unspent,
    HeldFor(LoadId),
    Spent,
}

const COINS: &str = "iss/coin";
const BOUGHT: &str = "iss/bought";
const HELD: &str = "iss/held";

pub struct TestIssuer {
    pub agency: DurableAgency,
    db: Db,
}

fn storage(e: impl std::fmt::Display) -> SoftCashError {
    SoftCashError::Issuer(e.to_string())
}

impl TestIssuer {
    pub fn open(dir: &Path) -> TestIssuer {
        TestIssuer {
            agency: DurableAgency::open(&dir.join("issuer-agency.redb")).expect("agency"),
            db: Db::open(&dir.join("issuer-coins.redb")).expect("coins"),
        }
    }

    /// Coins bought with real money, outside the card system.
    pub fn mint(&self, value: Amount) -> TestCoins {
        let coins = TestCoins {
            serial: random_bytes(),
            value,
        };
        let mut b = WriteBatch::new();
        b.put(COINS, &coins.serial, &(coins.value, CoinState::Unspent));
        self.db.write(b).expect("mint");
        coins
    }

    /// Value of coins not spent (unspent or held for a pending load).
    pub fn outstanding(&self) -> i128 {
        self.db
            .scan::<(Amount, CoinState)>(COINS, &[])
            .expect("scan")
            .iter()
            .filter(|(_, (_, s))| *s != CoinState::Spent)
            .map(|(_, (v, _))| i128::from(v.minor_units()))
            .sum()
    }

    pub fn is_unspent(&self, coins: &TestCoins) -> bool {
        matches!(
            self.db.get::<(Amount, CoinState)>(COINS, &coins.serial),
            Ok(Some((_, CoinState::Unspent)))
        )
    }

    fn set_held(&self, load_id: LoadId, to: CoinState) -> Result<(), AgencyError> {
        let Some(serial) = self.db.get::<[u8; 16]>(HELD, &load_id.0)? else {
            return Ok(());
        };
        let Some((value, state)) = self.db.get::<(Amount, CoinState)>(COINS, &serial)? else {
            return Ok(());
        };
        if state == CoinState::HeldFor(load_id) {
            let mut b = WriteBatch::new();
            b.put(COINS, &serial, &(value, to));
            self.db.write(b)?;
        }
        Ok(())
    }
}

impl Agency for TestIssuer {
    fn guarantee(&self, req: &LoadRequest) -> Result<(), AgencyError> {
        self.agency.guarantee(req)
    }
    fn open_guarantees(&self, card: &CardId) -> Result<Vec<LoadRequest>, AgencyError> {
        self.agency.open_guarantees(card)
    }
    fn load_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.agency.load_committed(rec)?;
        self.set_held(rec.load_id, CoinState::Spent)
    }
    fn load_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.agency.load_rejected(rec)?;
        self.set_held(rec.load_id, CoinState::Unspent)
    }
    fn unload_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.agency.unload_committed(rec)
    }
    fn unload_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.agency.unload_rejected(rec)
    }
    fn finished_records(&self, lus: LusId, period: u32) -> Result<Vec<CardTxRecord>, AgencyError> {
        self.agency.finished_records(lus, period)
    }
    fn settle(&self, s: &Settlement) -> Result<(), AgencyError> {
        self.agency.settle(s)
    }
}

impl SoftCash for TestIssuer {
    type Coins = TestCoins;

    fn value_of(&self, coins: &TestCoins) -> Result<Amount, SoftCashError> {
        match self
            .db
            .get::<(Amount, CoinState)>(COINS, &coins.serial)
            .map_err(storage)?
        {
            Some((v, _)) if v == coins.value => Ok(v),
            _ => Err(SoftCashError::InvalidCoins("unknown serial".into())),
        }
    }

    fn buy_coins_with_unload(
        &self,
        transfer: TransferId,
        unload: &CardTxRecord,
    ) -> Result<TestCoins, SoftCashError> {
        if let Some(c) = self
            .db
            .get::<TestCoins>(BOUGHT, &transfer.0)
            .map_err(storage)?
        {
            return Ok(c);
        }
        let confirmed = self
            .agency
            .all_finished()
            .map_err(storage)?
            .iter()
            .any(|r| {
                r == unload && r.outcome == Outcome::Committed && r.direction == Direction::Unload
            });
        if !confirmed {
            return Err(SoftCashError::UnloadNotCommitted);
        }
        let coins = TestCoins {
            serial: random_bytes(),
            value: unload.amount,
        };
        let mut b = WriteBatch::new();
        b.put(COINS, &coins.serial, &(coins.value, CoinState::Unspent));
        b.put(BOUGHT, &transfer.0, &coins);
        self.db.write(b).map_err(storage)?;
        Ok(coins)
    }

    fn redeem_for_load(
        &self,
        _transfer: TransferId,
        coins: &TestCoins,
        load: &LoadRequest,
    ) -> Result<(), SoftCashError> {
        if load.amount() != coins.value {
            return Err(SoftCashError::AmountMismatch);
        }
        match self
            .db
            .get::<(Amount, CoinState)>(COINS, &coins.serial)
            .map_err(storage)?
        {
            Some((_, CoinState::HeldFor(id))) if id == load.load_id => {}
            Some((v, CoinState::Unspent)) if v == coins.value => {
                let mut b = WriteBatch::new();
                b.put(COINS, &coins.serial, &(v, CoinState::HeldFor(load.load_id)));
                b.put(HELD, &load.load_id.0, &coins.serial);
                self.db.write(b).map_err(storage)?;
            }
            _ => return Err(SoftCashError::InvalidCoins("spent or held".into())),
        }
        self.agency.guarantee(load).map_err(storage)
    }
}
