//! Shared by the integration tests: a genuine log of realistic batches
//! (every process of the paper) from ledger's one history generator
//! (`ledger::testkit::History`), a writer that appends them through
//! ledger's stores with checkpoints signed by a real RSA key (protocol's
//! crypto), and the tools a forger would use on the stored records (which
//! `MemoryStore::from_raw_records` then serves as they are).

#![allow(dead_code)]

use std::sync::OnceLock;

use ledger::store::record_hash;
pub use ledger::testkit::{HISTORY_START, History};
use ledger::{
    Batch, Event, EventStore, Hash32, KeyEpoch, RawEventStore, RawRecord, Record, Seq, Timestamp,
    TxId,
};
use protocol::crypto::{PublicKey, SecretKey};
use vc_replay::CheckpointVerifier;

/// The issuer's signing key, made once per test binary (RSA keygen is slow).
pub fn issuer_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::generate(2048).expect("rsa key generation"))
}

/// How the CLI builds the checkpoint check from the issuer's public key:
/// with protocol's one verification function, so issuer and auditor agree.
pub fn verifier_for(public: PublicKey) -> CheckpointVerifier {
    Box::new(move |message: &[u8], signature: &[u8]| {
        protocol::checkpoint::verify_signed_bytes(&public, message, signature)
    })
}

pub fn issuer_verifier() -> CheckpointVerifier {
    verifier_for(issuer_key().public())
}

/// Positions of interesting batches in the genuine scenario.
pub struct Genuine {
    pub sim: History,
    /// A purchase's settlement batch (PurchaseSettled + CoinsIssued).
    pub settlement: usize,
    /// A card unload whose coin is never spent afterwards.
    pub unload: usize,
}

/// A day of an issuer's life: purchases (one refused), payments of each
/// option, change, refresh, redemptions, a refund, card unload, load and
/// clearing, an epoch rotation with refresh across it, and the erasure of
/// the old epoch's spent coins.
pub fn genuine(rounds: usize) -> Genuine {
    let mut sim = History::with_a_merchant();
    let settlement = sim.purchase(&[250, 250, 125, 200, 200, 200]);
    sim.rejected_purchase(10_000);
    for round in 0..rounds {
        sim.purchase(&[500, 250, 125, 100 + round as u64]);
        sim.pay_refresh(2);
        sim.pay_aggregate(1);
        sim.pay_redeem(1);
        sim.change();
        sim.refresh();
        sim.redeem(1);
    }
    sim.withdraw_aggregate(100);
    sim.refund();
    let load = sim.card_load(2);
    let loaded = match &sim.batches[load].events[1] {
        Event::CardLoaded { amount, .. } => amount.minor_units(),
        _ => 0,
    };
    // The clearing pays the server exactly the net position so far.
    sim.clear(1, loaded, 0);
    let unload = sim.card_unload(300);
    let epoch1_expiry = sim.expiry();
    let epoch1_grace_end = sim.grace_end();
    sim.rotate_epoch();
    // Epoch 1's coins have expired; refresh still takes them in its grace.
    sim.advance_to(Timestamp(epoch1_expiry.0 + 50_000));
    sim.refresh();
    sim.refresh();
    sim.purchase(&[1000, 1000]);
    sim.pay_refresh(1);
    // The issuer erases epoch 1's spent coins once its grace has ended.
    sim.advance_to(epoch1_grace_end);
    sim.erase(KeyEpoch(1));
    sim.pay_redeem(1);
    Genuine {
        sim,
        settlement,
        unload,
    }
}

/// Appends `batches` to `store`, with a checkpoint of the head signed by
/// `key` after every `checkpoint_every` batches and at the end.
pub fn write_log(
    store: &impl EventStore,
    batches: &[Batch],
    key: &SecretKey,
    checkpoint_every: usize,
) {
    for (i, batch) in batches.iter().enumerate() {
        store.append(std::slice::from_ref(batch)).expect("append");
        if (i + 1) % checkpoint_every == 0 || i + 1 == batches.len() {
            append_checkpoint(store, key);
        }
    }
}

/// Appends the issuer's signed checkpoint of the current head.
pub fn append_checkpoint(store: &impl EventStore, key: &SecretKey) {
    let head = store.head().expect("head");
    // The issuer's clock at the checkpoint: no earlier than the last record.
    let at = store
        .read(head.last_seq, 1)
        .expect("read the head")
        .first()
        .map_or(HISTORY_START, |r| r.record.at);
    let batch = Batch {
        tx: TxId::derive("vc/tx/checkpoint", &[&head.last_seq.0.to_le_bytes()]),
        at,
        events: vec![Event::Checkpoint(protocol::checkpoint::sign_checkpoint(
            key,
            head.last_seq,
            head.last_hash,
        ))],
    };
    store.append(&[batch]).expect("append checkpoint");
}

/// All records of a store, as stored.
pub fn raw_records(store: &impl RawEventStore) -> Vec<RawRecord> {
    store.read_raw(Seq(1), usize::MAX).expect("read raw")
}

/// Recomputes the chain from `records[from]` on, as a forger who rewrote a
/// record would (the sequence numbers stay as they are).
pub fn rechain(records: &mut [RawRecord], from: usize) {
    let mut prev = if from == 0 {
        Hash32::GENESIS
    } else {
        records[from - 1].hash
    };
    for r in records[from..].iter_mut() {
        r.prev_hash = prev;
        r.hash = record_hash(
            &prev,
            r.seq,
            &r.tx,
            r.at,
            r.batch_index,
            r.batch_len,
            &r.event_bytes,
        );
        prev = r.hash;
    }
}

/// Index of the first record of the `batch`-th batch that the writer
/// appended (checkpoint batches included).
pub fn first_record_of_tx(records: &[RawRecord], tx: TxId) -> usize {
    records.iter().position(|r| r.tx == tx).expect("tx in log")
}

/// Decodes a record's event, lets `edit` change it, re-encodes it in place.
pub fn edit_event(record: &mut RawRecord, edit: impl FnOnce(&mut Event)) {
    let mut event = Event::decode(&record.event_bytes).expect("genuine event decodes");
    edit(&mut event);
    record.event_bytes = event.encode();
}

/// Keeps `Record` in scope for tests that build records by hand.
pub type DecodedRecord = Record;
