//! The participant registry: registered identities and their keys, and
//! enrollments (pending or approved) with their roles, bank accounts and,
//! for merchants, aggregate balances; each participant's standing
//! (suspended, revoked) and the enrollments its operator refused.
//!
//! The log holds identities only sealed (the issuer cannot open them), so
//! the registry keeps its own redb file: it is the issuer's participant
//! database, written after the event that justifies each change is durable.
//!
//! The file names nobody: every row is keyed by the participant id's
//! keyed hash (HMAC-SHA256 under the registry key), and every bank account
//! is sealed (AES-256-GCM, its row and field as associated data) under a
//! key derived from the same registry key, which lives in its own 0600
//! file (`registry.key`, beside the registry unless the operator moves it
//! to a volume of its own). A copy of `registry.redb` alone (a backup, a
//! replica, a stolen disk image without the key) reveals neither who is
//! registered nor which accounts are debited; the running issuer, which
//! must check signatures by id and pay enrolled accounts, holds the key.
//! A registry file holding ids and accounts in the clear is converted when
//! opened, in one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use hmac::Mac;

use ledger::kv::{KvBatch, KvStore};
use ledger::{BalanceId, BankAccount, ParticipantId, Role, Standing, Timestamp};
use protocol::crypto::PublicKey;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};

/// Why the registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("registry record is corrupt: {0}")]
    Corrupt(String),
    #[error("registry storage: {0}")]
    Storage(#[from] redb::Error),
    /// The tables beside the log (PostgreSQL) failed.
    #[error("registry tables: {0}")]
    Tables(String),
    /// The tables beside the log hold a registry, and its key file is not
    /// there: a replacement issuer must be given the issuer's `registry.key`.
    #[error(
        "the registry in the tables beside the log needs its key, and {0} is missing: copy the issuer's registry.key"
    )]
    KeyMissing(String),
    /// The key file is not the key the registry beside the log was made with.
    #[error("registry.key is not the key of the registry beside the log")]
    WrongKey,
}

/// Where the tables hold the check of the registry key.
pub(crate) const KEY_CHECK_TABLE: &str = "registry/key_check";
const KEY_CHECK_ROW: &[u8] = b"key";

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for RegistryError {
            fn from(e: $t) -> RegistryError {
                RegistryError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// One enrollment of a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub role: Role,
    pub bank_account: BankAccount,
    pub approved: bool,
    /// A merchant's aggregate balance, once approved.
    pub balance: Option<BalanceId>,
}

/// What the issuer knows of one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub public_key: PublicKey,
    pub cert_expiry: Timestamp,
    pub enrollments: Vec<Enrollment>,
}

impl Participant {
    /// The approved enrollment for `role`, if any.
    pub fn enrolled(&self, role: Role) -> Option<&Enrollment> {
        self.enrollments
            .iter()
            .find(|e| e.role == role && e.approved)
    }
}

/// Participants by keyed id ([`KeyedId`]): their stored record, accounts
/// sealed ([`StoredParticipant`]).
const PARTICIPANTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("participants_keyed");
/// Coins issued to a participant non-anonymously (what a refund revokes:
/// purchases, refunds, and change and refresh of such coins),
/// keyed `keyed id ‖ coin id` so one participant's coins are one range.
const HOLDER_COINS: TableDefinition<&[u8], ()> = TableDefinition::new("holder_coins_keyed");

fn holder_key(id: &KeyedId, coin: &ledger::CoinId) -> Vec<u8> {
    let mut key = Vec::with_capacity(KeyedId::LEN + ledger::CoinId::LEN);
    key.extend_from_slice(&id.0);
    key.extend_from_slice(coin.as_bytes());
    key
}

/// Participants not in good standing (suspended or revoked), by keyed id;
/// an absent id is active. Kept apart from the participant record so that
/// record's encoding stays as it is.
const STANDINGS: TableDefinition<&[u8], u8> = TableDefinition::new("standings_keyed");
/// Enrollments an operator refused, keyed `keyed id ‖ role`.
const REFUSED_ENROLLMENTS: TableDefinition<&[u8], ()> =
    TableDefinition::new("refused_enrollments_keyed");

fn role_byte(role: Role) -> u8 {
    match role {
        Role::CoinPurchaser => 0,
        Role::Redeemer => 1,
        Role::Merchant => 2,
    }
}

fn refused_key(id: &KeyedId, role: Role) -> Vec<u8> {
    let mut key = id.0.to_vec();
    key.push(role_byte(role));
    key
}

/// Redemption credits owed by committed (or committing) transactions:
/// written before the batch goes to the log, removed once the bank has the
/// credit, so a crash between the two is finished at the next start. The
/// account in each is sealed ([`StoredCredit`]).
const PENDING_CREDITS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("pending_credits_sealed");

/// The tables of a registry holding ids and accounts in the clear, converted by
/// [`Registry::open`].
mod clear {
    use redb::TableDefinition;
    pub const PARTICIPANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("participants");
    pub const HOLDER_COINS: TableDefinition<&[u8], ()> = TableDefinition::new("holder_coins");
    pub const STANDINGS: TableDefinition<&str, u8> = TableDefinition::new("standings");
    pub const REFUSED_ENROLLMENTS: TableDefinition<&[u8], ()> =
        TableDefinition::new("refused_enrollments");
    pub const PENDING_CREDITS: TableDefinition<&[u8], &[u8]> =
        TableDefinition::new("pending_credits");
}

/// The registry key's file, beside the registry (0600).
pub const REGISTRY_KEY_FILE: &str = "registry.key";
const REGISTRY_KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// A participant id as the registry's file holds it: HMAC-SHA256 of the id
/// under the registry key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyedId([u8; 32]);

impl KeyedId {
    const LEN: usize = 32;
}

/// The registry key: what turns ids into keyed ids and seals accounts.
struct RegistryKey {
    id_key: [u8; 32],
    seal: Aes256Gcm,
    /// What the session store's seal derives its keys from.
    sessions: SessionSeal,
    /// What the card agency's rows beside the log are sealed with.
    card_agency: CardAgencySeal,
    /// HMAC of a constant under the key: tells the key apart from another.
    check: [u8; 32],
}

