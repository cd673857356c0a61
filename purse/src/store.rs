//! The durable purse: one redb file holding the profile, the issuer, the
//! coins with their states, the journal of in-flight transactions and the
//! history of closed ones.
//!
//! Every change is one redb write transaction with `Durability::Immediate`,
//! committed before the method returns: a caller acts (sends a message,
//! tells a user) only on what is on disk. Coin states change only through
//! [`crate::state::transition`]. Completing or refusing a transaction is a
//! single transaction that moves every coin and closes the journal entry,
//! and asserts that the purse's holdings moved by exactly what the
//! transaction says: money is at stake, so a broken invariant stops the
//! purse rather than write a wrong balance.
//!
//! Every record but the format and the key header is sealed under the
//! [`PurseKey`] derived from the owner's passphrase (`seal.rs`): opening
//! checks the passphrase against a sealed check record first, so a wrong
//! one is [`PurseError::WrongPassphrase`] and changes nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ledger::constants::COINS_PER_TX_MAX;
use ledger::{Amount, Coin, CoinId, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, open_record, seal_record};
use crate::constants::{
    COIN_RECORD_BYTES_MAX, CONTEXT_BYTES_MAX, HISTORY_RECORD_BYTES_MAX, JOURNAL_RECORD_BYTES_MAX,
    MESSAGE_BYTES_MAX, PROFILE_BYTES_MAX, PURSE_FORMAT_VERSION, SECRET_BYTES_MAX,
    SECRETS_PER_TX_MAX, STATEMENT_BYTES_MAX, UNENCRYPTED_FORMAT_VERSION, URL_BYTES_MAX,
};
use crate::error::{PurseError, check_len};
use crate::file;
use crate::journal::{
    Completion, Destination, JournalEntry, NewTransaction, Refusal, SessionSecret, Step,
    StepRecord, TxEffect, TxKind,
};
use crate::profile::{IssuerInfo, PendingKeyChange, PurseProfile};
use crate::seal::{KeyHeader, Passphrase, PurseKey};
use crate::select::{Selection, select};
use crate::state::{BadKind, BadReason, CoinAction, CoinState, TxRef, transition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const COINS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("coins");
const JOURNAL: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("journal");
const HISTORY: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("history");

const META_FORMAT: &str = "format";
const META_PROFILE: &str = "profile";
const META_ISSUER: &str = "issuer";
/// A key change not yet answered ([`PendingKeyChange`]).
const META_PENDING_KEY: &str = "pending-key-change";
/// How the purse key is derived ([`KeyHeader`], in the clear).
const META_KEY_HEADER: &str = "key-header";
/// A known value sealed under the purse key: what tells a wrong passphrase
/// apart from a damaged record.
const META_KEY_CHECK: &str = "key-check";
const KEY_CHECK_VALUE: &[u8] = b"vc-purse key check";

/// A coin and its state, as the purse stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCoin {
    pub coin: Coin,
    pub state: CoinState,
}

/// The purse's money, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub available: Amount,
    pub pending: Amount,
    pub bad: Amount,
    pub n_available: usize,
    pub n_pending: usize,
    pub n_spent: usize,
    pub n_bad: usize,
}

impl Balance {
    /// What the purse owns: available plus reserved by in-flight transactions.
    pub fn holdings(&self) -> Result<Amount, PurseError> {
        Ok(self.available.checked_add(self.pending)?)
    }
}

/// A participant's purse, open on its file.
pub struct Purse {
    db: Database,
    path: PathBuf,
    key: PurseKey,
}

impl std::fmt::Debug for Purse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Purse({})", self.path.display())
    }
}

