//! Protocol sessions: what the issuer must remember between two messages of
//! a flow (its key share `K_I`, the nonce `R_I`, who the peer is), with an
//! expiry, and single use where the protocol says so (a replayed WRequest3
//! finds its `R_I` used: paper's W3).
//!
//! Kept in a redb file because a coin purchase spans days (the bank debit
//! settles late). A used session leaves a tombstone until its expiry, so a
//! replay is told "already used", not "unknown". The payload is any
//! serde type; its encoding is bounded on the way in and out.
//!
//! Two kinds of write ([`Persist`]). A flow session that spans days (a
//! purchase waiting for the bank) is **durable**: it goes through one
//! writer thread that does group commit, as the log does (every write
//! waiting when it wakes goes into ONE redb transaction, one fsync), and
//! is answered only after that transaction is committed. Callers that must
//! not block (the actor path) pass a callback (`*_then`); the others wait.
//! A payment's ack session and its tombstone are **soft**: held in memory
//! (an overlay every read consults first) and answered at once, with no
//! thread hop and no transaction; the overlay goes to disk inside the next
//! durable group (the housekeeper's purge makes one every 250 ms, a
//! purchase step at once, a full overlay too). A payment's one durable
//! write is its batch in the log; its ack session is soft state the log
//! can replace: a retransmitted ValidationRequest is answered from the log
//! with a fresh ack session (`issuer::payment`). A crash loses at most the last quarter second of
//! ack sessions; an Issuance2 for one is then refused as unknown, as one
//! arriving after expiry is, and the payee holds its coins either way. A
//! lost tombstone leaves the session live until its expiry; a replayed ack
//! is answered as a used one is. So a payment costs one fsync (the
//! log's), not two, and no session transaction of its own. A session id
//! is written either softly (ack sessions) or durably (flow sessions),
//! never both: the overlay is flushed before a durable group's writes, so
//! a durable write queued before a soft one of the same id would land
//! after it.
//!
//! A store opened with a [`PayloadSeal`] (the issuer's, under its registry
//! key) holds every payload sealed, the session id as associated data:
//! the file names no participant and holds no account or key share in the
//! clear. Such a file is marked sealed; opening it without a seal is
//! refused ([`SessionError::SealRequired`]), and a file written with clear
//! payloads is sealed, every row in one transaction, when opened with one.
//!
//! A store opened beside the log ([`SessionStore::open_beside_log`]: the
//! issuer's tables in PostgreSQL) also writes its durable sessions to
//! table [`SESSIONS_TABLE`] there, so a replacement issuer on another host
//! holds the purchases its predecessor left waiting for the bank. Each
//! durable group's rows (the record as the file holds it, payload sealed,
//! keyed by session id) are written to the tables in one batch after the
//! group's writes are applied and before its transaction commits: a
//! durable write is answered only once both hold it, and a failed batch
//! fails the group (nothing of it is committed or acknowledged,
//! [`SessionError::SideTables`]). Soft writes are not carried there: they
//! are state the log replaces, and a payment must not wait on the
//! database for them. The file keeps which sessions the tables hold
//! (`session-mirrored`), so a purge deletes exactly those rows from the
//! tables and never asks the database about payments' ack sessions.
//! At open, the tables win: every unexpired row is written into the file,
//! a session the file marks as held there and the tables no longer hold is
//! dropped (a file left from before a fail-over is a stale copy), and
//! expired rows are deleted from the tables.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use crate::timing::{Stage, StageTimings};
use ledger::Timestamp;
use ledger::kv::{KvBatch, KvError, KvStore};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::constants::{
    ACK_SESSIONS_HEADROOM, SESSION_BYTES_MAX, SESSION_WRITES_PER_COMMIT_MAX, SESSIONS_MAX,
};

/// Soft writes held in memory before a durable group is asked to take them.
const SOFT_WRITES_HELD_MAX: usize = 8192;

/// A session handle: 128 random bits, given to the client.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    pub fn random() -> SessionId {
        SessionId(*ledger::TxId::random().as_bytes())
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A handle is not a secret, but half of it is enough to follow in logs.
        write!(f, "SessionId({:02x?}..)", &self.0[..4])
    }
}

/// Why a session could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("unknown session")]
    Unknown,
    #[error("session expired")]
    Expired,
    #[error("session already used")]
    AlreadyUsed,
    #[error("a session with this id exists")]
    Exists,
    #[error("too many open sessions")]
    Full,
    #[error("session payload exceeds {SESSION_BYTES_MAX} bytes")]
    TooLarge,
    #[error("session record is corrupt: {0}")]
    Corrupt(String),
    #[error("session storage: {0}")]
    Storage(#[from] redb::Error),
    #[error("session transaction failed: {0}")]
    GroupFailed(String),
    #[error("the session writer has stopped")]
    Stopped,
    #[error("the session file holds sealed sessions: open it with its seal (the registry key)")]
    SealRequired,
    /// The tables beside the log refused or failed a write of durable
    /// sessions: the group holding it was not committed.
    #[error("the session tables beside the log: {0}")]
    SideTables(#[from] KvError),
}

/// Seals session payloads for the file and opens them again: the store
/// hands it the encoded payload and the session id (its slot).
pub trait PayloadSeal: Send + Sync {
    fn seal(&self, id: &SessionId, plain: &[u8]) -> Result<Vec<u8>, SessionError>;
    fn open(&self, id: &SessionId, sealed: &[u8]) -> Result<Vec<u8>, SessionError>;
}

/// The store's format marker: present (and `SEALED`) once every payload in
/// the file is sealed.
const FORMAT: TableDefinition<&str, u8> = TableDefinition::new("session-format");
const FORMAT_KEY: &str = "payloads";
const SEALED: u8 = 1;

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for SessionError {
            fn from(e: $t) -> SessionError {
                SessionError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// Every session by expiry: key = expiry (big-endian u64) ++ id, so a purge
/// reads only what has expired instead of decoding every session (payment
/// ack sessions live a day: hundreds of thousands of them under load, and
/// the housekeeper purges four times a second).
const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("session-expiry");
/// The ids of the sessions the tables beside the log hold (a store opened
/// beside the log): what a purge or a removal deletes there.
const MIRRORED: TableDefinition<&[u8], ()> = TableDefinition::new("session-mirrored");

/// The table of durable sessions in the tables beside the log: session id
/// -> the record as `sessions.redb` holds it (payload sealed).
pub const SESSIONS_TABLE: &str = "sessions";

fn expiry_key(expires_at: Timestamp, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(&expires_at.0.to_be_bytes());
    key.extend_from_slice(id);
    key
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    expires_at: Timestamp,
    used: bool,
    payload: Vec<u8>,
}

/// Whether a write must be on disk before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// fsync'd before the answer (for a durable store).
    Durable,
    /// Held in memory (readable) before the answer; on disk with the next
    /// durable group. For state the log can rebuild (see the module docs).
    Soft,
}

/// A soft write not yet in a committed group.
#[derive(Clone)]
enum Soft {
    /// A live session: its encoded [`SessionRecord`].
    Live {
        record: Vec<u8>,
        expires_at: Timestamp,
    },
    /// Used up: a tombstone until `expires_at`.
    Used { expires_at: Timestamp },
}

/// The soft writes not yet on disk, each with the order it was made in
/// (a flush forgets an entry only if no newer write replaced it).
#[derive(Default)]
struct Overlay {
    next: u64,
    entries: HashMap<SessionId, (u64, Soft)>,
}

impl Overlay {
    fn put(&mut self, id: SessionId, soft: Soft) {
        self.next += 1;
        self.entries.insert(id, (self.next, soft));
    }

    /// The overlay as writes for a group, and what to forget once it is
    /// committed.
    fn to_writes(&self) -> (Vec<Write>, Vec<(SessionId, u64)>) {
        let mut writes = Vec::with_capacity(self.entries.len());
        let mut taken = Vec::with_capacity(self.entries.len());
        for (id, (order, soft)) in &self.entries {
            let (record, expires_at) = match soft {
                Soft::Live { record, expires_at } => (record.clone(), *expires_at),
                Soft::Used { expires_at } => (tombstone(*expires_at), *expires_at),
            };
            writes.push(Write::Insert {
                id: *id,
                record,
                expires_at,
                replace: true,
            });
            taken.push((*id, *order));
        }
        (writes, taken)
    }

    /// Forgets the entries `taken` wrote, unless rewritten since.
    fn forget(&mut self, taken: &[(SessionId, u64)]) {
        for (id, order) in taken {
            if self.entries.get(id).is_some_and(|(o, _)| o == order) {
                self.entries.remove(id);
            }
        }
    }
}

/// A used session's record: no payload, kept until expiry.
fn tombstone(expires_at: Timestamp) -> Vec<u8> {
    postcard::to_stdvec(&SessionRecord {
        expires_at,
        used: true,
        payload: Vec::new(),
    })
    // A struct of a u64, a bool and an empty Vec always encodes.
    .unwrap_or_default()
}

/// One write, applied by the writer thread inside a group's transaction.
enum Write {
    /// A new session; with `replace`, an existing one (live or used) is
    /// overwritten instead of refused.
    Insert {
        id: SessionId,
        record: Vec<u8>,
        expires_at: Timestamp,
        replace: bool,
    },
    /// New payload for a live session, keeping its expiry.
    Replace {
        id: SessionId,
        payload: Vec<u8>,
    },
    /// Uses a live session up; answers its payload.
    Take {
        id: SessionId,
        now: Timestamp,
    },
    Remove {
        id: SessionId,
    },
    /// Drops everything expired at `now`; answers how many.
    Purge {
        now: Timestamp,
    },
    /// Nothing: a durable group that takes the soft writes to disk.
    Sync,
}

/// What a write did.
enum Written {
    Done,
    Taken(Vec<u8>),
    Purged(usize),
}

/// Called once, on the writer thread, when the write's transaction is
/// committed (or with why it is not). Must be short.
type Reply = Box<dyn FnOnce(Result<Written, SessionError>) + Send + 'static>;

enum Message {
    Write {
        write: Write,
        persist: Persist,
        reply: Reply,
    },
    Stop,
}

/// Counters of the writer: transactions committed and writes in them.
#[derive(Debug)]
struct Counters {
    commits: AtomicU64,
    /// Of `commits`, those fsync'd.
    durable_commits: AtomicU64,
    writes: AtomicU64,
    /// Records (sessions and tombstones) after the last committed group.
    held: AtomicUsize,
    /// How long each group's transaction took (its fsync, mostly).
    timings: Arc<StageTimings>,
}

/// How many records the store takes; see [`SESSIONS_MAX`] and
/// [`ACK_SESSIONS_HEADROOM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// New flow sessions ([`SessionStore::insert`]) are refused at this many records.
    pub flow_sessions_max: usize,
    /// [`SessionStore::has_room_for_payment`] says no at
    /// `flow_sessions_max + ack_headroom` records.
    pub ack_headroom: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            flow_sessions_max: SESSIONS_MAX,
            ack_headroom: ACK_SESSIONS_HEADROOM,
        }
    }
}

