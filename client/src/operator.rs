//! Operator credentials: who may use a server's operator routes.
//!
//! Every `/admin/...` request is an [`OperatorRequest`]: the route's own
//! message, wrapped with the route it is meant for, the signer's clock
//! reading and a fresh nonce, and signed (RSA-PSS, label
//! [`OPERATOR_REQUEST_LABEL`]) by an operator key that the issuer's
//! configuration lists ([`OperatorAuth`]). The server checks, in this order:
//! the body is a signed request at all (401), its key is listed (403), it
//! names this server (403: an issuer binds its credentials to its key's
//! fingerprint, [`OperatorAuth::serve_for`], so a request signed for another
//! server listing the same key is refused), it was
//! signed for this route (403), it is recent ([`OPERATOR_REQUEST_WINDOW_SECS`]
//! either way, 401), the signature holds (401), and its nonce was not seen
//! before (401). Nonces are remembered for the window, in a file that is
//! appended and synced before the action runs ([`NonceStore::File`]), so a
//! replay is refused after a restart too; an issuer whose tables live in
//! a database keeps them there ([`NonceStore::Tables`]), so a replacement
//! issuer on another machine refuses the replay as well. The caller's
//! address authorizes nothing.
//!
//! `GET /metrics` (outstanding e-money, money in and out) answers only a
//! `Authorization: Bearer` [`ScrapeToken`] the server is configured with.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::crypto::{CryptoError, NONCE_BYTES, Nonce, PublicKey, SecretKey, Signature, SuiteId};
use protocol::wire::{BoundedBytes, BoundedText, WireMessage};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::constants::{
    OPERATOR_BODY_BYTES_MAX, OPERATOR_NONCE_LINE_BYTES_MAX, OPERATOR_NONCES_MAX,
    OPERATOR_REQUEST_WINDOW_SECS, OPERATOR_ROUTE_BYTES_MAX, OPERATOR_SIGNATURE_BYTES_MAX,
    SCRAPE_TOKEN_BYTES_MIN,
};

/// Domain separation of an operator request's signature.
pub const OPERATOR_REQUEST_LABEL: &str = "vc/operator/request/1";

/// SHA-256 of an operator key's SPKI DER: how requests name their key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyFingerprint(pub [u8; 32]);

impl KeyFingerprint {
    pub fn of(key: &PublicKey) -> KeyFingerprint {
        KeyFingerprint(key.fingerprint())
    }

    /// The first 8 bytes in hex: enough to tell keys apart in a log line.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

/// A signed operator request: the body is the route's message, encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRequest {
    /// The signing key, listed in the server's configuration.
    pub key: KeyFingerprint,
    /// The server this request is for (an issuer: its public key's
    /// fingerprint, as `GET /v1/issuer` gives it; `None` for a server with
    /// no such identity): a request signed for one server is refused by
    /// every other, even one that lists the same operator key.
    pub audience: Option<KeyFingerprint>,
    /// The path this request is for (`/admin/bank/account`): a request
    /// signed for one route is refused on every other.
    pub route: BoundedText<OPERATOR_ROUTE_BYTES_MAX>,
    /// The signer's clock, microseconds since the Unix epoch.
    pub issued_at_micros: u64,
    /// Fresh per request: what the server remembers to refuse a replay.
    pub nonce: Nonce,
    /// The route's message, `protocol::wire::encode`d.
    pub body: BoundedBytes<OPERATOR_BODY_BYTES_MAX>,
    /// RSA-PSS over [`OperatorRequest::signed_bytes`].
    pub signature: BoundedBytes<OPERATOR_SIGNATURE_BYTES_MAX>,
}

impl WireMessage for OperatorRequest {
    const NAME: &'static str = "OperatorRequest";
    const BYTES_MAX: usize = OPERATOR_BODY_BYTES_MAX + OPERATOR_SIGNATURE_BYTES_MAX + 256;
}

impl OperatorRequest {
    /// What the signature covers: every field but the signature, each
    /// length-prefixed.
    pub fn signed_bytes(
        key: &KeyFingerprint,
        audience: Option<&KeyFingerprint>,
        route: &str,
        issued_at_micros: u64,
        nonce: &Nonce,
        body: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 33 + route.len() + body.len() + 64);
        out.extend_from_slice(&key.0);
        match audience {
            Some(audience) => {
                out.push(1);
                out.extend_from_slice(&audience.0);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(route.len() as u64).to_be_bytes());
        out.extend_from_slice(route.as_bytes());
        out.extend_from_slice(&issued_at_micros.to_be_bytes());
        out.extend_from_slice(nonce.as_bytes());
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        out.extend_from_slice(body);
        out
    }
}