impl Purse {
    /// Creates a new purse file (mode 0600) for `profile`, its records
    /// sealed under `key` ([`PurseKey::derive_new`] from the owner's
    /// passphrase). Fails if the file exists.
    pub fn create(
        path: impl AsRef<Path>,
        profile: &PurseProfile,
        issuer: Option<&IssuerInfo>,
        key: PurseKey,
    ) -> Result<Purse, PurseError> {
        let path = path.as_ref();
        profile.validate()?;
        if let Some(issuer) = issuer {
            issuer.validate()?;
        }
        let file = file::create_private(path)?;
        let purse = Purse::initialize(file, path, profile, issuer, key).inspect_err(|_| {
            // Leave no half-made purse behind to block the next attempt.
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(error = %e, "could not remove a half-made purse");
            }
        })?;
        // No path: users name purse files after themselves, and logs carry no identities.
        tracing::info!("purse created");
        Ok(purse)
    }

    fn initialize(
        file: std::fs::File,
        path: &Path,
        profile: &PurseProfile,
        issuer: Option<&IssuerInfo>,
        key: PurseKey,
    ) -> Result<Purse, PurseError> {
        let db =
            Database::builder().create_with_backend(redb::backends::FileBackend::new(file)?)?;
        let purse = Purse {
            db,
            path: path.to_path_buf(),
            key,
        };
        purse.write(|txn| {
            let mut meta = txn.open_table(META)?;
            meta.insert(META_FORMAT, PURSE_FORMAT_VERSION.to_le_bytes().as_slice())?;
            let header = postcard::to_stdvec(&purse.key.header())
                .map_err(|_| PurseError::Invalid("key header"))?;
            meta.insert(META_KEY_HEADER, header.as_slice())?;
            let check = purse.key.seal(
                &crate::seal::slot("meta", META_KEY_CHECK.as_bytes()),
                KEY_CHECK_VALUE,
            )?;
            meta.insert(META_KEY_CHECK, check.as_slice())?;
            let profile_bytes = purse.seal_meta(META_PROFILE, "profile", profile)?;
            meta.insert(META_PROFILE, profile_bytes.as_slice())?;
            if let Some(issuer) = issuer {
                let issuer_bytes = purse.seal_meta(META_ISSUER, "issuer", issuer)?;
                meta.insert(META_ISSUER, issuer_bytes.as_slice())?;
            }
            txn.open_table(COINS)?;
            txn.open_table(JOURNAL)?;
            txn.open_table(HISTORY)?;
            Ok(())
        })?;
        Ok(purse)
    }

    /// Opens an existing purse with the owner's passphrase (deriving the
    /// purse key costs what the file's key header says, once). Refuses a
    /// file that group or others may access, one that is damaged (every
    /// page checksum is verified on open) or not a purse, an unencrypted
    /// purse of the first format, and a wrong passphrase, each with its own
    /// error and nothing changed.
    pub fn open(path: impl AsRef<Path>, passphrase: &Passphrase) -> Result<Purse, PurseError> {
        let path = path.as_ref();
        let file = file::open_private(path)?;
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create_with_backend(redb::backends::FileBackend::new(file)?)?;
        let header = read_key_header(&db)?;
        let key = PurseKey::derive(passphrase, header)?;
        let purse = Purse {
            db,
            path: path.to_path_buf(),
            key,
        };
        purse.check_format()?;
        let in_flight = purse.in_flight()?.len();
        tracing::info!(in_flight, "purse opened");
        Ok(purse)
    }

    fn check_format(&self) -> Result<(), PurseError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let check = meta
            .get(META_KEY_CHECK)?
            .ok_or_else(|| PurseError::Corrupt("purse has no key check".into()))?;
        let opened = self.key.open(
            &crate::seal::slot("meta", META_KEY_CHECK.as_bytes()),
            check.value(),
        )?;
        if opened.as_deref().map(Vec::as_slice) != Some(KEY_CHECK_VALUE) {
            return Err(PurseError::WrongPassphrase);
        }
        for table in [COINS, JOURNAL, HISTORY] {
            txn.open_table(table)
                .map_err(|_| PurseError::WrongFormat(PURSE_FORMAT_VERSION))?;
        }
        // Decode the profile now so a damaged one is reported at open.
        self.profile()?;
        Ok(())
    }

    /// Copies a purse of the unencrypted first format at `from` into a new
    /// purse at `to` sealed under `key`: profile, issuer, every coin with
    /// its state, the journal and the history, in one transaction. `from`
    /// is left as it is (it still holds keys and coins in the clear: its
    /// owner deletes it, and its copies, once the new purse works).
    pub fn encrypt_unencrypted(
        from: impl AsRef<Path>,
        to: impl AsRef<Path>,
        key: PurseKey,
    ) -> Result<Purse, PurseError> {
        let old = Database::builder()
            .set_check_integrity_on_open(true)
            .create_with_backend(redb::backends::FileBackend::new(file::open_private(
                from.as_ref(),
            )?)?)?;
        let txn = old.begin_read()?;
        let meta = txn
            .open_table(META)
            .map_err(|_| PurseError::WrongFormat(0))?;
        let version = meta
            .get(META_FORMAT)?
            .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
            .map(u32::from_le_bytes)
            .ok_or(PurseError::WrongFormat(0))?;
        if version != UNENCRYPTED_FORMAT_VERSION {
            return Err(PurseError::WrongFormat(version));
        }
        let profile: PurseProfile = decode(
            "profile",
            meta.get(META_PROFILE)?
                .ok_or_else(|| PurseError::Corrupt("purse has no profile".into()))?
                .value(),
            PROFILE_BYTES_MAX,
        )?;
        let issuer: Option<IssuerInfo> = meta
            .get(META_ISSUER)?
            .map(|g| decode("issuer", g.value(), PROFILE_BYTES_MAX))
            .transpose()?;
        let mut coins: Vec<StoredCoin> = Vec::new();
        for row in txn.open_table(COINS)?.iter()? {
            coins.push(decode("coin", row?.1.value(), COIN_RECORD_BYTES_MAX)?);
        }
        let mut entries: Vec<JournalEntry> = Vec::new();
        for row in txn.open_table(JOURNAL)?.iter()? {
            entries.push(decode("journal", row?.1.value(), JOURNAL_RECORD_BYTES_MAX)?);
        }
        let mut effects: Vec<TxEffect> = Vec::new();
        for row in txn.open_table(HISTORY)?.iter()? {
            effects.push(decode("history", row?.1.value(), HISTORY_RECORD_BYTES_MAX)?);
        }
        drop(meta);
        drop(txn);
        drop(old);
        let to = to.as_ref();
        let purse = Purse::create(to, &profile, issuer.as_ref(), key)?;
        let filled = purse.write(|txn| {
            let mut table = txn.open_table(COINS)?;
            for stored in &coins {
                put_coin(&purse.key, &mut table, stored)?;
            }
            let mut table = txn.open_table(JOURNAL)?;
            for entry in &entries {
                put_entry(&purse.key, &mut table, entry)?;
            }
            let mut table = txn.open_table(HISTORY)?;
            for effect in &effects {
                put_history(&purse.key, &mut table, effect)?;
            }
            Ok(())
        });
        if let Err(e) = filled {
            // Leave no coinless purse behind to block the next attempt.
            drop(purse);
            if let Err(rm) = std::fs::remove_file(to) {
                tracing::warn!(error = %rm, "could not remove a half-made purse");
            }
            return Err(e);
        }
        tracing::info!(
            n_coins = coins.len(),
            "unencrypted purse sealed into a new file"
        );
        Ok(purse)
    }

    /// The key this purse's records are sealed under (for a key backup
    /// readable with the same passphrase).
    pub(crate) fn key(&self) -> &PurseKey {
        &self.key
    }

    fn seal_meta<T: Serialize>(
        &self,
        name: &str,
        what: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, PurseError> {
        seal_record(
            &self.key,
            "meta",
            name.as_bytes(),
            what,
            value,
            PROFILE_BYTES_MAX,
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction committed with `Immediate`
    /// durability; if `f` fails nothing is written.
    fn write<R>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, PurseError>,
    ) -> Result<R, PurseError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    // ---- profile and issuer ----

    pub fn profile(&self) -> Result<PurseProfile, PurseError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let guard = meta
            .get(META_PROFILE)?
            .ok_or_else(|| PurseError::Corrupt("purse has no profile".into()))?;
        open_record(
            &self.key,
            "meta",
            META_PROFILE.as_bytes(),
            "profile",
            guard.value(),
            PROFILE_BYTES_MAX,
        )
    }

    /// Stores `CERT_X` once registration has returned it.
    pub fn set_certificate(&self, certificate: Vec<u8>) -> Result<(), PurseError> {
        let mut profile = self.profile()?;
        profile.certificate = Some(certificate);
        profile.validate()?;
        self.write(|txn| {
            let bytes = self.seal_meta(META_PROFILE, "profile", &profile)?;
            txn.open_table(META)?
                .insert(META_PROFILE, bytes.as_slice())?;
            Ok(())
        })
    }

    /// The key change not yet answered, if any.
    pub fn pending_key_change(&self) -> Result<Option<PendingKeyChange>, PurseError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let Some(guard) = meta.get(META_PENDING_KEY)? else {
            return Ok(None);
        };
        open_record(
            &self.key,
            "meta",
            META_PENDING_KEY.as_bytes(),
            "pending key change",
            guard.value(),
            PROFILE_BYTES_MAX,
        )
        .map(Some)
    }

    /// Keeps `pending` durably before its request is sent.
    pub fn begin_key_change(&self, pending: &PendingKeyChange) -> Result<(), PurseError> {
        pending.validate()?;
        self.write(|txn| {
            let bytes = self.seal_meta(META_PENDING_KEY, "pending key change", pending)?;
            txn.open_table(META)?
                .insert(META_PENDING_KEY, bytes.as_slice())?;
            Ok(())
        })
    }

    /// The issuer certified the pending key: it becomes the profile's key,
    /// with `certificate`, and the pending change is gone, in one
    /// transaction.
    pub fn complete_key_change(&self, certificate: Vec<u8>) -> Result<(), PurseError> {
        let pending = self
            .pending_key_change()?
            .ok_or(PurseError::Invalid("no key change is pending"))?;
        let sk =
            protocol::crypto::SecretKey::from_pkcs8_der(pending.secret_key.expose_pkcs8_der())?;
        let mut profile = self.profile()?;
        profile.public_key = sk.public().to_ledger();
        profile.secret_key = pending.secret_key.clone();
        profile.certificate = Some(certificate);
        profile.validate()?;
        self.write(|txn| {
            let bytes = self.seal_meta(META_PROFILE, "profile", &profile)?;
            let mut meta = txn.open_table(META)?;
            meta.insert(META_PROFILE, bytes.as_slice())?;
            meta.remove(META_PENDING_KEY)?;
            Ok(())
        })
    }

    /// Drops the pending key change (the issuer refused it for good).
    pub fn abandon_key_change(&self) -> Result<(), PurseError> {
        self.write(|txn| {
            txn.open_table(META)?.remove(META_PENDING_KEY)?;
            Ok(())
        })
    }

    pub fn issuer(&self) -> Result<Option<IssuerInfo>, PurseError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let Some(guard) = meta.get(META_ISSUER)? else {
            return Ok(None);
        };
        open_record(
            &self.key,
            "meta",
            META_ISSUER.as_bytes(),
            "issuer",
            guard.value(),
            PROFILE_BYTES_MAX,
        )
        .map(Some)
    }

    pub fn set_issuer(&self, issuer: &IssuerInfo) -> Result<(), PurseError> {
        issuer.validate()?;
        self.write(|txn| {
            let bytes = self.seal_meta(META_ISSUER, "issuer", issuer)?;
            txn.open_table(META)?
                .insert(META_ISSUER, bytes.as_slice())?;
            Ok(())
        })
    }

    // ---- coins: queries ----

    /// Every coin with its state, in coin-id order.
    pub fn coins(&self) -> Result<Vec<StoredCoin>, PurseError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(COINS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (row, value) = row?;
            out.push(decode_coin(&self.key, &row.value(), value.value())?);
        }
        Ok(out)
    }

    pub fn coin(&self, id: CoinId) -> Result<Option<StoredCoin>, PurseError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(COINS)?;
        table
            .get(*id.as_bytes())?
            .map(|v| decode_coin(&self.key, id.as_bytes(), v.value()))
            .transpose()
    }

    pub fn balance(&self) -> Result<Balance, PurseError> {
        balance_of(self.coins()?.iter())
    }

    /// Available coins not expired at `now`: what payments may use.
    pub fn spendable(&self, now: Timestamp) -> Result<Vec<Coin>, PurseError> {
        Ok(self
            .coins()?
            .into_iter()
            .filter(|c| c.state == CoinState::Available && !c.coin.body.is_expired_at(now))
            .map(|c| c.coin)
            .collect())
    }

    /// Available coins expired at `now`: only a refresh can use them.
    pub fn expired(&self, now: Timestamp) -> Result<Vec<Coin>, PurseError> {
        Ok(self
            .coins()?
            .into_iter()
            .filter(|c| c.state == CoinState::Available && c.coin.body.is_expired_at(now))
            .map(|c| c.coin)
            .collect())
    }

    /// Exports the coins to hand to a redeem or aggregate (or to back up):
    /// the available coins with these ids, or every spendable one if `ids`
    /// is empty. Exporting changes nothing: the coins stay Available until a
    /// journaled transaction reserves them.
    pub fn export_coins(&self, ids: &[CoinId], now: Timestamp) -> Result<Vec<Coin>, PurseError> {
        if ids.is_empty() {
            return self.spendable(now);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let stored = self.coin(*id)?.ok_or(PurseError::UnknownCoin(*id))?;
            if stored.state != CoinState::Available {
                return Err(PurseError::TransitionRefused {
                    from: stored.state.name(),
                    action: "export",
                });
            }
            out.push(stored.coin);
        }
        Ok(out)
    }

    /// Chooses coins for a payment of `amount` among the spendable ones.
    pub fn select(&self, amount: Amount, now: Timestamp) -> Result<Selection, PurseError> {
        select(&self.spendable(now)?, amount)
    }

    // ---- journal ----

    /// Records a new transaction and reserves its inputs, durably, before
    /// its first message goes out. Fails, changing nothing, if any input is
    /// not Available.
    pub fn begin(&self, new: NewTransaction) -> Result<TxRef, PurseError> {
        let tx = TxRef::random()?;
        check_message(&new.message, &new.secrets, &new.context, &new.to)?;
        check_distinct(&new.reserve)?;
        if new.step == Step::Acknowledge {
            return Err(PurseError::Invalid(
                "a transaction cannot begin acknowledging",
            ));
        }
        if new.amount.is_zero() && new.kind != TxKind::Refund {
            return Err(PurseError::Invalid("a transaction of zero value"));
        }
        if new.kind.spends_own_coins() == new.reserve.is_empty() {
            return Err(PurseError::Invalid(
                "inputs must be given exactly for pay, change, refresh and redeem",
            ));
        }
        self.write(|txn| {
            let mut coins = txn.open_table(COINS)?;
            let mut reserved_value = Amount::ZERO;
            for id in &new.reserve {
                let stored = get_coin(&self.key, &coins, *id)?;
                let state = transition(&stored.state, &CoinAction::Reserve(tx))?;
                reserved_value = reserved_value.checked_add(stored.coin.value())?;
                put_coin(&self.key, &mut coins, &StoredCoin { state, ..stored })?;
            }
            if new.kind.spends_own_coins() && reserved_value != new.amount {
                return Err(PurseError::Invalid("inputs must total the amount"));
            }
            let entry = JournalEntry {
                tx,
                kind: new.kind,
                amount: new.amount,
                step: new.step,
                reserved: new.reserve.clone(),
                to: new.to.clone(),
                last_sent: new.message.clone(),
                secrets: new.secrets.clone(),
                context: new.context.clone(),
                created: new.now,
                updated: new.now,
            };
            put_entry(&self.key, &mut txn.open_table(JOURNAL)?, &entry)?;
            Ok(())
        })?;
        tracing::debug!(%tx, kind = new.kind.name(), step = new.step.name(), "journal: begun");
        Ok(tx)
    }

    /// Records the next message of a transaction before it is sent.
    pub fn record_step(&self, tx: TxRef, record: StepRecord) -> Result<(), PurseError> {
        self.write(|txn| {
            let mut journal = txn.open_table(JOURNAL)?;
            let mut entry = get_entry(&self.key, &journal, tx)?;
            if record.step < entry.step || record.step == Step::Acknowledge || entry.is_settled() {
                return Err(PurseError::StepBackwards {
                    from: entry.step.name(),
                    to: record.step.name(),
                });
            }
            entry.step = record.step;
            entry.last_sent = record.message.clone();
            if let Some(secrets) = &record.secrets {
                entry.secrets = secrets.clone();
            }
            if let Some(context) = &record.context {
                entry.context = context.clone();
            }
            entry.updated = record.now;
            check_message(&entry.last_sent, &entry.secrets, &entry.context, &entry.to)?;
            put_entry(&self.key, &mut journal, &entry)?;
            Ok(())
        })?;
        tracing::debug!(%tx, step = record.step.name(), "journal: step recorded");
        Ok(())
    }

    /// Turns a payment whose payee stopped answering into a change with the
    /// issuer over the same coins (the paper's way to find out): the
    /// issuer either gives fresh coins of equal value (the payee never
    /// validated) or refuses with a signed "already spent" (it did, and the
    /// money is the payee's). `message` is the ValidationRequest of that
    /// change, recorded before it is sent.
    pub fn reclaim(&self, tx: TxRef, record: StepRecord) -> Result<(), PurseError> {
        self.write(|txn| {
            let mut journal = txn.open_table(JOURNAL)?;
            let mut entry = get_entry(&self.key, &journal, tx)?;
            if entry.kind != TxKind::Pay || entry.is_settled() {
                return Err(PurseError::OutcomeMismatch {
                    tx,
                    why: "only an unanswered payment can be reclaimed",
                });
            }
            if record.step != Step::Request {
                return Err(PurseError::Invalid("a reclaim is a request to the issuer"));
            }
            entry.kind = TxKind::Change;
            entry.to = Destination::Issuer;
            entry.step = Step::Request;
            entry.last_sent = record.message.clone();
            if let Some(secrets) = &record.secrets {
                entry.secrets = secrets.clone();
            }
            if let Some(context) = &record.context {
                entry.context = context.clone();
            }
            entry.updated = record.now;
            check_message(&entry.last_sent, &entry.secrets, &entry.context, &entry.to)?;
            put_entry(&self.key, &mut journal, &entry)?;
            Ok(())
        })?;
        tracing::info!(%tx, "journal: unanswered payment turned into a change");
        Ok(())
    }

    /// Every transaction to resume, oldest first.
    pub fn in_flight(&self) -> Result<Vec<JournalEntry>, PurseError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(JOURNAL)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (row, value) = row?;
            out.push(decode_entry(&self.key, &row.value(), value.value())?);
        }
        out.sort_by_key(|e: &JournalEntry| (e.created, e.tx));
        Ok(out)
    }

    pub fn entry(&self, tx: TxRef) -> Result<JournalEntry, PurseError> {
        let txn = self.db.begin_read()?;
        get_entry(&self.key, &txn.open_table(JOURNAL)?, tx)
    }

    /// The coins a transaction reserved, with their tags (to seal them into
    /// the message being rebuilt, or to export for a redeem).
    pub fn reserved_coins(&self, tx: TxRef) -> Result<Vec<Coin>, PurseError> {
        let entry = self.entry(tx)?;
        entry
            .reserved
            .iter()
            .map(|id| {
                self.coin(*id)?
                    .map(|c| c.coin)
                    .ok_or(PurseError::UnknownCoin(*id))
            })
            .collect()
    }

    /// Applies the issuer's answer to a transaction that went through, in
    /// one durable transaction: spent inputs become Spent, unspent inputs
    /// Available, revoked coins Bad, received coins Available; the journal
    /// entry is closed (or kept at [`Step::Acknowledge`] with the ack to
    /// deliver). Refuses, changing nothing, an answer that does not fit the
    /// transaction (wrong totals, unknown or duplicate coins).
    pub fn complete(&self, tx: TxRef, completion: Completion) -> Result<TxEffect, PurseError> {
        if let Some(ack) = &completion.acknowledge {
            check_len("acknowledgement", ack.len(), MESSAGE_BYTES_MAX)?;
        }
        check_distinct(&completion.spent)?;
        check_distinct(&completion.revoked)?;
        check_distinct(&completion.received.iter().map(Coin::id).collect::<Vec<_>>())?;
        let effect = self.write(|txn| {
            let mut journal = txn.open_table(JOURNAL)?;
            let mut coins = txn.open_table(COINS)?;
            let mut entry = get_entry(&self.key, &journal, tx)?;
            let mismatch = |why| PurseError::OutcomeMismatch { tx, why };
            if entry.is_settled() {
                return Err(mismatch("already completed; only its acknowledgement is left"));
            }
            let reserved: BTreeSet<CoinId> = entry.reserved.iter().copied().collect();
            if !completion.spent.iter().all(|id| reserved.contains(id)) {
                return Err(mismatch("a spent coin was not reserved by it"));
            }
            if !completion.revoked.is_empty() && entry.kind != TxKind::Refund {
                return Err(mismatch("only a refund revokes coins"));
            }
            let holdings_before = holdings(&self.key, &coins)?;

            let mut value_out = Amount::ZERO;
            for id in &entry.reserved {
                let stored = get_coin(&self.key, &coins, *id)?;
                let action = if completion.spent.contains(id) {
                    value_out = value_out.checked_add(stored.coin.value())?;
                    CoinAction::Spend(tx)
                } else {
                    CoinAction::Release(tx)
                };
                let state = transition(&stored.state, &action)?;
                put_coin(&self.key, &mut coins, &StoredCoin { state, ..stored })?;
            }
            for id in &completion.revoked {
                // A purse restored from a key backup never held the coins
                // the refund revokes: there is nothing to mark.
                if coins.get(*id.as_bytes())?.is_none() {
                    continue;
                }
                let stored = get_coin(&self.key, &coins, *id)?;
                if stored.state != CoinState::Available {
                    // A revoked coin reserved elsewhere stays with that
                    // transaction, whose own answer will say it is bad.
                    tracing::warn!(coin = %id, "refund revoked a coin in use; left to its transaction");
                    continue;
                }
                let reason = BadReason {
                    kind: BadKind::Revoked,
                    statement: Vec::new(),
                };
                let state = transition(&stored.state, &CoinAction::MarkBad(reason))?;
                value_out = value_out.checked_add(stored.coin.value())?;
                put_coin(&self.key, &mut coins, &StoredCoin { state, ..stored })?;
            }
            let mut value_in = Amount::ZERO;
            for coin in &completion.received {
                if coins.get(*coin.id().as_bytes())?.is_some() {
                    return Err(PurseError::DuplicateCoin(coin.id()));
                }
                value_in = value_in.checked_add(coin.value())?;
                put_coin(
                    &self.key,
                    &mut coins,
                    &StoredCoin {
                        coin: *coin,
                        state: CoinState::Available,
                    },
                )?;
            }
            check_totals(&entry, &completion, value_out, value_in).map_err(mismatch)?;

            let holdings_after = holdings(&self.key, &coins)?;
            // The pair assertion: holdings recomputed from the table moved
            // by exactly the values this transaction says went out and in.
            assert_eq!(
                holdings_after.checked_add(value_out)?,
                holdings_before.checked_add(value_in)?,
                "purse holdings moved by other than transaction {tx}'s amounts"
            );
            let effect = TxEffect {
                tx,
                kind: entry.kind,
                refused: false,
                value_out,
                value_in,
                holdings_after,
                last_step_at: entry.updated,
            };
            match &completion.acknowledge {
                Some(ack) => {
                    entry.step = Step::Acknowledge;
                    entry.last_sent = ack.clone();
                    entry.reserved.clear();
                    entry.secrets.clear();
                    put_entry(&self.key, &mut journal, &entry)?;
                }
                None => {
                    journal.remove(*tx.as_bytes())?;
                }
            }
            put_history(&self.key, &mut txn.open_table(HISTORY)?, &effect)?;
            Ok(effect)
        })?;
        tracing::info!(
            %tx, kind = effect.kind.name(), value_out = %effect.value_out,
            value_in = %effect.value_in, "transaction completed"
        );
        Ok(effect)
    }

    /// Applies the issuer's signed refusal, in one durable transaction: the
    /// coins it names become Bad with the statement as their reason (except
    /// coins refused as expired by anything but a refresh, which go back to
    /// Available for refreshing), the other reserved coins Available again,
    /// and the entry is closed.
    pub fn refuse(&self, tx: TxRef, refusal: Refusal) -> Result<TxEffect, PurseError> {
        check_len("statement", refusal.statement.len(), STATEMENT_BYTES_MAX)?;
        let bad_ids: Vec<CoinId> = refusal.bad.iter().map(|(id, _)| *id).collect();
        check_distinct(&bad_ids)?;
        let effect = self.write(|txn| {
            let mut journal = txn.open_table(JOURNAL)?;
            let mut coins = txn.open_table(COINS)?;
            let entry = get_entry(&self.key, &journal, tx)?;
            if entry.is_settled() {
                return Err(PurseError::OutcomeMismatch {
                    tx,
                    why: "already completed; it cannot be refused",
                });
            }
            if !bad_ids.iter().all(|id| entry.reserved.contains(id)) {
                return Err(PurseError::OutcomeMismatch {
                    tx,
                    why: "the statement names a coin this transaction did not send",
                });
            }
            let holdings_before = holdings(&self.key, &coins)?;
            let mut value_out = Amount::ZERO;
            for id in &entry.reserved {
                let stored = get_coin(&self.key, &coins, *id)?;
                let action = match refusal.bad.iter().find(|(bad, _)| bad == id) {
                    // Expired for a payment is not lost: a refresh still
                    // takes the coin within its epoch's grace period.
                    Some((_, BadKind::Expired)) if entry.kind != TxKind::Refresh => {
                        CoinAction::Release(tx)
                    }
                    Some((_, kind)) => {
                        value_out = value_out.checked_add(stored.coin.value())?;
                        CoinAction::MarkBad(BadReason {
                            kind: *kind,
                            statement: refusal.statement.clone(),
                        })
                    }
                    None => CoinAction::Release(tx),
                };
                let state = transition(&stored.state, &action)?;
                put_coin(&self.key, &mut coins, &StoredCoin { state, ..stored })?;
            }
            let holdings_after = holdings(&self.key, &coins)?;
            assert_eq!(
                holdings_after.checked_add(value_out)?,
                holdings_before,
                "purse holdings moved by other than refused transaction {tx}'s bad coins"
            );
            journal.remove(*tx.as_bytes())?;
            let effect = TxEffect {
                tx,
                kind: entry.kind,
                refused: true,
                value_out,
                value_in: Amount::ZERO,
                holdings_after,
                last_step_at: entry.updated,
            };
            put_history(&self.key, &mut txn.open_table(HISTORY)?, &effect)?;
            Ok(effect)
        })?;
        tracing::info!(%tx, kind = effect.kind.name(), value_bad = %effect.value_out, "transaction refused");
        Ok(effect)
    }

    /// Closes a settled transaction once its acknowledgement is delivered.
    pub fn close(&self, tx: TxRef) -> Result<(), PurseError> {
        self.write(|txn| {
            let mut journal = txn.open_table(JOURNAL)?;
            let entry = get_entry(&self.key, &journal, tx)?;
            if !entry.is_settled() {
                return Err(PurseError::OutcomeMismatch {
                    tx,
                    why: "not completed: complete or refuse it first",
                });
            }
            journal.remove(*tx.as_bytes())?;
            Ok(())
        })
    }

    /// Drops a transaction that never got past [`Step::SessionOpen`]
    /// (nothing that commits was sent), releasing its reserved coins.
    pub fn abandon(&self, tx: TxRef) -> Result<(), PurseError> {
        self.write(|txn| {
            let mut journal = txn.open_table(JOURNAL)?;
            let mut coins = txn.open_table(COINS)?;
            let entry = get_entry(&self.key, &journal, tx)?;
            if entry.step != Step::SessionOpen {
                return Err(PurseError::OutcomeMismatch {
                    tx,
                    why: "its request may have reached the issuer: resume it instead",
                });
            }
            for id in &entry.reserved {
                let stored = get_coin(&self.key, &coins, *id)?;
                let state = transition(&stored.state, &CoinAction::Release(tx))?;
                put_coin(&self.key, &mut coins, &StoredCoin { state, ..stored })?;
            }
            journal.remove(*tx.as_bytes())?;
            Ok(())
        })
    }

    /// Erases the records of spent coins: once the issuer has spent a coin
    /// its tag is worthless, and a long-lived purse need not keep it. Bad
    /// coins stay, with the issuer's statements. Returns how many went.
    pub fn forget_spent(&self) -> Result<usize, PurseError> {
        let n_forgotten = self.write(|txn| {
            let mut coins = txn.open_table(COINS)?;
            let holdings_before = holdings(&self.key, &coins)?;
            let mut spent = Vec::new();
            for row in coins.iter()? {
                let (key, value) = row?;
                if matches!(
                    decode_coin(&self.key, &key.value(), value.value())?.state,
                    CoinState::Spent(_)
                ) {
                    spent.push(key.value());
                }
            }
            for key in &spent {
                coins.remove(*key)?;
            }
            assert_eq!(
                holdings(&self.key, &coins)?,
                holdings_before,
                "forgetting spent coins changed the holdings"
            );
            Ok(spent.len())
        })?;
        tracing::debug!(n_forgotten, "spent coins forgotten");
        Ok(n_forgotten)
    }

    /// What every closed transaction did, in transaction-reference order.
    pub fn history(&self) -> Result<Vec<TxEffect>, PurseError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HISTORY)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (row, value) = row?;
            out.push(open_record(
                &self.key,
                "history",
                &row.value(),
                "history",
                value.value(),
                HISTORY_RECORD_BYTES_MAX,
            )?);
        }
        Ok(out)
    }
}

