//! The decoders of untrusted bytes, each behind one entry point per fuzz
//! target: the cargo-fuzz targets in `fuzz_targets/` call these, and so does
//! the root regression test `tests/it/fuzz_regressions.rs` (which includes this
//! file by path), so a crash found by the fuzzer replays under plain
//! `cargo test` through exactly the same code.
//!
//! Every entry point returns an [`Outcome`] and panics only on a real bug: a
//! decoder panicking, or a value that decoded but does not survive
//! re-encoding (decode(encode(x)) == x). The first input byte chooses the
//! decoder within the family, so one target covers every message type.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ledger::store::{Hash32, Head, RawRecord, Seq};
use ledger::{ChainVerifier, Event, TxId};
use protocol::crypto::{Envelope, MacTag, PublicKey, SecretKey, Signature};
use protocol::wire::WireMessage;
use protocol::wire::common::SignedReject;
use protocol::wire::enrollment::{EnrollmentAnswer, EnrollmentBody, EnrollmentRequest};
use protocol::wire::payment::{
    Invoice, IssuerKeyBody, PaymentIssuance1, PaymentIssuance2, PaymentResult, SendCoins,
    SendCoinsBody, ValidationBody, ValidationRequest,
};
use protocol::wire::purchase::{
    IssuedCoins, PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WRequest1, WRequest1Body,
    WRequest2, WRequest2Body, WRequest3, WRequest3Body,
};
use protocol::wire::refund::{RefundAnswer, RefundBody, RefundRequest};
use protocol::wire::registration::{Certificate, RegisterRequest};
use protocol::wire::status::{CoinStatusAnswer, CoinStatusQuery};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};

/// What one input did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The bytes decoded (and round-tripped where an encoder exists).
    Decoded,
    /// The decoder refused the bytes with a typed error (its text).
    Refused(String),
}

impl Outcome {
    fn of<T, E: std::fmt::Display>(result: Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Decoded,
            Err(e) => Outcome::Refused(e.to_string()),
        }
    }
}

/// An entry point: bytes in, what the decoder made of them out.
pub type EntryPoint = fn(&[u8]) -> Outcome;

/// A stored purse record: (table, key, value); table 0 is meta, 1 coins, 2
/// journal, 3 history.
pub type PurseRecord = (u8, Vec<u8>, Vec<u8>);

/// Every target: its name (the directory of its seeds) and entry point.
pub const TARGETS: &[(&str, EntryPoint)] = &[
    ("wire", wire),
    ("crypto", crypto),
    ("event", event),
    ("purse_file", purse_file),
    ("key_files", key_files),
    ("card_wire", card_wire),
];

/// Splits off the selector byte: which decoder of the family gets the rest.
fn select(data: &[u8], choices: usize) -> Option<(usize, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((usize::from(first) % choices, rest))
}

// ---------------------------------------------------------------- wire

fn wire_one<M: WireMessage + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Outcome {
    wire_then::<M>(bytes, |_| {})
}

/// A real RSA-2048 public key (a committed seed's), standing in for the
/// issuer's when a decoded message's signature is checked.
fn issuer_key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let seed = include_bytes!("../seeds/crypto/spki-1");
        PublicKey::from_spki_der(&seed[1..]).expect("the committed spki seed is a key")
    })
}

const NOW: ledger::Timestamp = ledger::Timestamp(1_900_000_000);

/// Decodes, round-trips, then hands what decoded to `next`: what its
/// receiver does first with it (checking its signature), which must refuse
/// hostile contents with an error too.
fn wire_then<M: WireMessage + PartialEq + std::fmt::Debug>(bytes: &[u8], next: fn(&M)) -> Outcome {
    match protocol::wire::decode::<M>(bytes) {
        Err(e) => Outcome::Refused(e.to_string()),
        Ok(msg) => {
            let again = protocol::wire::encode(&msg);
            assert!(
                again.len() <= M::BYTES_MAX,
                "{} re-encodes above its limit",
                M::NAME
            );
            match protocol::wire::decode::<M>(&again) {
                Ok(back) => assert_eq!(back, msg, "{} does not round-trip", M::NAME),
                Err(e) => panic!("{} re-encoded does not decode: {e}", M::NAME),
            }
            next(&msg);
            Outcome::Decoded
        }
    }
}