/// Microseconds since the Unix epoch, by this machine's clock.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An operator's key pair (the protocol's signing primitive: Ed25519 under
/// `dhaes`, RSA-PSS under `aes256` and `tdes`), kept in a PKCS#8 file of
/// mode 0600.
#[derive(Debug, Clone)]
pub struct OperatorKey {
    secret: SecretKey,
    fingerprint: KeyFingerprint,
}

impl OperatorKey {
    /// A fresh key of the default suite's kind (Ed25519).
    pub fn generate() -> Result<OperatorKey, CryptoError> {
        OperatorKey::generate_for(SuiteId::default())
    }

    /// A fresh key of the kind `suite` signs with (RSA-2048 for the RSA suites).
    pub fn generate_for(suite: SuiteId) -> Result<OperatorKey, CryptoError> {
        Ok(OperatorKey::from_secret(SecretKey::generate_for(
            suite,
            protocol::crypto::RSA_BITS_DEFAULT,
        )?))
    }

    pub fn from_secret(secret: SecretKey) -> OperatorKey {
        let fingerprint = KeyFingerprint::of(&secret.public());
        OperatorKey {
            secret,
            fingerprint,
        }
    }

    /// Reads a key file, refusing one that group or others may read.
    pub fn read(path: &Path) -> Result<OperatorKey, CryptoError> {
        SecretKey::read_pkcs8(path).map(OperatorKey::from_secret)
    }

    /// Writes the key to a new file of mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), CryptoError> {
        self.secret.write_pkcs8(path)
    }

    pub fn public(&self) -> PublicKey {
        self.secret.public()
    }

    pub fn fingerprint(&self) -> KeyFingerprint {
        self.fingerprint
    }

    /// Signs `body` for `route` of the server `audience` at
    /// `issued_at_micros` with a fresh nonce.
    pub fn sign_at(
        &self,
        audience: Option<KeyFingerprint>,
        route: &str,
        body: Vec<u8>,
        issued_at_micros: u64,
    ) -> Result<OperatorRequest, OperatorRefusal> {
        let route_text =
            BoundedText::new(route).map_err(|_| OperatorRefusal::NotSigned("route too long"))?;
        let nonce = Nonce::random();
        let signed = OperatorRequest::signed_bytes(
            &self.fingerprint,
            audience.as_ref(),
            route,
            issued_at_micros,
            &nonce,
            &body,
        );
        let signature = self.secret.sign(OPERATOR_REQUEST_LABEL, &signed);
        Ok(OperatorRequest {
            key: self.fingerprint,
            audience,
            route: route_text,
            issued_at_micros,
            nonce,
            body: BoundedBytes::new(body)
                .map_err(|_| OperatorRefusal::NotSigned("body too long"))?,
            signature: BoundedBytes::new(signature.as_bytes().to_vec())
                .map_err(|_| OperatorRefusal::NotSigned("signature too long"))?,
        })
    }

    /// Signs `body` for `route` of the server `audience` now.
    pub fn sign(
        &self,
        audience: Option<KeyFingerprint>,
        route: &str,
        body: Vec<u8>,
    ) -> Result<OperatorRequest, OperatorRefusal> {
        self.sign_at(audience, route, body, now_micros())
    }
}

