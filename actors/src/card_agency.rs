//! The issuer as the card systems' payment agency (AG): [`CardAgency`]
//! implements card-bridge's [`Agency`] and [`SoftCash`] over an
//! [`IssuerCore`], so that card loads, unloads and clearings are balanced
//! events in the issuer's log, written through the issuer's one commit path
//! (`IssuerCore::commit_batch`: balanced assert, durable group commit, then
//! the shards) before any caller hears of them:
//!
//! | card side | issuer batch (one transaction) | tx id |
//! |---|---|---|
//! | unload committed (Cardcash-to-Softcash) | `CardUnloaded` + `CoinsIssued(CardUnload)` | `vc/tx/card-unload` over (LUS, card, NT) |
//! | load committed (Softcash-to-Cardcash) | `CoinsSpent(CardLoad)` + `CardLoaded` | `vc/tx/card-load` over (LUS, card, NT) |
//! | clearing period settled | `Cleared` | `vc/tx/card-clear` over (LUS, period) |
//!
//! The tx ids are derived from the card record, so a retry finds the batch
//! already in the log (the idempotency table is rebuilt from it) and gets the
//! same outcome: never a second issue or spend.
//!
//! What is not in the log lives in `card-agency.redb` in the issuer's
//! directory: guarantees (with the coins a load holds), finished records
//! (rejections move no money and have no event; the LUS period of each
//! record) and settlements. An issuer whose log is in PostgreSQL keeps
//! them in the tables beside it ([`crate::IssuerConfig::side_tables`]), so
//! a replacement issuer finds them there. Both are sealed by one layer
//! ([`SealedTables`]: card ids in keys replaced by an HMAC, every value
//! sealed, both under keys derived from the registry key), so neither
//! names a card or an account; a file written in the clear is sealed into
//! a new file when opened ([`seal_file`]). The log is always written first; a crash between
//! the two is repaired by the retry, which finds the log's batch. Coins held
//! for an open load are reserved in the shards under the load's tx, and
//! reserved again at every start by `IssuerCore::open` (and
//! [`CardAgency::open`]), before the issuer serves anything.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use card_bridge::agency::{Agency, AgencyError, finished_record_key};
use card_bridge::records::{CardTxRecord, LoadId, LoadRequest, Settlement};
use card_bridge::store::{Db, FileTables, StoreError, WriteBatch};
use card_bridge::transfer::{SoftCash, SoftCashError, TransferId};
use card_bridge::wire::{Direction, Outcome};
use ledger::kv::{KvBatch, KvError, KvStore};
use ledger::sync::lock;
use ledger::{Amount, CardId, Coin, CoinBody, CoinSpec, Event, IssueCause, LusId, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use crate::card_decide::{
    CardConflict, GuaranteeRefusal, decide_load_guarantee, load_events, settlement_event,
    unload_events,
};
use crate::idempotency::{Begin, CommitRef};
use crate::issuer::registry::CardAgencySeal;
use crate::issuer::{IssuerCore, IssuerError};
use crate::shard::ReserveError;

/// The agency's own file in the issuer's directory.
pub const CARD_AGENCY_FILE: &str = "card-agency.redb";

/// Unload holders this agency pays in soft cash start with this (the
/// accounts of `TransferId::holder_account`).
const TRANSFER_ACCOUNT_PREFIX: &str = "xfer-";

const GUARANTEE: &str = "card-ag/guarantee";
const OPEN: &str = "card-ag/open";
const FINAL: &str = "card-ag/final";
const SETTLED: &str = "card-ag/settled";

/// Why the agency could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardAgencyError {
    #[error("card agency store: {0}")]
    Store(#[from] StoreError),
    #[error("issuer: {0}")]
    Issuer(#[from] IssuerError),
    /// Coins an open load holds are no longer unspent: something spent them
    /// while the agency was closed (it must open before payments are served).
    #[error("coins held for an open card load are gone: {0}")]
    HeldCoinsGone(ReserveError),
}

/// One guarantee as the agency keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Guarantee {
    req: LoadRequest,
    /// The coins a load holds (their logged bodies); empty for an unload.
    coins: Vec<CoinBody>,
    outcome: Option<Outcome>,
    /// The issuer's time when it gave the guarantee: a load's coins were
    /// checked unexpired then, and `CardLoaded` carries it to the auditor.
    at: Timestamp,
}

impl Guarantee {
    fn matches(&self, rec: &CardTxRecord) -> bool {
        let l1 = &self.req.l1;
        l1.card == rec.card
            && l1.nt == rec.nt
            && l1.direction == rec.direction
            && l1.amount == rec.amount
            && self.req.lus == rec.lus
    }
}

fn open_key(card: &CardId, load_id: &LoadId) -> Vec<u8> {
    let mut k = card.as_bytes().to_vec();
    k.extend_from_slice(&load_id.0);
    k
}

fn settled_key(lus: LusId, period: u32) -> Vec<u8> {
    let mut k = lus.0.to_be_bytes().to_vec();
    k.extend_from_slice(&period.to_be_bytes());
    k
}

/// The issuer transaction of a committed load of `(lus, card, nt)`.
pub fn card_load_tx(lus: LusId, card: &CardId, nt: u32) -> TxId {
    TxId::derive("vc/tx/card-load", &[&finished_record_key(lus, card, nt)])
}

/// The issuer transaction of a committed unload of `(lus, card, nt)`.
pub fn card_unload_tx(lus: LusId, card: &CardId, nt: u32) -> TxId {
    TxId::derive("vc/tx/card-unload", &[&finished_record_key(lus, card, nt)])
}

/// The issuer transaction of the settlement of `(lus, period)`.
pub fn card_clear_tx(lus: LusId, period: u32) -> TxId {
    TxId::derive("vc/tx/card-clear", &[&settled_key(lus, period)])
}

/// Denominations of the coins bought with an unload: a 1-2-5 series, so an
/// amount takes at most four coins per decade.
fn unload_spec(amount: Amount) -> Option<CoinSpec> {
    let mut denominations = Vec::new();
    let mut decade: u64 = 1;
    loop {
        for m in [1u64, 2, 5] {
            if let Some(d) = decade.checked_mul(m) {
                denominations.push(Amount::from_minor(d));
            }
        }
        match decade.checked_mul(10) {
            Some(next) if next <= amount.minor_units() => decade = next,
            _ => break,
        }
    }
    CoinSpec::greedy(amount, &denominations)
}

/// Reserves again, in `core`'s shards, the coins every open load holds
/// (reservations live in memory; the guarantees are durable). Returns how
/// many loads hold coins.
fn hold_open_loads(core: &IssuerCore, db: &Db) -> Result<usize, CardAgencyError> {
    let mut n_held = 0usize;
    for (_, g) in db.scan::<Guarantee>(GUARANTEE, &[])? {
        if g.outcome.is_some() || g.req.direction() != Direction::Load {
            continue;
        }
        let tx = card_load_tx(g.req.lus, &g.req.l1.card, g.req.l1.nt);
        if core
            .idempotency
            .committed(&tx)
            .map_err(IssuerError::from)?
            .is_some()
        {
            // Spent by the logged load; the retry records the outcome.
            continue;
        }
        let ids: Vec<_> = g.coins.iter().map(|c| c.id).collect();
        core.commit
            .reserve(tx, &ids)
            .map_err(CardAgencyError::HeldCoinsGone)?;
        n_held += 1;
    }
    Ok(n_held)
}

/// The agency's store of `core`, sealed ([`SealedTables`]) under the
/// registry key: the tables beside its log if it has them; else its file
/// in the issuer's directory (`None` if absent and `create` is false), a
/// file written in the clear sealed on open ([`seal_file`]).
fn agency_db(core: &IssuerCore, create: bool) -> Result<Option<Db>, StoreError> {
    let seal = core.registry.card_agency_seal();
    let inner: Arc<dyn KvStore> = match &core.config.side_tables {
        Some(tables) => tables.clone(),
        None => {
            let path = core.config.dir.join(CARD_AGENCY_FILE);
            if !create && !path.exists() {
                return Ok(None);
            }
            Arc::new(seal_file(&path, seal)?)
        }
    };
    Ok(Some(Db::in_tables(Arc::new(SealedTables {
        inner,
        rows: RowSeal { seal: seal.clone() },
    }))))
}

/// The agency's tables, every one a file written in the clear holds.
const TABLES: [&str; 4] = [GUARANTEE, OPEN, FINAL, SETTLED];

/// The row that marks the agency's file sealed (outside [`TABLES`]).
const SEALED_MARK: (&str, &[u8]) = ("card-ag/format", b"sealed");

/// Opens the agency's file at `path`, sealing it first if it is not marked
/// sealed (a new file, or one written in the clear): every row of
/// [`TABLES`] is copied through [`SealedTables`] into a new file that
/// replaces the old one atomically ([`FileTables::open_rewritten`]).
fn seal_file(path: &Path, seal: &CardAgencySeal) -> Result<FileTables, StoreError> {
    FileTables::open_rewritten(path, SEALED_MARK, |clear| {
        let rows = RowSeal { seal: seal.clone() };
        let mut batch = KvBatch::new();
        for table in TABLES {
            for (key, value) in clear.scan(table, &[])? {
                batch.put(table, &key, value);
            }
        }
        let n_rows = batch.writes.len();
        let sealed = rows.sealed_batch(&batch)?;
        tracing::info!(n_rows, "card agency file sealed");
        Ok(sealed)
    })
}

/// Run by `IssuerCore::open` before the issuer serves anything: coins held
/// for open card loads stay held across a restart, whether or not the
/// process opens a [`CardAgency`].
pub(crate) fn hold_open_loads_at_start(core: &IssuerCore) -> Result<(), IssuerError> {
    let held = match agency_db(core, false) {
        Ok(None) => return Ok(()),
        Ok(Some(db)) => hold_open_loads(core, &db),
        Err(e) => Err(e.into()),
    };
    match held {
        Ok(n_held) => {
            tracing::info!(n_held, "coins of open card loads held");
            Ok(())
        }
        Err(e) => Err(IssuerError::Log(ledger::StoreError::Backend(format!(
            "card agency at start: {e}"
        )))),
    }
}

/// The agency's tables as it writes them beside the log: the card id in
/// every key of [`OPEN`] (`card ‖ load id`) and [`FINAL`] (`lus ‖ card ‖
/// nt`) replaced by its keyed id under the registry key (so the scans the
/// agency makes, by card and by LUS, still find their rows), and every
/// value sealed, its table and stored key bound. The database holds no
/// card id and no account in the clear; without the registry key it
/// opens nothing.
struct SealedTables {
    inner: Arc<dyn KvStore>,
    rows: RowSeal,
}

/// How [`SealedTables`] stores a row: its key, its prefix, its value.
struct RowSeal {
    seal: CardAgencySeal,
}

impl RowSeal {
    /// The key `key` of `table` is stored under.
    fn stored_key(&self, table: &str, key: &[u8]) -> Vec<u8> {
        match table {
            OPEN if key.len() >= CardId::LEN => {
                let (card, rest) = key.split_at(CardId::LEN);
                let mut k = self.seal.keyed(card).to_vec();
                k.extend_from_slice(rest);
                k
            }
            FINAL if key.len() > LUS_BYTES => {
                let (lus, rest) = key.split_at(LUS_BYTES);
                let mut k = lus.to_vec();
                k.extend_from_slice(&self.seal.keyed(rest));
                k
            }
            _ => key.to_vec(),
        }
    }

    /// The stored prefix of the rows whose keys start with `prefix`: the
    /// agency scans [`OPEN`] by card and [`FINAL`] by LUS (or whole).
    fn stored_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<u8>, KvError> {
        match table {
            OPEN if prefix.len() == CardId::LEN => Ok(self.seal.keyed(prefix).to_vec()),
            FINAL if prefix.len() > LUS_BYTES => Err(KvError::Storage(
                "sealed card records are scanned by LUS only".into(),
            )),
            OPEN if !prefix.is_empty() => Err(KvError::Storage(
                "sealed open loads are scanned by card only".into(),
            )),
            _ => Ok(prefix.to_vec()),
        }
    }

    fn open(&self, table: &str, stored_key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KvError> {
        self.seal.open(table, stored_key, sealed).ok_or_else(|| {
            KvError::Storage(format!(
                "a sealed card agency row in {table} does not open under this registry key"
            ))
        })
    }
}

/// The bytes of a LUS id at the head of a [`FINAL`] key.
const LUS_BYTES: usize = std::mem::size_of::<u32>();

impl KvStore for SealedTables {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let stored = self.rows.stored_key(table, key);
        self.inner
            .get(table, &stored)?
            .map(|sealed| self.rows.open(table, &stored, &sealed))
            .transpose()
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, KvError> {
        let stored_prefix = self.rows.stored_prefix(table, prefix)?;
        self.inner
            .scan(table, &stored_prefix)?
            .into_iter()
            .map(|(stored, sealed)| {
                let plain = self.rows.open(table, &stored, &sealed)?;
                // The key as stored: the agency's scans use values only.
                Ok((stored, plain))
            })
            .collect()
    }

    fn write(&self, batch: &KvBatch) -> Result<(), KvError> {
        self.inner.write(&self.rows.sealed_batch(batch)?)
    }
}

impl RowSeal {
    /// `batch` as [`SealedTables`] hands it to the tables below.
    fn sealed_batch(&self, batch: &KvBatch) -> Result<KvBatch, KvError> {
        let mut sealed = KvBatch::new();
        for (table, key) in &batch.absent {
            sealed.require_absent(table, &self.stored_key(table, key));
        }
        for w in &batch.writes {
            let stored = self.stored_key(&w.table, &w.key);
            match &w.value {
                Some(plain) => {
                    let value = self.seal.seal(&w.table, &stored, plain).ok_or_else(|| {
                        KvError::Storage("a card agency row could not be sealed".into())
                    })?;
                    sealed.put(&w.table, &stored, value);
                }
                None => sealed.delete(&w.table, &stored),
            }
        }
        Ok(sealed)
    }
}

/// The agency's domain answer to a record or settlement it does not hold.
fn conflict(c: CardConflict) -> AgencyError {
    match c {
        CardConflict::Record | CardConflict::Settlement => AgencyError::Conflict,
        CardConflict::Overflow => AgencyError::Overflow,
    }
}

fn refused(e: impl std::fmt::Display) -> AgencyError {
    AgencyError::Refused(e.to_string())
}

fn soft(e: impl std::fmt::Display) -> SoftCashError {
    SoftCashError::Issuer(e.to_string())
}

/// The issuer acting as the payment agency of card systems.
pub struct CardAgency<'a> {
    core: &'a IssuerCore,
    db: Db,
    /// One agency step at a time: each is check-then-commit over two stores.
    serial: Mutex<()>,
    path: PathBuf,
}

impl std::fmt::Debug for CardAgency<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardAgency")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'a> CardAgency<'a> {
    /// Opens the agency of `core` (its file in the issuer's directory) and
    /// reserves again the coins every open load holds. Call it right after
    /// the issuer opens, before it serves payments.
    pub fn open(core: &'a IssuerCore) -> Result<CardAgency<'a>, CardAgencyError> {
        let path = core.config.dir.join(CARD_AGENCY_FILE);
        let db = agency_db(core, true)?
            .ok_or_else(|| StoreError::Storage("the card agency's store did not open".into()))?;
        let agency = CardAgency {
            core,
            db,
            serial: Mutex::new(()),
            path,
        };
        let n_held = hold_open_loads(core, &agency.db)?;
        tracing::info!(n_held, "card agency opened");
        Ok(agency)
    }

    /// Every record the agency holds as finished, in `(lus, card, nt)` order.
    pub fn all_finished(&self) -> Result<Vec<CardTxRecord>, AgencyError> {
        let mut all: Vec<CardTxRecord> = self
            .db
            .scan::<CardTxRecord>(FINAL, &[])?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        // Sealed tables order by keyed card ids.
        all.sort_by_key(CardTxRecord::key);
        Ok(all)
    }

    /// The settlement of `(lus, period)`, if the agency has it.
    pub fn settlement(&self, lus: LusId, period: u32) -> Result<Option<Settlement>, AgencyError> {
        Ok(self.db.get(SETTLED, &settled_key(lus, period))?)
    }

    fn guarantee_of(&self, load_id: &LoadId) -> Result<Option<Guarantee>, AgencyError> {
        Ok(self.db.get(GUARANTEE, &load_id.0)?)
    }

    /// Commits `events` as `tx` through the issuer's commit path, or finds
    /// it already committed (a retry). `inputs` must be reserved for `tx`.
    fn commit(
        &self,
        tx: TxId,
        inputs: &[CoinBody],
        build: impl FnOnce() -> Result<(Vec<Event>, Vec<CoinBody>), AgencyError>,
    ) -> Result<CommitRef, AgencyError> {
        match self.core.idempotency.begin(tx).map_err(refused)? {
            Begin::Committed(at) => return Ok(at),
            Begin::InFlight => return Err(refused("the same card transaction is in flight")),
            Begin::Started => {}
        }
        let result = build().and_then(|(events, issued)| {
            self.core
                .commit_batch(tx, inputs, events, issued)
                .map_err(refused)
        });
        if result.is_err() {
            self.core.idempotency.abandon(tx);
        }
        result
    }

    /// Checks `rec` against what the agency holds: `Ok(None)` if it is
    /// already recorded (a retry), the guarantee otherwise.
    fn check_new(&self, rec: &CardTxRecord) -> Result<Option<Guarantee>, AgencyError> {
        if let Some(existing) = self.db.get::<CardTxRecord>(FINAL, &rec.key())? {
            return if existing == *rec {
                Ok(None)
            } else {
                Err(AgencyError::Conflict)
            };
        }
        let g = self
            .guarantee_of(&rec.load_id)?
            .ok_or(AgencyError::UnknownLoad)?;
        if !g.matches(rec) {
            return Err(AgencyError::Conflict);
        }
        Ok(Some(g))
    }

    /// Writes the finished record after its money (if any) is in the log.
    fn record_final(&self, mut g: Guarantee, rec: &CardTxRecord) -> Result<(), AgencyError> {
        g.outcome = Some(rec.outcome);
        let mut batch = WriteBatch::new();
        batch.put(FINAL, &rec.key(), rec);
        batch.delete(OPEN, &open_key(&rec.card, &rec.load_id));
        batch.put(GUARANTEE, &rec.load_id.0, &g);
        Ok(self.db.write(batch)?)
    }

    fn write_guarantee(&self, g: &Guarantee) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        batch.put(GUARANTEE, &g.req.load_id.0, g);
        batch.put(
            OPEN,
            &open_key(&g.req.l1.card, &g.req.load_id),
            &g.req.load_id,
        );
        self.db.write(batch)
    }

    /// The coins bought with a committed unload, read back from its batch.
    fn coins_of_unload(&self, rec: &CardTxRecord) -> Result<Vec<Coin>, SoftCashError> {
        let tx = card_unload_tx(rec.lus, &rec.card, rec.nt);
        let at = self
            .core
            .idempotency
            .committed(&tx)
            .map_err(soft)?
            .ok_or(SoftCashError::UnloadNotCommitted)?;
        let events = self.core.read_batch(at).map_err(soft)?;
        let bodies = events
            .into_iter()
            .find_map(|e| match e {
                Event::CoinsIssued {
                    coins,
                    cause: IssueCause::CardUnload,
                    ..
                } => Some(coins),
                _ => None,
            })
            .ok_or_else(|| soft("the unload's batch issued no coins"))?;
        let total = Amount::checked_sum(bodies.iter().map(|c| c.value))
            .map_err(|_| SoftCashError::AmountMismatch)?;
        if total != rec.amount {
            return Err(SoftCashError::AmountMismatch);
        }
        bodies
            .into_iter()
            .map(|b| self.core.tagged(b).map_err(soft))
            .collect()
    }
}