/// What the session writer has done since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCommitStats {
    /// Transactions committed.
    pub commits: u64,
    /// Of `commits`, those fsync'd (a durable store's groups holding a
    /// durable write).
    pub durable_commits: u64,
    /// Writes in them.
    pub writes: u64,
}

/// Sessions with expiry, in their own redb file.
pub struct SessionStore {
    limits: SessionLimits,
    db: Arc<Database>,
    durable: bool,
    sender: Mutex<Sender<Message>>,
    counters: Arc<Counters>,
    /// Soft writes not yet in a committed group; reads look here first.
    overlay: Arc<Mutex<Overlay>>,
    writer: Option<std::thread::JoinHandle<()>>,
    seal: Option<Arc<dyn PayloadSeal>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, SessionError> {
    postcard::to_stdvec(value).map_err(|e| SessionError::Corrupt(e.to_string()))
}

fn encode_payload<T: Serialize>(payload: &T) -> Result<Vec<u8>, SessionError> {
    let bytes = encode(payload)?;
    if bytes.len() > SESSION_BYTES_MAX {
        return Err(SessionError::TooLarge);
    }
    Ok(bytes)
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, SessionError> {
    postcard::from_bytes(bytes).map_err(|e| SessionError::Corrupt(e.to_string()))
}

fn read_record(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: SessionId,
) -> Result<SessionRecord, SessionError> {
    let bytes = match table.get(id.0.as_slice())? {
        Some(v) => v.value().to_vec(),
        None => return Err(SessionError::Unknown),
    };
    // Room for the record's header and a seal's salt and tag.
    if bytes.len() > SESSION_BYTES_MAX + 128 {
        return Err(SessionError::Corrupt("record too long".into()));
    }
    decode(&bytes)
}

/// Checks the file's format against `seal`: a sealed file needs one, a
/// file with clear payloads is opened only without one (tests).
fn check_format(
    txn: &redb::WriteTransaction,
    seal: Option<&dyn PayloadSeal>,
) -> Result<(), SessionError> {
    let format = txn.open_table(FORMAT)?;
    let sealed = format.get(FORMAT_KEY)?.map(|v| v.value());
    match (sealed, seal) {
        (Some(SEALED), Some(_)) | (None, None) => Ok(()),
        (Some(SEALED), None) => Err(SessionError::SealRequired),
        (None, Some(_)) => Err(SessionError::Corrupt(
            "the session file is not sealed".into(),
        )),
        (Some(other), _) => Err(SessionError::Corrupt(format!(
            "unknown session file format {other}"
        ))),
    }
}

/// Makes the file at `path` a sealed one: a file not marked sealed (a new
/// one, or one written with clear payloads) is copied row by row, each
/// payload sealed, into a new file that then replaces it. A copy, not an
/// update in place: redb frees the pages a rewrite leaves behind without
/// clearing them, so the clear payloads would stay on disk.
fn seal_file(path: &Path, seal: &dyn PayloadSeal) -> Result<(), SessionError> {
    let io = |e| SessionError::Storage(redb::Error::Io(e));
    let old = Database::create(path)?;
    let txn = old.begin_write()?;
    let sealed = txn.open_table(FORMAT)?.get(FORMAT_KEY)?.map(|v| v.value());
    if sealed.is_some() {
        return Ok(());
    }
    let tmp = path.with_extension("redb.sealing");
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    ledger::private_file::ensure_private_file(&tmp).map_err(io)?;
    let new = Database::create(&tmp)?;
    let out = new.begin_write()?;
    {
        let sessions = txn.open_table(SESSIONS)?;
        let expiry = txn.open_table(EXPIRY)?;
        let mut new_sessions = out.open_table(SESSIONS)?;
        let mut new_expiry = out.open_table(EXPIRY)?;
        for item in sessions.iter()? {
            let (k, v) = item?;
            let id = SessionId(
                k.value()
                    .try_into()
                    .map_err(|_| SessionError::Corrupt("session id".into()))?,
            );
            let mut record: SessionRecord = decode(v.value())?;
            if !record.payload.is_empty() {
                record.payload = seal.seal(&id, &record.payload)?;
            }
            new_sessions.insert(k.value(), encode(&record)?.as_slice())?;
        }
        for item in expiry.iter()? {
            let (k, _) = item?;
            new_expiry.insert(k.value(), ())?;
        }
        out.open_table(FORMAT)?.insert(FORMAT_KEY, SEALED)?;
    }
    out.commit()?;
    drop(new);
    drop(txn);
    drop(old);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Makes the file hold what the tables beside the log hold (they win):
/// every unexpired row of [`SESSIONS_TABLE`] is written into the file,
/// a session the file marks as held there that the tables no longer hold
/// is dropped, and expired rows are deleted from the tables. Sessions the
/// file never wrote there (soft ones) stay as they are. Returns how many
/// sessions were taken from the tables.
fn seed_from_tables(
    db: &Database,
    tables: &dyn KvStore,
    now: Timestamp,
) -> Result<usize, SessionError> {
    let rows = tables.scan(SESSIONS_TABLE, &[])?;
    let mut expired_rows = KvBatch::new();
    let mut seeded = 0;
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(SESSIONS)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        let mut mirrored = txn.open_table(MIRRORED)?;
        let mut held = std::collections::HashSet::new();
        for (key, value) in rows {
            let id = SessionId(
                key.as_slice()
                    .try_into()
                    .map_err(|_| SessionError::Corrupt("a session id in the tables".into()))?,
            );
            if value.len() > SESSION_BYTES_MAX + 128 {
                return Err(SessionError::Corrupt("a session row too long".into()));
            }
            let record: SessionRecord = decode(&value)?;
            if record.expires_at <= now {
                expired_rows.delete(SESSIONS_TABLE, &id.0);
                continue;
            }
            match read_record(&table, id) {
                Ok(old) => {
                    expiry.remove(expiry_key(old.expires_at, &id.0).as_slice())?;
                }
                Err(SessionError::Unknown) => {}
                Err(e) => return Err(e),
            }
            table.insert(id.0.as_slice(), value.as_slice())?;
            expiry.insert(expiry_key(record.expires_at, &id.0).as_slice(), ())?;
            mirrored.insert(id.0.as_slice(), ())?;
            held.insert(id.0);
            seeded += 1;
        }
        // What the file wrote there and the tables dropped since (used up
        // and removed, or purged, by the issuer that replaced this one).
        let mut stale = Vec::new();
        for item in mirrored.iter()? {
            let (k, _) = item?;
            if !held.contains(k.value()) {
                stale.push(k.value().to_vec());
            }
        }
        for id in &stale {
            mirrored.remove(id.as_slice())?;
            let old = match table.remove(id.as_slice())? {
                Some(old) => Some(decode::<SessionRecord>(old.value())?),
                None => None,
            };
            if let Some(old) = old {
                expiry.remove(expiry_key(old.expires_at, id).as_slice())?;
            }
        }
        if !stale.is_empty() || seeded > 0 {
            tracing::info!(
                n_seeded = seeded,
                n_dropped = stale.len(),
                "sessions taken from the tables beside the log"
            );
        }
    }
    // The file first: a crash between the two leaves expired rows that the
    // next start deletes again.
    txn.commit()?;
    if !expired_rows.writes.is_empty() {
        tables.write(&expired_rows)?;
    }
    Ok(seeded)
}

/// The payload of a live record, as bytes.
fn live_payload(record: &SessionRecord, now: Timestamp) -> Result<&[u8], SessionError> {
    if record.used {
        return Err(SessionError::AlreadyUsed);
    }
    if now >= record.expires_at {
        return Err(SessionError::Expired);
    }
    Ok(&record.payload)
}

/// Applies one write; an error leaves the table as it was for this write.
fn apply(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    expiry: &mut redb::Table<'_, &'static [u8], ()>,
    write: &Write,
    limits: &SessionLimits,
    purged: &mut Vec<Vec<u8>>,
) -> Result<Written, SessionError> {
    match write {
        Write::Insert {
            id,
            record,
            expires_at,
            replace,
        } => {
            let old = match read_record(table, *id) {
                Ok(old) => Some(old),
                Err(SessionError::Unknown) => None,
                Err(e) => return Err(e),
            };
            if old.is_some() && !replace {
                return Err(SessionError::Exists);
            }
            // An upsert is a payment's ack session, written alongside a
            // batch that may already be durable: refusing it then would
            // leave a committed payment unanswerable. Payments are gated
            // before they move money instead (`has_room_for_payment`).
            if old.is_none() && !replace && table.len()? as usize >= limits.flow_sessions_max {
                return Err(SessionError::Full);
            }
            if let Some(old) = old {
                expiry.remove(expiry_key(old.expires_at, &id.0).as_slice())?;
            }
            table.insert(id.0.as_slice(), record.as_slice())?;
            expiry.insert(expiry_key(*expires_at, &id.0).as_slice(), ())?;
            Ok(Written::Done)
        }
        Write::Replace { id, payload } => {
            let mut record = read_record(table, *id)?;
            if record.used {
                return Err(SessionError::AlreadyUsed);
            }
            record.payload.clone_from(payload);
            let bytes = encode(&record)?;
            table.insert(id.0.as_slice(), bytes.as_slice())?;
            Ok(Written::Done)
        }
        Write::Take { id, now } => {
            let mut record = read_record(table, *id)?;
            let payload = live_payload(&record, *now)?.to_vec();
            record.used = true;
            // The key material goes; the tombstone remains until expiry.
            record.payload.clear();
            let bytes = encode(&record)?;
            table.insert(id.0.as_slice(), bytes.as_slice())?;
            Ok(Written::Taken(payload))
        }
        Write::Remove { id } => {
            let old = match read_record(table, *id) {
                Ok(old) => Some(old),
                Err(SessionError::Unknown) => None,
                Err(e) => return Err(e),
            };
            if let Some(old) = old {
                expiry.remove(expiry_key(old.expires_at, &id.0).as_slice())?;
                table.remove(id.0.as_slice())?;
            }
            Ok(Written::Done)
        }
        Write::Purge { now } => {
            // Keys sort by expiry first: everything before (now + 1) has
            // `expires_at <= now`, i.e. is expired.
            let bound = now.0.saturating_add(1).to_be_bytes();
            let mut expired = Vec::new();
            for item in expiry.range::<&[u8]>(..bound.as_slice())? {
                let (k, _) = item?;
                expired.push(k.value().to_vec());
            }
            for key in &expired {
                expiry.remove(key.as_slice())?;
                if let Some(id) = key.get(8..) {
                    table.remove(id)?;
                    purged.push(id.to_vec());
                }
            }
            Ok(Written::Purged(expired.len()))
        }
        Write::Sync => Ok(Written::Done),
    }
}

impl Write {
    /// The session a write changes (none for a purge or a sync).
    fn id(&self) -> Option<SessionId> {
        match self {
            Write::Insert { id, .. }
            | Write::Replace { id, .. }
            | Write::Take { id, .. }
            | Write::Remove { id } => Some(*id),
            Write::Purge { .. } | Write::Sync => None,
        }
    }
}

/// Applies a group of writes in one transaction. `Err` when the transaction
/// itself failed: then none of the writes happened. With `mirror`, the
/// sessions the group's writes changed (not its soft writes) are written
/// to the tables beside the log before the transaction commits.
fn commit_group(
    db: &Database,
    durable: bool,
    limits: &SessionLimits,
    soft: &[Write],
    writes: &[Write],
    mirror: Option<&dyn KvStore>,
) -> Result<(Vec<Result<Written, SessionError>>, usize), SessionError> {
    let mut txn = db.begin_write()?;
    if !durable {
        txn.set_durability(Durability::None)?;
    }
    let mut results = Vec::with_capacity(writes.len());
    let mut purged = Vec::new();
    let held;
    {
        let mut table = txn.open_table(SESSIONS)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        // The soft writes first: they were answered before this group's.
        for write in soft {
            match apply(&mut table, &mut expiry, write, limits, &mut purged) {
                Err(SessionError::Storage(e)) => return Err(SessionError::Storage(e)),
                // An upsert refuses nothing else.
                Err(e) => tracing::error!(error = %e, "a soft session write was refused"),
                Ok(_) => {}
            }
        }
        let mut changed = Vec::new();
        for write in writes {
            let result = apply(&mut table, &mut expiry, write, limits, &mut purged);
            // A storage error may have left the table half written: the
            // whole group fails rather than commit that.
            if let Err(SessionError::Storage(e)) = result {
                return Err(SessionError::Storage(e));
            }
            if result.is_ok()
                && let Some(id) = write.id()
            {
                changed.push(id.0.to_vec());
            }
            results.push(result);
        }
        if let Some(mirror) = mirror {
            let mut mirrored = txn.open_table(MIRRORED)?;
            let batch = mirror_batch(&table, &mut mirrored, &changed, &purged)?;
            // Dropping the transaction on failure commits nothing of the group.
            if !batch.writes.is_empty() {
                mirror.write(&batch)?;
            }
        }
        held = table.len()? as usize;
    }
    txn.commit()?;
    Ok((results, held))
}

/// The writes that make the tables beside the log hold what the file
/// holds for the sessions `changed` by durable writes, and drop those
/// `purged`, marking in `mirrored` which sessions the tables hold.
fn mirror_batch(
    table: &redb::Table<'_, &'static [u8], &'static [u8]>,
    mirrored: &mut redb::Table<'_, &'static [u8], ()>,
    changed: &[Vec<u8>],
    purged: &[Vec<u8>],
) -> Result<KvBatch, SessionError> {
    let mut batch = KvBatch::new();
    let mut done = std::collections::HashSet::new();
    for id in changed {
        if !done.insert(id.as_slice()) {
            continue;
        }
        match table.get(id.as_slice())? {
            Some(record) => {
                batch.put(SESSIONS_TABLE, id, record.value().to_vec());
                mirrored.insert(id.as_slice(), ())?;
            }
            None => {
                if mirrored.remove(id.as_slice())?.is_some() {
                    batch.delete(SESSIONS_TABLE, id);
                }
            }
        }
    }
    for id in purged {
        // A session the tables never held (a payment's ack) costs them nothing.
        if mirrored.remove(id.as_slice())?.is_some() {
            batch.delete(SESSIONS_TABLE, id);
        }
    }
    Ok(batch)
}

/// What the writer thread works with.
struct Writer<'a> {
    db: &'a Database,
    durable: bool,
    limits: &'a SessionLimits,
    overlay: &'a Mutex<Overlay>,
    counters: &'a Counters,
    mirror: Option<&'a dyn KvStore>,
}

impl Writer<'_> {
    /// Commits `writes` in one transaction, with the soft writes held when
    /// `with_soft` (then the group is durable, for a durable store).
    fn commit(
        &self,
        with_soft: bool,
        writes: &[Write],
    ) -> Result<Vec<Result<Written, SessionError>>, SessionError> {
        let (soft, taken) = if with_soft {
            lock_overlay(self.overlay).to_writes()
        } else {
            (Vec::new(), Vec::new())
        };
        let fsync = self.durable && with_soft;
        let started = std::time::Instant::now();
        let committed = commit_group(self.db, fsync, self.limits, &soft, writes, self.mirror);
        self.counters
            .timings
            .record(Stage::SessionCommit, started.elapsed());
        let (results, held) = committed?;
        lock_overlay(self.overlay).forget(&taken);
        self.counters.held.store(held, Ordering::Relaxed);
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        if fsync {
            self.counters
                .durable_commits
                .fetch_add(1, Ordering::Relaxed);
        }
        self.counters
            .writes
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        Ok(results)
    }
}