/// Why an operator request was refused. `NotSigned`, `Stale`, `BadSignature`
/// and `Replayed` are answered 401, `UnknownKey`, `WrongServer` and `WrongRoute` 403,
/// `Store` 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorRefusal {
    #[error("not a signed operator request ({0})")]
    NotSigned(&'static str),
    #[error("operator key {0} is not listed in this server's configuration")]
    UnknownKey(String),
    #[error("this request was signed for {signed_for}, not for {route}")]
    WrongRoute { signed_for: String, route: String },
    #[error("this request was signed for another server")]
    WrongServer,
    #[error("the request was signed {age_secs} s from now; at most {max_secs} s are allowed")]
    Stale { age_secs: i64, max_secs: u64 },
    #[error("the operator signature does not verify")]
    BadSignature,
    #[error("this operator request was already used")]
    Replayed,
    #[error("operator requests are refused: {0}")]
    NoRoom(&'static str),
    #[error("remembering the request's nonce: {0}")]
    Store(#[source] std::io::Error),
    #[error("remembering the request's nonce: {0}")]
    Tables(#[source] ledger::KvError),
}

/// Where the nonces of accepted requests are remembered.
#[derive(Clone)]
pub enum NonceStore {
    /// Only in memory: a restart forgets them (tests, in-process demos).
    Memory,
    /// Appended and synced to this file before the action runs; read back
    /// at start, so replays are refused across restarts.
    File(PathBuf),
    /// Written to table [`NONCE_TABLE`] of the issuer's tables before the
    /// action runs (insert-if-absent, so two processes sharing the tables
    /// accept a nonce once between them); read back at start, so a
    /// replacement issuer on the same database refuses a replay.
    Tables(Arc<dyn ledger::KvStore>),
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NonceStore::Memory => f.write_str("Memory"),
            NonceStore::File(path) => f.debug_tuple("File").field(path).finish(),
            NonceStore::Tables(_) => f.write_str("Tables"),
        }
    }
}

/// The table of the issuer's tables that [`NonceStore::Tables`] keeps:
/// key = the signer's key fingerprint (32 bytes) then the nonce, value =
/// the request's issue time (microseconds, big-endian).
pub const NONCE_TABLE: &str = "operator-nonces";

/// One remembered request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Seen {
    key: KeyFingerprint,
    nonce: [u8; NONCE_BYTES],
}

#[derive(Debug, Default)]
struct Nonces {
    seen: HashSet<Seen>,
    /// In acceptance order, with the time each was issued: what expires.
    order: VecDeque<(u64, Seen)>,
    /// Lines in the [`NonceStore::File`] (live and expired): the file is
    /// rewritten with the live ones before it holds more than the bound.
    lines_in_file: usize,
}

impl Nonces {
    /// Forgets the nonces issued before `oldest_micros`; returns them.
    fn forget_before(&mut self, oldest_micros: u64) -> Vec<Seen> {
        let mut forgotten = Vec::new();
        while let Some(&(at, seen)) = self.order.front() {
            if at >= oldest_micros {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&seen);
            forgotten.push(seen);
        }
        forgotten
    }
}

impl Seen {
    /// Its key in [`NONCE_TABLE`].
    fn table_key(&self) -> Vec<u8> {
        [&self.key.0[..], &self.nonce[..]].concat()
    }

    fn from_table_key(key: &[u8]) -> Option<Seen> {
        if key.len() != 32 + NONCE_BYTES {
            return None;
        }
        let (fingerprint, nonce) = key.split_at(32);
        Some(Seen {
            key: KeyFingerprint(fingerprint.try_into().ok()?),
            nonce: nonce.try_into().ok()?,
        })
    }
}

/// A request that passed every check: its body, and who signed it.
#[derive(Debug)]
pub struct Authorized {
    pub key: KeyFingerprint,
    /// The name the configuration gives the key.
    pub key_name: String,
    pub body: Vec<u8>,
}

/// The operator keys a server accepts, and the nonces it has seen.
pub struct OperatorAuth {
    keys: HashMap<KeyFingerprint, (String, PublicKey)>,
    store: NonceStore,
    nonces: Mutex<Nonces>,
    /// Nonces remembered at once, and lines a nonce file holds at most
    /// ([`OPERATOR_NONCES_MAX`]; smaller in tests).
    nonces_max: usize,
    /// The server these credentials guard ([`OperatorAuth::serve_for`]):
    /// requests must name it. Unset: requests must name no server.
    audience: std::sync::OnceLock<KeyFingerprint>,
}

impl std::fmt::Debug for OperatorAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorAuth")
            .field("n_keys", &self.keys.len())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

const WINDOW_MICROS: u64 = OPERATOR_REQUEST_WINDOW_SECS * 1_000_000;

impl OperatorAuth {
    /// No operator keys: every operator request is refused.
    pub fn none() -> OperatorAuth {
        OperatorAuth {
            keys: HashMap::new(),
            store: NonceStore::Memory,
            nonces: Mutex::new(Nonces::default()),
            nonces_max: OPERATOR_NONCES_MAX,
            audience: std::sync::OnceLock::new(),
        }
    }