/// Every message type of `protocol::wire`, in selector order (append only:
/// the committed seeds start with their index).
pub const WIRE_MESSAGES: &[(&str, EntryPoint)] = &[
    (RegisterRequest::NAME, |b| {
        wire_then::<RegisterRequest>(b, |m| {
            let _ = protocol::flows::issuer::open_register_request(m);
        })
    }),
    (Certificate::NAME, |b| {
        wire_then::<Certificate>(b, |m| {
            let _ = protocol::flows::verify_certificate(issuer_key(), m, NOW);
        })
    }),
    (EnrollmentRequest::NAME, wire_one::<EnrollmentRequest>),
    (EnrollmentBody::NAME, wire_one::<EnrollmentBody>),
    (EnrollmentAnswer::NAME, wire_one::<EnrollmentAnswer>),
    (WRequest1::NAME, wire_one::<WRequest1>),
    (WRequest1Body::NAME, wire_one::<WRequest1Body>),
    (WRequest2::NAME, wire_one::<WRequest2>),
    (WRequest2Body::NAME, wire_one::<WRequest2Body>),
    (WRequest3::NAME, wire_one::<WRequest3>),
    (WRequest3Body::NAME, wire_one::<WRequest3Body>),
    (PurchasePoll::NAME, wire_one::<PurchasePoll>),
    (PurchaseIssuance1::NAME, wire_one::<PurchaseIssuance1>),
    (IssuedCoins::NAME, wire_one::<IssuedCoins>),
    (PurchaseIssuance2::NAME, wire_one::<PurchaseIssuance2>),
    (Invoice::NAME, wire_one::<Invoice>),
    (SendCoins::NAME, wire_one::<SendCoins>),
    (SendCoinsBody::NAME, wire_one::<SendCoinsBody>),
    (ValidationRequest::NAME, wire_one::<ValidationRequest>),
    (ValidationBody::NAME, wire_one::<ValidationBody>),
    (PaymentIssuance1::NAME, wire_one::<PaymentIssuance1>),
    (IssuerKeyBody::NAME, wire_one::<IssuerKeyBody>),
    (PaymentIssuance2::NAME, wire_one::<PaymentIssuance2>),
    (PaymentResult::NAME, wire_one::<PaymentResult>),
    (SignedReject::NAME, |b| {
        wire_then::<SignedReject>(b, |m| {
            let _ = protocol::flows::issuer::verify_reject(issuer_key(), m);
        })
    }),
    (RefundRequest::NAME, wire_one::<RefundRequest>),
    (RefundBody::NAME, wire_one::<RefundBody>),
    (RefundAnswer::NAME, wire_one::<RefundAnswer>),
    (CoinStatusQuery::NAME, wire_one::<CoinStatusQuery>),
    (CoinStatusAnswer::NAME, |b| {
        wire_then::<CoinStatusAnswer>(b, |m| {
            let coins = m.entries.iter().map(|e| e.coin).collect::<Vec<_>>();
            if let Ok(coins) = protocol::wire::CoinSerials::new(coins) {
                let query = CoinStatusQuery { coins };
                let _ = protocol::flows::verify_coin_status(issuer_key(), &query, m);
            }
        })
    }),
    (
        protocol::wire::status::HeldCoinStatusQuery::NAME,
        wire_one::<protocol::wire::status::HeldCoinStatusQuery>,
    ),
    (
        protocol::wire::cash_out::CashOutRequest::NAME,
        wire_one::<protocol::wire::cash_out::CashOutRequest>,
    ),
    (
        protocol::wire::cash_out::CashOutReceipt::NAME,
        wire_one::<protocol::wire::cash_out::CashOutReceipt>,
    ),
    (
        protocol::wire::key_change::KeyChangeRequest::NAME,
        wire_one::<protocol::wire::key_change::KeyChangeRequest>,
    ),
];