fn lock_overlay(overlay: &Mutex<Overlay>) -> std::sync::MutexGuard<'_, Overlay> {
    overlay.lock().expect(ledger::sync::POISONED_LOCK)
}

fn run_writer(writer: &Writer<'_>, receiver: &Receiver<Message>) {
    let mut stop = false;
    while !stop {
        let first = match receiver.recv() {
            Ok(Message::Write {
                write,
                persist,
                reply,
            }) => (write, persist, reply),
            Ok(Message::Stop) | Err(_) => {
                // The soft writes still held go to disk before the store closes.
                if !lock_overlay(writer.overlay).entries.is_empty()
                    && let Err(e) = writer.commit(true, &[])
                {
                    tracing::error!(error = %e, "writing the soft sessions at stop failed");
                }
                return;
            }
        };
        let mut writes = Vec::new();
        let mut replies = Vec::new();
        let (write, persist, reply) = first;
        let mut any_durable = persist == Persist::Durable;
        writes.push(write);
        replies.push(reply);
        while writes.len() < SESSION_WRITES_PER_COMMIT_MAX {
            match receiver.try_recv() {
                Ok(Message::Write {
                    write,
                    persist,
                    reply,
                }) => {
                    any_durable |= persist == Persist::Durable;
                    writes.push(write);
                    replies.push(reply);
                }
                Ok(Message::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        // A durable write makes the group durable, and it takes the soft
        // writes held along.
        match writer.commit(any_durable || stop, &writes) {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    reply(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, n_writes = writes.len(), "a session transaction failed");
                let why = e.to_string();
                for reply in replies {
                    reply(Err(match &e {
                        SessionError::SideTables(kv) => SessionError::SideTables(kv.clone()),
                        _ => SessionError::GroupFailed(why.clone()),
                    }));
                }
            }
        }
    }
}

impl SessionStore {
    /// Opens (or creates) the store at `path` and starts its writer. With
    /// `durable` every write is fsync'd before it is answered (what flows
    /// spanning days need); without, a crash may lose recent sessions, which
    /// only costs clients a restart of their flow.
    pub fn open(path: impl AsRef<Path>, durable: bool) -> Result<SessionStore, SessionError> {
        SessionStore::open_with_limits(path, durable, SessionLimits::default())
    }

    /// [`SessionStore::open`] with other room limits (tests of a full store).
    pub fn open_with_limits(
        path: impl AsRef<Path>,
        durable: bool,
        limits: SessionLimits,
    ) -> Result<SessionStore, SessionError> {
        SessionStore::open_timed(path, durable, limits, Arc::default())
    }

    /// [`SessionStore::open_timed`] with every payload sealed by `seal`;
    /// a file written with clear payloads is sealed here, in one
    /// transaction.
    pub fn open_sealed(
        path: impl AsRef<Path>,
        durable: bool,
        limits: SessionLimits,
        timings: Arc<StageTimings>,
        seal: Arc<dyn PayloadSeal>,
    ) -> Result<SessionStore, SessionError> {
        SessionStore::open_inner(path.as_ref(), durable, limits, timings, Some(seal), None)
    }

    /// [`SessionStore::open_sealed`] for an issuer whose log is in a
    /// replicated database: its durable sessions are also written to
    /// `tables` (table [`SESSIONS_TABLE`]), and the file is first made to
    /// hold what the tables hold, as of `now` (see the module docs: the
    /// tables win; expired rows are deleted there).
    pub fn open_beside_log(
        path: impl AsRef<Path>,
        limits: SessionLimits,
        timings: Arc<StageTimings>,
        seal: Option<Arc<dyn PayloadSeal>>,
        tables: Arc<dyn KvStore>,
        now: Timestamp,
    ) -> Result<SessionStore, SessionError> {
        SessionStore::open_inner(
            path.as_ref(),
            true,
            limits,
            timings,
            seal,
            Some((tables, now)),
        )
    }

    /// [`SessionStore::open_with_limits`], recording each group commit's
    /// duration as [`Stage::SessionCommit`] in `timings` (the issuer's).
    pub fn open_timed(
        path: impl AsRef<Path>,
        durable: bool,
        limits: SessionLimits,
        timings: Arc<StageTimings>,
    ) -> Result<SessionStore, SessionError> {
        SessionStore::open_inner(path.as_ref(), durable, limits, timings, None, None)
    }

    fn open_inner(
        path: &Path,
        durable: bool,
        limits: SessionLimits,
        timings: Arc<StageTimings>,
        seal: Option<Arc<dyn PayloadSeal>>,
        beside_log: Option<(Arc<dyn KvStore>, Timestamp)>,
    ) -> Result<SessionStore, SessionError> {
        // Key shares: 0600 before redb opens the file, whatever the umask.
        ledger::private_file::ensure_private_file(path)
            .map_err(|e| SessionError::Storage(redb::Error::Io(e)))?;
        if let Some(seal) = seal.as_deref() {
            seal_file(path, seal)?;
        }
        let db = Arc::new(Database::create(path)?);
        if let Some((tables, now)) = &beside_log {
            seed_from_tables(&db, tables.as_ref(), *now)?;
        }
        let mirror = beside_log.map(|(tables, _)| tables);
        let held;
        let txn = db.begin_write()?;
        {
            let sessions = txn.open_table(SESSIONS)?;
            let mut expiry = txn.open_table(EXPIRY)?;
            // A file from before the expiry index: build it once.
            if expiry.is_empty()? && !sessions.is_empty()? {
                for item in sessions.iter()? {
                    let (k, v) = item?;
                    let record: SessionRecord = decode(v.value())?;
                    expiry.insert(expiry_key(record.expires_at, k.value()).as_slice(), ())?;
                }
            }
            held = sessions.len()? as usize;
        }
        check_format(&txn, seal.as_deref())?;
        txn.commit()?;
        let (sender, receiver) = channel();
        let counters = Arc::new(Counters {
            commits: AtomicU64::new(0),
            durable_commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            held: AtomicUsize::new(held),
            timings,
        });
        let overlay = Arc::new(Mutex::new(Overlay::default()));
        let writer = {
            let db = Arc::clone(&db);
            let counters = Arc::clone(&counters);
            let overlay = Arc::clone(&overlay);
            std::thread::Builder::new()
                .name("vc-session-writer".to_owned())
                .spawn(move || {
                    let writer = Writer {
                        db: &db,
                        durable,
                        limits: &limits,
                        overlay: &overlay,
                        counters: &counters,
                        mirror: mirror.as_deref(),
                    };
                    run_writer(&writer, &receiver);
                })
                .map_err(|e| SessionError::GroupFailed(e.to_string()))?
        };
        Ok(SessionStore {
            db,
            durable,
            limits,
            sender: Mutex::new(sender),
            counters,
            overlay,
            writer: Some(writer),
            seal,
        })
    }

    /// The payload as the file holds it: sealed when the store has a seal.
    fn file_payload<T: Serialize>(
        &self,
        id: SessionId,
        payload: &T,
    ) -> Result<Vec<u8>, SessionError> {
        let plain = encode_payload(payload)?;
        match &self.seal {
            Some(seal) => seal.seal(&id, &plain),
            None => Ok(plain),
        }
    }

    /// A payload read from the file, opened and decoded.
    fn read_payload<T: for<'de> Deserialize<'de>>(
        &self,
        id: SessionId,
        stored: &[u8],
    ) -> Result<T, SessionError> {
        match &self.seal {
            Some(seal) => decode(&seal.open(&id, stored)?),
            None => decode(stored),
        }
    }

    /// Queues `write`; `reply` is called once, on the writer thread, after
    /// the group holding it is committed, or at once if the writer is gone.
    fn submit(&self, write: Write, persist: Persist, reply: Reply) {
        let sent = self
            .sender
            .lock()
            .expect(ledger::sync::POISONED_LOCK)
            .send(Message::Write {
                write,
                persist,
                reply,
            });
        if let Err(returned) = sent
            && let Message::Write { reply, .. } = returned.0
        {
            reply(Err(SessionError::Stopped));
        }
    }

    /// Queues `write` and waits for its group's commit.
    fn submit_wait(&self, write: Write) -> Result<Written, SessionError> {
        let (done, outcome) = channel();
        self.submit(
            write,
            Persist::Durable,
            Box::new(move |result| {
                // The waiter below never leaves before receiving.
                let _ = done.send(result);
            }),
        );
        // A writer that died with the write queued dropped the reply: that
        // is a failure, never a success.
        outcome.recv().unwrap_or(Err(SessionError::Stopped))
    }

    /// Opens session `id` holding `payload` until `expires_at`.
    pub fn insert<T: Serialize>(
        &self,
        id: SessionId,
        payload: &T,
        expires_at: Timestamp,
    ) -> Result<(), SessionError> {
        let record = encode(&SessionRecord {
            expires_at,
            used: false,
            payload: self.file_payload(id, payload)?,
        })?;
        self.submit_wait(Write::Insert {
            id,
            record,
            expires_at,
            replace: false,
        })
        .map(|_| ())
    }

    /// Opens session `id` holding `payload` until `expires_at`, replacing
    /// any session (live or used) of that id, without waiting: `done` is
    /// called on the writer thread once the write is committed (on disk
    /// first if `persist` is [`Persist::Durable`] and the store durable),
    /// or with why it is not. It is called exactly once, here if the
    /// payload is refused.
    pub fn upsert_then<T: Serialize>(
        &self,
        id: SessionId,
        payload: &T,
        expires_at: Timestamp,
        persist: Persist,
        done: impl FnOnce(Result<(), SessionError>) + Send + 'static,
    ) {
        let record = self.file_payload(id, payload).and_then(|payload| {
            encode(&SessionRecord {
                expires_at,
                used: false,
                payload,
            })
        });
        match (record, persist) {
            (Ok(record), Persist::Soft) => {
                self.hold_soft(id, Soft::Live { record, expires_at });
                done(Ok(()));
            }
            (Ok(record), Persist::Durable) => self.submit(
                Write::Insert {
                    id,
                    record,
                    expires_at,
                    replace: true,
                },
                persist,
                Box::new(move |r| done(r.map(|_| ()))),
            ),
            (Err(e), _) => done(Err(e)),
        }
    }

    /// Holds a soft write; asks for a durable group when many are held.
    fn hold_soft(&self, id: SessionId, soft: Soft) {
        let n_held = {
            let mut overlay = lock_overlay(&self.overlay);
            overlay.put(id, soft);
            overlay.entries.len()
        };
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if n_held % SOFT_WRITES_HELD_MAX == 0 {
            self.submit(Write::Sync, Persist::Durable, Box::new(|_| {}));
        }
    }

    /// Uses `id` up softly: the session as the overlay or, failing that,
    /// the disk has it.
    fn use_up_soft(&self, id: SessionId, now: Timestamp) -> Result<(), SessionError> {
        // Held across the read of the disk: a flush forgets an entry only
        // under this lock, after its group is committed.
        let mut overlay = lock_overlay(&self.overlay);
        let expires_at = match overlay.entries.get(&id) {
            Some((_, Soft::Used { .. })) => return Err(SessionError::AlreadyUsed),
            Some((_, Soft::Live { record, .. })) => {
                let record: SessionRecord = decode(record)?;
                live_payload(&record, now)?;
                record.expires_at
            }
            None => {
                use redb::ReadableDatabase;
                let txn = self.db.begin_read()?;
                let table = txn.open_table(SESSIONS)?;
                let record = read_record(&table, id)?;
                live_payload(&record, now)?;
                record.expires_at
            }
        };
        overlay.put(id, Soft::Used { expires_at });
        drop(overlay);
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces the payload of live session `id` (e.g. a purchase session
    /// after its `R_I` was spent), keeping its expiry.
    pub fn replace<T: Serialize>(&self, id: SessionId, payload: &T) -> Result<(), SessionError> {
        let payload = self.file_payload(id, payload)?;
        self.submit_wait(Write::Replace { id, payload }).map(|_| ())
    }

    /// Reads session `id` without using it up.
    pub fn get<T: for<'de> Deserialize<'de>>(
        &self,
        id: SessionId,
        now: Timestamp,
    ) -> Result<T, SessionError> {
        if let Some((_, soft)) = lock_overlay(&self.overlay).entries.get(&id) {
            return match soft {
                Soft::Used { .. } => Err(SessionError::AlreadyUsed),
                Soft::Live { record, .. } => {
                    let record: SessionRecord = decode(record)?;
                    self.read_payload(id, live_payload(&record, now)?)
                }
            };
        }
        use redb::ReadableDatabase;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SESSIONS)?;
        let record = read_record(&table, id)?;
        self.read_payload(id, live_payload(&record, now)?)
    }

    /// Uses session `id` up: it returns the payload once; later calls are
    /// told [`SessionError::AlreadyUsed`] until the session expires.
    pub fn take<T: for<'de> Deserialize<'de>>(
        &self,
        id: SessionId,
        now: Timestamp,
    ) -> Result<T, SessionError> {
        match self.submit_wait(Write::Take { id, now })? {
            Written::Taken(payload) => self.read_payload(id, &payload),
            Written::Done | Written::Purged(_) => Err(SessionError::Corrupt(
                "a take answered without payload".into(),
            )),
        }
    }

    /// Uses session `id` up like [`SessionStore::take`], without waiting
    /// and without decoding the payload (the caller read it with `get`):
    /// `done` is called once, on the writer thread, after the commit (on
    /// disk first if `persist` says so).
    pub fn use_up_then(
        &self,
        id: SessionId,
        now: Timestamp,
        persist: Persist,
        done: impl FnOnce(Result<(), SessionError>) + Send + 'static,
    ) {
        match persist {
            Persist::Soft => done(self.use_up_soft(id, now)),
            Persist::Durable => self.submit(
                Write::Take { id, now },
                persist,
                Box::new(move |r| done(r.map(|_| ()))),
            ),
        }
    }

    /// Forgets session `id` altogether.
    pub fn remove(&self, id: SessionId) -> Result<(), SessionError> {
        self.submit_wait(Write::Remove { id }).map(|_| ())
    }

    /// Drops every session (and tombstone) expired at `now`; returns how many.
    pub fn purge_expired(&self, now: Timestamp) -> Result<usize, SessionError> {
        match self.submit_wait(Write::Purge { now })? {
            Written::Purged(n) => Ok(n),
            Written::Done | Written::Taken(_) => Ok(0),
        }
    }

    /// Number of sessions and tombstones held (soft writes are put on
    /// disk first).
    pub fn len(&self) -> Result<usize, SessionError> {
        self.submit_wait(Write::Sync)?;
        use redb::ReadableDatabase;
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(SESSIONS)?.len()? as usize)
    }

    pub fn is_empty(&self) -> Result<bool, SessionError> {
        Ok(self.len()? == 0)
    }

    /// Whether a payment may start: its ack session will be written past
    /// the flow sessions' limit, into the headroom kept for payments, and
    /// must never be refused once the payment's batch is in the log. Read
    /// from the count after the last commit, so writes queued right now
    /// may overshoot by the payments in flight (bounded by the gateway).
    pub fn has_room_for_payment(&self) -> Result<(), SessionError> {
        // Soft writes held count too (some may be on disk already: the
        // count errs high, never low).
        let held = self
            .counters
            .held
            .load(Ordering::Relaxed)
            .saturating_add(lock_overlay(&self.overlay).entries.len());
        let max = self
            .limits
            .flow_sessions_max
            .saturating_add(self.limits.ack_headroom);
        if held >= max {
            return Err(SessionError::Full);
        }
        Ok(())
    }

    /// Transactions the writer committed and the writes they held.
    pub fn commit_stats(&self) -> SessionCommitStats {
        SessionCommitStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            durable_commits: self.counters.durable_commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for SessionStore {
    fn drop(&mut self) {
        // The writer commits everything queued before the stop, then exits;
        // joining it closes the file before a reopen.
        // A poisoned sender (a panic while sending) is not recovered, nor
        // joined: the writer stops when the channel hangs up, as the store's
        // fields drop.
        match self.sender.lock() {
            Ok(sender) => {
                let _ = sender.send(Message::Stop);
            }
            Err(_poisoned) => return,
        }
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the session writer panicked");
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PurchaseSession {
        k: [u8; 32],
        r_i: [u8; 32],
    }

    fn session() -> PurchaseSession {
        PurchaseSession {
            k: [7; 32],
            r_i: [9; 32],
        }
    }

    fn upsert_wait(store: &SessionStore, id: SessionId) -> Result<(), SessionError> {
        let (done, outcome) = channel();
        store.upsert_then(id, &session(), Timestamp(100), Persist::Durable, move |r| {
            let _ = done.send(r);
        });
        outcome.recv().unwrap_or(Err(SessionError::Stopped))
    }

    #[test]
    fn a_full_store_refuses_flow_sessions_and_new_payments_but_never_an_ack_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = SessionLimits {
            flow_sessions_max: 3,
            ack_headroom: 2,
        };
        let store =
            SessionStore::open_with_limits(dir.path().join("s.redb"), false, limits).expect("open");
        for _ in 0..3 {
            store
                .insert(SessionId::random(), &session(), Timestamp(100))
                .expect("room for a flow session");
        }
        assert!(matches!(
            store.insert(SessionId::random(), &session(), Timestamp(100)),
            Err(SessionError::Full)
        ));
        // Payments still start: the headroom is theirs.
        store.has_room_for_payment().expect("headroom left");
        upsert_wait(&store, SessionId::random()).expect("ack session");
        upsert_wait(&store, SessionId::random()).expect("ack session");
        assert!(matches!(
            store.has_room_for_payment(),
            Err(SessionError::Full)
        ));
        // A payment that passed the gate just before still gets its ack.
        upsert_wait(&store, SessionId::random()).expect("ack session past the headroom");
        assert_eq!(store.len().expect("len"), 6);
        // Room comes back as sessions expire.
        assert_eq!(store.purge_expired(Timestamp(100)).expect("purge"), 6);
        store.has_room_for_payment().expect("room after the purge");
    }

    #[test]
    fn a_session_is_single_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::open(dir.path().join("s.redb"), true).expect("open");
        let id = SessionId::random();
        store
            .insert(id, &session(), Timestamp(100))
            .expect("insert");
        assert_eq!(
            store.get::<PurchaseSession>(id, Timestamp(1)).expect("get"),
            session()
        );
        assert_eq!(
            store
                .take::<PurchaseSession>(id, Timestamp(1))
                .expect("take"),
            session()
        );
        assert!(matches!(
            store.take::<PurchaseSession>(id, Timestamp(2)),
            Err(SessionError::AlreadyUsed)
        ));
        assert!(matches!(
            store.insert(id, &session(), Timestamp(100)),
            Err(SessionError::Exists)
        ));
    }

    #[test]
    fn an_expired_session_is_refused_and_purged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::open(dir.path().join("s.redb"), false).expect("open");
        let id = SessionId::random();
        store.insert(id, &session(), Timestamp(10)).expect("insert");
        assert!(matches!(
            store.take::<PurchaseSession>(id, Timestamp(10)),
            Err(SessionError::Expired)
        ));
        assert!(matches!(
            store.get::<PurchaseSession>(SessionId::random(), Timestamp(1)),
            Err(SessionError::Unknown)
        ));
        assert_eq!(store.purge_expired(Timestamp(10)).expect("purge"), 1);
        assert!(store.is_empty().expect("len"));
    }

    #[test]
    fn a_durable_session_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let id = SessionId::random();
        {
            let store = SessionStore::open(&path, true).expect("open");
            store
                .insert(id, &session(), Timestamp(100))
                .expect("insert");
        }
        let store = SessionStore::open(&path, true).expect("reopen");
        assert_eq!(
            store
                .take::<PurchaseSession>(id, Timestamp(1))
                .expect("take"),
            session()
        );
    }

    #[test]
    fn writes_queued_together_share_a_durable_commit_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let ids: Vec<SessionId> = (0..200).map(|_| SessionId::random()).collect();
        {
            let store = SessionStore::open(&path, true).expect("open");
            let (done, outcomes) = std::sync::mpsc::channel();
            for id in &ids {
                let done = done.clone();
                store.upsert_then(
                    *id,
                    &session(),
                    Timestamp(100),
                    Persist::Durable,
                    move |r| {
                        let _ = done.send(r.is_ok());
                    },
                );
            }
            drop(done);
            let answered: Vec<bool> = outcomes.iter().collect();
            assert_eq!(answered, vec![true; ids.len()]);
            let stats = store.commit_stats();
            assert_eq!(stats.writes, ids.len() as u64);
            // Queued faster than one fsync: far fewer commits than writes.
            assert!(stats.commits < stats.writes / 2, "{stats:?}");
            // Upsert replaces, also after use: a retransmitted answer's session.
            store
                .take::<PurchaseSession>(ids[0], Timestamp(1))
                .expect("take");
            let (done, outcome) = std::sync::mpsc::channel();
            store.upsert_then(
                ids[0],
                &session(),
                Timestamp(100),
                Persist::Durable,
                move |r| {
                    let _ = done.send(r.is_ok());
                },
            );
            assert!(outcome.recv().expect("answered"));
        }
        let store = SessionStore::open(&path, true).expect("reopen");
        for id in &ids {
            assert_eq!(
                store
                    .get::<PurchaseSession>(*id, Timestamp(1))
                    .expect("get"),
                session()
            );
        }
        let (done, outcome) = std::sync::mpsc::channel();
        store.use_up_then(ids[1], Timestamp(1), Persist::Durable, move |r| {
            let _ = done.send(r);
        });
        assert!(outcome.recv().expect("answered").is_ok());
        assert!(matches!(
            store.get::<PurchaseSession>(ids[1], Timestamp(1)),
            Err(SessionError::AlreadyUsed)
        ));
    }

    fn upsert_soft(store: &SessionStore, id: SessionId) {
        let (done, outcome) = channel();
        store.upsert_then(id, &session(), Timestamp(100), Persist::Soft, move |r| {
            let _ = done.send(r);
        });
        outcome
            .recv()
            .unwrap_or(Err(SessionError::Stopped))
            .expect("soft write committed");
    }

    /// Soft writes (a payment's ack session and tombstone) are readable
    /// once answered, cost no transaction of their own, and reach the disk
    /// with the next durable group or at a clean stop.
    #[test]
    fn soft_writes_take_no_transaction_and_reach_the_disk_with_the_next_durable_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let (soft, flushed, at_stop) = (
            SessionId::random(),
            SessionId::random(),
            SessionId::random(),
        );
        {
            let store = SessionStore::open(&path, true).expect("open");
            upsert_soft(&store, soft);
            assert_eq!(
                store
                    .get::<PurchaseSession>(soft, Timestamp(1))
                    .expect("readable once answered"),
                session()
            );
            let (done, outcome) = channel();
            store.use_up_then(soft, Timestamp(1), Persist::Soft, move |r| {
                let _ = done.send(r);
            });
            outcome.recv().expect("answered").expect("used up");
            let stats = store.commit_stats();
            assert_eq!((stats.commits, stats.writes), (0, 2), "{stats:?}");
            upsert_soft(&store, flushed);
            // A durable write (the housekeeper's purge) carries them.
            store.purge_expired(Timestamp(0)).expect("purge");
            assert_eq!(store.commit_stats().durable_commits, 1);
            upsert_soft(&store, at_stop);
        }
        let store = SessionStore::open(&path, true).expect("reopen");
        assert!(matches!(
            store.get::<PurchaseSession>(soft, Timestamp(1)),
            Err(SessionError::AlreadyUsed)
        ));
        for id in [flushed, at_stop] {
            assert_eq!(
                store
                    .get::<PurchaseSession>(id, Timestamp(1))
                    .expect("on disk"),
                session()
            );
        }
    }

    #[test]
    fn purge_drops_exactly_the_expired_by_their_latest_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let ids: Vec<SessionId> = (0..4).map(|_| SessionId::random()).collect();
        {
            let store = SessionStore::open(&path, true).expect("open");
            for (id, t) in ids.iter().zip([10, 20, 30, 40]) {
                store.insert(*id, &session(), Timestamp(t)).expect("insert");
            }
            // A used session keeps its expiry; a replaced one takes the new.
            store
                .take::<PurchaseSession>(ids[1], Timestamp(1))
                .expect("take");
            let (done, outcome) = std::sync::mpsc::channel();
            store.upsert_then(
                ids[0],
                &session(),
                Timestamp(50),
                Persist::Durable,
                move |r| {
                    let _ = done.send(r.is_ok());
                },
            );
            assert!(outcome.recv().expect("answered"));
            store.remove(ids[3]).expect("remove");
            assert_eq!(store.purge_expired(Timestamp(20)).expect("purge"), 1);
        }
        let store = SessionStore::open(&path, true).expect("reopen");
        assert_eq!(store.len().expect("len"), 2);
        assert_eq!(
            store
                .get::<PurchaseSession>(ids[0], Timestamp(45))
                .expect("replaced, live until 50"),
            session()
        );
        assert_eq!(store.purge_expired(Timestamp(49)).expect("purge"), 1);
        assert_eq!(store.purge_expired(Timestamp(50)).expect("purge"), 1);
        assert!(store.is_empty().expect("len"));
    }

    fn registry_seal(dir: &Path) -> Arc<dyn PayloadSeal> {
        let registry =
            crate::issuer::registry::Registry::open(dir.join("registry.redb")).expect("registry");
        Arc::new(registry.session_seal().clone())
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    /// What a purchase session names: who, and the account.
    const WHO: &str = "alice-purchaser ACH-alice-000123";

    /// A sealed store's file holds no payload in the clear; its sessions
    /// read back by id, also after a restart.
    #[test]
    fn a_sealed_store_holds_no_payload_in_the_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let seal = registry_seal(dir.path());
        let open = || {
            SessionStore::open_sealed(
                &path,
                true,
                SessionLimits::default(),
                Arc::default(),
                Arc::clone(&seal),
            )
        };
        let id = SessionId::random();
        {
            let store = open().expect("open");
            store
                .insert(id, &WHO.to_owned(), Timestamp(100))
                .expect("insert");
            store.replace(id, &WHO.to_owned()).expect("replace");
            assert_eq!(store.get::<String>(id, Timestamp(1)).expect("get"), WHO);
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(!contains(&bytes, b"alice"), "the file names alice");
        let store = open().expect("reopen");
        assert_eq!(store.take::<String>(id, Timestamp(1)).expect("take"), WHO);
    }

    /// A file written with clear payloads is sealed when opened with a
    /// seal: its live sessions read back, and none of the old bytes (not
    /// even those of a removed session, left in redb's freed pages) remain.
    /// Opened without its seal, a sealed file is refused; under another
    /// registry key its sessions do not open.
    #[test]
    fn a_clear_file_is_sealed_on_open_and_refused_without_its_seal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let (kept, removed) = (SessionId::random(), SessionId::random());
        {
            let store = SessionStore::open(&path, true).expect("open clear");
            store
                .insert(kept, &WHO.to_owned(), Timestamp(100))
                .expect("insert");
            store
                .insert(removed, &"bob-removed".to_owned(), Timestamp(100))
                .expect("insert");
            store.remove(removed).expect("remove");
        }
        assert!(contains(&std::fs::read(&path).expect("read"), b"alice"));
        let seal = registry_seal(dir.path());
        {
            let store = SessionStore::open_sealed(
                &path,
                true,
                SessionLimits::default(),
                Arc::default(),
                Arc::clone(&seal),
            )
            .expect("sealed on open");
            assert_eq!(store.get::<String>(kept, Timestamp(1)).expect("get"), WHO);
            assert!(matches!(
                store.get::<String>(removed, Timestamp(1)),
                Err(SessionError::Unknown)
            ));
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(!contains(&bytes, b"alice"), "the sealed file names alice");
        assert!(!contains(&bytes, b"bob"), "a freed page names bob");
        assert!(!path.with_extension("redb.sealing").exists());
        assert!(matches!(
            SessionStore::open(&path, true),
            Err(SessionError::SealRequired)
        ));
        let other = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::open_sealed(
            &path,
            true,
            SessionLimits::default(),
            Arc::default(),
            registry_seal(other.path()),
        )
        .expect("open under another key");
        assert!(matches!(
            store.get::<String>(kept, Timestamp(1)),
            Err(SessionError::Corrupt(_))
        ));
    }

    #[test]
    fn oversized_payloads_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::open(dir.path().join("s.redb"), false).expect("open");
        let big = vec![0u8; SESSION_BYTES_MAX + 1];
        assert!(matches!(
            store.insert(SessionId::random(), &big, Timestamp(5)),
            Err(SessionError::TooLarge)
        ));
    }

    /// Tables beside the log that count the batches written to them and
    /// fail every write once `failing` is set.
    #[derive(Default)]
    struct Tables {
        inner: ledger::MemoryKv,
        batches: AtomicU64,
        failing: std::sync::atomic::AtomicBool,
    }

    impl KvStore for Tables {
        fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            self.inner.get(table, key)
        }
        fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, KvError> {
            self.inner.scan(table, prefix)
        }
        fn write(&self, batch: &KvBatch) -> Result<(), KvError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(KvError::Storage("the database is gone".into()));
            }
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.inner.write(batch)
        }
    }

    impl Tables {
        fn session_rows(&self) -> Vec<Vec<u8>> {
            self.inner
                .scan(SESSIONS_TABLE, &[])
                .expect("scan")
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        }
    }

    fn beside(path: &Path, tables: &Arc<Tables>, now: Timestamp) -> SessionStore {
        SessionStore::open_beside_log(
            path,
            SessionLimits::default(),
            Arc::default(),
            Some(registry_seal(path.parent().expect("dir"))),
            tables.clone(),
            now,
        )
        .expect("open beside the log")
    }

    /// A replacement issuer on another host (its session file gone) finds
    /// the durable sessions, sealed, in the tables: a live one, and a used
    /// one still refused as used (a replayed WRequest3). Payments' soft ack
    /// sessions are not written there.
    #[test]
    fn durable_sessions_outlive_the_file_in_the_tables_beside_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let tables = Arc::new(Tables::default());
        let (live, used, soft) = (
            SessionId::random(),
            SessionId::random(),
            SessionId::random(),
        );
        {
            let store = beside(&path, &tables, Timestamp(1));
            store
                .insert(live, &session(), Timestamp(100))
                .expect("insert");
            store
                .insert(used, &session(), Timestamp(100))
                .expect("insert");
            store
                .take::<PurchaseSession>(used, Timestamp(2))
                .expect("take");
            upsert_soft(&store, soft);
            store.len().expect("soft writes flushed to the file");
        }
        let mut rows = tables.session_rows();
        rows.sort();
        let mut expected = vec![live.0.to_vec(), used.0.to_vec()];
        expected.sort();
        assert_eq!(
            rows, expected,
            "only the durable sessions are in the tables"
        );
        for (_, _, value) in tables.inner.rows() {
            assert!(!contains(&value, &[7; 32]), "a key share in the clear");
        }
        std::fs::remove_file(&path).expect("the file goes");
        let store = beside(&path, &tables, Timestamp(3));
        assert_eq!(
            store
                .get::<PurchaseSession>(live, Timestamp(3))
                .expect("live"),
            session()
        );
        assert!(matches!(
            store.get::<PurchaseSession>(used, Timestamp(3)),
            Err(SessionError::AlreadyUsed)
        ));
        assert!(matches!(
            store.get::<PurchaseSession>(soft, Timestamp(3)),
            Err(SessionError::Unknown)
        ));
    }

    /// The tables win over a file left from before a fail-over: what the
    /// replacement used up or removed is so in the file too, what it
    /// opened is there, and the file's soft sessions stay.
    #[test]
    fn at_open_the_tables_win_over_a_stale_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let stale = dir.path().join("stale.redb");
        let tables = Arc::new(Tables::default());
        let (taken, removed, opened, soft) = (
            SessionId::random(),
            SessionId::random(),
            SessionId::random(),
            SessionId::random(),
        );
        {
            let store = beside(&path, &tables, Timestamp(1));
            store
                .insert(taken, &session(), Timestamp(100))
                .expect("insert");
            store
                .insert(removed, &session(), Timestamp(100))
                .expect("insert");
            upsert_soft(&store, soft);
        }
        // The old host keeps a copy; the replacement carries on without it.
        std::fs::copy(&path, &stale).expect("copy");
        {
            std::fs::remove_file(&path).expect("fresh directory");
            let store = beside(&path, &tables, Timestamp(2));
            store
                .take::<PurchaseSession>(taken, Timestamp(2))
                .expect("take");
            store.remove(removed).expect("remove");
            store
                .insert(opened, &session(), Timestamp(100))
                .expect("insert");
        }
        let store = beside(&stale, &tables, Timestamp(3));
        assert!(matches!(
            store.get::<PurchaseSession>(taken, Timestamp(3)),
            Err(SessionError::AlreadyUsed)
        ));
        assert!(matches!(
            store.get::<PurchaseSession>(removed, Timestamp(3)),
            Err(SessionError::Unknown)
        ));
        store
            .get::<PurchaseSession>(opened, Timestamp(3))
            .expect("opened by the replacement");
        store
            .get::<PurchaseSession>(soft, Timestamp(3))
            .expect("the file's own soft session");
        // Expired sessions are neither taken nor left in the tables.
        drop(store);
        std::fs::remove_file(&stale).expect("fresh directory");
        let store = beside(&stale, &tables, Timestamp(100));
        assert!(matches!(
            store.get::<PurchaseSession>(opened, Timestamp(99)),
            Err(SessionError::Unknown)
        ));
        assert!(tables.session_rows().is_empty());
    }

    /// A purge deletes the expired durable sessions from the tables, and a
    /// purge of soft sessions alone writes nothing there.
    #[test]
    fn a_purge_deletes_the_rows_and_soft_sessions_cost_the_tables_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let tables = Arc::new(Tables::default());
        let store = beside(&path, &tables, Timestamp(1));
        let (early, late) = (SessionId::random(), SessionId::random());
        store
            .insert(early, &session(), Timestamp(50))
            .expect("insert");
        store
            .insert(late, &session(), Timestamp(100))
            .expect("insert");
        for _ in 0..10 {
            upsert_soft(&store, SessionId::random());
        }
        let before = tables.batches.load(Ordering::SeqCst);
        store.len().expect("soft writes flushed");
        assert_eq!(tables.batches.load(Ordering::SeqCst), before);
        assert_eq!(store.purge_expired(Timestamp(50)).expect("purge"), 1);
        assert_eq!(tables.session_rows(), vec![late.0.to_vec()]);
        let before = tables.batches.load(Ordering::SeqCst);
        // The ten soft sessions and `late` expire at 100: one batch, for `late`.
        assert_eq!(store.purge_expired(Timestamp(100)).expect("purge"), 11);
        assert!(tables.session_rows().is_empty());
        assert_eq!(tables.batches.load(Ordering::SeqCst), before + 1);
        assert_eq!(store.purge_expired(Timestamp(200)).expect("purge"), 0);
        assert_eq!(tables.batches.load(Ordering::SeqCst), before + 1);
    }

    /// A durable write the tables refuse is not acknowledged and not in
    /// the file: the group fails with a typed error.
    #[test]
    fn a_failed_table_write_fails_the_group_and_commits_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let tables = Arc::new(Tables::default());
        let store = beside(&path, &tables, Timestamp(1));
        let kept = SessionId::random();
        store
            .insert(kept, &session(), Timestamp(100))
            .expect("insert");
        tables.failing.store(true, Ordering::SeqCst);
        let lost = SessionId::random();
        assert!(matches!(
            store.insert(lost, &session(), Timestamp(100)),
            Err(SessionError::SideTables(KvError::Storage(_)))
        ));
        assert!(matches!(
            store.take::<PurchaseSession>(kept, Timestamp(2)),
            Err(SessionError::SideTables(_))
        ));
        let (done, outcome) = channel();
        store.upsert_then(
            lost,
            &session(),
            Timestamp(100),
            Persist::Durable,
            move |r| {
                let _ = done.send(r);
            },
        );
        assert!(matches!(
            outcome.recv().expect("answered"),
            Err(SessionError::SideTables(_))
        ));
        assert!(matches!(
            store.get::<PurchaseSession>(lost, Timestamp(2)),
            Err(SessionError::Unknown)
        ));
        store
            .get::<PurchaseSession>(kept, Timestamp(2))
            .expect("the failed take used nothing up");
        tables.failing.store(false, Ordering::SeqCst);
        drop(store);
        let store = beside(&path, &tables, Timestamp(2));
        assert!(matches!(
            store.get::<PurchaseSession>(lost, Timestamp(2)),
            Err(SessionError::Unknown)
        ));
        assert_eq!(tables.session_rows(), vec![kept.0.to_vec()]);
    }
}