    /// Accepts requests signed by `keys` (name, public key); reads back the
    /// nonces a [`NonceStore::File`] or [`NonceStore::Tables`] remembers,
    /// and drops the expired ones from it.
    pub fn new(
        keys: Vec<(String, PublicKey)>,
        store: NonceStore,
    ) -> Result<OperatorAuth, std::io::Error> {
        OperatorAuth::open_bounded(keys, store, OPERATOR_NONCES_MAX)
    }

    /// [`OperatorAuth::new`] remembering at most `nonces_max` nonces (and
    /// keeping a nonce file to that many lines).
    fn open_bounded(
        keys: Vec<(String, PublicKey)>,
        store: NonceStore,
        nonces_max: usize,
    ) -> Result<OperatorAuth, std::io::Error> {
        let keys = keys
            .into_iter()
            .map(|(name, key)| (KeyFingerprint::of(&key), (name, key)))
            .collect();
        let oldest_micros = now_micros().saturating_sub(WINDOW_MICROS);
        let nonces = match &store {
            NonceStore::Memory => Nonces::default(),
            NonceStore::File(path) => {
                let mut nonces = load_nonces(path, oldest_micros, nonces_max)?;
                rewrite_nonces(path, &nonces)?;
                nonces.lines_in_file = nonces.order.len();
                nonces
            }
            NonceStore::Tables(tables) => {
                load_table_nonces(tables.as_ref(), oldest_micros).map_err(std::io::Error::other)?
            }
        };
        Ok(OperatorAuth {
            keys,
            store,
            nonces: Mutex::new(nonces),
            nonces_max,
            audience: std::sync::OnceLock::new(),
        })
    }

    /// Binds these credentials to the server `audience` (an issuer's key
    /// fingerprint): from now on a request is accepted only if it names
    /// it. Once: binding them to a second server is refused (`false`).
    pub fn serve_for(&self, audience: KeyFingerprint) -> bool {
        *self.audience.get_or_init(|| audience) == audience
    }

    /// Whether any key is listed.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks `bytes` as an operator request for `route` at `now_micros`
    /// and, if it passes, remembers its nonce (durably, for a file store)
    /// before returning its body. Blocking: call it off the event loop.
    pub fn authorize(
        &self,
        bytes: &[u8],
        route: &str,
        now_micros: u64,
    ) -> Result<Authorized, OperatorRefusal> {
        let request: OperatorRequest = protocol::wire::decode(bytes)
            .map_err(|_| OperatorRefusal::NotSigned("the body is not an OperatorRequest"))?;
        let Some((name, key)) = self.keys.get(&request.key) else {
            return Err(OperatorRefusal::UnknownKey(request.key.short()));
        };
        if request.audience.as_ref() != self.audience.get() {
            return Err(OperatorRefusal::WrongServer);
        }
        if request.route.as_str() != route {
            return Err(OperatorRefusal::WrongRoute {
                signed_for: request.route.as_str().to_owned(),
                route: route.to_owned(),
            });
        }
        let age_micros = i128::from(now_micros) - i128::from(request.issued_at_micros);
        if age_micros.unsigned_abs() > u128::from(WINDOW_MICROS) {
            return Err(OperatorRefusal::Stale {
                age_secs: i64::try_from(age_micros / 1_000_000).unwrap_or(i64::MAX),
                max_secs: OPERATOR_REQUEST_WINDOW_SECS,
            });
        }
        let signed = OperatorRequest::signed_bytes(
            &request.key,
            request.audience.as_ref(),
            route,
            request.issued_at_micros,
            &request.nonce,
            request.body.as_bytes(),
        );
        let signature = Signature::from_bytes(request.signature.as_bytes().to_vec())
            .map_err(|_| OperatorRefusal::BadSignature)?;
        key.verify(OPERATOR_REQUEST_LABEL, &signed, &signature)
            .map_err(|_| OperatorRefusal::BadSignature)?;
        self.remember(
            request.key,
            &request.nonce,
            request.issued_at_micros,
            now_micros,
        )?;
        Ok(Authorized {
            key: request.key,
            key_name: name.clone(),
            body: request.body.into_vec(),
        })
    }