/// Reads the format and the key header. The first format kept everything
/// in the clear: it is refused with [`PurseError::Unencrypted`].
fn read_key_header(db: &Database) -> Result<KeyHeader, PurseError> {
    let txn = db.begin_read()?;
    let meta = txn
        .open_table(META)
        .map_err(|_| PurseError::WrongFormat(0))?;
    let version = meta
        .get(META_FORMAT)?
        .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
        .map(u32::from_le_bytes)
        .ok_or(PurseError::WrongFormat(0))?;
    if version == UNENCRYPTED_FORMAT_VERSION {
        return Err(PurseError::Unencrypted);
    }
    if version != PURSE_FORMAT_VERSION {
        return Err(PurseError::WrongFormat(version));
    }
    let guard = meta
        .get(META_KEY_HEADER)?
        .ok_or_else(|| PurseError::Corrupt("purse has no key header".into()))?;
    match postcard::take_from_bytes::<KeyHeader>(guard.value()) {
        Ok((header, [])) => Ok(header),
        _ => Err(PurseError::Corrupt("purse key header".into())),
    }
}

/// What each kind of transaction must do to the purse's money.
fn check_totals(
    entry: &JournalEntry,
    completion: &Completion,
    value_out: Amount,
    value_in: Amount,
) -> Result<(), &'static str> {
    let all_spent = completion.spent.len() == entry.reserved.len();
    match entry.kind {
        TxKind::Pay | TxKind::Redeem => {
            if !all_spent || value_out != entry.amount {
                return Err("every input must be spent, totalling the amount");
            }
            if value_in != Amount::ZERO {
                return Err("a payment or redemption brings no coins back");
            }
        }
        TxKind::Change | TxKind::Refresh => {
            if !all_spent || value_out != entry.amount {
                return Err("every input must be spent");
            }
            if value_in != value_out {
                return Err("coins back must total the coins given");
            }
        }
        TxKind::Purchase => {
            if value_in != entry.amount {
                return Err("purchased coins must total the purchase");
            }
        }
        TxKind::Collect => {
            if value_in != entry.amount && value_in != Amount::ZERO {
                return Err("a collected payment brings the amount in coins, or none");
            }
        }
        TxKind::Refund => {}
    }
    Ok(())
}