impl Agency for CardAgency<'_> {
    /// Unloads only, into soft cash for a transfer: a load is paid with
    /// coins and guaranteed by [`SoftCash::redeem_for_load`].
    fn guarantee(&self, req: &LoadRequest) -> Result<(), AgencyError> {
        let _serial = lock(&self.serial);
        if let Some(existing) = self.guarantee_of(&req.load_id)? {
            return if existing.req == *req {
                Ok(())
            } else {
                Err(AgencyError::Conflict)
            };
        }
        if req.direction() == Direction::Load {
            return Err(refused(
                "the issuer guarantees loads only against coins redeemed for them",
            ));
        }
        if !req.holder.as_str().starts_with(TRANSFER_ACCOUNT_PREFIX) {
            return Err(refused(
                "the issuer pays unloads only as soft cash of a transfer",
            ));
        }
        self.write_guarantee(&Guarantee {
            req: req.clone(),
            coins: Vec::new(),
            outcome: None,
            at: self.core.now(),
        })?;
        Ok(())
    }

    fn open_guarantees(&self, card: &CardId) -> Result<Vec<LoadRequest>, AgencyError> {
        let mut out = Vec::new();
        for (_, id) in self.db.scan::<LoadId>(OPEN, card.as_bytes())? {
            if let Some(g) = self.guarantee_of(&id)?
                && g.outcome.is_none()
            {
                out.push(g.req);
            }
        }
        Ok(out)
    }

    fn load_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        let _serial = lock(&self.serial);
        let Some(g) = self.check_new(rec)? else {
            return Ok(());
        };
        if rec.direction != Direction::Load || rec.outcome != Outcome::Committed {
            return Err(AgencyError::Conflict);
        }
        let tx = card_load_tx(rec.lus, &rec.card, rec.nt);
        if self
            .core
            .idempotency
            .committed(&tx)
            .map_err(refused)?
            .is_none()
        {
            // Held since the redeem; granted again to the same tx. A failed
            // append releases it, so this also re-takes it for a retry.
            let ids: Vec<_> = g.coins.iter().map(|c| c.id).collect();
            let inputs = self.core.commit.reserve(tx, &ids).map_err(refused)?;
            let events = match load_events(rec, &g.coins, g.at, &inputs) {
                Ok(events) => events,
                Err(c) => {
                    self.core.commit.abort(tx);
                    return Err(conflict(c));
                }
            };
            self.commit(tx, &inputs, || Ok((events, Vec::new())))?;
            tracing::info!(lus = %rec.lus, nt = rec.nt, "card load committed in the issuer's log");
        }
        self.record_final(g, rec)
    }

    fn load_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        let _serial = lock(&self.serial);
        let Some(g) = self.check_new(rec)? else {
            return Ok(());
        };
        let tx = card_load_tx(rec.lus, &rec.card, rec.nt);
        if self
            .core
            .idempotency
            .committed(&tx)
            .map_err(refused)?
            .is_some()
        {
            return Err(AgencyError::Conflict);
        }
        // The coins are the holder's again.
        self.core.commit.abort(tx);
        self.record_final(g, rec)
    }

    fn unload_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        let _serial = lock(&self.serial);
        let Some(g) = self.check_new(rec)? else {
            return Ok(());
        };
        if rec.direction != Direction::Unload || rec.outcome != Outcome::Committed {
            return Err(AgencyError::Conflict);
        }
        let tx = card_unload_tx(rec.lus, &rec.card, rec.nt);
        self.commit(tx, &[], || {
            let spec = unload_spec(rec.amount).ok_or(AgencyError::Overflow)?;
            let bodies = self.core.mint_bodies(&spec).map_err(refused)?;
            let events = unload_events(rec, g.at, &bodies).map_err(conflict)?;
            Ok((events, bodies))
        })?;
        tracing::info!(lus = %rec.lus, nt = rec.nt, "card unload committed in the issuer's log");
        self.record_final(g, rec)
    }

    fn unload_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        let _serial = lock(&self.serial);
        let Some(g) = self.check_new(rec)? else {
            return Ok(());
        };
        if self
            .core
            .idempotency
            .committed(&card_unload_tx(rec.lus, &rec.card, rec.nt))
            .map_err(refused)?
            .is_some()
        {
            return Err(AgencyError::Conflict);
        }
        self.record_final(g, rec)
    }

    fn finished_records(&self, lus: LusId, period: u32) -> Result<Vec<CardTxRecord>, AgencyError> {
        Ok(self
            .db
            .scan::<CardTxRecord>(FINAL, &lus.0.to_be_bytes())?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.period == period)
            .collect())
    }

    fn settle(&self, settlement: &Settlement) -> Result<(), AgencyError> {
        let _serial = lock(&self.serial);
        let key = settled_key(settlement.lus, settlement.period);
        if let Some(existing) = self.db.get::<Settlement>(SETTLED, &key)? {
            return if existing == *settlement {
                Ok(())
            } else {
                Err(AgencyError::Conflict)
            };
        }
        // The settlement must be the net of what this agency logged.
        let finished = self.finished_records(settlement.lus, settlement.period)?;
        let event = settlement_event(settlement, &finished).map_err(conflict)?;
        let tx = card_clear_tx(settlement.lus, settlement.period);
        let at = self.commit(tx, &[], || Ok((vec![event.clone()], Vec::new())))?;
        // A batch found from before a crash must be this settlement.
        if self.core.read_batch(at).map_err(refused)? != vec![event] {
            return Err(AgencyError::Conflict);
        }
        let mut batch = WriteBatch::new();
        batch.put(SETTLED, &key, settlement);
        self.db.write(batch)?;
        tracing::info!(lus = %settlement.lus, period = settlement.period, "card clearing settled in the issuer's log");
        Ok(())
    }
}