    fn remember(
        &self,
        key: KeyFingerprint,
        nonce: &Nonce,
        issued_at_micros: u64,
        now_micros: u64,
    ) -> Result<(), OperatorRefusal> {
        // A replay store a panic left halfway is not trusted (fail-stop).
        let mut nonces = ledger::sync::lock(&self.nonces);
        let forgotten = nonces.forget_before(now_micros.saturating_sub(WINDOW_MICROS));
        let seen = Seen {
            key,
            nonce: *nonce.as_bytes(),
        };
        if nonces.seen.contains(&seen) {
            return Err(OperatorRefusal::Replayed);
        }
        if nonces.seen.len() >= self.nonces_max {
            return Err(OperatorRefusal::NoRoom(
                "too many operator requests in the replay window",
            ));
        }
        match &self.store {
            NonceStore::Memory => {}
            NonceStore::File(path) => {
                // Appending only, the file would outgrow what a restart
                // reads back, and the newest nonces (the live ones, at its
                // end) would be forgotten: rewritten with the live ones
                // first, it holds at most `nonces_max` lines.
                if nonces.lines_in_file >= self.nonces_max {
                    rewrite_nonces(path, &nonces).map_err(OperatorRefusal::Store)?;
                    nonces.lines_in_file = nonces.order.len();
                }
                append_nonce(path, issued_at_micros, &seen).map_err(OperatorRefusal::Store)?;
                nonces.lines_in_file += 1;
            }
            NonceStore::Tables(tables) => {
                let mut batch = ledger::KvBatch::new();
                // Another process on the same tables (a predecessor or a
                // successor) may have accepted it: the database decides.
                batch.require_absent(NONCE_TABLE, &seen.table_key());
                batch.put(
                    NONCE_TABLE,
                    &seen.table_key(),
                    issued_at_micros.to_be_bytes().to_vec(),
                );
                for old in &forgotten {
                    batch.delete(NONCE_TABLE, &old.table_key());
                }
                match tables.write(&batch) {
                    Ok(()) => {}
                    Err(ledger::KvError::AlreadyPresent { .. }) => {
                        return Err(OperatorRefusal::Replayed);
                    }
                    Err(e) => return Err(OperatorRefusal::Tables(e)),
                }
            }
        }
        nonces.seen.insert(seen);
        // Kept in acceptance order; an entry issued earlier than one before
        // it expires a little late, never early.
        nonces.order.push_back((issued_at_micros, seen));
        Ok(())
    }
}

fn nonce_line(issued_at_micros: u64, seen: &Seen) -> String {
    format!(
        "{} {} {}\n",
        issued_at_micros,
        hex::encode(seen.key.0),
        hex::encode(seen.nonce)
    )
}

fn parse_nonce_line(line: &str) -> Option<(u64, Seen)> {
    let mut parts = line.split_ascii_whitespace();
    let at = parts.next()?.parse().ok()?;
    let key: [u8; 32] = hex::decode(parts.next()?).ok()?.try_into().ok()?;
    let nonce: [u8; NONCE_BYTES] = hex::decode(parts.next()?).ok()?.try_into().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((
        at,
        Seen {
            key: KeyFingerprint(key),
            nonce,
        },
    ))
}

fn load_nonces(
    path: &Path,
    oldest_micros: u64,
    nonces_max: usize,
) -> Result<Nonces, std::io::Error> {
    let mut nonces = Nonces::default();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(nonces),
        Err(e) => return Err(e),
    };
    // Never more than this (see `remember`): a longer file was not kept by
    // this server, and reading only its start would forget the newest
    // nonces, so a request accepted just before the restart could be
    // replayed after it. Refused, not read in part.
    let bytes_max = (OPERATOR_NONCE_LINE_BYTES_MAX * nonces_max) as u64;
    if file.metadata()?.len() > bytes_max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is longer than {bytes_max} bytes, more than the nonces one replay window \
                 holds: not read in part (after {OPERATOR_REQUEST_WINDOW_SECS} s without operator \
                 requests it may be removed)",
                path.display()
            ),
        ));
    }
    let reader = BufReader::new(file.take(bytes_max));
    for line in reader.lines() {
        let line = line?;
        // A torn last line (a crash mid-append) was never acknowledged:
        // its request ran no action.
        let Some((at, seen)) = parse_nonce_line(&line) else {
            continue;
        };
        if at >= oldest_micros && nonces.seen.insert(seen) {
            nonces.order.push_back((at, seen));
        }
    }
    // More live nonces than a window holds were not written by this
    // server either; keeping some would forget the others.
    if nonces.order.len() > nonces_max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} holds more than {nonces_max} live nonces",
                path.display()
            ),
        ));
    }
    Ok(nonces)
}