impl RegistryKey {
    /// Reads the key at `path`, or makes one there (0600) if none exists.
    fn read_or_create(path: &Path) -> Result<RegistryKey, RegistryError> {
        use std::io::Write;
        let io = |e| RegistryError::Storage(redb::Error::Io(e));
        let secret = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = vec![0u8; REGISTRY_KEY_BYTES];
                getrandom::fill(&mut secret)
                    .map_err(|_| RegistryError::Corrupt("no operating system randomness".into()))?;
                let mut file = ledger::private_file::create_new_private(path).map_err(io)?;
                file.write_all(&secret).map_err(io)?;
                file.sync_all().map_err(io)?;
                secret
            }
            Err(e) => return Err(io(e)),
        };
        let secret: [u8; REGISTRY_KEY_BYTES] = secret
            .as_slice()
            .try_into()
            .map_err(|_| RegistryError::Corrupt("the registry key is not 32 bytes".into()))?;
        let derive = |label: &[u8]| -> Result<[u8; 32], RegistryError> {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret)
                .map_err(|_| RegistryError::Corrupt("registry key".into()))?;
            mac.update(label);
            Ok(mac.finalize().into_bytes().into())
        };
        let seal_key = derive(b"vc/registry/seal-accounts")?;
        Ok(RegistryKey {
            sessions: SessionSeal {
                root: derive(b"vc/registry/seal-sessions")?,
                id_key: derive(b"vc/registry/session-ids")?,
            },
            card_agency: CardAgencySeal(SessionSeal {
                root: derive(b"vc/registry/seal-card-agency")?,
                id_key: derive(b"vc/registry/card-agency-ids")?,
            }),
            id_key: derive(b"vc/registry/keyed-ids")?,
            check: derive(b"vc/registry/key-check")?,
            seal: Aes256Gcm::new_from_slice(&seal_key)
                .map_err(|_| RegistryError::Corrupt("registry key".into()))?,
        })
    }

    fn keyed(&self, id: &ParticipantId) -> KeyedId {
        // HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.id_key).expect("any key length");
        mac.update(id.as_str().as_bytes());
        KeyedId(mac.finalize().into_bytes().into())
    }

    /// Seals `account` for the slot `aad` names: nonce, ciphertext, tag.
    fn seal(&self, aad: &[u8], account: &BankAccount) -> Result<Vec<u8>, RegistryError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce)
            .map_err(|_| RegistryError::Corrupt("no operating system randomness".into()))?;
        let sealed = self
            .seal
            .encrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: account.as_str().as_bytes(),
                    aad,
                },
            )
            .map_err(|_| RegistryError::Corrupt("account too long to seal".into()))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<BankAccount, RegistryError> {
        let bad = || RegistryError::Corrupt("a sealed account does not open".into());
        let (nonce, body) = sealed.split_first_chunk::<NONCE_BYTES>().ok_or_else(bad)?;
        if body.len() < TAG_BYTES {
            return Err(bad());
        }
        let plain = self
            .seal
            .decrypt(
                &Nonce::<Aes256Gcm>::from(*nonce),
                Payload { msg: body, aad },
            )
            .map_err(|_| bad())?;
        let text = String::from_utf8(plain).map_err(|_| bad())?;
        BankAccount::new(text).map_err(|_| bad())
    }
}

/// The issuer's seal of session payloads (`sessions.redb`), derived from
/// the registry key. Each payload is sealed under its own AES-256-GCM key,
/// HMAC-SHA256 of a random salt under the root, so no nonce is ever reused
/// however many sessions (a day of payments' ack sessions) it seals; the
/// session id is the associated data, so a sealed payload opens in its own
/// row only.
#[derive(Clone)]
pub struct SessionSeal {
    root: [u8; 32],
    id_key: [u8; 32],
}

const SESSION_SALT_BYTES: usize = 24;

impl std::fmt::Debug for SessionSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSeal").finish_non_exhaustive()
    }
}

impl SessionSeal {
    fn mac(key: &[u8; 32]) -> hmac::Hmac<sha2::Sha256> {
        // HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length")
    }

    fn cipher(&self, salt: &[u8]) -> Aes256Gcm {
        let mut mac = SessionSeal::mac(&self.root);
        mac.update(salt);
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        // A 32-byte key is what AES-256 takes.
        #[allow(clippy::expect_used)]
        Aes256Gcm::new_from_slice(&key).expect("a 32-byte key")
    }

    fn aad(id: &crate::sessions::SessionId) -> Vec<u8> {
        let mut aad = b"vc/sessions/".to_vec();
        aad.extend_from_slice(&id.0);
        aad
    }

    /// A session id that names `parts` (under `label`) without revealing
    /// them: HMAC-SHA256 under a key derived from the registry key, so a
    /// copy of the session file cannot be searched for a known participant.
    pub fn keyed_session_id(&self, label: &str, parts: &[&[u8]]) -> crate::sessions::SessionId {
        let mut mac = SessionSeal::mac(&self.id_key);
        mac.update(label.as_bytes());
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        let tag: [u8; 32] = mac.finalize().into_bytes().into();
        let mut id = [0u8; 16];
        id.copy_from_slice(&tag[..16]);
        crate::sessions::SessionId(id)
    }
}

impl SessionSeal {
    /// Seals `plain` under a key of its own (a random salt's), `aad` bound.
    fn seal_bound(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut salt = [0u8; SESSION_SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|_| SealError::NoRandomness)?;
        // Each key seals one payload: the nonce may be fixed.
        let sealed = self
            .cipher(&salt)
            .encrypt(
                &Nonce::<Aes256Gcm>::from([0u8; NONCE_BYTES]),
                Payload { msg: plain, aad },
            )
            .map_err(|_| SealError::TooLarge)?;
        let mut out = Vec::with_capacity(SESSION_SALT_BYTES + sealed.len());
        out.extend_from_slice(&salt);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`SessionSeal::seal_bound`] sealed with the same `aad`.
    fn open_bound(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (salt, body) = sealed.split_first_chunk::<SESSION_SALT_BYTES>()?;
        if body.len() < TAG_BYTES {
            return None;
        }
        self.cipher(salt)
            .decrypt(
                &Nonce::<Aes256Gcm>::from([0u8; NONCE_BYTES]),
                Payload { msg: body, aad },
            )
            .ok()
    }
}