/// The selector byte of a wire message type, by its name.
pub fn wire_selector(name: &str) -> Option<u8> {
    WIRE_MESSAGES
        .iter()
        .position(|(n, _)| *n == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// Target `wire`: every protocol message, the invoice document and the
/// sealed bodies the issuer decodes once it has opened an envelope.
pub fn wire(data: &[u8]) -> Outcome {
    match select(data, WIRE_MESSAGES.len()) {
        None => Outcome::Refused("no selector".into()),
        Some((i, bytes)) => (WIRE_MESSAGES[i].1)(bytes),
    }
}

// ---------------------------------------------------------------- crypto

/// Target `crypto`: envelopes, SPKI public keys, signatures, MAC tags and
/// PKCS#8 private keys, from bytes.
pub fn crypto(data: &[u8]) -> Outcome {
    let Some((i, bytes)) = select(data, 5) else {
        return Outcome::Refused("no selector".into());
    };
    match i {
        0 => match Envelope::from_bytes(bytes) {
            Err(e) => Outcome::Refused(e.to_string()),
            Ok(env) => {
                let again = env.to_bytes();
                match Envelope::from_bytes(&again) {
                    Ok(back) => assert!(back == env, "envelope does not round-trip"),
                    Err(e) => panic!("re-encoded envelope does not decode: {e}"),
                }
                Outcome::Decoded
            }
        },
        1 => match PublicKey::from_spki_der(bytes) {
            Err(e) => Outcome::Refused(e.to_string()),
            Ok(pk) => {
                // Only the canonical encoding is accepted.
                assert_eq!(pk.to_spki_der(), bytes, "spki key is not canonical");
                Outcome::Decoded
            }
        },
        2 => match Signature::from_bytes(bytes.to_vec()) {
            Err(e) => Outcome::Refused(e.to_string()),
            Ok(sig) => {
                assert_eq!(sig.as_bytes(), bytes, "signature bytes changed");
                Outcome::Decoded
            }
        },
        3 => match MacTag::from_bytes(bytes.to_vec()) {
            Err(e) => Outcome::Refused(e.to_string()),
            Ok(tag) => {
                assert_eq!(tag.as_bytes(), bytes, "mac tag bytes changed");
                Outcome::Decoded
            }
        },
        _ => match SecretKey::from_pkcs8_der(bytes) {
            Err(e) => Outcome::Refused(e.to_string()),
            Ok(sk) => {
                let der = match sk.to_pkcs8_der() {
                    Ok(der) => der,
                    Err(e) => return Outcome::Refused(e.to_string()),
                };
                match SecretKey::from_pkcs8_der(&der) {
                    Ok(back) => assert_eq!(
                        back.public().to_spki_der(),
                        sk.public().to_spki_der(),
                        "pkcs8 key does not round-trip"
                    ),
                    Err(e) => panic!("re-encoded pkcs8 key does not decode: {e}"),
                }
                Outcome::Decoded
            }
        },
    }
}

// ---------------------------------------------------------------- event

/// Target `event`: an event (`Event::decode`), a stored record
/// (`decode_record_value`, then `RawRecord::decode`), and the chain
/// verifier fed a sequence of records.
pub fn event(data: &[u8]) -> Outcome {
    let Some((i, bytes)) = select(data, 4) else {
        return Outcome::Refused("no selector".into());
    };
    match i {
        0 => match Event::decode(bytes) {
            Err(e) => Outcome::Refused(e.to_string()),
            Ok(ev) => {
                match Event::decode(&ev.encode()) {
                    Ok(back) => assert_eq!(back, ev, "event does not round-trip"),
                    Err(e) => panic!("re-encoded event does not decode: {e}"),
                }
                Outcome::Decoded
            }
        },
        1 => stored_record(bytes),
        2 => chain(ChainVerifier::new(), bytes),
        _ => {
            // Resume from an arbitrary trusted head, as after a checkpoint.
            if bytes.len() < 40 {
                return Outcome::Refused("too short for a head".into());
            }
            let (head, rest) = bytes.split_at(40);
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&head[..8]);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&head[8..]);
            let trusted = Head {
                last_seq: Seq(u64::from_le_bytes(seq)),
                last_hash: Hash32(hash),
            };
            chain(ChainVerifier::resume(trusted), rest)
        }
    }
}