impl SoftCash for CardAgency<'_> {
    type Coins = Vec<Coin>;

    fn value_of(&self, coins: &Vec<Coin>) -> Result<Amount, SoftCashError> {
        if coins.is_empty() {
            return Err(SoftCashError::InvalidCoins("no coins".into()));
        }
        {
            let mint = self.core.mint.read().expect(ledger::sync::POISONED_LOCK);
            if coins.iter().any(|c| mint.check(c).is_err()) {
                return Err(SoftCashError::InvalidCoins(
                    "a coin's tag does not check".into(),
                ));
            }
        }
        Amount::checked_sum(coins.iter().map(Coin::value))
            .map_err(|_| SoftCashError::InvalidCoins("amount overflow".into()))
    }

    fn buy_coins_with_unload(
        &self,
        transfer: TransferId,
        unload: &CardTxRecord,
    ) -> Result<Vec<Coin>, SoftCashError> {
        if unload.direction != Direction::Unload || unload.outcome != Outcome::Committed {
            return Err(SoftCashError::UnloadNotCommitted);
        }
        let _serial = lock(&self.serial);
        let g = self
            .guarantee_of(&unload.load_id)
            .map_err(soft)?
            .ok_or(SoftCashError::UnloadNotCommitted)?;
        if g.req.holder != transfer.holder_account() || !g.matches(unload) {
            return Err(soft("the unload belongs to another transfer"));
        }
        match self.db.get::<CardTxRecord>(FINAL, &unload.key()) {
            Ok(Some(rec)) if rec == *unload => {}
            Ok(_) => return Err(SoftCashError::UnloadNotCommitted),
            Err(e) => return Err(soft(e)),
        }
        self.coins_of_unload(unload)
    }

    fn redeem_for_load(
        &self,
        transfer: TransferId,
        coins: &Vec<Coin>,
        load: &LoadRequest,
    ) -> Result<(), SoftCashError> {
        let bodies: Vec<CoinBody> = coins.iter().map(|c| c.body).collect();
        let _serial = lock(&self.serial);
        if let Some(existing) = self.guarantee_of(&load.load_id).map_err(soft)? {
            return if existing.req == *load && existing.coins == bodies {
                Ok(())
            } else {
                Err(soft("another redeem holds this load"))
            };
        }
        let value = self.value_of(coins)?;
        let now = self.core.now();
        let holder = transfer.holder_account();
        match decide_load_guarantee(load, &holder, &bodies, value, now) {
            Ok(()) => {}
            Err(GuaranteeRefusal::NotThisTransfersLoad) => {
                return Err(soft("not this transfer's load"));
            }
            Err(GuaranteeRefusal::AmountMismatch) => return Err(SoftCashError::AmountMismatch),
            Err(GuaranteeRefusal::Expired) => {
                return Err(SoftCashError::InvalidCoins(
                    "expired coins are refreshed, not loaded".into(),
                ));
            }
        }
        let tx = card_load_tx(load.lus, &load.l1.card, load.l1.nt);
        let ids: Vec<_> = bodies.iter().map(|b| b.id).collect();
        let inputs = self
            .core
            .commit
            .reserve(tx, &ids)
            .map_err(|e| SoftCashError::InvalidCoins(e.to_string()))?;
        if inputs != bodies {
            self.core.commit.abort(tx);
            return Err(SoftCashError::InvalidCoins(
                "coins differ from the issuer's record".into(),
            ));
        }
        // After the reservation, as for payments (`issuer::epoch_end`):
        // coins of a revoked, erased or closing epoch never load a card.
        if let Err(refusal) = self.core.epoch_gate(&inputs, false) {
            self.core.commit.abort(tx);
            return Err(SoftCashError::InvalidCoins(format!(
                "{} coin(s) of a revoked or erased key epoch ({:?})",
                refusal.bad_coins.len(),
                refusal.reason
            )));
        }
        let written = self.write_guarantee(&Guarantee {
            req: load.clone(),
            coins: inputs,
            outcome: None,
            at: now,
        });
        if let Err(e) = written {
            self.core.commit.abort(tx);
            return Err(soft(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unload_spec_makes_the_amount_in_few_coins() {
        for amount in [1u64, 7, 10, 99, 1_234, 98_765, 1_000_000] {
            let spec = unload_spec(Amount::from_minor(amount)).expect("spec");
            assert_eq!(spec.total(), Ok(Amount::from_minor(amount)));
            let digits = amount.to_string().len() as u64;
            assert!(spec.n_coins() <= 4 * digits, "{amount}: {}", spec.n_coins());
        }
    }

    fn file_holds(path: &Path, needle: &[u8]) -> bool {
        let bytes = std::fs::read(path).expect("read file");
        bytes.windows(needle.len()).any(|w| w == needle)
    }

    /// A `card-agency.redb` written in the clear (card ids in the keys of
    /// the open loads and finished records, cards and accounts in the
    /// values) is sealed when the agency opens it: the rows read back as
    /// they were, by key and by the scans the agency makes, and the file
    /// holds neither the card nor the account. A copy left by a crash in
    /// the middle of the sealing is discarded and the sealing made again.
    #[test]
    fn a_clear_agency_file_is_sealed_on_open_and_reads_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = crate::issuer::registry::Registry::open(dir.path().join("registry.redb"))
            .expect("registry");
        let seal = registry.card_agency_seal();
        let path = dir.path().join(CARD_AGENCY_FILE);
        let card = CardId::from_bytes([0xc7; 8]);
        let account = b"holder-account-42".to_vec();
        let rec = CardTxRecord {
            lus: LusId(3),
            load_id: LoadId([9; 16]),
            card,
            nt: 5,
            direction: Direction::Unload,
            amount: Amount::from_minor(700),
            outcome: Outcome::Committed,
            period: 2,
        };
        let mut guarantee = card.as_bytes().to_vec();
        guarantee.extend_from_slice(&account);
        {
            let clear = Db::open(&path).expect("clear file");
            let mut b = WriteBatch::new();
            b.put(GUARANTEE, &rec.load_id.0, &guarantee);
            b.put(OPEN, &open_key(&card, &rec.load_id), &());
            b.put(FINAL, &rec.key(), &rec);
            b.put(SETTLED, &settled_key(LusId(3), 2), &account);
            clear.write(b).expect("clear rows");
        }
        assert!(file_holds(&path, card.as_bytes()));
        // A crash while a first sealing was writing its copy.
        std::fs::write(path.with_extension("redb.rewriting"), b"torn copy").expect("torn");

        let open = |path: &Path| {
            Db::in_tables(Arc::new(SealedTables {
                inner: Arc::new(seal_file(path, seal).expect("sealed")),
                rows: RowSeal { seal: seal.clone() },
            }))
        };
        let db = open(&path);
        assert_eq!(
            db.get::<Vec<u8>>(GUARANTEE, &rec.load_id.0),
            Ok(Some(guarantee.clone()))
        );
        assert_eq!(db.scan::<()>(OPEN, card.as_bytes()).expect("scan").len(), 1);
        assert_eq!(
            db.get::<CardTxRecord>(FINAL, &rec.key()),
            Ok(Some(rec.clone()))
        );
        let by_lus = db
            .scan::<CardTxRecord>(FINAL, &3u32.to_be_bytes())
            .expect("scan");
        assert_eq!(
            by_lus.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            vec![rec.clone()]
        );
        assert_eq!(
            db.get::<Vec<u8>>(SETTLED, &settled_key(LusId(3), 2)),
            Ok(Some(account.clone()))
        );
        drop(db);
        assert!(!file_holds(&path, card.as_bytes()), "a card id on disk");
        assert!(!file_holds(&path, &account), "an account on disk");
        assert!(!path.with_extension("redb.rewriting").exists());

        // Sealed once: a second open reads the same rows, sealed again nothing.
        let db = open(&path);
        assert_eq!(db.get::<CardTxRecord>(FINAL, &rec.key()), Ok(Some(rec)));

        // Under another registry key the sealed rows open to nothing.
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = crate::issuer::registry::Registry::open(other_dir.path().join("registry.redb"))
            .expect("registry");
        drop(db);
        let foreign = Db::in_tables(Arc::new(SealedTables {
            inner: Arc::new(seal_file(&path, other.card_agency_seal()).expect("marked")),
            rows: RowSeal {
                seal: other.card_agency_seal().clone(),
            },
        }));
        assert!(foreign.get::<Vec<u8>>(GUARANTEE, &[9; 16]).is_err());
    }

    #[test]
    fn card_tx_ids_differ_by_direction_and_record() {
        let card = CardId::from_bytes([1; 8]);
        assert_ne!(
            card_load_tx(LusId(1), &card, 1),
            card_unload_tx(LusId(1), &card, 1)
        );
        assert_ne!(
            card_load_tx(LusId(1), &card, 1),
            card_load_tx(LusId(1), &card, 2)
        );
        assert_ne!(
            card_load_tx(LusId(1), &card, 1),
            card_load_tx(LusId(2), &card, 1)
        );
    }
}