/// Why sealing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SealError {
    NoRandomness,
    TooLarge,
}

impl crate::sessions::PayloadSeal for SessionSeal {
    fn seal(
        &self,
        id: &crate::sessions::SessionId,
        plain: &[u8],
    ) -> Result<Vec<u8>, crate::sessions::SessionError> {
        use crate::sessions::SessionError;
        self.seal_bound(&SessionSeal::aad(id), plain)
            .map_err(|e| match e {
                SealError::NoRandomness => {
                    SessionError::Corrupt("no operating system randomness".into())
                }
                SealError::TooLarge => SessionError::TooLarge,
            })
    }

    fn open(
        &self,
        id: &crate::sessions::SessionId,
        sealed: &[u8],
    ) -> Result<Vec<u8>, crate::sessions::SessionError> {
        self.open_bound(&SessionSeal::aad(id), sealed)
            .ok_or_else(|| {
                crate::sessions::SessionError::Corrupt(
                    "a sealed session does not open under this registry key".into(),
                )
            })
    }
}

/// The card agency's seal for its rows beside the log, derived from the
/// registry key: card ids in keys become keyed ids (HMAC-SHA256), and every
/// value (guarantees, card records, which name cards and holders' accounts)
/// is sealed under a key of its own, its table and stored key bound as
/// associated data, so the database names no card and no account.
#[derive(Clone)]
pub(crate) struct CardAgencySeal(SessionSeal);

impl std::fmt::Debug for CardAgencySeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardAgencySeal").finish_non_exhaustive()
    }
}

impl CardAgencySeal {
    fn aad(table: &str, key: &[u8]) -> Vec<u8> {
        let mut aad = b"vc/card-agency/".to_vec();
        aad.extend_from_slice(table.as_bytes());
        aad.push(0);
        aad.extend_from_slice(key);
        aad
    }

    /// `part` (a card id, with what follows it in a key) as a keyed id.
    pub(crate) fn keyed(&self, part: &[u8]) -> [u8; 32] {
        let mut mac = SessionSeal::mac(&self.0.id_key);
        mac.update(part);
        mac.finalize().into_bytes().into()
    }

    /// Seals the value of `key` in `table`.
    pub(crate) fn seal(&self, table: &str, key: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        self.0
            .seal_bound(&CardAgencySeal::aad(table, key), plain)
            .ok()
    }

    /// Opens the value of `key` in `table`; `None` if it does not open
    /// there (another row's, another key's, or damaged).
    pub(crate) fn open(&self, table: &str, key: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        self.0.open_bound(&CardAgencySeal::aad(table, key), sealed)
    }
}

/// The associated data of a sealed account: where it is stored.
fn account_slot(what: &[u8], row: &[u8], n: usize) -> Vec<u8> {
    let mut aad = b"vc/registry/".to_vec();
    aad.extend_from_slice(what);
    aad.push(0);
    aad.extend_from_slice(row);
    aad.extend_from_slice(&(n as u64).to_be_bytes());
    aad
}

/// [`Enrollment`] as stored: its account sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEnrollment {
    role: Role,
    sealed_account: Vec<u8>,
    approved: bool,
    balance: Option<BalanceId>,
}

/// [`Participant`] as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredParticipant {
    /// The key's SPKI DER: parsed through [`Registry`]'s cache.
    public_key: ledger::PublicKeyDer,
    cert_expiry: Timestamp,
    enrollments: Vec<StoredEnrollment>,
}

/// [`PendingCredit`] as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCredit {
    sealed_account: Vec<u8>,
    amount: ledger::Amount,
}

/// A bank credit the issuer owes for a redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCredit {
    pub account: BankAccount,
    pub amount: ledger::Amount,
}
/// Longest encoded participant record (a key, a few enrollments).
const PARTICIPANT_BYTES_MAX: usize = 8 * 1024;

fn decode_bounded<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, RegistryError> {
    if bytes.len() > PARTICIPANT_BYTES_MAX {
        return Err(RegistryError::Corrupt("record too long".into()));
    }
    postcard::from_bytes(bytes).map_err(|e| RegistryError::Corrupt(e.to_string()))
}

/// The registry's tables, named as in its redb file (and, prefixed
/// `registry/`, as in a [`KvStore`] beside a log in PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Participants,
    HolderCoins,
    Standings,
    Refused,
    PendingCredits,
}

impl Table {
    fn kv_name(self) -> &'static str {
        match self {
            Table::Participants => "registry/participants_keyed",
            Table::HolderCoins => "registry/holder_coins_keyed",
            Table::Standings => "registry/standings_keyed",
            Table::Refused => "registry/refused_enrollments_keyed",
            Table::PendingCredits => "registry/pending_credits_sealed",
        }
    }
}

/// Where the registry's rows live: its redb file, or tables a caller
/// opened beside the log ([`crate::IssuerConfig::side_tables`]). Both hold
/// the same rows (keyed ids, sealed accounts); in the tables a `()` value
/// is empty and a standing is one byte.
enum Backend {
    Redb(Database),
    Tables(Arc<dyn KvStore>),
}

/// One write of a batch: `None` deletes.
type Write = (Table, Vec<u8>, Option<Vec<u8>>);

fn kv_error(e: ledger::KvError) -> RegistryError {
    RegistryError::Tables(e.to_string())
}

impl Backend {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, RegistryError> {
        let db = match self {
            Backend::Tables(kv) => return kv.get(table.kv_name(), key).map_err(kv_error),
            Backend::Redb(db) => db,
        };
        let txn = db.begin_read()?;
        Ok(match table {
            Table::Participants => txn
                .open_table(PARTICIPANTS)?
                .get(key)?
                .map(|v| v.value().to_vec()),
            Table::PendingCredits => txn
                .open_table(PENDING_CREDITS)?
                .get(key)?
                .map(|v| v.value().to_vec()),
            Table::HolderCoins => txn.open_table(HOLDER_COINS)?.get(key)?.map(|_| Vec::new()),
            Table::Refused => txn
                .open_table(REFUSED_ENROLLMENTS)?
                .get(key)?
                .map(|_| Vec::new()),
            Table::Standings => txn
                .open_table(STANDINGS)?
                .get(key)?
                .map(|v| vec![v.value()]),
        })
    }