fn stored_record(bytes: &[u8]) -> Outcome {
    let seq = Seq(1);
    let raw = match ledger::redb_store::decode_record_value(seq, bytes) {
        Ok(raw) => raw,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    assert_eq!(
        ledger::redb_store::encode_record_value(&raw),
        bytes,
        "stored record does not round-trip"
    );
    // As stored, and again with its hash made right, so the event inside is
    // reached too.
    let as_stored = raw.decode();
    let mut fixed = raw;
    fixed.hash = fixed.recomputed_hash();
    match fixed.decode() {
        Ok(stored) => assert!(
            stored.record.event.encode().len() <= fixed.event_bytes.len(),
            "a decoded event re-encodes longer than it was stored"
        ),
        Err(e) => return Outcome::Refused(e.to_string()),
    }
    Outcome::of(as_stored)
}

/// Splits `bytes` into stored records (each: a flag byte, a 2-byte length,
/// the record value) and feeds them to `verifier` in order. A flag with its
/// low bit set links the record to the verifier's head and fixes its hash,
/// so the fuzzer reaches the batch checks behind the hash checks.
fn chain(mut verifier: ChainVerifier, mut bytes: &[u8]) -> Outcome {
    // What the auditor does with verified records: sum each whole batch's
    // money movements and carry the conservation equation forward.
    let mut batch: Vec<Event> = Vec::new();
    let mut totals = ledger::Totals::default();
    while bytes.len() >= 3 {
        let flag = bytes[0];
        let len = usize::from(u16::from_le_bytes([bytes[1], bytes[2]]));
        let rest = &bytes[3..];
        let len = len.min(rest.len());
        let (value, tail) = rest.split_at(len);
        bytes = tail;
        let before = verifier.head();
        let Some(next) = before.last_seq.0.checked_add(1) else {
            return Outcome::Refused("head at the last seq".into());
        };
        let Ok(mut record) = ledger::redb_store::decode_record_value(Seq(next), value) else {
            continue;
        };
        if flag & 1 == 1 {
            record.prev_hash = before.last_hash;
            record.hash = record.recomputed_hash();
        }
        match verifier.feed(&record) {
            Ok(()) => {
                assert_eq!(verifier.head().last_seq, record.seq);
                assert_eq!(verifier.head().last_hash, record.hash);
                if let Ok(stored) = record.decode() {
                    batch.push(stored.record.event);
                }
                if verifier.at_batch_boundary() {
                    let flows = ledger::Flows::of(&batch);
                    if flows.check_balanced().is_ok() {
                        let _ = totals.apply(&flows);
                    }
                    batch.clear();
                }
            }
            Err(e) => {
                assert_eq!(verifier.head(), before, "a refused record moved the head");
                assert_eq!(e.seq(), record.seq);
            }
        }
    }
    Outcome::of(verifier.finish())
}

/// A stored record as `decode_record_value` reads it, for seeds.
pub fn record_value(seq: u64, tx: [u8; 16], index: u16, len: u16, event: &Event) -> Vec<u8> {
    let event_bytes = event.encode();
    let mut raw = RawRecord {
        seq: Seq(seq),
        tx: TxId::from_bytes(tx),
        at: ledger::Timestamp(1_767_225_600),
        batch_index: index,
        batch_len: len,
        prev_hash: Hash32::GENESIS,
        hash: Hash32::GENESIS,
        event_bytes,
    };
    raw.hash = raw.recomputed_hash();
    ledger::redb_store::encode_record_value(&raw)
}

// ---------------------------------------------------------------- files

/// A private scratch directory for the file targets, one per process, on
/// tmpfs when there is one (these targets write a file per input).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        // run.sh names one, and removes it after the run.
        let base = if let Some(dir) = std::env::var_os("VC_FUZZ_SCRATCH") {
            PathBuf::from(dir)
        } else if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("vc-fuzz-{}", std::process::id()));
        if let Err(e) = fs::create_dir_all(&dir) {
            panic!("cannot create the scratch directory {}: {e}", dir.display());
        }
        dir
    })
}

/// Writes `bytes` to a fresh file of mode 0600 (the mode key files and
/// purses must have).
fn write_private(path: &Path, bytes: &[u8]) {
    let _ = fs::remove_file(path);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written {
        panic!("cannot write {}: {e}", path.display());
    }
}

// ---------------------------------------------------------------- key files

const MINT_FILE_MAGIC: &[u8] = b"VCMINT01";