fn check_message(
    message: &[u8],
    secrets: &[SessionSecret],
    context: &[u8],
    to: &Destination,
) -> Result<(), PurseError> {
    check_len("message", message.len(), MESSAGE_BYTES_MAX)?;
    check_len("context", context.len(), CONTEXT_BYTES_MAX)?;
    if secrets.len() > SECRETS_PER_TX_MAX {
        return Err(PurseError::Invalid("too many session secrets"));
    }
    for secret in secrets {
        check_len("session secret", secret.expose().len(), SECRET_BYTES_MAX)?;
    }
    if let Destination::Payee(url) = to {
        check_len("payee url", url.len(), URL_BYTES_MAX)?;
    }
    Ok(())
}

fn check_distinct(ids: &[CoinId]) -> Result<(), PurseError> {
    if ids.len() > COINS_PER_TX_MAX {
        return Err(PurseError::TooManyCoins(ids.len()));
    }
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(*id) {
            return Err(PurseError::CoinListedTwice(*id));
        }
    }
    Ok(())
}

fn decode_coin(key: &PurseKey, row: &[u8], bytes: &[u8]) -> Result<StoredCoin, PurseError> {
    open_record(key, "coins", row, "coin", bytes, COIN_RECORD_BYTES_MAX)
}

fn get_coin(
    key: &PurseKey,
    table: &impl ReadableTable<[u8; 16], &'static [u8]>,
    id: CoinId,
) -> Result<StoredCoin, PurseError> {
    let guard = table
        .get(*id.as_bytes())?
        .ok_or(PurseError::UnknownCoin(id))?;
    let stored = decode_coin(key, id.as_bytes(), guard.value())?;
    if stored.coin.id() != id {
        return Err(PurseError::Corrupt(format!(
            "coin record {id} holds another coin"
        )));
    }
    Ok(stored)
}