    /// Every row whose key starts with `prefix`, in key order.
    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, RegistryError> {
        let db = match self {
            Backend::Tables(kv) => return kv.scan(table.kv_name(), prefix).map_err(kv_error),
            Backend::Redb(db) => db,
        };
        fn rows<V: redb::Value + 'static>(
            t: &impl ReadableTable<&'static [u8], V>,
            prefix: &[u8],
            value: impl Fn(redb::AccessGuard<'_, V>) -> Vec<u8>,
        ) -> Result<Vec<ledger::KvRow>, RegistryError> {
            let mut out = Vec::new();
            for item in t.range(prefix..)? {
                let (k, v) = item?;
                if !k.value().starts_with(prefix) {
                    break;
                }
                out.push((k.value().to_vec(), value(v)));
            }
            Ok(out)
        }
        let txn = db.begin_read()?;
        match table {
            Table::Participants => rows(&txn.open_table(PARTICIPANTS)?, prefix, |v| {
                v.value().to_vec()
            }),
            Table::PendingCredits => rows(&txn.open_table(PENDING_CREDITS)?, prefix, |v| {
                v.value().to_vec()
            }),
            Table::HolderCoins => rows(&txn.open_table(HOLDER_COINS)?, prefix, |_| Vec::new()),
            Table::Refused => rows(&txn.open_table(REFUSED_ENROLLMENTS)?, prefix, |_| {
                Vec::new()
            }),
            Table::Standings => rows(&txn.open_table(STANDINGS)?, prefix, |v| vec![v.value()]),
        }
    }