/// Target `key_files`: the mint key file (raw, and with its checksum made
/// right so the fuzzer reaches the body), and a PKCS#8 private key file.
pub fn key_files(data: &[u8]) -> Outcome {
    let Some((i, bytes)) = select(data, 3) else {
        return Outcome::Refused("no selector".into());
    };
    let dir = scratch_dir();
    match i {
        0 => {
            let path = dir.join("mint.key");
            write_private(&path, bytes);
            mint_opened(protocol::mint::Mint::open(&path))
        }
        1 => {
            let path = dir.join("mint.key");
            let mut file = MINT_FILE_MAGIC.to_vec();
            file.extend_from_slice(bytes);
            let checksum = Sha256::digest(&file);
            file.extend_from_slice(&checksum);
            write_private(&path, &file);
            mint_opened(protocol::mint::Mint::open(&path))
        }
        _ => {
            let path = dir.join("key.pk8");
            write_private(&path, bytes);
            Outcome::of(SecretKey::read_pkcs8(&path))
        }
    }
}

fn mint_opened(mint: Result<protocol::mint::Mint, protocol::mint::MintError>) -> Outcome {
    match mint {
        Err(e) => Outcome::Refused(e.to_string()),
        Ok(mint) => {
            // The epochs read must be the ones the mint then answers for.
            for epoch in mint.epochs().collect::<Vec<_>>() {
                assert!(mint.has_epoch(epoch));
            }
            Outcome::Decoded
        }
    }
}

// ---------------------------------------------------------------- purse

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const COINS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("coins");
const JOURNAL: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("journal");
const HISTORY: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("history");
const META_FORMAT: &str = "format";
const META_PROFILE: &str = "profile";
const META_ISSUER: &str = "issuer";
const META_KEY_HEADER: &str = "key-header";
const META_KEY_CHECK: &str = "key-check";
/// The purse's table names, by the harness's table number.
const TABLE_NAMES: [&str; 4] = ["meta", "coins", "journal", "history"];

/// What a fuzzed purse takes from a real one: its key header and sealed
/// key check (so the fuzz passphrase opens it), and its profile record,
/// used when an input does not bring its own. Made once per process.
struct Template {
    key_header: Vec<u8>,
    key_check: Vec<u8>,
    profile: Vec<u8>,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = scratch_dir();
        let path = dir.join("template.purse");
        let _ = fs::remove_file(&path);
        let id = ledger::ParticipantId::new("fuzz").expect("a valid participant id");
        let profile = purse::PurseProfile::generate(id, protocol::crypto::SuiteId::Aes256, 2048)
            .expect("rsa keygen for the template purse");
        drop(
            purse::Purse::create(&path, &profile, None, fuzz_purse_key()).expect("template purse"),
        );
        let raw = read_raw_purse_tables(&path).expect("template purse tables");
        let profile = read_purse_tables(&path)
            .expect("template purse tables")
            .into_iter()
            .find_map(|(table, key, value)| {
                (table == 0 && key.as_slice() == META_PROFILE.as_bytes()).then_some(value)
            })
            .expect("template purse has a profile");
        let _ = fs::remove_file(&path);
        let meta_row = |name: &str| {
            raw.iter()
                .find_map(|(table, key, value)| {
                    (*table == 0 && key.as_slice() == name.as_bytes()).then(|| value.clone())
                })
                .expect("template purse has its key rows")
        };
        Template {
            key_header: meta_row(META_KEY_HEADER),
            key_check: meta_row(META_KEY_CHECK),
            profile,
        }
    })
}

/// The records of a purse file made with [`fuzz_purse_key`], opened, as
/// (table, key, encoded record): table 0 is meta (profile and issuer), 1
/// coins, 2 journal, 3 history.
pub fn read_purse_tables(path: &Path) -> Result<Vec<PurseRecord>, String> {
    let key = fuzz_purse_key();
    let mut out = Vec::new();
    for (table, row, sealed) in read_raw_purse_tables(path)? {
        if table == 0
            && row.as_slice() != META_PROFILE.as_bytes()
            && row.as_slice() != META_ISSUER.as_bytes()
        {
            continue;
        }
        let opened = key
            .open_row(TABLE_NAMES[usize::from(table)], &row, &sealed)
            .map_err(|e| e.to_string())?
            .ok_or("a record does not open under the fuzz key")?;
        out.push((table, row, opened.to_vec()));
    }
    Ok(out)
}