/// The nonces [`NONCE_TABLE`] holds that were issued at `oldest_micros`
/// or later; the older ones (and rows that are no nonce) are deleted.
fn load_table_nonces(
    tables: &dyn ledger::KvStore,
    oldest_micros: u64,
) -> Result<Nonces, ledger::KvError> {
    let mut rows: Vec<(u64, Seen)> = Vec::new();
    let mut expired = ledger::KvBatch::new();
    for (key, value) in tables.scan(NONCE_TABLE, &[])? {
        let at = <[u8; 8]>::try_from(value.as_slice()).map(u64::from_be_bytes);
        match (Seen::from_table_key(&key), at) {
            (Some(seen), Ok(at)) if at >= oldest_micros => rows.push((at, seen)),
            _ => expired.delete(NONCE_TABLE, &key),
        }
    }
    if !expired.writes.is_empty() {
        tables.write(&expired)?;
    }
    rows.sort_by_key(|(at, _)| *at);
    let mut nonces = Nonces::default();
    for (at, seen) in rows {
        if nonces.seen.insert(seen) {
            nonces.order.push_back((at, seen));
        }
    }
    Ok(nonces)
}

fn rewrite_nonces(path: &Path, nonces: &Nonces) -> Result<(), std::io::Error> {
    let text: String = nonces
        .order
        .iter()
        .map(|(at, seen)| nonce_line(*at, seen))
        .collect();
    ledger::private_file::write_private(path, text.as_bytes())
}

fn append_nonce(path: &Path, issued_at_micros: u64, seen: &Seen) -> Result<(), std::io::Error> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(nonce_line(issued_at_micros, seen).as_bytes())?;
    file.sync_data()
}

/// The bearer token `GET /metrics` requires. Never shown by `Debug`.
#[derive(Clone)]
pub struct ScrapeToken(String);