    /// Applies `writes` in one transaction.
    fn write(&self, writes: &[Write]) -> Result<(), RegistryError> {
        let db = match self {
            Backend::Tables(kv) => {
                let mut batch = KvBatch::new();
                for (table, key, value) in writes {
                    match value {
                        Some(v) => batch.put(table.kv_name(), key, v.clone()),
                        None => batch.delete(table.kv_name(), key),
                    }
                }
                return kv.write(&batch).map_err(kv_error);
            }
            Backend::Redb(db) => db,
        };
        let txn = db.begin_write()?;
        for (table, key, value) in writes {
            let key = key.as_slice();
            match table {
                Table::Participants | Table::PendingCredits => {
                    let mut t = txn.open_table(if *table == Table::Participants {
                        PARTICIPANTS
                    } else {
                        PENDING_CREDITS
                    })?;
                    match value {
                        Some(v) => drop(t.insert(key, v.as_slice())?),
                        None => drop(t.remove(key)?),
                    }
                }
                Table::HolderCoins | Table::Refused => {
                    let mut t = txn.open_table(if *table == Table::HolderCoins {
                        HOLDER_COINS
                    } else {
                        REFUSED_ENROLLMENTS
                    })?;
                    match value {
                        Some(_) => drop(t.insert(key, ())?),
                        None => drop(t.remove(key)?),
                    }
                }
                Table::Standings => {
                    let mut t = txn.open_table(STANDINGS)?;
                    match value.as_deref() {
                        Some([standing]) => drop(t.insert(key, *standing)?),
                        Some(_) => return Err(RegistryError::Corrupt("standing".into())),
                        None => drop(t.remove(key)?),
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Participants in their own redb file, or in tables beside the log.
pub struct Registry {
    backend: Backend,
    key: RegistryKey,
    /// Held by a read-modify-write over participant rows
    /// ([`Registry::suspend_enrollments_on_account`]) and by every write of
    /// a participant row, so a rewrite never puts back a row another write
    /// changed between its read and its write.
    rewriting: Mutex<()>,
    /// Participants' keys parsed, by their DER. A DER names one key for
    /// good, so nothing here goes stale; it spares every read of a
    /// participant a key decoding (an Ed25519 point decompression, or an
    /// RSA key's setup). Emptied when full.
    parsed_keys: Mutex<HashMap<Vec<u8>, PublicKey>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// The seal of the issuer's session store, under this registry's key.
    pub fn session_seal(&self) -> &SessionSeal {
        &self.key.sessions
    }

    /// What the card agency's rows are sealed with beside the log.
    pub(crate) fn card_agency_seal(&self) -> &CardAgencySeal {
        &self.key.card_agency
    }

    /// Opens (or creates) the registry at `path`, its key in
    /// [`REGISTRY_KEY_FILE`] beside it (made on first open).
    pub fn open(path: impl AsRef<Path>) -> Result<Registry, RegistryError> {
        let path = path.as_ref();
        let key_path = path.with_file_name(REGISTRY_KEY_FILE);
        let key = RegistryKey::read_or_create(&key_path)?;
        // Keyed ids and sealed accounts: 0600 before redb opens the file.
        ledger::private_file::ensure_private_file(path)
            .map_err(|e| RegistryError::Storage(redb::Error::Io(e)))?;
        let db = Database::create(path)?;
        let registry = Registry {
            backend: Backend::Redb(db),
            key,
            rewriting: Mutex::new(()),
            parsed_keys: Mutex::new(HashMap::new()),
        };
        let Backend::Redb(db) = &registry.backend else {
            unreachable!("made just above")
        };
        let txn = db.begin_write()?;
        txn.open_table(PARTICIPANTS)?;
        txn.open_table(PENDING_CREDITS)?;
        txn.open_table(HOLDER_COINS)?;
        txn.open_table(STANDINGS)?;
        txn.open_table(REFUSED_ENROLLMENTS)?;
        registry.convert_clear_tables(&txn)?;
        txn.commit()?;
        Ok(registry)
    }

    /// The registry in `tables` (beside a log in PostgreSQL), its key in
    /// the file `key_path` (made on first open; a replacement issuer brings
    /// the key it had: another key finds nobody and opens no account).
    ///
    /// The tables hold a check of the key (HMAC-SHA256 of a constant under
    /// it, which reveals nothing of it): an issuer started without the key
    /// file, or with another key, is refused ([`RegistryError::KeyMissing`],
    /// [`RegistryError::WrongKey`]) rather than serving an empty registry
    /// under a new key.
    pub fn open_in(tables: Arc<dyn KvStore>, key_path: &Path) -> Result<Registry, RegistryError> {
        let check = tables
            .get(KEY_CHECK_TABLE, KEY_CHECK_ROW)
            .map_err(kv_error)?;
        if check.is_some() && !key_path.exists() {
            return Err(RegistryError::KeyMissing(key_path.display().to_string()));
        }
        let key = RegistryKey::read_or_create(key_path)?;
        match check {
            Some(found) if found.as_slice() != key.check.as_slice() => {
                return Err(RegistryError::WrongKey);
            }
            Some(_) => {}
            None => {
                let mut batch = KvBatch::new();
                batch.put(KEY_CHECK_TABLE, KEY_CHECK_ROW, key.check.to_vec());
                tables.write(&batch).map_err(kv_error)?;
            }
        }
        Ok(Registry {
            backend: Backend::Tables(tables),
            key,
            rewriting: Mutex::new(()),
            parsed_keys: Mutex::new(HashMap::new()),
        })
    }

    /// Moves the rows of a registry written with ids and accounts in the
    /// clear into the keyed tables, and deletes the clear ones.
    fn convert_clear_tables(&self, txn: &redb::WriteTransaction) -> Result<(), RegistryError> {
        let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
        let has = |name: &str| names.iter().any(|n| n == name);
        if has("participants") {
            let mut rows = Vec::new();
            for row in txn.open_table(clear::PARTICIPANTS)?.iter()? {
                let (id, value) = row?;
                let participant: Participant = decode_bounded(value.value())?;
                rows.push((id.value().to_owned(), participant));
            }
            for (id, participant) in rows {
                let id = ParticipantId::new(id)
                    .map_err(|_| RegistryError::Corrupt("participant id".into()))?;
                self.put_in(txn, &self.key.keyed(&id), &participant)?;
            }
            txn.delete_table(clear::PARTICIPANTS)?;
        }
        if has("holder_coins") {
            let mut rows = Vec::new();
            for row in txn.open_table(clear::HOLDER_COINS)?.iter()? {
                let (key, _) = row?;
                rows.push(key.value().to_vec());
            }
            let mut table = txn.open_table(HOLDER_COINS)?;
            for key in rows {
                // `id ‖ 0x00 ‖ coin id`
                let split = key
                    .len()
                    .checked_sub(ledger::CoinId::LEN + 1)
                    .ok_or_else(|| RegistryError::Corrupt("holder coin key".into()))?;
                let id = std::str::from_utf8(&key[..split])
                    .ok()
                    .and_then(|id| ParticipantId::new(id).ok())
                    .ok_or_else(|| RegistryError::Corrupt("holder coin key".into()))?;
                let coin: [u8; ledger::CoinId::LEN] = key[split + 1..]
                    .try_into()
                    .map_err(|_| RegistryError::Corrupt("holder coin key".into()))?;
                table.insert(
                    holder_key(&self.key.keyed(&id), &ledger::CoinId::from_bytes(coin)).as_slice(),
                    (),
                )?;
            }
            drop(table);
            txn.delete_table(clear::HOLDER_COINS)?;
        }
        if has("standings") {
            let mut rows = Vec::new();
            for row in txn.open_table(clear::STANDINGS)?.iter()? {
                let (id, standing) = row?;
                rows.push((id.value().to_owned(), standing.value()));
            }
            let mut table = txn.open_table(STANDINGS)?;
            for (id, standing) in rows {
                let id = ParticipantId::new(id)
                    .map_err(|_| RegistryError::Corrupt("participant id".into()))?;
                table.insert(self.key.keyed(&id).0.as_slice(), standing)?;
            }
            drop(table);
            txn.delete_table(clear::STANDINGS)?;
        }
        if has("refused_enrollments") {
            let mut rows = Vec::new();
            for row in txn.open_table(clear::REFUSED_ENROLLMENTS)?.iter()? {
                let (key, _) = row?;
                rows.push(key.value().to_vec());
            }
            let mut table = txn.open_table(REFUSED_ENROLLMENTS)?;
            for key in rows {
                // `id ‖ 0x00 ‖ role`
                let (Some(&role), Some(split)) = (key.last(), key.len().checked_sub(2)) else {
                    return Err(RegistryError::Corrupt("refused enrollment key".into()));
                };
                let id = std::str::from_utf8(&key[..split])
                    .ok()
                    .and_then(|id| ParticipantId::new(id).ok())
                    .ok_or_else(|| RegistryError::Corrupt("refused enrollment key".into()))?;
                let mut new_key = self.key.keyed(&id).0.to_vec();
                new_key.push(role);
                table.insert(new_key.as_slice(), ())?;
            }
            drop(table);
            txn.delete_table(clear::REFUSED_ENROLLMENTS)?;
        }
        if has("pending_credits") {
            let mut rows = Vec::new();
            for row in txn.open_table(clear::PENDING_CREDITS)?.iter()? {
                let (tx, value) = row?;
                let credit: PendingCredit = decode_bounded(value.value())?;
                rows.push((tx.value().to_vec(), credit));
            }
            let mut table = txn.open_table(PENDING_CREDITS)?;
            for (tx, credit) in rows {
                table.insert(tx.as_slice(), self.stored_credit(&tx, &credit)?.as_slice())?;
            }
            drop(table);
            txn.delete_table(clear::PENDING_CREDITS)?;
        }
        Ok(())
    }

    fn stored(&self, id: &KeyedId, participant: &Participant) -> Result<Vec<u8>, RegistryError> {
        let enrollments = participant
            .enrollments
            .iter()
            .enumerate()
            .map(|(n, e)| {
                Ok(StoredEnrollment {
                    role: e.role,
                    sealed_account: self
                        .key
                        .seal(&account_slot(b"enrollment", &id.0, n), &e.bank_account)?,
                    approved: e.approved,
                    balance: e.balance,
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        postcard::to_stdvec(&StoredParticipant {
            public_key: participant.public_key.to_ledger(),
            cert_expiry: participant.cert_expiry,
            enrollments,
        })
        .map_err(|e| RegistryError::Corrupt(e.to_string()))
    }

    /// The key `der` names, parsed once.
    fn parsed_key(&self, der: ledger::PublicKeyDer) -> Result<PublicKey, RegistryError> {
        if let Some(key) = ledger::sync::lock(&self.parsed_keys).get(&der.0) {
            return Ok(key.clone());
        }
        let key = PublicKey::from_ledger(&der)
            .map_err(|e| RegistryError::Corrupt(format!("a participant's key: {e}")))?;
        let mut parsed = ledger::sync::lock(&self.parsed_keys);
        if parsed.len() >= crate::constants::PARSED_KEYS_CACHED_MAX {
            parsed.clear();
        }
        parsed.insert(der.0, key.clone());
        Ok(key)
    }

    fn participant_of(&self, id: &KeyedId, bytes: &[u8]) -> Result<Participant, RegistryError> {
        let stored: StoredParticipant = decode_bounded(bytes)?;
        let enrollments = stored
            .enrollments
            .into_iter()
            .enumerate()
            .map(|(n, e)| {
                Ok(Enrollment {
                    role: e.role,
                    bank_account: self
                        .key
                        .open(&account_slot(b"enrollment", &id.0, n), &e.sealed_account)?,
                    approved: e.approved,
                    balance: e.balance,
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        Ok(Participant {
            public_key: self.parsed_key(stored.public_key)?,
            cert_expiry: stored.cert_expiry,
            enrollments,
        })
    }

    fn stored_credit(&self, tx: &[u8], credit: &PendingCredit) -> Result<Vec<u8>, RegistryError> {
        postcard::to_stdvec(&StoredCredit {
            sealed_account: self
                .key
                .seal(&account_slot(b"pending-credit", tx, 0), &credit.account)?,
            amount: credit.amount,
        })
        .map_err(|e| RegistryError::Corrupt(e.to_string()))
    }

    fn credit_of(&self, tx: &[u8], bytes: &[u8]) -> Result<PendingCredit, RegistryError> {
        let stored: StoredCredit = decode_bounded(bytes)?;
        Ok(PendingCredit {
            account: self.key.open(
                &account_slot(b"pending-credit", tx, 0),
                &stored.sealed_account,
            )?,
            amount: stored.amount,
        })
    }

    fn put_write(&self, id: &KeyedId, participant: &Participant) -> Result<Write, RegistryError> {
        Ok((
            Table::Participants,
            id.0.to_vec(),
            Some(self.stored(id, participant)?),
        ))
    }

    /// Writes `participant` into the redb file within `txn` (conversion).
    fn put_in(
        &self,
        txn: &redb::WriteTransaction,
        id: &KeyedId,
        participant: &Participant,
    ) -> Result<(), RegistryError> {
        let bytes = self.stored(id, participant)?;
        txn.open_table(PARTICIPANTS)?
            .insert(id.0.as_slice(), bytes.as_slice())?;
        Ok(())
    }

    pub fn get(&self, id: &ParticipantId) -> Result<Option<Participant>, RegistryError> {
        let keyed = self.key.keyed(id);
        match self.backend.get(Table::Participants, &keyed.0)? {
            Some(bytes) => self.participant_of(&keyed, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Records `coins` as issued to `id` (non-anonymous purchase, refund).
    pub fn add_coins(
        &self,
        id: &ParticipantId,
        coins: impl IntoIterator<Item = ledger::CoinId>,
    ) -> Result<(), RegistryError> {
        let id = self.key.keyed(id);
        let writes: Vec<Write> = coins
            .into_iter()
            .map(|coin| (Table::HolderCoins, holder_key(&id, &coin), Some(Vec::new())))
            .collect();
        self.backend.write(&writes)
    }

    /// Whether every one of `coins` is recorded as issued to `id`.
    pub fn holds_all<'a>(
        &self,
        id: &ParticipantId,
        coins: impl IntoIterator<Item = &'a ledger::CoinId>,
    ) -> Result<bool, RegistryError> {
        let id = self.key.keyed(id);
        for coin in coins {
            if self
                .backend
                .get(Table::HolderCoins, &holder_key(&id, coin))?
                .is_none()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Forgets `coins` of `id` (revoked by a refund).
    pub fn remove_coins<'a>(
        &self,
        id: &ParticipantId,
        coins: impl IntoIterator<Item = &'a ledger::CoinId>,
    ) -> Result<(), RegistryError> {
        let id = self.key.keyed(id);
        let writes: Vec<Write> = coins
            .into_iter()
            .map(|coin| (Table::HolderCoins, holder_key(&id, coin), None))
            .collect();
        self.backend.write(&writes)
    }

    /// The coins recorded as issued to `id` (spent ones included: the
    /// caller checks them against the shards).
    pub fn coins_of(&self, id: &ParticipantId) -> Result<Vec<ledger::CoinId>, RegistryError> {
        let id = self.key.keyed(id);
        self.backend
            .scan(Table::HolderCoins, &id.0)?
            .into_iter()
            .map(|(key, _)| {
                let coin: [u8; ledger::CoinId::LEN] = key
                    .get(KeyedId::LEN..)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| RegistryError::Corrupt("holder coin key".into()))?;
                Ok(ledger::CoinId::from_bytes(coin))
            })
            .collect()
    }

    /// Writes `participant` durably.
    pub fn put(&self, id: &ParticipantId, participant: &Participant) -> Result<(), RegistryError> {
        let id = self.key.keyed(id);
        let write = self.put_write(&id, participant)?;
        let _not_during_a_rewrite = ledger::sync::lock(&self.rewriting);
        self.backend.write(&[write])
    }
}

impl Registry {
    /// Where `id` stands (active unless an operator said otherwise).
    pub fn standing(&self, id: &ParticipantId) -> Result<Standing, RegistryError> {
        let id = self.key.keyed(id);
        match self.backend.get(Table::Standings, &id.0)?.as_deref() {
            None => Ok(Standing::Active),
            Some([1]) => Ok(Standing::Suspended),
            Some([2]) => Ok(Standing::Revoked),
            Some(_) => Err(RegistryError::Corrupt("standing".into())),
        }
    }

    /// Records `standing` for `id` durably.
    pub fn set_standing(
        &self,
        id: &ParticipantId,
        standing: Standing,
    ) -> Result<(), RegistryError> {
        let id = self.key.keyed(id).0.to_vec();
        let value = match standing {
            Standing::Active => None,
            Standing::Suspended => Some(vec![1]),
            Standing::Revoked => Some(vec![2]),
        };
        self.backend.write(&[(Table::Standings, id, value)])
    }

    /// Whether an operator refused `id`'s enrollment for `role`.
    pub fn is_refused(&self, id: &ParticipantId, role: Role) -> Result<bool, RegistryError> {
        let id = self.key.keyed(id);
        Ok(self
            .backend
            .get(Table::Refused, &refused_key(&id, role))?
            .is_some())
    }

    /// Records the refusal of `id`'s enrollment for `role` and drops the
    /// pending request from its record, in one transaction.
    pub fn refuse_enrollment(
        &self,
        id: &ParticipantId,
        role: Role,
        participant: &Participant,
    ) -> Result<(), RegistryError> {
        let mut participant = participant.clone();
        participant.enrollments.retain(|e| e.role != role);
        let id = self.key.keyed(id);
        let writes = [
            (Table::Refused, refused_key(&id, role), Some(Vec::new())),
            self.put_write(&id, &participant)?,
        ];
        let _not_during_a_rewrite = ledger::sync::lock(&self.rewriting);
        self.backend.write(&writes)
    }

    /// Suspends every approved `role` enrollment debiting or crediting
    /// `account` (it goes back to awaiting an operator's approval), in one
    /// transaction; returns how many. A returned purchase debit suspends
    /// the purchaser enrollments of the account it was drawn on.
    pub fn suspend_enrollments_on_account(
        &self,
        role: Role,
        account: &BankAccount,
    ) -> Result<usize, RegistryError> {
        let _one_at_a_time = ledger::sync::lock(&self.rewriting);
        let mut n_suspended = 0;
        let mut changed = Vec::new();
        for (id, value) in self.backend.scan(Table::Participants, &[])? {
            let id = KeyedId(
                id.as_slice()
                    .try_into()
                    .map_err(|_| RegistryError::Corrupt("keyed id".into()))?,
            );
            let mut participant = self.participant_of(&id, &value)?;
            let mut touched = false;
            for e in &mut participant.enrollments {
                if e.role == role && e.approved && &e.bank_account == account {
                    e.approved = false;
                    touched = true;
                    n_suspended += 1;
                }
            }
            if touched {
                changed.push(self.put_write(&id, &participant)?);
            }
        }
        self.backend.write(&changed)?;
        Ok(n_suspended)
    }

    /// Records that `tx` owes `credit` (durably, before `tx` is logged).
    pub fn put_pending_credit(
        &self,
        tx: ledger::TxId,
        credit: &PendingCredit,
    ) -> Result<(), RegistryError> {
        let bytes = self.stored_credit(tx.as_bytes(), credit)?;
        self.backend
            .write(&[(Table::PendingCredits, tx.as_bytes().to_vec(), Some(bytes))])
    }

    /// The credit is with the bank (or `tx` never committed).
    pub fn remove_pending_credit(&self, tx: ledger::TxId) -> Result<(), RegistryError> {
        self.backend
            .write(&[(Table::PendingCredits, tx.as_bytes().to_vec(), None)])
    }

    /// The credit `tx` still owes, if any: the account and amount its
    /// commit recorded (none once the bank has it).
    pub fn pending_credit(&self, tx: ledger::TxId) -> Result<Option<PendingCredit>, RegistryError> {
        match self.backend.get(Table::PendingCredits, tx.as_bytes())? {
            Some(bytes) => self.credit_of(tx.as_bytes(), &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every credit still owed.
    pub fn pending_credits(&self) -> Result<Vec<(ledger::TxId, PendingCredit)>, RegistryError> {
        self.backend
            .scan(Table::PendingCredits, &[])?
            .into_iter()
            .map(|(key, value)| {
                let key: [u8; 16] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| RegistryError::Corrupt("pending credit key".into()))?;
                let credit = self.credit_of(&key, &value)?;
                Ok((ledger::TxId::from_bytes(key), credit))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn participant(account: &str) -> Participant {
        let key = protocol::crypto::SecretKey::generate_for(protocol::crypto::SuiteId::Dhaes, 2048)
            .expect("key");
        Participant {
            public_key: key.public(),
            cert_expiry: Timestamp(1_900_000_000),
            enrollments: vec![Enrollment {
                role: Role::CoinPurchaser,
                bank_account: BankAccount::new(account).expect("account"),
                approved: true,
                balance: None,
            }],
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn the_registry_file_holds_ids_only_keyed_and_accounts_only_sealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.redb");
        let alice = ParticipantId::new("alice-liddell").expect("id");
        let account = "GB82WEST12345698765432";
        let coin = ledger::CoinId::from_bytes([7; ledger::CoinId::LEN]);
        {
            let registry = Registry::open(&path).expect("open");
            registry.put(&alice, &participant(account)).expect("put");
            registry.add_coins(&alice, [coin]).expect("coins");
            registry
                .set_standing(&alice, Standing::Suspended)
                .expect("standing");
            registry
                .put_pending_credit(
                    ledger::TxId::from_bytes([1; 16]),
                    &PendingCredit {
                        account: BankAccount::new(account).expect("account"),
                        amount: ledger::Amount::from_minor(250),
                    },
                )
                .expect("credit");
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !contains(&bytes, alice.as_str().as_bytes()),
            "an id in the clear"
        );
        assert!(
            !contains(&bytes, account.as_bytes()),
            "an account in the clear"
        );

        // The issuer, holding the key, reads everything back.
        let registry = Registry::open(&path).expect("open again");
        let back = registry.get(&alice).expect("get").expect("alice");
        assert_eq!(back.enrollments[0].bank_account.as_str(), account);
        assert_eq!(registry.coins_of(&alice).expect("coins"), vec![coin]);
        assert_eq!(
            registry.standing(&alice).expect("standing"),
            Standing::Suspended
        );
        assert_eq!(
            registry
                .suspend_enrollments_on_account(
                    Role::CoinPurchaser,
                    &BankAccount::new(account).expect("account")
                )
                .expect("suspend"),
            1
        );
        let credits = registry.pending_credits().expect("credits");
        assert_eq!(credits[0].1.account.as_str(), account);
        drop(registry);

        // Without its key the file opens nothing: another key is another
        // registry, and a sealed account does not open under it.
        std::fs::remove_file(dir.path().join(REGISTRY_KEY_FILE)).expect("rm key");
        let other = Registry::open(&path).expect("a new key");
        assert_eq!(other.get(&alice).expect("get"), None);
        assert!(other.pending_credits().is_err());
    }

    #[test]
    fn the_registry_in_tables_holds_the_files_rows_and_names_nobody() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_path = dir.path().join(REGISTRY_KEY_FILE);
        let tables = Arc::new(ledger::MemoryKv::new());
        let alice = ParticipantId::new("alice-liddell").expect("id");
        let account = "GB82WEST12345698765432";
        let coin = ledger::CoinId::from_bytes([7; ledger::CoinId::LEN]);
        {
            let registry = Registry::open_in(tables.clone(), &key_path).expect("open");
            registry.put(&alice, &participant(account)).expect("put");
            registry.add_coins(&alice, [coin]).expect("coins");
            registry
                .set_standing(&alice, Standing::Suspended)
                .expect("standing");
            registry
                .refuse_enrollment(&alice, Role::Redeemer, &participant(account))
                .expect("refuse");
            registry
                .put_pending_credit(
                    ledger::TxId::from_bytes([1; 16]),
                    &PendingCredit {
                        account: BankAccount::new(account).expect("account"),
                        amount: ledger::Amount::from_minor(250),
                    },
                )
                .expect("credit");
        }
        for (table, key, value) in tables.rows() {
            for row in [&key, &value] {
                assert!(
                    !contains(row, alice.as_str().as_bytes()),
                    "an id in {table}"
                );
                assert!(!contains(row, account.as_bytes()), "an account in {table}");
            }
        }

        // Another process with the key (a replacement issuer) reads it all.
        let registry = Registry::open_in(tables.clone(), &key_path).expect("reopen");
        let back = registry.get(&alice).expect("get").expect("alice");
        assert_eq!(back.enrollments[0].bank_account.as_str(), account);
        assert_eq!(registry.coins_of(&alice).expect("coins"), vec![coin]);
        assert!(registry.holds_all(&alice, &[coin]).expect("holds"));
        assert_eq!(
            registry.standing(&alice).expect("standing"),
            Standing::Suspended
        );
        assert!(
            registry
                .is_refused(&alice, Role::Redeemer)
                .expect("refused")
        );
        assert_eq!(
            registry
                .suspend_enrollments_on_account(
                    Role::CoinPurchaser,
                    &BankAccount::new(account).expect("account")
                )
                .expect("suspend"),
            1
        );
        assert!(
            !registry
                .get(&alice)
                .expect("get")
                .expect("alice")
                .enrollments[0]
                .approved
        );
        let credits = registry.pending_credits().expect("credits");
        assert_eq!(credits[0].1.account.as_str(), account);
        registry
            .remove_pending_credit(ledger::TxId::from_bytes([1; 16]))
            .expect("remove");
        assert!(registry.pending_credits().expect("credits").is_empty());
        registry
            .remove_coins(&alice, &[coin])
            .expect("remove coins");
        assert!(registry.coins_of(&alice).expect("coins").is_empty());
        drop(registry);

        // Without its key, or with another, the registry does not open
        // (rather than serve nobody under a new key).
        let key = std::fs::read(&key_path).expect("key");
        std::fs::remove_file(&key_path).expect("rm key");
        assert!(matches!(
            Registry::open_in(tables.clone(), &key_path),
            Err(RegistryError::KeyMissing(_))
        ));
        assert!(!key_path.exists(), "a new key was made");
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other_key = other_dir.path().join(REGISTRY_KEY_FILE);
        drop(Registry::open(other_dir.path().join("registry.redb")).expect("another registry"));
        assert!(matches!(
            Registry::open_in(tables.clone(), &other_key),
            Err(RegistryError::WrongKey)
        ));
        ledger::private_file::write_private(&key_path, &key).expect("key back");
        assert!(Registry::open_in(tables, &key_path).is_ok());
    }

    #[test]
    fn a_registry_with_ids_in_the_clear_is_converted_when_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.redb");
        let alice = ParticipantId::new("alice").expect("id");
        let coin = ledger::CoinId::from_bytes([9; ledger::CoinId::LEN]);
        {
            let db = Database::create(&path).expect("db");
            let txn = db.begin_write().expect("txn");
            {
                let bytes = postcard::to_stdvec(&participant("ACH-alice")).expect("encode");
                txn.open_table(clear::PARTICIPANTS)
                    .expect("t")
                    .insert("alice", bytes.as_slice())
                    .expect("insert");
                let mut key = b"alice".to_vec();
                key.push(0);
                key.extend_from_slice(coin.as_bytes());
                txn.open_table(clear::HOLDER_COINS)
                    .expect("t")
                    .insert(key.as_slice(), ())
                    .expect("insert");
                txn.open_table(clear::STANDINGS)
                    .expect("t")
                    .insert("alice", 2)
                    .expect("insert");
                txn.open_table(clear::REFUSED_ENROLLMENTS)
                    .expect("t")
                    .insert(b"alice\x00\x01".as_slice(), ())
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let registry = Registry::open(&path).expect("open");
        let back = registry.get(&alice).expect("get").expect("alice");
        assert_eq!(back.enrollments[0].bank_account.as_str(), "ACH-alice");
        assert_eq!(registry.coins_of(&alice).expect("coins"), vec![coin]);
        assert_eq!(
            registry.standing(&alice).expect("standing"),
            Standing::Revoked
        );
        assert!(
            registry
                .is_refused(&alice, Role::Redeemer)
                .expect("refused")
        );
        drop(registry);
        // redb may keep freed pages' old bytes until they are reused; the
        // clear tables themselves are gone.
        let db = Database::create(&path).expect("db");
        let txn = db.begin_read().expect("txn");
        let names: Vec<String> = txn
            .list_tables()
            .expect("tables")
            .map(|t| t.name().to_owned())
            .collect();
        assert!(!names.iter().any(|n| n == "participants"), "{names:?}");
    }
}