/// The rows of a purse file as stored (sealed), as (table, key, value).
fn read_raw_purse_tables(path: &Path) -> Result<Vec<PurseRecord>, String> {
    let db = Database::open(path).map_err(|e| e.to_string())?;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let meta = txn.open_table(META).map_err(|e| e.to_string())?;
    for row in meta.iter().map_err(|e| e.to_string())? {
        let (k, v) = row.map_err(|e| e.to_string())?;
        out.push((0, k.value().as_bytes().to_vec(), v.value().to_vec()));
    }
    for (n, table) in [(1u8, COINS), (2, JOURNAL), (3, HISTORY)] {
        let t = txn.open_table(table).map_err(|e| e.to_string())?;
        for row in t.iter().map_err(|e| e.to_string())? {
            let (k, v) = row.map_err(|e| e.to_string())?;
            out.push((n, k.value().to_vec(), v.value().to_vec()));
        }
    }
    Ok(out)
}

/// A structured `purse_file` input (selector 1) holding these records.
pub fn purse_records_input(records: &[PurseRecord]) -> Vec<u8> {
    let mut out = vec![1u8];
    for (table, key, value) in records {
        let op = match (table, key.as_slice()) {
            (0, k) if k == META_PROFILE.as_bytes() => 0u8,
            (0, k) if k == META_ISSUER.as_bytes() => 1,
            (0, _) => continue,
            (t, _) => t + 1,
        };
        out.push(op);
        if op >= 2 {
            let mut k = [0u8; 16];
            let n = key.len().min(16);
            k[..n].copy_from_slice(&key[..n]);
            out.extend_from_slice(&k);
        }
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&value[..usize::from(len)]);
    }
    out
}

/// Target `purse_file`: a garbage file opened as a purse (selector 0), and
/// a well-formed redb purse whose records are fuzzed (selector 1: the purse's
/// own decoders of profile, issuer, coins, journal and history; each fuzzed
/// record is sealed under the fuzz key for its row, so the decoders behind
/// the seal are what gets fuzzed). Whatever opens is read through every
/// reader.
pub fn purse_file(data: &[u8]) -> Outcome {
    let Some((i, bytes)) = select(data, 2) else {
        return Outcome::Refused("no selector".into());
    };
    let path = scratch_dir().join("fuzz.purse");
    if i == 0 {
        write_private(&path, bytes);
    } else if let Err(e) = write_structured_purse(&path, bytes) {
        return Outcome::Refused(e);
    }
    match purse::Purse::open(&path, &fuzz_passphrase()) {
        Err(e) => Outcome::Refused(e.to_string()),
        Ok(p) => {
            read_everything(&p);
            Outcome::Decoded
        }
    }
}

fn write_structured_purse(path: &Path, mut bytes: &[u8]) -> Result<(), String> {
    let template = template();
    let key = fuzz_purse_key();
    let seal = |table: usize, row: &[u8], record: &[u8]| {
        key.seal_row(TABLE_NAMES[table], row, record)
            .map_err(|e| e.to_string())
    };
    let mut profile = template.profile.clone();
    let mut issuer: Option<Vec<u8>> = None;
    let mut rows: Vec<(u8, [u8; 16], Vec<u8>)> = Vec::new();
    while let Some((&op, rest)) = bytes.split_first() {
        let op = op % 5;
        let mut key = [0u8; 16];
        let rest = if op >= 2 {
            if rest.len() < 16 {
                break;
            }
            key.copy_from_slice(&rest[..16]);
            &rest[16..]
        } else {
            rest
        };
        if rest.len() < 2 {
            break;
        }
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let value = rest[2..2 + len].to_vec();
        bytes = &rest[2 + len..];
        match op {
            0 => profile = value,
            1 => issuer = Some(value),
            t => rows.push((t - 1, key, value)),
        }
    }
    write_private(path, &[]);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let backend = redb::backends::FileBackend::new(file).map_err(|e| e.to_string())?;
    let db = Database::builder()
        .create_with_backend(backend)
        .map_err(|e| e.to_string())?;
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
        let format = purse::constants::PURSE_FORMAT_VERSION.to_le_bytes();
        meta.insert(META_FORMAT, format.as_slice())
            .map_err(|e| e.to_string())?;
        meta.insert(META_KEY_HEADER, template.key_header.as_slice())
            .map_err(|e| e.to_string())?;
        meta.insert(META_KEY_CHECK, template.key_check.as_slice())
            .map_err(|e| e.to_string())?;
        let sealed = seal(0, META_PROFILE.as_bytes(), &profile)?;
        meta.insert(META_PROFILE, sealed.as_slice())
            .map_err(|e| e.to_string())?;
        if let Some(issuer) = &issuer {
            let sealed = seal(0, META_ISSUER.as_bytes(), issuer)?;
            meta.insert(META_ISSUER, sealed.as_slice())
                .map_err(|e| e.to_string())?;
        }
        let mut coins = txn.open_table(COINS).map_err(|e| e.to_string())?;
        let mut journal = txn.open_table(JOURNAL).map_err(|e| e.to_string())?;
        let mut history = txn.open_table(HISTORY).map_err(|e| e.to_string())?;
        for (table, row, value) in &rows {
            let (t, n) = match table {
                1 => (&mut coins, 1),
                2 => (&mut journal, 2),
                _ => (&mut history, 3),
            };
            let sealed = seal(n, row, value)?;
            t.insert(row, sealed.as_slice())
                .map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())?;
    Ok(())
}