impl ScrapeToken {
    /// A token of at least [`SCRAPE_TOKEN_BYTES_MIN`] characters.
    pub fn new(token: impl Into<String>) -> Result<ScrapeToken, String> {
        let token = token.into();
        if token.len() < SCRAPE_TOKEN_BYTES_MIN || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "a scrape token is at least {SCRAPE_TOKEN_BYTES_MIN} printable ASCII characters"
            ));
        }
        Ok(ScrapeToken(token))
    }

    /// 32 random bytes in hex.
    pub fn generate() -> ScrapeToken {
        let mut bytes = [0u8; 32];
        bytes[..NONCE_BYTES].copy_from_slice(Nonce::random().as_bytes());
        bytes[NONCE_BYTES..].copy_from_slice(&Nonce::random().as_bytes()[..32 - NONCE_BYTES]);
        ScrapeToken(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header value carries this token, compared
    /// in constant time.
    pub fn matches_header(&self, header: &str) -> bool {
        let Some(given) = header.strip_prefix("Bearer ") else {
            return false;
        };
        given.trim().as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken(<redacted>)")
    }
}

/// Monotonic issue times for one process's operator requests, so two
/// requests signed in the same microsecond still differ in time too.
#[derive(Debug, Default)]
pub(crate) struct IssueClock {
    last: AtomicU64,
}

impl IssueClock {
    pub(crate) fn next(&self) -> u64 {
        let now = now_micros();
        let mut last = self.last.load(Ordering::Acquire);
        loop {
            let next = now.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange(last, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use std::sync::OnceLock;

    fn key(n: usize) -> &'static OperatorKey {
        static KEYS: OnceLock<Vec<OperatorKey>> = OnceLock::new();
        &KEYS.get_or_init(|| {
            (0..2)
                .map(|_| OperatorKey::generate().expect("keygen"))
                .collect()
        })[n]
    }

    fn auth(store: NonceStore) -> OperatorAuth {
        OperatorAuth::new(vec![("first".into(), key(0).public())], store).expect("auth")
    }

    fn signed(k: &OperatorKey, route: &str, at: u64) -> Vec<u8> {
        protocol::wire::encode(&k.sign_at(None, route, vec![1, 2, 3], at).expect("signed"))
    }

    #[test]
    fn a_request_signed_for_another_server_is_refused_by_one_with_the_same_key() {
        let now = now_micros();
        let (this, other) = (KeyFingerprint([1; 32]), KeyFingerprint([2; 32]));
        let bound = auth(NonceStore::Memory);
        assert!(bound.serve_for(this));
        assert!(!bound.serve_for(other), "bound to one server for good");
        let for_other = key(0)
            .sign_at(Some(other), "/admin/x", vec![1], now)
            .expect("signed");
        let for_none = key(0)
            .sign_at(None, "/admin/x", vec![1], now)
            .expect("signed");
        for request in [&for_other, &for_none] {
            assert!(matches!(
                bound.authorize(&protocol::wire::encode(request), "/admin/x", now),
                Err(OperatorRefusal::WrongServer)
            ));
        }
        // Naming this server instead breaks the signature.
        let mut retargeted = for_other.clone();
        retargeted.audience = Some(this);
        assert!(matches!(
            bound.authorize(&protocol::wire::encode(&retargeted), "/admin/x", now),
            Err(OperatorRefusal::BadSignature)
        ));
        let for_this = key(0)
            .sign_at(Some(this), "/admin/x", vec![1], now)
            .expect("signed");
        assert!(
            bound
                .authorize(&protocol::wire::encode(&for_this), "/admin/x", now)
                .is_ok()
        );
        // A server with no identity takes no request naming one.
        let unbound = auth(NonceStore::Memory);
        assert!(matches!(
            unbound.authorize(&protocol::wire::encode(&for_this), "/admin/x", now),
            Err(OperatorRefusal::WrongServer)
        ));
    }

    #[test]
    fn a_listed_key_signing_for_this_route_now_is_accepted_once() {
        let auth = auth(NonceStore::Memory);
        let now = now_micros();
        let bytes = signed(key(0), "/admin/x", now);
        let ok = auth.authorize(&bytes, "/admin/x", now).expect("accepted");
        assert_eq!(ok.body, vec![1, 2, 3]);
        assert_eq!(ok.key_name, "first");
        assert!(matches!(
            auth.authorize(&bytes, "/admin/x", now),
            Err(OperatorRefusal::Replayed)
        ));
    }

    #[test]
    fn unsigned_unlisted_other_route_stale_future_and_forged_are_refused() {
        let auth = auth(NonceStore::Memory);
        let now = now_micros();
        assert!(matches!(
            auth.authorize(&[1, 2, 3], "/admin/x", now),
            Err(OperatorRefusal::NotSigned(_))
        ));
        assert!(matches!(
            auth.authorize(&signed(key(1), "/admin/x", now), "/admin/x", now),
            Err(OperatorRefusal::UnknownKey(_))
        ));
        assert!(matches!(
            auth.authorize(&signed(key(0), "/admin/y", now), "/admin/x", now),
            Err(OperatorRefusal::WrongRoute { .. })
        ));
        let window = OPERATOR_REQUEST_WINDOW_SECS * 1_000_000;
        for at in [now - window - 1_000_000, now + window + 1_000_000] {
            assert!(matches!(
                auth.authorize(&signed(key(0), "/admin/x", at), "/admin/x", now),
                Err(OperatorRefusal::Stale { .. })
            ));
        }
        let mut forged = key(0)
            .sign_at(None, "/admin/x", vec![1], now)
            .expect("signed");
        forged.body = BoundedBytes::new(vec![2]).expect("bytes");
        assert!(matches!(
            auth.authorize(&protocol::wire::encode(&forged), "/admin/x", now),
            Err(OperatorRefusal::BadSignature)
        ));
    }

    /// A server that runs long appends a nonce line per request; the file
    /// is rewritten with the live nonces whenever it reaches its bound, so
    /// a restart reads all of it and still refuses the last request
    /// accepted. A file over the bound is refused at start, not read in
    /// part.
    #[test]
    fn a_long_run_keeps_the_nonce_file_bounded_and_its_newest_nonce_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("operator-nonces");
        let nonces_max = 8;
        let open = |path: &Path| {
            OperatorAuth::open_bounded(
                vec![("first".into(), key(0).public())],
                NonceStore::File(path.to_path_buf()),
                nonces_max,
            )
        };
        let server = open(&path).expect("auth");
        let start = now_micros();
        let mut last = (Vec::new(), start);
        // Four requests per window: at most five live at once.
        for i in 0..40 {
            let at = start + i * (WINDOW_MICROS / 4);
            let bytes = signed(key(0), "/admin/x", at);
            server.authorize(&bytes, "/admin/x", at).expect("accepted");
            let len = std::fs::metadata(&path).expect("file").len();
            assert!(
                len <= (OPERATOR_NONCE_LINE_BYTES_MAX * nonces_max) as u64,
                "{len} bytes after {i} requests"
            );
            last = (bytes, at);
        }
        drop(server);
        let restarted = open(&path).expect("auth");
        assert!(matches!(
            restarted.authorize(&last.0, "/admin/x", last.1),
            Err(OperatorRefusal::Replayed)
        ));
        let over = dir.path().join("over-the-bound");
        std::fs::write(
            &over,
            vec![b'\n'; OPERATOR_NONCE_LINE_BYTES_MAX * nonces_max + 1],
        )
        .expect("write");
        assert!(open(&over).is_err());
    }

    #[test]
    fn a_replay_is_refused_after_a_restart_with_a_file_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("operator-nonces");
        let now = now_micros();
        let bytes = signed(key(0), "/admin/x", now);
        auth(NonceStore::File(path.clone()))
            .authorize(&bytes, "/admin/x", now)
            .expect("accepted");
        let restarted = auth(NonceStore::File(path.clone()));
        assert!(matches!(
            restarted.authorize(&bytes, "/admin/x", now),
            Err(OperatorRefusal::Replayed)
        ));
        // A torn line at the end is ignored, not fatal.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"12 ab"))
            .expect("append");
        let again = auth(NonceStore::File(path));
        assert!(matches!(
            again.authorize(&bytes, "/admin/x", now),
            Err(OperatorRefusal::Replayed)
        ));
    }

    /// A replacement issuer on the same tables (another machine, an empty
    /// directory) refuses a request its predecessor accepted; two issuers
    /// sharing the tables accept a nonce once between them; expired rows
    /// are dropped at start.
    #[test]
    fn a_replay_is_refused_by_a_replacement_sharing_the_tables() {
        let tables: Arc<dyn ledger::KvStore> = Arc::new(ledger::MemoryKv::new());
        let now = now_micros();
        let bytes = signed(key(0), "/admin/x", now);
        let first = auth(NonceStore::Tables(tables.clone()));
        let beside = auth(NonceStore::Tables(tables.clone()));
        first.authorize(&bytes, "/admin/x", now).expect("accepted");
        assert!(matches!(
            beside.authorize(&bytes, "/admin/x", now),
            Err(OperatorRefusal::Replayed)
        ));
        let replacement = auth(NonceStore::Tables(tables.clone()));
        assert!(matches!(
            replacement.authorize(&bytes, "/admin/x", now),
            Err(OperatorRefusal::Replayed)
        ));
        // A fresh request is accepted by the replacement.
        let fresh = signed(key(0), "/admin/x", now);
        replacement
            .authorize(&fresh, "/admin/x", now)
            .expect("a fresh request");
        // A row of an expired request, and a row that is no nonce, go at start.
        let mut old = ledger::KvBatch::new();
        old.put(
            NONCE_TABLE,
            &[7u8; 32 + NONCE_BYTES],
            1u64.to_be_bytes().to_vec(),
        );
        old.put(NONCE_TABLE, b"junk", vec![1, 2]);
        tables.write(&old).expect("write");
        let _restarted = auth(NonceStore::Tables(tables.clone()));
        assert_eq!(tables.scan(NONCE_TABLE, &[]).expect("scan").len(), 2);
    }

    #[test]
    fn the_scrape_token_needs_the_bearer_scheme_and_every_character() {
        let token = ScrapeToken::generate();
        assert!(token.matches_header(&format!("Bearer {}", token.as_str())));
        assert!(!token.matches_header(token.as_str()));
        assert!(!token.matches_header(&format!("Bearer {}x", token.as_str())));
        assert!(!token.matches_header("Bearer "));
        assert!(ScrapeToken::new("short").is_err());
        assert!(!format!("{token:?}").contains(token.as_str()));
    }
}