fn put_coin(
    key: &PurseKey,
    table: &mut redb::Table<[u8; 16], &'static [u8]>,
    stored: &StoredCoin,
) -> Result<(), PurseError> {
    let row = *stored.coin.id().as_bytes();
    let bytes = seal_record(key, "coins", &row, "coin", stored, COIN_RECORD_BYTES_MAX)?;
    table.insert(row, bytes.as_slice())?;
    Ok(())
}

fn decode_entry(key: &PurseKey, row: &[u8], bytes: &[u8]) -> Result<JournalEntry, PurseError> {
    open_record(
        key,
        "journal",
        row,
        "journal",
        bytes,
        JOURNAL_RECORD_BYTES_MAX,
    )
}

fn get_entry(
    key: &PurseKey,
    table: &impl ReadableTable<[u8; 16], &'static [u8]>,
    tx: TxRef,
) -> Result<JournalEntry, PurseError> {
    let guard = table
        .get(*tx.as_bytes())?
        .ok_or(PurseError::UnknownTransaction(tx))?;
    let entry = decode_entry(key, tx.as_bytes(), guard.value())?;
    if entry.tx != tx {
        return Err(PurseError::Corrupt(format!(
            "journal record {tx} holds another entry"
        )));
    }
    Ok(entry)
}