/// Every reader of an open purse; each must answer or refuse, not panic.
fn read_everything(p: &purse::Purse) {
    let now = ledger::Timestamp(1_900_000_000);
    let _ = p
        .profile()
        .map(|prof| (prof.secret_key().is_ok(), prof.public_key().is_ok()));
    let _ = p.issuer().map(|i| i.map(|i| i.key().is_ok()));
    if let Ok(coins) = p.coins() {
        for c in coins.iter().take(8) {
            let _ = p.coin(c.coin.id());
        }
    }
    if let Ok(balance) = p.balance() {
        let _ = balance.holdings();
    }
    let _ = p.spendable(now);
    let _ = p.expired(now);
    if let Ok(entries) = p.in_flight() {
        for e in entries.iter().take(8) {
            let _ = p.entry(e.tx);
            let _ = p.reserved_coins(e.tx);
        }
    }
    let _ = p.history();
    let _ = p.select(ledger::Amount::from_minor(100), now);
}

// ---------------------------------------------------------------- card wire

fn card_one<M>(bytes: &[u8]) -> Outcome
where
    M: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    match card_bridge::wire::decode::<M>(bytes) {
        Err(e) => Outcome::Refused(e.to_string()),
        Ok(msg) => {
            let again = card_bridge::wire::encode(&msg);
            match card_bridge::wire::decode::<M>(&again) {
                Ok(back) => assert_eq!(back, msg, "card message does not round-trip"),
                Err(e) => panic!("re-encoded card message does not decode: {e}"),
            }
            Outcome::Decoded
        }
    }
}

/// Every message of `card_bridge::wire`, in selector order (append only).
pub const CARD_MESSAGES: &[(&str, EntryPoint)] = &[
    ("L1", card_one::<card_bridge::wire::L1>),
    ("L2", card_one::<card_bridge::wire::L2>),
    ("L3", card_one::<card_bridge::wire::L3>),
    ("RejectProof", card_one::<card_bridge::wire::RejectProof>),
    ("CardProof", card_one::<card_bridge::wire::CardProof>),
    (
        "PurchaseRequest",
        card_one::<card_bridge::wire::PurchaseRequest>,
    ),
    (
        "PurchaseProof",
        card_one::<card_bridge::wire::PurchaseProof>,
    ),
];

/// Target `card_wire`: the card / load-unload server / PSAM messages.
pub fn card_wire(data: &[u8]) -> Outcome {
    match select(data, CARD_MESSAGES.len()) {
        None => Outcome::Refused("no selector".into()),
        Some((i, bytes)) => (CARD_MESSAGES[i].1)(bytes),
    }
}

/// The passphrase of the fuzzed purse files.
fn fuzz_passphrase() -> purse::Passphrase {
    purse::Passphrase::new("fuzz").expect("a valid passphrase")
}

/// The key of every fuzzed purse (a fixed salt, the cheap test cost): the
/// fuzz passphrase opens every input, so inputs stay reproducible.
pub fn fuzz_purse_key() -> purse::PurseKey {
    let header = purse::KeyHeader {
        kdf: purse::KdfParams::INSECURE_FAST,
        salt: [0x5a; purse::seal::SALT_BYTES],
    };
    purse::PurseKey::derive(&fuzz_passphrase(), header).expect("a purse key")
}