fn put_entry(
    key: &PurseKey,
    table: &mut redb::Table<[u8; 16], &'static [u8]>,
    entry: &JournalEntry,
) -> Result<(), PurseError> {
    let row = *entry.tx.as_bytes();
    let bytes = seal_record(
        key,
        "journal",
        &row,
        "journal",
        entry,
        JOURNAL_RECORD_BYTES_MAX,
    )?;
    table.insert(row, bytes.as_slice())?;
    Ok(())
}

fn put_history(
    key: &PurseKey,
    table: &mut redb::Table<[u8; 16], &'static [u8]>,
    effect: &TxEffect,
) -> Result<(), PurseError> {
    let row = *effect.tx.as_bytes();
    let bytes = seal_record(
        key,
        "history",
        &row,
        "history",
        effect,
        HISTORY_RECORD_BYTES_MAX,
    )?;
    table.insert(row, bytes.as_slice())?;
    Ok(())
}

/// Holdings recomputed from every coin record.
fn holdings(
    key: &PurseKey,
    table: &impl ReadableTable<[u8; 16], &'static [u8]>,
) -> Result<Amount, PurseError> {
    let mut coins = Vec::new();
    for row in table.iter()? {
        let (row, value) = row?;
        coins.push(decode_coin(key, &row.value(), value.value())?);
    }
    balance_of(coins.iter())?.holdings()
}

fn balance_of<'a>(coins: impl Iterator<Item = &'a StoredCoin>) -> Result<Balance, PurseError> {
    let mut b = Balance::default();
    for stored in coins {
        let value = stored.coin.value();
        match stored.state {
            CoinState::Available => {
                b.available = b.available.checked_add(value)?;
                b.n_available += 1;
            }
            CoinState::Pending(_) => {
                b.pending = b.pending.checked_add(value)?;
                b.n_pending += 1;
            }
            CoinState::Spent(_) => b.n_spent += 1,
            CoinState::Bad(_) => {
                b.bad = b.bad.checked_add(value)?;
                b.n_bad += 1;
            }
        }
    }
    Ok(b)
}
